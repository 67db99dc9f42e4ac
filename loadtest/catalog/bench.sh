#!/usr/bin/env bash
# The catalog benchmark: 100,000 generated products in the embedded mode.
#   1. import + index: `POST /admin/v1/products/import` of an NDJSON file to a running `shop up`,
#      until the search index holds every product (the whole path: validation, store, outbox, queue,
#      indexer);
#   2. GET /v1/products/{id} and 3. a search with a filter and facets, each with `wrk`, 64
#      connections, reporting requests/s, p50 and p99. Searches run twice: ten popular shopper
#      searches with the index's per-generation page cache (answers repeat, as on a storefront),
#      and the same with the cache off (SHOP_SEARCH_CACHE_PAGES=0: the engine's own work each time).
# Usage: loadtest/catalog/bench.sh [PRODUCTS] [SECONDS]   (needs `wrk`: apt-get install wrk)
set -euo pipefail

PRODUCTS=${1:-100000}
SECONDS_EACH=${2:-20}
PORT=${PORT:-18080}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SHOP="$ROOT/target/release/shop"
WORK=$(mktemp -d)
trap 'kill "$SERVER" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT

command -v wrk >/dev/null || { echo "bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }
(cd "$ROOT" && cargo build --release -p shop --quiet)

export SHOP_LOG=warn SHOP_RATE_LIMIT_ENABLED=false SHOP_REQUEST_TIMEOUT_MS=600000
"$SHOP" seed --products "$PRODUCTS" --ndjson "$WORK/catalog.ndjson" >/dev/null
"$SHOP" seed --data-dir "$WORK/data" >/dev/null   # the demo categories
PASSWORD=bench-password-1234
URI=$("$SHOP" admin create --email bench@example.com --password "$PASSWORD" --data-dir "$WORK/data" | grep otpauth)
"$SHOP" up --data-dir "$WORK/data" --port "$PORT" --no-seed >"$WORK/server.log" 2>&1 &
SERVER=$!
until curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null; do sleep 0.2; done

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
TOKEN=$(curl -sf "http://127.0.0.1:$PORT/v1/auth/login" -H 'content-type: application/json' \
  -d "{\"email\":\"bench@example.com\",\"password\":\"$PASSWORD\",\"totp\":\"$TOTP\"}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

total() { curl -sf "http://127.0.0.1:$PORT/v1/products?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'; }
start=$(date +%s%N)
curl -sf "http://127.0.0.1:$PORT/admin/v1/products/import" -H "authorization: Bearer $TOKEN" \
  -H 'content-type: application/x-ndjson' --data-binary "@$WORK/catalog.ndjson" >"$WORK/import.json"
imported=$(date +%s%N)
while [ "$(total)" -lt "$PRODUCTS" ]; do sleep 0.1; done
indexed=$(date +%s%N)
printf 'import %d products: %d ms; import + index: %d ms\n' "$PRODUCTS" \
  $(((imported - start) / 1000000)) $(((indexed - start) / 1000000))
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("imported", r["imported"], "failed", r["failed_total"])' "$WORK/import.json"

run() {
  local name=$1 script=$2 out
  out="$WORK/$(basename "$script" .lua).txt"
  PRODUCTS=$PRODUCTS wrk -t2 -c64 -d"${SECONDS_EACH}s" --latency -s "$script" "http://127.0.0.1:$PORT" >"$out"
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' "$out")
  p50=$(awk '$1 == "50%" {print $2}' "$out")
  p99=$(awk '$1 == "99%" {print $2}' "$out")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' "$out")
  printf '%-28s %10s rps   p50 %-9s p99 %-9s %s\n' "$name" "$rps" "$p50" "$p99" "${errors:-0 errors}"
}
run "GET /v1/products/{id}" "$ROOT/loadtest/catalog/by-id.lua"
run "search + filter + facets" "$ROOT/loadtest/catalog/search.lua"
# The same searches with the page cache off: every answer is the engine's own work.
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
SHOP_SEARCH_CACHE_PAGES=0 "$SHOP" up --data-dir "$WORK/data" --port "$PORT" --no-seed >>"$WORK/server.log" 2>&1 &
SERVER=$!
until curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null; do sleep 0.2; done
run "  … page cache off" "$ROOT/loadtest/catalog/search.lua"
