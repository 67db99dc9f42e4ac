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
SERVER=
trap 'if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait 2>/dev/null || true; fi; rm -rf "$WORK"' EXIT
# Thousands of simulated users, each with its own connections, and the shop's end of each.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

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
# Ready, then the search index holds the catalog; fail rather than wait forever.
wait_for() {
  local what=$1 limit=$2 since=$SECONDS
  shift 2
  until "$@"; do
    kill -0 "$SERVER" 2>/dev/null || { echo "run: shop up stopped:" >&2; tail -20 "$WORK/server.log" >&2; exit 1; }
    [ $((SECONDS - since)) -lt "$limit" ] || { echo "run: $what after $limit s" >&2; exit 1; }
    sleep 0.5
  done
}
total() { curl -sf "http://127.0.0.1:$PORT/v1/products?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'; }
indexed() { [ "$(total 2>/dev/null || echo 0)" -ge "$PRODUCTS" ]; }
wait_for "not ready" 120 curl -sf -o /dev/null "http://127.0.0.1:$PORT/ready"
wait_for "search does not hold all $PRODUCTS products (a reused DATA with fewer?)" 600 indexed
echo "shop up on :$PORT with $(total) products; $(nproc) cores"

status=0
for profile in $PROFILES; do
  echo "== $profile"
  "$LOADTEST" --host "http://127.0.0.1:$PORT" --profile "$profile" \
    --admin-email "$EMAIL" --admin-password "$PASSWORD" --admin-totp "$URI" \
    --report-json "$OUT/loadtest-$profile.json" || status=$?
done
exit "$status"
