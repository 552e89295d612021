#!/usr/bin/env bash
# The Envoy rate limit service's figures (docs/PERFORMANCE.md), in one run: ShouldRateLimit with
# one descriptor on the memory store and on Redis, on one HTTP/2 connection and on several, next
# to grpc.health.v1.Health/Check on the same server (the gRPC layer's ceiling: the same transport,
# no decision). Everything on 127.0.0.1; every process started here is stopped here, by PID.
#
#   bench/rls_bench.sh                  # REPS=5 SECONDS_PER_RUN=5 CONCURRENCY=64 CONNECTIONS=4
#   BUILD=build/release REPS=3 bench/rls_bench.sh
#
# The server side (floodgate, and redis-server when used) runs on SERVER_CPUS (default 1), the
# client on CLIENT_CPUS (default 0): unpinned, the scheduler sometimes stacks client and server
# threads on one core of a 2-core machine and a run loses 30-40 %. SERVER_CPUS= CLIENT_CPUS=
# (empty) runs unpinned.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build/release}
REPS=${REPS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
CONCURRENCY=${CONCURRENCY:-64}
CONNECTIONS=${CONNECTIONS:-4}
FLOODGATE=$BUILD/src/floodgate
LOAD=$BUILD/bench/rls_load
SERVER_CPUS=${SERVER_CPUS-1}
CLIENT_CPUS=${CLIENT_CPUS-0}
server_pin=()
client_pin=()
if [[ -n "$SERVER_CPUS" ]]; then server_pin=(taskset -c "$SERVER_CPUS"); fi
if [[ -n "$CLIENT_CPUS" ]]; then client_pin=(taskset -c "$CLIENT_CPUS"); fi

work=$(mktemp -d /tmp/fg-rls-bench-XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done
  wait 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

cat > "$work/bench.yaml" << 'EOF'
domain: bench
descriptors:
  - key: user
    rate_limit:
      unit: second
      requests_per_unit: 1000000
EOF

redis_port=$(free_port)
"${server_pin[@]}" redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
  > "$work/redis.log" 2>&1 &
pids+=($!)

start_floodgate() {  # start_floodgate BACKEND -> sets grpc_port and fg_pid
  local backend=$1 http_port
  http_port=$(free_port)
  grpc_port=$(free_port)
  "${server_pin[@]}" "$FLOODGATE" serve --host 127.0.0.1 --port "$http_port" --grpc-port "$grpc_port" --admin-port -1 \
    --backend "$backend" --redis-url "redis://127.0.0.1:$redis_port" --store-timeout-ms 100 \
    --rls-config "$work/bench.yaml" --log-level warn > "$work/floodgate-$backend.log" 2>&1 &
  fg_pid=$!
  pids+=("$fg_pid")
  for _ in $(seq 100); do
    if curl -fs "http://127.0.0.1:$http_port/ready" > /dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "floodgate ($backend) did not become ready" >&2
  cat "$work/floodgate-$backend.log" >&2
  exit 1
}

# median FIELD FILE: the median of a JSON number field over the lines of FILE.
median() {
  python3 -c '
import json, statistics, sys
vals = [json.loads(l)[sys.argv[1]] for l in open(sys.argv[2]) if l.strip()]
print(statistics.median(vals))' "$1" "$2"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "runs: $REPS x ${SECONDS_PER_RUN}s, $CONCURRENCY calls in flight, server on CPUs" \
  "${SERVER_CPUS:-any}, client on CPUs ${CLIENT_CPUS:-any}"
printf '%-10s %-7s %-12s %12s %8s %8s %8s  %s\n' store method connections "calls/s" p50_ms p99_ms errors \
  "calls/s per run"
for backend in memory redis; do
  start_floodgate "$backend"
  # Repetitions interleaved, so a slow spell of the host hits every variant alike.
  for _ in $(seq "$REPS"); do
    for method in health rls; do
      for conns in 1 "$CONNECTIONS"; do
        "${client_pin[@]}" "$LOAD" --port "$grpc_port" --method "$method" \
          --concurrency "$CONCURRENCY" --connections "$conns" --seconds "$SECONDS_PER_RUN" \
          --warmup 1 --values 10000 >> "$work/$backend-$method-$conns.jsonl"
      done
    done
  done
  for method in health rls; do
    for conns in 1 "$CONNECTIONS"; do
      out="$work/$backend-$method-$conns.jsonl"
      printf '%-10s %-7s %-12s %12.0f %8.3f %8.3f %8s  %s\n' "$backend" "$method" "$conns" \
        "$(median calls_per_s "$out")" "$(median p50_ms "$out")" "$(median p99_ms "$out")" \
        "$(median errors "$out")" \
        "$(python3 -c 'import json,sys; print(" ".join(str(round(json.loads(l)["calls_per_s"])) for l in open(sys.argv[1]) if l.strip()))' "$out")"
    done
  done
  kill "$fg_pid"
  wait "$fg_pid" 2> /dev/null || true
done
