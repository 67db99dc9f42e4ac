#!/usr/bin/env bash
# The catalog and hot-path benchmark: PRODUCTS generated products in the embedded mode, the bare
# references and the platform measured in the same run on the same machine (so the ratios hold on
# any machine). `wrk -t2 -c64` shares the cores with the server it loads.
#   1. import + index: `POST /admin/v1/products/import` of the NDJSON catalog (200,000 lines a
#      request) to a running `shop up`, until the search index holds every product (validation,
#      store, outbox, queue, indexer); the index's size on disk;
#   2. `shop seed --products N` (the seeding path: store, stock, pictures) into the data dir the
#      rest measures (a catalog with stock), and its first `shop up` indexing it;
#   3. the bare references: a plain axum server (`bare`: no middleware) answering `/health` and
#      `GET /v1/products/{id}` from an in-memory map of the same catalog;
#   4. the platform: `/health`, `GET /v1/products/{id}`, ten shopper searches (text, filters,
#      facets) and six broad listings (a department with tens of thousands of matches, facets),
#      first with the index's page cache (answers repeat, as on a storefront), then with it off
#      (SHOP_SEARCH_CACHE_PAGES=0: the engine's work every time); RSS after each;
#   5. the engine alone (`engine`): the same searches and listings parsed once and run straight on
#      the index, no HTTP, on two threads.
# Usage: loadtest/catalog/bench.sh [PRODUCTS] [SECONDS]   (needs `wrk`: apt-get install wrk)
set -euo pipefail

PRODUCTS=${1:-100000}
SECONDS_EACH=${2:-20}
PORT=${PORT:-18080}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/loadtest/catalog
BIN=$ROOT/target/release
# REUSE: the work dir a run with KEEP=1 left (its catalog and seeded data dir): steps 1 and 2 are
# left out.
WORK=${REUSE:-$(mktemp -d)}
SERVER=
trap 'if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait 2>/dev/null || true; fi; [ -n "${KEEP:-}${REUSE:-}" ] || rm -rf "$WORK"' EXIT
source "$ROOT/loadtest/lib.sh"
[ -z "${KEEP:-}" ] || echo "keeping $WORK"

command -v wrk >/dev/null || { echo "bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }
(cd "$ROOT" && cargo build --release -p shop -p shop-loadtest --bins --quiet)
BASE=http://127.0.0.1:$PORT
export SHOP_LOG=warn SHOP_RATE_LIMIT_ENABLED=false SHOP_REQUEST_TIMEOUT_MS=600000
echo "$PRODUCTS products; $(nproc) cores; $SECONDS_EACH s a run"

start_shop() {
  "$BIN/shop" up --data-dir "$DATA" --port "$PORT" --no-seed >>"$WORK/server.log" 2>&1 &
  SERVER=$!
  wait_ready "$BASE"
}
stop_shop() {
  kill "$SERVER"
  wait "$SERVER" 2>/dev/null || true
  SERVER=
}

if [ -z "${REUSE:-}" ]; then
# 1. Import and index.
"$BIN/shop" seed --products "$PRODUCTS" --ndjson "$WORK/catalog.ndjson" >/dev/null
"$BIN/shop" seed --data-dir "$WORK/imported" >/dev/null # the demo categories
PASSWORD=bench-password-1234
URI=$("$BIN/shop" admin create --email bench@example.com --password "$PASSWORD" --data-dir "$WORK/imported" | grep otpauth)
DATA=$WORK/imported
start_shop

# Sign in as the admin with the current TOTP code (RFC 6238, from the otpauth URI).
TOTP=$(python3 - "$URI" <<'PY'
import base64, hashlib, hmac, struct, sys, time, urllib.parse
query = urllib.parse.parse_qs(urllib.parse.urlparse(sys.argv[1]).query)
secret = base64.b32decode(query["secret"][0] + "=" * (-len(query["secret"][0]) % 8))
digits, period = int(query.get("digits", ["6"])[0]), int(query.get("period", ["30"])[0])
algorithm = getattr(hashlib, query.get("algorithm", ["SHA1"])[0].lower())
mac = hmac.new(secret, struct.pack(">Q", int(time.time()) // period), algorithm).digest()
offset = mac[-1] & 0x0F
print(str((struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 10 ** digits).zfill(digits))
PY
)
TOKEN=$(curl -sf "$BASE/v1/auth/login" -H 'content-type: application/json' \
  -d "{\"email\":\"bench@example.com\",\"password\":\"$PASSWORD\",\"totp\":\"$TOTP\"}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

split -l 200000 "$WORK/catalog.ndjson" "$WORK/part-"
start=$(date +%s%N)
for part in "$WORK"/part-*; do
  curl -sf "$BASE/admin/v1/products/import" -H "authorization: Bearer $TOKEN" \
    -H 'content-type: application/x-ndjson' --data-binary "@$part" |
    python3 -c 'import json,sys; r=json.load(sys.stdin); sys.exit(1 if r["failed_total"] else 0)' ||
    { echo "bench: the import failed" >&2; exit 1; }
done
imported=$(date +%s%N)
wait_indexed "$BASE" "$PRODUCTS"
indexed=$(date +%s%N)
printf 'import %d products: %d ms; import + index: %d ms; index on disk: %s\n' "$PRODUCTS" \
  $(((imported - start) / 1000000)) $(((indexed - start) / 1000000)) "$(du -sh "$WORK/imported/search" | cut -f1)"
stop_shop
rm -rf "$WORK/imported" "$WORK"/part-*

# 2. Seeding, and the first start indexing what was seeded.
start=$(date +%s%N)
"$BIN/shop" seed --products "$PRODUCTS" --data-dir "$WORK/data" >/dev/null
printf 'shop seed --products %d: %d ms\n' "$PRODUCTS" $((($(date +%s%N) - start) / 1000000))
DATA=$WORK/data
start=$(date +%s%N)
start_shop
wait_indexed "$BASE" "$PRODUCTS"
printf 'first start indexing them: %d ms; index on disk: %s; data dir: %s\n' $((($(date +%s%N) - start) / 1000000)) \
  "$(du -sh "$WORK/data/search" | cut -f1)" "$(du -sh "$WORK/data" | cut -f1)"
wait_idle "$SERVER"
stop_shop
fi
DATA=$WORK/data

# The request paths.
echo /health >"$WORK/health.txt"
awk -v n="$PRODUCTS" 'BEGIN { for (i = 1; i <= 20000; i++) printf "/v1/products/seed-%06d\n", (i * 7919) % n + 1 }' >"$WORK/by-id.txt"

# 3. The bare references.
"$BIN/bare" --port "$PORT" --catalog "$WORK/catalog.ndjson" &
SERVER=$!
until curl -sf -o /dev/null "$BASE/health"; do sleep 0.2; done
# Each server's figures are taken warm: a first pass over the product ids (not counted) fills the
# platform's rendered-answer cache as the bare server's map is filled at its start.
warm() { SECONDS_EACH=5 wrk_run "(warming up)" "$BASE" "$WORK/by-id.txt" >/dev/null; }
warm
echo "--- bare axum, no middleware (in-memory map)"
wrk_run "GET /health" "$BASE" "$WORK/health.txt"
BARE_HEALTH=$WRK_RPS
wrk_run "GET /v1/products/{id}" "$BASE" "$WORK/by-id.txt"
BARE_BY_ID=$WRK_RPS
stop_shop

# 4. The platform, page cache on and off.
start_shop
wait_idle "$SERVER"
warm
echo "--- shop up, page cache on"
wrk_run "GET /health" "$BASE" "$WORK/health.txt"
SHOP_HEALTH=$WRK_RPS
wrk_run "GET /v1/products/{id}" "$BASE" "$WORK/by-id.txt"
SHOP_BY_ID=$WRK_RPS
wrk_run "searches (text, filters, facets)" "$BASE" "$HERE/searches.txt"
wrk_run "broad listings (department, facets)" "$BASE" "$HERE/listings.txt"
echo "RSS: $(rss_mb "$SERVER") MB"
stop_shop
export SHOP_SEARCH_CACHE_PAGES=0
start_shop
echo "--- shop up, page cache off"
wrk_run "searches (text, filters, facets)" "$BASE" "$HERE/searches.txt"
HTTP_SEARCHES=$WRK_RPS
wrk_run "broad listings (department, facets)" "$BASE" "$HERE/listings.txt"
HTTP_LISTINGS=$WRK_RPS
echo "RSS: $(rss_mb "$SERVER") MB"
stop_shop

# 5. The engine alone.
echo "--- the engine alone (parsed once, no HTTP, 2 threads)"
engine() {
  local out
  out=$("$BIN/engine" --data-dir "$WORK/data" --searches "$1" --seconds "$SECONDS_EACH")
  echo "$2: $out" >&2
  echo "$out" | awk '{print $2}'
}
ENGINE_SEARCHES=$(engine "$HERE/searches.txt" "searches")
ENGINE_LISTINGS=$(engine "$HERE/listings.txt" "broad listings")

echo "--- the platform's share of the reference"
ratio() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]) * 100:.0f} %')" "$1" "$2"; }
echo "GET /health: $(ratio "$SHOP_HEALTH" "$BARE_HEALTH") of bare axum"
echo "GET /v1/products/{id}: $(ratio "$SHOP_BY_ID" "$BARE_BY_ID") of bare axum"
echo "searches, page cache off: $(ratio "$HTTP_SEARCHES" "$ENGINE_SEARCHES") of the engine's rate"
echo "broad listings, page cache off: $(ratio "$HTTP_LISTINGS" "$ENGINE_LISTINGS") of the engine's rate"
