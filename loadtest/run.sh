#!/usr/bin/env bash
# Runs load profiles against `shop up` (embedded mode) with a generated catalog, each followed by the
# consistency check; prints each report and keeps them as JSON.
#   loadtest/run.sh [PROFILES] [PRODUCTS]     e.g. loadtest/run.sh "normal black-friday" 100000
# Environment: PORT (18080), DATA (a data dir to reuse across runs; a fresh one by default; it is
# seeded with PRODUCTS generated products when empty), OUT (where reports go: the current dir).
set -euo pipefail

PROFILES=${1:-normal black-friday}
PRODUCTS=${2:-100000}
PORT=${PORT:-18080}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$PWD}
SHOP="$ROOT/target/release/shop"
LOADTEST="$ROOT/target/release/loadtest"
WORK=$(mktemp -d)
DATA=${DATA:-$WORK/data}
trap 'kill "$SERVER" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT

(cd "$ROOT" && cargo build --release -p shop -p shop-loadtest --quiet)

# Quiet logs and the per-client rate limit off: every simulated shopper comes from 127.0.0.1.
export SHOP_LOG=warn SHOP_RATE_LIMIT_ENABLED=false
if [ ! -e "$DATA/product.db" ]; then
  echo "seeding $PRODUCTS products into $DATA"
  "$SHOP" seed --products "$PRODUCTS" --data-dir "$DATA" >/dev/null
fi
PASSWORD=load-test-admin-1234
EMAIL="loadtest-$(date +%s)@example.com"
URI=$("$SHOP" admin create --email "$EMAIL" --password "$PASSWORD" --data-dir "$DATA" | grep otpauth)
"$SHOP" up --data-dir "$DATA" --port "$PORT" --no-seed >"$WORK/server.log" 2>&1 &
SERVER=$!
until curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null; do sleep 0.2; done
total() { curl -sf "http://127.0.0.1:$PORT/v1/products?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'; }
until [ "$(total)" -ge "$PRODUCTS" ]; do sleep 1; done   # the search index holds the catalog
echo "shop up on :$PORT with $(total) products; $(nproc) cores"

status=0
for profile in $PROFILES; do
  echo "== $profile"
  "$LOADTEST" --host "http://127.0.0.1:$PORT" --profile "$profile" \
    --admin-email "$EMAIL" --admin-password "$PASSWORD" --admin-totp "$URI" \
    --report-json "$OUT/loadtest-$profile.json" || status=$?
done
exit "$status"
