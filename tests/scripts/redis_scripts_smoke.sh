#!/usr/bin/env bash
# Smoke test for scripts/redis-cluster.sh and scripts/redis-sentinel.sh: one up/status/down cycle
# of each (and one Sentinel failover) against real redis-server processes, asserting the printed
# REDIS_URLs, that keys and writes land where the scripts say, and that `down` leaves no process
# and no directory behind. Bounded to 60 s in all (it re-runs itself under timeout); exits 77
# (CTest's SKIP_RETURN_CODE) when Debian's redis-server / redis-tools are not installed.
#
#   tests/scripts/redis_scripts_smoke.sh
#
set -euo pipefail

# The whole run is bounded: on expiry timeout signals this script's process group, which also
# stops any server the scripts started (they stay in the caller's group).
if [[ -z ${FG_SMOKE_BOUNDED:-} ]]; then
  FG_SMOKE_BOUNDED=1 exec timeout -k 10 60 "$0" "$@"
fi

root=$(cd "$(dirname "$0")/../.." && pwd)
cluster="$root/scripts/redis-cluster.sh"
sentinel="$root/scripts/redis-sentinel.sh"

for tool in redis-server redis-cli; do
  command -v "$tool" > /dev/null 2>&1 || { echo "SKIP: $tool not installed (Debian: redis-server, redis-tools)"; exit 77; }
done

# Everything (the scripts' mktemp dirs and their "last dir" records) goes under a private TMPDIR,
# so that a user's own cluster is neither found nor touched.
work=$(mktemp -d "${TMPDIR:-/tmp}/floodgate-redis-smoke.XXXXXX")
export TMPDIR=$work
cluster_dir="" sentinel_dir="$work/sentinel"
cleanup() {
  # Whatever failed, stop what the scripts recorded (by their own PID discipline).
  if [[ -n $cluster_dir ]]; then "$cluster" down --dir "$cluster_dir" > /dev/null 2>&1 || true; fi
  if [[ -d $sentinel_dir ]]; then "$sentinel" down --dir "$sentinel_dir" > /dev/null 2>&1 || true; fi
  rm -rf -- "$work"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
rcli() { local port=$1; shift; timeout 2 redis-cli -h 127.0.0.1 -p "$port" "$@" < /dev/null; }
# alive PID: running and not a zombie (a stopped server is reaped by init a little later).
alive() { [[ -r /proc/$1/stat && "$(awk '{ print $3 }' "/proc/$1/stat" 2> /dev/null)" != Z ]]; }
pids_in() { grep -o 'pid=[0-9]*' <<< "$1" | cut -d= -f2; }
t0=$SECONDS

# ---- Redis Cluster ------------------------------------------------------------------------------

out=$(timeout 30 "$cluster" up) || fail "redis-cluster.sh up failed"
echo "$out"
cluster_dir=$(sed -n 's/^REDIS_CLUSTER_DIR=//p' <<< "$out")
[[ -d $cluster_dir && $cluster_dir == "$work"/* ]] || fail "no cluster dir under $work: '$cluster_dir'"
url=$(grep '^REDIS_URL=' <<< "$out") || fail "no REDIS_URL line"
[[ $url =~ ^REDIS_URL=redis\+cluster://127\.0\.0\.1:[0-9]+(,127\.0\.0\.1:[0-9]+){5}$ ]] ||
  fail "unexpected cluster URL: $url"
[[ $(grep -c '^master ' <<< "$out") == 3 && $(grep -c '^replica ' <<< "$out") == 3 ]] ||
  fail "expected 3 masters and 3 replicas"
ok "cluster up: $url"
cluster_pids=$(pids_in "$out")
seed=$(sed -E 's/^REDIS_URL=redis\+cluster:\/\/127\.0\.0\.1:([0-9]+).*/\1/' <<< "$url")

# Keys set through `redis-cli -c` (which follows MOVED) must sit on the master that owns their
# slot, and these three keys are spread over the three default slot ranges.
declare -A hit=()
for key in bar user:1 foo; do
  [[ $(timeout 5 redis-cli -c -h 127.0.0.1 -p "$seed" set "$key" "v-$key" < /dev/null) == OK ]] ||
    fail "SET $key through redis-cli -c"
  slot=$(rcli "$seed" cluster keyslot "$key")
  owner=$(rcli "$seed" cluster nodes | awk -v s="$slot" '$3 ~ /master/ {
      for (i = 9; i <= NF; i++) { n = split($i, r, "-"); if (n == 1) r[2] = r[1]
        if (s >= r[1] && s <= r[2]) { split($2, a, "[:@]"); print a[2] } } }')
  [[ -n $owner ]] || fail "no master owns slot $slot"
  grep -q "^master  127.0.0.1:$owner " <<< "$out" || fail "slot $slot owner $owner is not a printed master"
  [[ $(rcli "$owner" get "$key") == "v-$key" ]] || fail "$key is not on $owner, the owner of slot $slot"
  [[ $(rcli "$owner" cluster countkeysinslot "$slot") -ge 1 ]] || fail "COUNTKEYSINSLOT $slot on $owner"
  hit[$owner]=1
done
[[ ${#hit[@]} == 3 ]] || fail "the keys did not spread over the 3 masters (${!hit[*]})"
ok "keys routed by slot to all 3 masters"

"$cluster" status --dir "$cluster_dir" > /dev/null || fail "redis-cluster.sh status: not all alive"
if "$cluster" up --dir "$cluster_dir" > /dev/null 2>&1; then fail "a second up on a running dir succeeded"; fi
for pid in $cluster_pids; do alive "$pid" || fail "the refused second up stopped pid $pid"; done
ok "status ok; a second up on the running dir is refused"

timeout 15 "$cluster" down --dir "$cluster_dir" || fail "redis-cluster.sh down failed"
for pid in $cluster_pids; do alive "$pid" && fail "cluster pid $pid still running after down"; done
[[ ! -e $cluster_dir ]] || fail "down kept the dir it created: $cluster_dir"
cluster_dir=""
ok "cluster down: no process and no dir left"

# ---- Redis Sentinel -----------------------------------------------------------------------------

# A dir the caller made is used and kept (only dirs the script made are removed).
mkdir -p "$sentinel_dir"
out=$(timeout 30 "$sentinel" up --dir "$sentinel_dir" --master-name fg-smoke) || fail "redis-sentinel.sh up failed"
echo "$out"
url=$(grep '^REDIS_URL=' <<< "$out") || fail "no REDIS_URL line"
[[ $url =~ ^REDIS_URL=redis\+sentinel://127\.0\.0\.1:([0-9]+),127\.0\.0\.1:[0-9]+,127\.0\.0\.1:[0-9]+/fg-smoke$ ]] ||
  fail "unexpected sentinel URL: $url"
s1=${BASH_REMATCH[1]}
master=$(sed -nE 's/^master +127\.0\.0\.1:([0-9]+) .*/\1/p' <<< "$out")
replica=$(sed -nE 's/^replica +127\.0\.0\.1:([0-9]+) .*/\1/p' <<< "$out")
[[ -n $master && -n $replica ]] || fail "no master/replica lines"
ok "sentinel up: $url (master $master, replica $replica)"
sentinel_pids=$(pids_in "$out")

# Writes go to the master Sentinel reports; the replica refuses them.
[[ $(rcli "$s1" sentinel get-master-addr-by-name fg-smoke | sed -n 2p) == "$master" ]] ||
  fail "Sentinel does not report the printed master $master"
[[ $(rcli "$master" set smoke-key 1) == OK ]] || fail "SET on the master"
[[ $(rcli "$master" wait 1 2000) == 1 ]] || fail "the write did not reach the replica"
[[ $(rcli "$replica" set smoke-key 2) == READONLY* ]] || fail "the replica accepted a write"
"$sentinel" status --dir "$sentinel_dir" > /dev/null || fail "redis-sentinel.sh status: not all alive"
ok "writes go to the master Sentinel reports; status ok"

fo=$(timeout 40 "$sentinel" failover --dir "$sentinel_dir" --master-name fg-smoke) || fail "failover failed"
echo "$fo"
gap=$(sed -n 's/^FAILOVER_GAP_MS=//p' <<< "$fo")
[[ $gap =~ ^[0-9]+$ ]] || fail "no FAILOVER_GAP_MS"
new=$(rcli "$s1" sentinel get-master-addr-by-name fg-smoke | sed -n 2p)
[[ $new == "$replica" ]] || fail "after failover Sentinel reports $new, not the old replica $replica"
[[ $(rcli "$new" get smoke-key) == 1 && $(rcli "$new" set smoke-key 3) == OK ]] ||
  fail "the promoted master lost the key or refuses writes"
sentinel_pids+=" $(pids_in "$fo")"
ok "failover to $new in $gap ms, key kept, writable"

timeout 15 "$sentinel" down --dir "$sentinel_dir" || fail "redis-sentinel.sh down failed"
for pid in $sentinel_pids; do alive "$pid" && fail "sentinel-setup pid $pid still running after down"; done
[[ -d $sentinel_dir && ! -e $sentinel_dir/pids ]] || fail "down should keep a dir it did not make, minus its pids file"
ok "sentinel down: no process left, caller's dir kept"

echo "PASS in $((SECONDS - t0)) s"
