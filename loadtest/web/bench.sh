#!/usr/bin/env bash
# The storefront benchmark: `shop up` (release build, embedded mode) with PRODUCTS generated
# products, the demo pricing and pictures, then
#   1. `wrk -t2 -c64` on product pages (/p/{slug}-{id}, 2,000 of them spread over the catalog, from
#      the sitemap) and on category pages (each category, sorted and filtered), reporting pages/s,
#      p50 and p99; `wrk` shares the cores with the shop;
#   2. Lighthouse 12.2 (npm, pinned in package-lock.json) in Debian's Chromium on the home, a
#      category, a search and a product page, with its default mobile emulation (a mid-range phone,
#      slow 4G, 4x CPU slowdown) and its desktop preset: the performance score and the LCP.
# Usage: loadtest/web/bench.sh [PRODUCTS] [SECONDS]   (needs wrk, chromium, node; apt-get install
# wrk chromium)
set -euo pipefail

PRODUCTS=${1:-100000}
SECONDS_EACH=${2:-20}
PORT=${PORT:-18081}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/loadtest/web
SHOP="$ROOT/target/release/shop"
WORK=$(mktemp -d)
SERVER=
trap 'if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait 2>/dev/null || true; fi; rm -rf "$WORK"' EXIT
export CHROME_PATH=${CHROME_PATH:-/usr/bin/chromium}
source "$ROOT/loadtest/lib.sh"

command -v wrk >/dev/null || { echo "bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }
[ -x "$CHROME_PATH" ] || { echo "bench: no browser at $CHROME_PATH (apt-get install chromium)" >&2; exit 1; }
(cd "$ROOT" && cargo build --release -p shop --quiet)
if [ ! -x "$HERE/node_modules/.bin/lighthouse" ]; then
  (cd "$HERE" && npm ci --silent --no-audit --no-fund)
fi

# The shop's public address: the sitemaps' URLs and the pictures' (written when they are seeded).
BASE=http://127.0.0.1:$PORT
export SHOP_LOG=warn SHOP_RATE_LIMIT_ENABLED=false SHOP_PUBLIC_URL=$BASE
start=$(date +%s)
"$SHOP" seed --products "$PRODUCTS" --pricing --data-dir "$WORK/data" >/dev/null
echo "seeded $PRODUCTS products, their stock and pictures in $(($(date +%s) - start)) s"
"$SHOP" up --data-dir "$WORK/data" --port "$PORT" --no-seed >"$WORK/server.log" 2>&1 &
SERVER=$!
wait_ready "$BASE"
wait_indexed "$BASE" "$PRODUCTS"
wait_idle "$SERVER"
echo "shop up with $PRODUCTS products in search, idle; $(nproc) cores"

# Product pages from the sitemaps (every product's URL), 2,000 of them spread over the catalog;
# category pages sorted and filtered.
curl -sf "$BASE/sitemap.xml" | grep -o '<loc>[^<]*/sitemaps/products-[0-9]*\.xml</loc>' | sed -e 's|<loc>||' -e 's|</loc>||' |
  while read -r file; do curl -sf "$file"; done | grep -o '<loc>[^<]*/p/[^<]*</loc>' |
  sed -e 's|<loc>[a-z]*://[^/]*||' -e 's|</loc>||' >"$WORK/all-products.txt"
every=$(($(wc -l <"$WORK/all-products.txt") / 2000))
awk -v every="$((every < 1 ? 1 : every))" 'NR % every == 0' "$WORK/all-products.txt" | head -2000 >"$WORK/products.txt"
[ -s "$WORK/products.txt" ] || { echo "bench: no product URLs in the sitemaps" >&2; exit 1; }
curl -sf "$BASE/v1/categories" | python3 -c '
import json, sys
body = json.load(sys.stdin)
for c in body["items"] if isinstance(body, dict) else body:
    for suffix in ("", "?sort=price_asc", "?in_stock=1", "?sort=newest&in_stock=1"):
        print("/c/" + c["slug"] + suffix)' >"$WORK/categories.txt"

export ACCEPT=text/html # the pages a browser gets
wrk_run "product pages ($(wc -l <"$WORK/products.txt") of them)" "$BASE" "$WORK/products.txt" pages/s
wrk_run "category pages ($(wc -l <"$WORK/categories.txt") of them)" "$BASE" "$WORK/categories.txt" pages/s
printf 'RSS of shop up after the runs: %s MB\n' "$(rss_mb "$SERVER")"

# Lighthouse: mobile (its default emulation and throttling) and desktop, one run a page each.
product=$(sed -n 1p "$WORK/products.txt")
for page in "/" "/c/electronics" "/search?q=classic" "$product"; do
  for preset in mobile desktop; do
    flags=()
    [ "$preset" = desktop ] && flags=(--preset=desktop)
    "$HERE/node_modules/.bin/lighthouse" "$BASE$page" --quiet --only-categories=performance \
      --chrome-flags="--headless=new --no-sandbox --disable-gpu" --output=json \
      --output-path="$WORK/lh.json" "${flags[@]}" >/dev/null 2>"$WORK/lh.log" ||
      { echo "lighthouse failed on $page ($preset):" >&2; tail -5 "$WORK/lh.log" >&2; continue; }
    python3 - "$WORK/lh.json" "$page" "$preset" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
audits = report["audits"]
score = report["categories"]["performance"]["score"]
print(f"lighthouse {sys.argv[3]:<7} {sys.argv[2][:40]:<42} score {round(score * 100):>3}   "
      f"LCP {audits['largest-contentful-paint']['numericValue'] / 1000:.2f} s   "
      f"FCP {audits['first-contentful-paint']['numericValue'] / 1000:.2f} s   "
      f"TBT {audits['total-blocking-time']['numericValue']:.0f} ms   CLS {audits['cumulative-layout-shift']['numericValue']:.3f}")
PY
  done
done
