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

die() { echo "$me: $*" >&2; exit 1; }
say() { echo "$me: $*" >&2; }

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

# Only Debian's Redis packages are used; say which one is missing rather than install it (this
# script never runs sudo).
need() { command -v "$1" > /dev/null 2>&1 || die "$1 not found: install the Debian package $2 (apt-get install $2)"; }
need redis-server redis-server
need redis-cli redis-tools
need timeout coreutils

# Where `up` records the dir it used, so that `down` and `status` need no --dir. Under $TMPDIR so
# that a test can keep its own.
last_file="${TMPDIR:-/tmp}/floodgate-$me-$(id -u).last"
if [[ -z $dir && $cmd != up && -f $last_file ]]; then
  dir=$(< "$last_file")
fi

# now_ms: wall clock in milliseconds, from bash's own clock (no date process per poll).
now_ms() { local t=${EPOCHREALTIME//[!0-9]/}; echo $((t / 1000)); }

# rcli PORT ARGS...: one command to one node, bounded, so that a hung node cannot hang the script.
rcli() {
  local port=$1
  shift
  timeout 2 redis-cli -h 127.0.0.1 -p "$port" "$@" < /dev/null 2> /dev/null
}

# ours PID PORT: the PID is alive and is the node this dir started. Each node runs in its own
# directory (redis-server chdirs to --dir), so /proc/PID/cwd identifies it even if the PID has
# been reused by an unrelated process since; a zombie has no cwd and counts as gone.
ours() { [[ "$(readlink "/proc/$1/cwd" 2> /dev/null)" == "$dir/node-$2" ]]; }

# Records: DIR/pids holds "PORT PID" per started node; DIR/.made-by-redis-cluster.sh marks a dir
# this script created (and so may remove).
pids_file() { echo "$dir/pids"; }
marker() { echo "$dir/.made-by-$me.sh"; }

# stop_all: SIGTERM every recorded node still ours, wait up to 5 s, SIGKILL what is left.
stop_all() {
  local f
  f=$(pids_file)
  [[ -f $f ]] || return 0
  local port pid live=()
  while read -r port pid; do
    if ours "$pid" "$port"; then
      kill -TERM "$pid" 2> /dev/null || true
      live+=("$port:$pid")
    fi
  done < "$f"
  local deadline=$(($(now_ms) + 5000)) left
  while :; do
    left=()
    for e in ${live[@]+"${live[@]}"}; do
      ours "${e#*:}" "${e%%:*}" && left+=("$e")
    done
    [[ ${#left[@]} -eq 0 || $(now_ms) -ge $deadline ]] && break
    sleep 0.1
  done
  if [[ ${#left[@]} -gt 0 ]]; then
    say "SIGKILL to ${left[*]} (still running 5 s after SIGTERM)"
    for e in "${left[@]}"; do kill -KILL "${e#*:}" 2> /dev/null || true; done
    deadline=$(($(now_ms) + 2000))
    while :; do
      live=("${left[@]}") left=()
      for e in "${live[@]}"; do ours "${e#*:}" "${e%%:*}" && left+=("$e"); done
      [[ ${#left[@]} -eq 0 ]] && break
      [[ $(now_ms) -ge $deadline ]] && die "could not stop ${left[*]}"
      sleep 0.1
    done
  fi
  rm -f "$f"
}

# remove_dir: the dir goes only if this script made it, and the "last" record with it.
remove_dir() {
  if [[ -f $(marker) ]]; then
    rm -rf -- "$dir"
  fi
  if [[ -f $last_file && "$(< "$last_file")" == "$dir" ]]; then
    rm -f "$last_file"
  fi
}

# nodes_table: "PORT ROLE MASTER_PORT SLOTS" per node from one live node's CLUSTER NODES.
nodes_table() {
  local port pid out=""
  while read -r port pid; do
    ours "$pid" "$port" && out=$(rcli "$port" cluster nodes) && [[ -n $out ]] && break
  done < "$(pids_file)"
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
    [[ -n $dir && -f $dir/pids ]] || { echo "$me: no cluster recorded${dir:+ in $dir}"; exit 3; }
    dir=$(cd "$dir" && pwd -P)
    declare -A role_of=()
    while read -r p r _; do role_of[$p]=$r; done < <(nodes_table)
    alive=0 dead=0
    while read -r port pid; do
      if ours "$pid" "$port"; then
        alive=$((alive + 1))
        echo "${role_of[$port]:-?} 127.0.0.1:$port pid=$pid alive"
      else
        dead=$((dead + 1))
        echo "${role_of[$port]:-?} 127.0.0.1:$port pid=$pid dead"
      fi
    done < "$dir/pids"
    # cluster_state from the first live node: "ok" only while every slot has a reachable master.
    while read -r port pid; do
      if ours "$pid" "$port"; then
        echo "cluster_state=$(rcli "$port" cluster info | tr -d '\r' | sed -n 's/^cluster_state://p')"
        break
      fi
    done < "$dir/pids"
    ((alive == 0)) && exit 3
    ((dead > 0)) && exit 1
    exit 0
    ;;
  down)
    [[ -n $dir && -d $dir ]] || { say "no cluster recorded${dir:+ in $dir}; nothing to stop"; exit 0; }
    dir=$(cd "$dir" && pwd -P)
    n=0
    [[ -f $dir/pids ]] && n=$(wc -l < "$dir/pids")
    stop_all
    remove_dir
    say "stopped $n node(s)$([[ -d $dir ]] && echo "; kept $dir" || echo "; removed $dir")"
    exit 0
    ;;
esac

# ---- up -----------------------------------------------------------------------------------------

made_dir=0
if [[ -z $dir ]]; then
  dir=$(mktemp -d "${TMPDIR:-/tmp}/floodgate-$me.XXXXXX")
  made_dir=1
elif [[ ! -d $dir ]]; then
  mkdir -p -- "$dir"
  made_dir=1
fi
dir=$(cd "$dir" && pwd -P)
((made_dir)) && : > "$(marker)"

# A dir that still runs nodes is refused, not taken over: its nodes.conf files belong to them.
if [[ -f $dir/pids ]]; then
  running=0
  while read -r port pid; do ours "$pid" "$port" && running=$((running + 1)); done < "$dir/pids"
  ((running == 0)) || die "$dir already runs $running node(s); run '$0 down --dir $dir' first"
  say "$dir holds a stopped cluster's state; starting afresh"
  rm -f "$dir/pids"
fi
# Old nodes.conf files would make the new nodes remember the old cluster.
rm -rf -- "$dir"/node-* "$dir/create.log"

# If anything below fails (or the user interrupts), stop what was started and leave no dir behind.
up_done=0
on_exit() {
  if ((up_done == 0)); then
    say "up failed; stopping the nodes it started"
    stop_all || true
    remove_dir || true
  fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# Listening ports, from ss when present (it sees listeners on every address, not only loopback).
listening() {
  if command -v ss > /dev/null 2>&1; then
    ss -Htln 2> /dev/null | awk '{ n = split($4, a, ":"); print a[n] }'
  fi
}
# port_free PORT: nobody listens on PORT or on its bus port. Without ss, a connect through bash's
# /dev/tcp is the check (it only sees loopback listeners; the start-up retry covers the rest).
declare -A busy=()
port_free() {
  local p
  for p in "$1" $(($1 + 10000)); do
    [[ -n ${busy[$p]:-} ]] && return 1
    if ! command -v ss > /dev/null 2>&1; then
      (exec 3<> "/dev/tcp/127.0.0.1/$p") 2> /dev/null && return 1
    fi
  done
  return 0
}
refresh_busy() {
  busy=()
  local p
  while read -r p; do busy[$p]=1; done < <(listening)
}

# Random ports come from below the kernel's ephemeral range (ip_local_port_range), bus port
# included: a port in that range can be taken at any time by an outgoing connection's local end.
eph_low=32768
read -r eph_low _ < /proc/sys/net/ipv4/ip_local_port_range 2> /dev/null || true
range_hi=$((eph_low - 1 - 10000))
range_lo=$((range_hi - 9000))
if ((range_lo < 1024)); then range_lo=40000 range_hi=55000; fi
# pick_block: the first port of $total consecutive free ports (bus ports too) at a random place,
# so that the ports read well; pick_port (one random free port) is the fallback.
pick_block() {
  local i j p ok
  for ((i = 0; i < 50; i++)); do
    p=$((range_lo + (RANDOM * 32768 + RANDOM) % (range_hi - range_lo + 2 - total)))
    ok=1
    for ((j = 0; j < total; j++)); do port_free $((p + j)) || { ok=0; break; }; done
    ((ok)) && { echo "$p"; return 0; }
  done
  return 1
}
# pick_port: a random free port no node of this cluster uses yet (nor its bus port).
declare -A taken=()
pick_port() {
  local i p
  for ((i = 0; i < 200; i++)); do
    p=$((range_lo + (RANDOM * 32768 + RANDOM) % (range_hi - range_lo + 1)))
    [[ -z ${taken[$p]:-} && -z ${taken[$((p + 10000))]:-} && -z ${taken[$((p - 10000))]:-} ]] || continue
    port_free "$p" && { echo "$p"; return 0; }
  done
  return 1
}

# start_node PORT: starts one node in the background and waits (5 s at most) until it answers
# PING and its log says it is ready. Returns 1 if the node died on start-up because its port was taken meanwhile (the caller
# then tries another port); dies on any other failure.
start_node() {
  local port=$1 pid
  local d="$dir/node-$port"
  mkdir -p "$d"
  # cwd = the node's dir (and --dir the same), which is what ours() checks. Logs go to a file and
  # stdin to /dev/null, so a caller capturing our stdout ($(...)) does not wait for the servers.
  # repl-diskless-sync-delay 0: Redis 7 otherwise waits 5 s before a replica's first sync.
  (cd "$d" && exec redis-server --port "$port" --bind 127.0.0.1 --daemonize no \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout "$node_timeout" \
    --dir "$d" --save "" --appendonly no --repl-diskless-sync-delay 0) \
    < /dev/null >> "$d/redis.log" 2>&1 &
  pid=$!
  echo "$port $pid" >> "$dir/pids"
  local deadline=$(($(now_ms) + 5000))
  while [[ $(now_ms) -lt $deadline ]]; do
    # PONG alone could come from another process that took the port first, while ours is on its
    # way out: our own log must also say that ours is listening.
    if [[ "$(rcli "$port" ping)" == PONG ]] && grep -q "Ready to accept connections" "$d/redis.log"; then
      return 0
    fi
    if ! kill -0 "$pid" 2> /dev/null || [[ "$(awk '{print $3}' "/proc/$pid/stat" 2> /dev/null)" == Z ]]; then
      wait "$pid" 2> /dev/null || true
      grep -v "^$port $pid\$" "$dir/pids" > "$dir/pids.tmp" || true
      mv "$dir/pids.tmp" "$dir/pids"
      if grep -q "Address already in use" "$d/redis.log"; then
        rm -rf -- "$d"
        return 1
      fi
      die "redis-server on port $port exited at start-up; its log ($d/redis.log) ends:
$(tail -n 5 "$d/redis.log")"
    fi
    sleep 0.05
  done
  die "redis-server on port $port did not answer PING within 5 s (log: $d/redis.log)"
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
  block=$(pick_block) || block=""
  for ((i = 0; i < total; i++)); do
    for _ in 1 2 3 4 5; do
      if [[ -n $block && -z ${taken[$((block + i))]:-} ]]; then
        p=$((block + i))
      else
        p=$(pick_port) || die "no free loopback port pair (P, P+10000) found in $range_lo-$range_hi"
      fi
      taken[$p]=1
      start_node "$p" && break
      say "port $p was taken meanwhile; trying another"
      refresh_busy
      p=""
    done
    [[ -n $p ]] || die "could not start node $((i + 1)) after 5 attempts"
    ports+=("$p")
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
deadline=$(($(now_ms) + 20000))
until cluster_ready; do
  [[ $(now_ms) -lt $deadline ]] || die "the cluster was not ok on every node within 20 s (logs: $dir/node-*/redis.log)"
  sleep 0.2
done

declare -A pid_of=()
while read -r port pid; do pid_of[$port]=$pid; done < "$dir/pids"
table=$(nodes_table)
seeds=()
while read -r p _; do seeds+=("127.0.0.1:$p"); done < <(sort -k2,2 -k1,1n <<< "$table")
echo "$dir" > "$last_file"
up_done=1
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
