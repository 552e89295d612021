#!/usr/bin/env bash
# Starts, inspects and stops a throw-away Redis Cluster on 127.0.0.1, for the redis-cluster
# backend's tests and bench and for users trying it. Built only on Debian's redis-server and
# redis-tools; nothing is persisted, nothing is installed, and `down` stops exactly the processes
# `up` started, by the PIDs it recorded (never by name: other Redis servers may be running).
#
#   scripts/redis-cluster.sh up     [--dir DIR] [--base-port N] [--masters 3]
#                                   [--replicas-per-master 1] [--node-timeout MS]
#   scripts/redis-cluster.sh status [--dir DIR]
#   scripts/redis-cluster.sh down   [--dir DIR]
#
# `up` prints on stdout (progress goes to stderr):
#   REDIS_CLUSTER_DIR=/tmp/floodgate-redis-cluster.XXXXXX
#   REDIS_URL=redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...
#   master  127.0.0.1:P1 pid=1234 slots=0-5460
#   replica 127.0.0.1:P4 pid=1237 of=127.0.0.1:P1
#
set -euo pipefail

me=redis-cluster
# die/say, the state dir, free ports, starting and stopping the recorded processes: shared with
# redis-sentinel.sh and local-cluster.sh.
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() {
  cat <<EOF
usage: $0 up|down|status [options]

  up       start N masters (+ replicas) on free loopback ports, create the cluster, wait until
           every node reports cluster_state:ok with all 16384 slots covered, print REDIS_URL
  status   print each recorded node's role and whether it is alive (exit 0: all alive,
           1: some dead, 3: none alive)
  down     stop the recorded nodes (SIGTERM, then SIGKILL after 5 s) and remove DIR if up made it

options:
  --dir DIR                 state directory (default for up: a fresh mktemp dir; for down and
                            status: the last dir up used, recorded in \$TMPDIR)
  --base-port N             use ports N, N+1, ... (and their cluster bus ports +10000) instead of
                            free ports picked at random
  --masters N               number of masters (default 3, at least 3)
  --replicas-per-master R   replicas per master (default 1)
  --node-timeout MS         cluster-node-timeout (default 5000): how long a master may be
                            unreachable before its replica is promoted
EOF
}

[[ $# -ge 1 ]] || { usage >&2; exit 2; }
cmd=$1
shift
case "$cmd" in
  up | down | status) ;;
  -h | --help | help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
esac

dir="" base_port="" masters=3 replicas=1 node_timeout=5000
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) dir=${2:?--dir needs a value}; shift 2 ;;
    --base-port) base_port=${2:?--base-port needs a value}; shift 2 ;;
    --masters) masters=${2:?--masters needs a value}; shift 2 ;;
    --replicas-per-master) replicas=${2:?--replicas-per-master needs a value}; shift 2 ;;
    --node-timeout) node_timeout=${2:?--node-timeout needs a value}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
if ! is_uint "$masters" || ((masters < 3)); then
  die "--masters must be a number >= 3 (redis-cli --cluster create needs 3)"
fi
is_uint "$replicas" || die "--replicas-per-master must be a number"
if ! is_uint "$node_timeout" || ((node_timeout == 0)); then
  die "--node-timeout must be a positive number of ms"
fi
total=$((masters * (1 + replicas)))
if [[ -n $base_port ]]; then
  # Each node also listens on its cluster bus port, port + 10000, which must stay below 65536.
  if ! is_uint "$base_port" || ((base_port < 1024 || base_port + total - 1 + 10000 > 65535)); then
    die "--base-port must be >= 1024 and leave room for $total ports and their bus ports (+10000)"
  fi
fi

need redis-server redis-server
need redis-cli redis-tools
need timeout coreutils

recall_dir

# Records: DIR/pids holds "PORT PID" per started node; DIR/.made-by-redis-cluster.sh marks a dir
# this script created (and so may remove).
# ours PORT PID (a DIR/pids line): the PID is alive and is the node this dir started. Each node runs
# in its own directory (redis-server chdirs to --dir), so /proc/PID/cwd identifies it even if the
# PID has been reused by an unrelated process since; a zombie has no cwd and counts as gone.
ours() { [[ "$(readlink "/proc/$2/cwd" 2> /dev/null)" == "$dir/node-$1" ]]; }

# nodes_table: "PORT ROLE MASTER_PORT SLOTS" per node from one live node's CLUSTER NODES.
nodes_table() {
  local port pid out=""
  while read -r port pid; do
    ours "$port" "$pid" && out=$(rcli "$port" cluster nodes) && [[ -n $out ]] && break
  done < "$dir/pids"
  awk '
    { split($2, a, "@"); n = split(a[1], b, ":"); port[$1] = b[n]; id[NR] = $1; master[NR] = $4
      role[NR] = ($3 ~ /master/) ? "master" : (($3 ~ /slave/) ? "replica" : "?")
      slots[NR] = ""; for (i = 9; i <= NF; i++) slots[NR] = slots[NR] (i > 9 ? "," : "") $i }
    END { for (r = 1; r <= NR; r++)
            print port[id[r]], role[r], (master[r] in port) ? port[master[r]] : "-",
                  slots[r] == "" ? "-" : slots[r] }' <<< "$out"
}

case "$cmd" in
  status)
    status_dir "no cluster recorded"
    declare -A role_of=()
    while read -r p r _; do role_of[$p]=$r; done < <(nodes_table)
    alive=0 dead=0
    while read -r port pid; do
      if ours "$port" "$pid"; then
        alive=$((alive + 1))
        echo "${role_of[$port]:-?} 127.0.0.1:$port pid=$pid alive"
      else
        dead=$((dead + 1))
        echo "${role_of[$port]:-?} 127.0.0.1:$port pid=$pid dead"
      fi
    done < "$dir/pids"
    # cluster_state from the first live node: "ok" only while every slot has a reachable master.
    while read -r port pid; do
      if ours "$port" "$pid"; then
        echo "cluster_state=$(rcli "$port" cluster info | tr -d '\r' | sed -n 's/^cluster_state://p')"
        break
      fi
    done < "$dir/pids"
    status_exit "$alive" "$dead"
    ;;
  down)
    down_cmd "no cluster recorded" "node(s)"
    ;;
esac

# ---- up -----------------------------------------------------------------------------------------

# A dir that still runs nodes is refused, not taken over: its nodes.conf files belong to them.
begin_up "node(s)" "cluster"
# Old nodes.conf files would make the new nodes remember the old cluster.
rm -rf -- "$dir"/node-* "$dir/create.log"

# Each node also listens on its cluster bus port, port + 10000: that one must be free too.
port_range 10000

# start_node PORT: starts one node in the background and waits (5 s at most) until it answers
# PING and its log says it is ready. Returns 1 if the node died on start-up because its port was
# taken meanwhile (the caller then tries another port); dies on any other failure.
start_node() {
  local port=$1
  local d="$dir/node-$port"
  mkdir -p "$d"
  # cwd = the node's dir (and --dir the same), which is what ours() checks.
  # repl-diskless-sync-delay 0: Redis 7 otherwise waits 5 s before a replica's first sync.
  launch_redis "$port" "$d" "$port" "redis-server on port $port" --port "$port" --bind 127.0.0.1 \
    --daemonize no --cluster-enabled yes --cluster-config-file nodes.conf \
    --cluster-node-timeout "$node_timeout" --dir "$d" --save "" --appendonly no \
    --repl-diskless-sync-delay 0 || { rm -rf -- "$d"; return 1; }
}

t_start=$(now_ms)
refresh_busy
ports=()
if [[ -n $base_port ]]; then
  for ((i = 0; i < total; i++)); do
    p=$((base_port + i))
    port_free "$p" || die "port $p or its bus port $((p + 10000)) is in use (--base-port $base_port)"
  done
  for ((i = 0; i < total; i++)); do
    p=$((base_port + i))
    start_node "$p" || die "port $p or its bus port $((p + 10000)) was taken while starting"
    ports+=("$p")
  done
else
  # $total consecutive ports (bus ports too) when there are, so that the ports read well.
  choose_block "$total"
  for ((i = 0; i < total; i++)); do
    start_on_free_port "$i" "node $((i + 1))" start_node
    ports+=("$started_port")
  done
fi
say "started $total nodes on ports ${ports[*]}"

# redis-cli asks for confirmation without --cluster-yes, and waits for the cluster to join with no
# limit of its own: timeout bounds it.
addrs=()
for p in "${ports[@]}"; do addrs+=("127.0.0.1:$p"); done
if ! timeout 30 redis-cli --cluster create "${addrs[@]}" --cluster-replicas "$replicas" --cluster-yes \
  < /dev/null > "$dir/create.log" 2>&1; then
  die "redis-cli --cluster create failed; its output ($dir/create.log) ends:
$(tail -n 10 "$dir/create.log")"
fi

# Ready means: every node says cluster_state:ok, sees all 16384 slots served and knows every node,
# and every replica has finished its first sync (so a failover has something to promote).
cluster_ready() {
  local p info
  for p in "${ports[@]}"; do
    info=$(rcli "$p" cluster info | tr -d '\r')
    grep -qx 'cluster_state:ok' <<< "$info" || return 1
    grep -qx 'cluster_slots_ok:16384' <<< "$info" || return 1
    grep -qx "cluster_known_nodes:$total" <<< "$info" || return 1
    # Every node's own view must show the final shape (gossip spreads replica flags a little
    # after cluster_state turns ok), so that any node can describe the cluster.
    info=$(rcli "$p" cluster nodes)
    [[ $(awk '$3 ~ /master/' <<< "$info" | wc -l) -eq $masters ]] || return 1
    [[ $(awk '$3 ~ /slave/' <<< "$info" | wc -l) -eq $((total - masters)) ]] || return 1
    info=$(rcli "$p" info replication | tr -d '\r')
    if grep -qx 'role:slave' <<< "$info"; then
      grep -qx 'master_link_status:up' <<< "$info" || return 1
    else
      grep -qx "connected_slaves:$replicas" <<< "$info" || return 1
    fi
  done
}
poll_until 20 0.2 "the cluster was not ok on every node within 20 s (logs: $dir/node-*/redis.log)" \
  cluster_ready

declare -A pid_of=()
while read -r port pid; do pid_of[$port]=$pid; done < "$dir/pids"
table=$(nodes_table)
seeds=()
while read -r p _; do seeds+=("127.0.0.1:$p"); done < <(sort -k2,2 -k1,1n <<< "$table")
end_up
say "cluster ok in $(($(now_ms) - t_start)) ms; '$0 down --dir $dir' stops it"

echo "REDIS_CLUSTER_DIR=$dir"
url="REDIS_URL=redis+cluster://$(IFS=,; echo "${seeds[*]}")"
echo "$url" | tee "$dir/url"
while read -r p role mp slots; do
  if [[ $role == master ]]; then
    echo "master  127.0.0.1:$p pid=${pid_of[$p]} slots=$slots"
  else
    echo "replica 127.0.0.1:$p pid=${pid_of[$p]} of=127.0.0.1:$mp"
  fi
done < <(sort -k2,2 -k1,1n <<< "$table")
