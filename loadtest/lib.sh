# Shared by the benchmarks (sourced): wrk runs, waiting for a shop to be ready and idle, RSS.

# wrk_run NAME URL PATHS_FILE [UNIT]: `wrk -t2 -c64` for $SECONDS_EACH seconds over the request paths
# of PATHS_FILE in turn; prints requests/s, p50 and p99 and leaves the figures in WRK_RPS, WRK_P50,
# WRK_P99.
wrk_run() {
  local name=$1 url=$2 paths=$3 unit=${4:-req/s} out
  out=$(mktemp)
  PATHS=$paths wrk -t2 -c64 -d"${SECONDS_EACH}s" --latency -s "$(dirname "${BASH_SOURCE[0]}")/paths.lua" "$url" >"$out"
  WRK_RPS=$(awk '/Requests\/sec/ {print $2}' "$out")
  WRK_P50=$(awk '$1 == "50%" {print $2}' "$out")
  WRK_P99=$(awk '$1 == "99%" {print $2}' "$out")
  local errors
  errors=$(awk '/Non-2xx|Socket errors/ {print}' "$out")
  rm -f "$out"
  printf '%-44s %10s %-7s p50 %-9s p99 %-9s %s\n' "$name" "$WRK_RPS" "$unit" "$WRK_P50" "$WRK_P99" "${errors:-0 errors}"
}

# wait_ready URL: until the shop at URL answers /ready.
wait_ready() {
  until curl -sf -o /dev/null "$1/ready"; do sleep 0.2; done
}

# wait_indexed URL COUNT: until the shop's search holds COUNT products.
wait_indexed() {
  local total
  while true; do
    total=$(curl -sf "$1/v1/products?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])' 2>/dev/null || echo 0)
    [ "$total" -ge "$2" ] && return
    sleep 0.5
  done
}

# wait_idle PID: until the process uses under 5 % of a core for two seconds (at most 20 minutes):
# after a seed its events drain for a while after search holds the catalog (1,000,000 products:
# about 3 minutes).
wait_idle() {
  local before
  for _ in $(seq 1 600); do
    before=$(awk '{ print $14 + $15 }' "/proc/$1/stat")
    sleep 2
    [ $(($(awk '{ print $14 + $15 }' "/proc/$1/stat") - before)) -lt 10 ] && return 0
  done
  echo "bench: still busy after 20 minutes; measuring anyway" >&2
}

# rss_mb PID: the process's resident memory in MB.
rss_mb() {
  echo $(($(awk '/VmRSS/ {print $2}' "/proc/$1/status") / 1024))
}
