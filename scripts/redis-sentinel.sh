#!/usr/bin/env bash
# Starts, inspects, fails over and stops a throw-away Redis Sentinel setup on 127.0.0.1 — one
# master, one replica, three sentinels — for the redis-sentinel backend's tests and for users
# trying it. Built only on Debian's redis-server and redis-tools (`redis-server --sentinel` is
# Sentinel; the separate redis-sentinel package only adds a symlink and a system service).
# Nothing is persisted, nothing is installed, and `down` stops exactly the processes this script
# started, by the PIDs it recorded (never by name: other Redis servers may be running).
#
#   scripts/redis-sentinel.sh up       [--dir DIR] [--master-name mymaster]
#   scripts/redis-sentinel.sh status   [--dir DIR]
#   scripts/redis-sentinel.sh failover [--dir DIR] [--no-restart]
#   scripts/redis-sentinel.sh down     [--dir DIR]
#
# `up` prints on stdout (progress goes to stderr):
#   REDIS_SENTINEL_DIR=/tmp/floodgate-redis-sentinel.XXXXXX
#   REDIS_URL=redis+sentinel://127.0.0.1:S1,127.0.0.1:S2,127.0.0.1:S3/mymaster
#   master   127.0.0.1:M pid=1234
#   replica  127.0.0.1:R pid=1235
#   sentinel 127.0.0.1:S1 pid=1236   (one line per sentinel)
#
set -euo pipefail

me=redis-sentinel
# die/say, the state dir, free ports, starting and stopping the recorded processes: shared with
# redis-cluster.sh and local-cluster.sh.
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() {
  cat <<EOF
usage: $0 up|down|status|failover [options]

  up        start a master, its replica and 3 sentinels on free loopback ports, wait until every
            sentinel sees the master, the replica and the 2 other sentinels (CKQUORUM ok), print
            REDIS_URL and the ports
  status    print each recorded process's role and whether it is alive, and the master the
            sentinels report (exit 0: all alive, 1: some dead, 3: none alive)
  failover  kill -9 the master the sentinels report, wait (30 s at most) until they report
            another one, print the gap in ms (FAILOVER_GAP_MS=...); then restart the killed
            server as a replica of the new master, so that the next failover has one to promote
  down      stop the recorded processes (SIGTERM, then SIGKILL after 5 s) and remove DIR if up
            made it

options:
  --dir DIR             state directory (default for up: a fresh mktemp dir; for the others: the
                        last dir up used, recorded in \$TMPDIR)
  --master-name NAME    the name the sentinels monitor the master under (default for up:
                        mymaster; for the others: the name up used)
  --no-restart          failover: leave the killed master down
EOF
}

[[ $# -ge 1 ]] || { usage >&2; exit 2; }
cmd=$1
shift
case "$cmd" in
  up | down | status | failover) ;;
  -h | --help | help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
esac

dir="" name="" restart=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) dir=${2:?--dir needs a value}; shift 2 ;;
    --master-name) name=${2:?--master-name needs a value}; shift 2 ;;
    --no-restart) restart=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

need redis-server redis-server
need redis-cli redis-tools
need timeout coreutils

recall_dir
# The master name `up` used is recorded in DIR/name, so that the other commands need no
# --master-name either.
if [[ -z $name && $cmd != up && -n $dir && -f $dir/name ]]; then
  name=$(< "$dir/name")
fi
name=${name:-mymaster}
# The name goes into sentinel.conf and into the URL's path: keep it to plain characters.
[[ $name =~ ^[A-Za-z0-9._-]+$ ]] || die "--master-name must match [A-Za-z0-9._-]+"

# Records: DIR/pids holds "KIND PORT PID" per started process (KIND: server or sentinel; which
# server is the master changes with failovers, so it is asked, not recorded).
# DIR/.made-by-redis-sentinel.sh marks a dir this script created (and so may remove).
# ours KIND PORT PID (a DIR/pids line): the PID is alive and is the process this dir started. Each process runs in
# its own directory (--dir / the sentinel.conf dir), so /proc/PID/cwd identifies it even if the
# PID has been reused since; a zombie has no cwd and counts as gone.
ours() { [[ "$(readlink "/proc/$3/cwd" 2> /dev/null)" == "$dir/$1-$2" ]]; }

# live_sentinels: the ports of the recorded sentinels that are still running.
live_sentinels() {
  local kind port pid
  while read -r kind port pid; do
    [[ $kind == sentinel ]] && ours "$kind" "$port" "$pid" && echo "$port"
  done < "$dir/pids"
  return 0
}

# master_port: the master's port as the first live sentinel that answers reports it.
master_port() {
  local s out
  for s in $(live_sentinels); do
    out=$(rcli "$s" sentinel get-master-addr-by-name "$name" | sed -n 2p)
    [[ $out =~ ^[0-9]+$ ]] && { echo "$out"; return 0; }
  done
  return 1
}

# sentinel_field SENTINEL_PORT FIELD: one field of SENTINEL MASTER NAME (a flat field/value list).
sentinel_field() {
  rcli "$1" sentinel master "$name" | awk -v f="$2" 'NR % 2 == 1 && $0 == f { getline; print; exit }'
}

# Data servers keep nothing on disk. repl-diskless-sync-delay 0: Redis 7 otherwise waits 5 s
# before a replica's first sync, which would slow up and failover's restart for nothing.
# The args functions (server_args, sentinel_args) fill the array args (an array keeps --save's
# empty value and any space in DIR intact).
args=()
server_args() {
  args=(--port "$1" --bind 127.0.0.1 --daemonize no --dir "$dir/server-$1" --save ""
    --appendonly no --repl-diskless-sync-delay 0)
}

# start_server PORT KIND [EXTRA...]: starts redis-server as KIND (server or sentinel, with
# KIND_args and EXTRA) in the background in DIR/KIND-PORT, records it, and waits (5 s at most)
# until it answers PING. Returns 1 if it died on start-up because its port was taken meanwhile
# (the caller tries another port).
start_server() {
  local port=$1 kind=$2
  shift 2
  local d="$dir/$kind-$port"
  mkdir -p "$d"
  "${kind}_args" "$port"
  # cwd = the process's dir, which is what ours() checks.
  launch_redis "$kind $port" "$d" "$port" "redis-server ($kind) on port $port" "${args[@]}" "$@" ||
    { rm -rf -- "$d"; return 1; }
}

# wait_link PORT SECONDS: until the replica on PORT has finished its sync with its master.
wait_link() {
  poll_until "$2" 0.1 "the replica on port $1 did not sync within $2 s (log: $dir/server-$1/redis.log)" \
    replica_synced "$1"
}
replica_synced() { rcli "$1" info replication | tr -d '\r' | grep -qx 'master_link_status:up'; }

# server_pid PORT: the recorded PID of the data server on PORT.
server_pid() { awk -v p="$1" '$1 == "server" && $2 == p { print $3 }' "$dir/pids" | tail -n 1; }

case "$cmd" in
  status)
    status_dir "nothing recorded"
    alive=0 dead=0
    while read -r kind port pid; do
      role=$kind
      if [[ $kind == server ]]; then
        role=$(rcli "$port" role | head -n 1) || role="" # a dead server answers nothing
        [[ $role == slave ]] && role=replica
      fi
      if ours "$kind" "$port" "$pid"; then
        alive=$((alive + 1))
        printf '%-8s 127.0.0.1:%s pid=%s alive\n' "${role:-?}" "$port" "$pid"
      else
        dead=$((dead + 1))
        printf '%-8s 127.0.0.1:%s pid=%s dead\n' "${role:-server}" "$port" "$pid"
      fi
    done < <(sort -s -k1,1r "$dir/pids") # servers first (a restarted one is recorded last)
    if m=$(master_port); then echo "sentinels report master 127.0.0.1:$m"; fi
    status_exit "$alive" "$dead"
    ;;
  down)
    down_cmd "nothing recorded" "process(es)"
    ;;
  failover)
    [[ -n $dir && -f $dir/pids ]] || die "nothing recorded${dir:+ in $dir}; run '$0 up' first"
    dir=$(cd "$dir" && pwd -P)
    old=$(master_port) || die "no live sentinel reports a master named $name"
    pid=$(server_pid "$old")
    if [[ -z $pid ]] || ! ours server "$old" "$pid"; then
      die "the master the sentinels report (port $old) is not a server this script runs"
    fi
    t0=$(now_ms)
    kill -KILL "$pid"
    say "killed master 127.0.0.1:$old (pid $pid); waiting for the sentinels to promote its replica"
    # Failed over = a sentinel reports another address and that server says it is a master (the
    # sentinels switch after the promotion, but a client that asks must find a writable master).
    new=""
    deadline=$((t0 + 30000))
    while :; do
      if m=$(master_port) && [[ $m != "$old" ]] && [[ "$(rcli "$m" role | head -n 1)" == master ]]; then
        new=$m
        break
      fi
      [[ $(now_ms) -lt $deadline ]] || die "the sentinels reported no new master within 30 s (logs: $dir/sentinel-*/redis.log)"
      sleep 0.05
    done
    gap=$(($(now_ms) - t0))
    say "new master 127.0.0.1:$new after $gap ms"
    echo "FAILOVER_GAP_MS=$gap"
    echo "master   127.0.0.1:$new pid=$(server_pid "$new")"
    if ((restart)); then
      # Restarted as a replica of the new master at once: restarted as the master it was, the
      # sentinels would convert it only after ~8 s plus their next 10 s INFO round.
      unrecord server "$old" "$pid"
      start_server "$old" server --replicaof 127.0.0.1 "$new" ||
        die "could not restart the server on port $old (port taken meanwhile)"
      wait_link "$old" 15
      # The sentinels knew it as a (down) replica since the switch; wait until they see it up
      # again, so that the next failover can promote it.
      deadline=$(($(now_ms) + 15000))
      for s in $(live_sentinels); do
        until rcli "$s" sentinel replicas "$name" |
          awk -v p="$old" 'prev == "port" && $0 == p { hit = 1 } hit && prev == "flags" { print; exit } { prev = $0 }' |
          grep -qx slave; do
          [[ $(now_ms) -lt $deadline ]] || die "sentinel $s did not see the restarted replica on port $old within 15 s"
          sleep 0.1
        done
      done
      echo "replica  127.0.0.1:$old pid=$(server_pid "$old") (restarted)"
    fi
    exit 0
    ;;
esac

# ---- up -----------------------------------------------------------------------------------------

begin_up "process(es)" "setup"
# Old sentinel.conf files (rewritten by the sentinels) would carry the old topology and epochs.
rm -rf -- "$dir"/server-* "$dir"/sentinel-*
echo "$name" > "$dir/name"

# A sentinel needs a config file it can rewrite (it records what it learns there). down-after
# 1 s and failover-timeout 5 s make failovers quick enough for tests; quorum 2 of 3.
sentinel_args() {
  local p=$1 d="$dir/sentinel-$1"
  mkdir -p "$d"
  cat > "$d/sentinel.conf" <<EOF
port $p
bind 127.0.0.1
daemonize no
dir "$d"
sentinel resolve-hostnames no
sentinel monitor $name 127.0.0.1 $master 2
sentinel down-after-milliseconds $name 1000
sentinel failover-timeout $name 5000
sentinel parallel-syncs $name 1
EOF
  args=("$d/sentinel.conf" --sentinel)
}

t_start=$(now_ms)
port_range 0 # no second port per process
refresh_busy
# 5 consecutive ports when there are (master, replica, 3 sentinels), so that the ports read well.
choose_block 5
start_on_free_port 0 "a server" start_server server
master=$started_port
start_on_free_port 1 "a server" start_server server --replicaof 127.0.0.1 "$master"
replica=$started_port
# Sentinels learn replicas from the master's INFO, which they refresh every 10 s: start them only
# once the replica is attached, so that their first INFO already lists it.
wait_link "$replica" 10
sentinels=()
for slot in 2 3 4; do
  start_on_free_port "$slot" "a sentinel" start_server sentinel
  sentinels+=("$started_port")
done

# Ready means, on every sentinel: the master is up (flags exactly "master"), one replica and the
# two other sentinels are known (sentinels find each other through hello messages on the master
# every 2 s), and CKQUORUM says the quorum and the majority for a failover are reachable.
sentinels_ready() {
  local s
  for s in "${sentinels[@]}"; do
    [[ "$(sentinel_field "$s" flags)" == master ]] || return 1
    [[ "$(sentinel_field "$s" num-slaves)" -ge 1 ]] 2> /dev/null || return 1
    [[ "$(sentinel_field "$s" num-other-sentinels)" == 2 ]] || return 1
    [[ "$(rcli "$s" sentinel ckquorum "$name")" == OK* ]] || return 1
  done
}
poll_until 20 0.2 "the sentinels did not all see the master, the replica and each other within 20 s (logs: $dir/sentinel-*/redis.log)" \
  sentinels_ready

end_up
say "master, replica and 3 sentinels ready in $(($(now_ms) - t_start)) ms; '$0 down --dir $dir' stops them"

echo "REDIS_SENTINEL_DIR=$dir"
seeds=()
for s in "${sentinels[@]}"; do seeds+=("127.0.0.1:$s"); done
echo "REDIS_URL=redis+sentinel://$(IFS=,; echo "${seeds[*]}")/$name" | tee "$dir/url"
echo "master   127.0.0.1:$master pid=$(server_pid "$master")"
echo "replica  127.0.0.1:$replica pid=$(server_pid "$replica")"
for s in "${sentinels[@]}"; do
  echo "sentinel 127.0.0.1:$s pid=$(awk -v p="$s" '$1 == "sentinel" && $2 == p { print $3 }' "$dir/pids")"
done
