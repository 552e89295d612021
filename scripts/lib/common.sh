# shellcheck shell=bash
# Helpers shared by the scripts that start, inspect and stop throw-away processes on 127.0.0.1:
# scripts/redis-cluster.sh, scripts/redis-sentinel.sh and scripts/local-cluster.sh source this file
# (relative to their own location) right after `set -euo pipefail` and `me=NAME`. It only defines
# functions and a few globals; it runs nothing and installs nothing.
#
# What is here: die/say, need, now_ms, poll_until; Redis helpers (rcli, redis_ping, redis_up); the
# state dir (DIR/pids, one "FIELDS... PID" line per started process; DIR/.made-by-NAME.sh, the mark
# of a dir the script made and so may remove; the "last dir" record under $TMPDIR); free loopback
# ports below the kernel's ephemeral range; starting a process in its own dir and waiting until it
# is ready; the down command and stopping exactly the recorded PIDs (SIGTERM, then SIGKILL after
# 5 s). Processes are stopped by the PIDs recorded, never by name: other Redis, nginx or floodgate
# processes may be running.
#
# The sourcing script provides:
#   me            its name without .sh (messages, file names)
#   dir, cmd      the state dir (empty until known) and the command, set before the functions
#                 that use them are called
#   ours FIELDS...
#                 given the fields of one DIR/pids line (PID last): succeeds when that PID is alive
#                 and is the process this dir started. Each process runs in its own directory
#                 under DIR, so /proc/PID/cwd identifies it even if the PID has been reused by an
#                 unrelated process since; a zombie has no cwd and counts as gone.
# and may redefine stop_order and kill_hard (below) after sourcing.

# shellcheck disable=SC2154 # me is set by the sourcing script
die() { echo "$me: $*" >&2; exit 1; }
say() { echo "$me: $*" >&2; }

# need CMD PACKAGE: only Debian's packages are used; say which one is missing rather than install it
# (these scripts never run sudo).
need() { command -v "$1" > /dev/null 2>&1 || die "$1 not found: install the Debian package $2 (apt-get install $2)"; }

# now_ms: wall clock in milliseconds, from bash's own clock (no date process per poll).
now_ms() { local t=${EPOCHREALTIME//[!0-9]/}; echo $((t / 1000)); }

# poll_until SECONDS INTERVAL MESSAGE CMD...: runs CMD every INTERVAL seconds until it succeeds;
# dies with MESSAGE when it has not within SECONDS.
poll_until() {
  local deadline=$(($(now_ms) + $1 * 1000)) interval=$2 msg=$3
  shift 3
  until "$@"; do
    [[ $(now_ms) -lt $deadline ]] || die "$msg"
    sleep "$interval"
  done
}

# rcli PORT ARGS...: one command to one Redis process, bounded, so that a hung one cannot hang the
# script.
rcli() {
  local port=$1
  shift
  timeout 2 redis-cli -h 127.0.0.1 -p "$port" "$@" < /dev/null 2> /dev/null
}

# redis_ping PORT: succeeds when the Redis process on PORT answers PING (bash's /dev/tcp, so that
# no redis-cli is needed).
redis_ping() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 2 bash -c '
    exec 3<> "/dev/tcp/127.0.0.1/$0" || exit 1
    printf "PING\r\n" >&3
    IFS= read -r line <&3 && [[ $line == "+PONG"* ]]' "$1" 2> /dev/null
}

# redis_up PORT LOG: the redis-server we started on PORT is up. PONG alone could come from another
# process that took the port first, while ours is on its way out: our own log must also say that
# ours is listening (a server logs that it is ready, a sentinel its running mode once its port is
# bound).
redis_up() {
  redis_ping "$1" && grep -q -E "Ready to accept connections|Running mode=sentinel" "$2"
}

# ---- the state dir ------------------------------------------------------------------------------

# recall_dir: sets last_file, where `up` records the dir it used, and for the other commands, when
# no --dir was given, dir from it, so that they need no --dir. Under $TMPDIR so that a test can
# keep its own.
last_file=""
recall_dir() {
  last_file="${TMPDIR:-/tmp}/floodgate-$me-$(id -u).last"
  # shellcheck disable=SC2154 # cmd is set by the sourcing script
  if [[ -z $dir && $cmd != up && -f $last_file ]]; then
    dir=$(< "$last_file")
  fi
}

# marker: the file that marks a dir this script made (and so may remove).
marker() { echo "$dir/.made-by-$me.sh"; }

# record FIELDS... / unrecord FIELDS...: add or remove one DIR/pids line ("FIELDS... PID").
record() { echo "$*" >> "$dir/pids"; }
unrecord() {
  grep -v -x -F -- "$*" "$dir/pids" > "$dir/pids.tmp" || true
  mv "$dir/pids.tmp" "$dir/pids"
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

# ---- stopping -----------------------------------------------------------------------------------

# stop_order: the DIR/pids lines in the order stop_all signals them (a script whose processes
# depend on each other redefines it).
stop_order() { cat "$dir/pids"; }
# kill_hard ENTRY: SIGKILL to the process of ENTRY (a DIR/pids line with ':' between the fields,
# PID last) that outlived SIGTERM (a script redefines it to kill more, e.g. nginx's workers).
kill_hard() { kill -KILL "${1##*:}" 2> /dev/null || true; }
# entry_ours ENTRY: ours on the fields of ENTRY.
entry_ours() {
  local f
  IFS=: read -r -a f <<< "$1"
  ours "${f[@]}"
}

# stop_all: SIGTERM every recorded process still ours, wait up to 5 s, SIGKILL what is left.
stop_all() {
  [[ -f $dir/pids ]] || return 0
  local rec e live=() left=()
  while read -r -a rec; do
    if ours "${rec[@]}"; then
      kill -TERM "${rec[-1]}" 2> /dev/null || true
      printf -v e '%s:' "${rec[@]}"
      live+=("${e%:}")
    fi
  done < <(stop_order)
  local deadline=$(($(now_ms) + 5000))
  while :; do
    left=()
    for e in ${live[@]+"${live[@]}"}; do entry_ours "$e" && left+=("$e"); done
    [[ ${#left[@]} -eq 0 || $(now_ms) -ge $deadline ]] && break
    sleep 0.1
  done
  if [[ ${#left[@]} -gt 0 ]]; then
    say "SIGKILL to ${left[*]} (still running 5 s after SIGTERM)"
    for e in "${left[@]}"; do kill_hard "$e"; done
    deadline=$(($(now_ms) + 2000))
    while :; do
      live=("${left[@]}") left=()
      for e in "${live[@]}"; do entry_ours "$e" && left+=("$e"); done
      [[ ${#left[@]} -eq 0 ]] && break
      [[ $(now_ms) -lt $deadline ]] || die "could not stop ${left[*]}"
      sleep 0.1
    done
  fi
  rm -f "$dir/pids"
}

# ---- the commands' common parts -----------------------------------------------------------------

# down_cmd NOTHING UNITS: the down command. NOTHING says that no dir is known ("no cluster
# recorded"), UNITS names the processes ("node(s)").
down_cmd() {
  local n=0
  [[ -n $dir && -d $dir ]] || { say "$1${dir:+ in $dir}; nothing to stop"; exit 0; }
  dir=$(cd "$dir" && pwd -P)
  [[ -f $dir/pids ]] && n=$(wc -l < "$dir/pids")
  stop_all
  remove_dir
  say "stopped $n $2$([[ -d $dir ]] && echo "; kept $dir" || echo "; removed $dir")"
  exit 0
}

# status_dir NOTHING: the status command's start: without records, NOTHING on stdout and exit 3.
status_dir() {
  [[ -n $dir && -f $dir/pids ]] || { echo "$me: $1${dir:+ in $dir}"; exit 3; }
  dir=$(cd "$dir" && pwd -P)
}
# status_exit ALIVE DEAD: exit 0 when all are alive, 1 when some are dead, 3 when none is alive.
status_exit() {
  (($1 == 0)) && exit 3
  (($2 > 0)) && exit 1
  exit 0
}

# begin_up UNITS WHAT: the up command's start. Makes the state dir (a fresh mktemp dir unless --dir
# names one; a dir made here gets the marker), refuses a dir whose recorded processes still run
# (its files belong to them: it is not taken over), forgets a stopped one's records, and from then
# on, if up fails (or the user interrupts), stops what it started and leaves no dir behind.
# UNITS names the processes ("node(s)"), WHAT the setup ("cluster").
up_done=0 up_units=""
begin_up() {
  local units=$1 what=$2 made=0 running=0 rec
  if [[ -z $dir ]]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/floodgate-$me.XXXXXX")
    made=1
  elif [[ ! -d $dir ]]; then
    mkdir -p -- "$dir"
    made=1
  fi
  dir=$(cd "$dir" && pwd -P)
  if ((made)); then : > "$(marker)"; fi
  if [[ -f $dir/pids ]]; then
    while read -r -a rec; do ours "${rec[@]}" && running=$((running + 1)); done < "$dir/pids"
    ((running == 0)) || die "$dir already runs $running $units; run '$0 down --dir $dir' first"
    say "$dir holds a stopped $what's state; starting afresh"
    rm -f "$dir/pids"
  fi
  up_units=${units//[()]/}
  up_done=0
  trap up_cleanup EXIT
  trap 'exit 130' INT TERM
}
up_cleanup() {
  if ((up_done == 0)); then
    say "up failed; stopping the $up_units it started"
    stop_all || true
    remove_dir || true
  fi
}
# end_up: up succeeded: keep what it started, and record the dir for the other commands.
end_up() {
  echo "$dir" > "$last_file"
  up_done=1
}

# ---- free ports ---------------------------------------------------------------------------------

# port_range BUS_OFFSET: where random ports come from: below the kernel's ephemeral range
# (ip_local_port_range), because a port in that range can be taken at any time by an outgoing
# connection's local end. BUS_OFFSET, when not 0 (Redis Cluster: 10000), is a second port each
# process listens on, PORT + BUS_OFFSET, which must be free and below that range too.
bus_offset=0 range_lo=0 range_hi=0
port_range() {
  bus_offset=$1
  local eph_low=32768
  read -r eph_low _ 2> /dev/null < /proc/sys/net/ipv4/ip_local_port_range || true
  range_hi=$((eph_low - 1 - bus_offset))
  range_lo=$((range_hi - 9000))
  if ((range_lo < 1024)); then range_lo=40000 range_hi=55000; fi
}

# Listening ports, from ss when present (it sees listeners on every address, not only loopback);
# without ss a connect through bash's /dev/tcp is the check (loopback listeners only; the start-up
# checks, which move a process whose port was taken meanwhile, cover the rest).
declare -A busy=()
refresh_busy() {
  busy=()
  local p
  if command -v ss > /dev/null 2>&1; then
    while read -r p; do busy[$p]=1; done < <(ss -Htln 2> /dev/null | awk '{ n = split($4, a, ":"); print a[n] }')
  fi
}
# port_free PORT: nobody listens on PORT (nor on its bus port PORT + bus_offset).
port_free() {
  local p ps=("$1")
  ((bus_offset == 0)) || ps+=($(($1 + bus_offset)))
  for p in "${ps[@]}"; do
    [[ -n ${busy[$p]:-} ]] && return 1
    if ! command -v ss > /dev/null 2>&1; then
      (exec 3<> "/dev/tcp/127.0.0.1/$p") 2> /dev/null && return 1
    fi
  done
  return 0
}

# pick_block N: the first of N consecutive free ports at a random place (ports that read well);
# choose_block N sets block to it, or to "" when there is none (port_for then picks single ports).
pick_block() {
  local n=$1 i j p ok
  for ((i = 0; i < 50; i++)); do
    p=$((range_lo + (RANDOM * 32768 + RANDOM) % (range_hi - range_lo + 2 - n)))
    ok=1
    for ((j = 0; j < n; j++)); do port_free $((p + j)) || { ok=0; break; }; done
    ((ok)) && { echo "$p"; return 0; }
  done
  return 1
}
block=""
choose_block() { block=$(pick_block "$1") || block=""; }

# pick_port: one random free port that no process of this setup uses yet (nor as its bus port).
declare -A taken=()
pick_port() {
  local i p
  for ((i = 0; i < 200; i++)); do
    p=$((range_lo + (RANDOM * 32768 + RANDOM) % (range_hi - range_lo + 1)))
    [[ -z ${taken[$p]:-} && -z ${taken[$((p + bus_offset))]:-} && -z ${taken[$((p - bus_offset))]:-} ]] || continue
    port_free "$p" && { echo "$p"; return 0; }
  done
  return 1
}

# port_for SLOT: sets got_port to the block's port SLOT while it is still free and untried, else
# to a random free one (not a $(...) subshell: taken[] must remember it).
got_port=""
port_for() {
  if [[ -n $block && -z ${taken[$((block + $1))]:-} ]] && port_free $((block + $1)); then
    got_port=$((block + $1))
  elif ((bus_offset == 0)); then
    got_port=$(pick_port) || die "no free loopback port found in $range_lo-$range_hi"
  else
    got_port=$(pick_port) || die "no free loopback port pair (P, P+$bus_offset) found in $range_lo-$range_hi"
  fi
  taken[$got_port]=1
}

# start_on_free_port SLOT WHAT START_FN [ARGS...]: START_FN PORT ARGS... on port_for SLOT, and on
# other free ports while START_FN returns 1 (the port was taken meanwhile), 5 tries in all; sets
# started_port. WHAT names the process when all 5 fail ("node 2").
started_port=""
start_on_free_port() {
  local slot=$1 what=$2 fn=$3 p
  shift 3
  for _ in 1 2 3 4 5; do
    port_for "$slot"
    p=$got_port
    if "$fn" "$p" "$@"; then
      # shellcheck disable=SC2034 # read by the caller
      started_port=$p
      return 0
    fi
    say "port $p was taken meanwhile; trying another"
    refresh_busy
  done
  die "could not start $what after 5 attempts"
}

# ---- starting -----------------------------------------------------------------------------------

# launch "FIELDS..." DIR LOG CMD...: starts CMD in the background with DIR as its cwd (which is
# what ours() checks) and records it as "FIELDS... PID"; launched holds those fields. Output goes
# to LOG and stdin is /dev/null, so that a caller capturing the script's stdout ($(...)) does not
# wait for the processes.
launched=()
launch() {
  local fields=$1 d=$2 log=$3
  shift 3
  (cd "$d" && exec "$@") < /dev/null >> "$log" 2>&1 &
  read -r -a launched <<< "$fields $!"
  record "${launched[@]}"
}

# exited PID: the launched child PID has exited (bash reaps its children itself, so its
# /proc/PID/stat goes; a zombie counts as exited).
exited() {
  local s
  read -r s 2> /dev/null < "/proc/$1/stat" || return 0
  s=${s##*) }
  [[ ${s%% *} == Z ]]
}

# await_start SECONDS WHAT NOT_READY LOG READY_CMD...: after launch, polls READY_CMD until it
# succeeds (0). A process that exits at start-up because its port was taken meanwhile (LOG says
# "address already in use"), or that READY_CMD stopped itself (READY_CMD returned 2: the port
# turned out to be shared), is unrecorded and 1 returned, so that the caller tries another port.
# Any other exit, or no success within SECONDS, is fatal; the messages name the process WHAT
# ("redis-server on port 7000") and say what it did not do in time (NOT_READY).
await_start() {
  local secs=$1 what=$2 not_ready=$3 log=$4 pid=${launched[-1]} rc
  shift 4
  local deadline=$(($(now_ms) + secs * 1000))
  while [[ $(now_ms) -lt $deadline ]]; do
    rc=0
    "$@" || rc=$?
    ((rc == 0)) && return 0
    if ((rc == 2)) || exited "$pid"; then
      wait "$pid" 2> /dev/null || true
      unrecord "${launched[@]}"
      ((rc == 2)) && return 1
      grep -q -i "address already in use" "$log" 2> /dev/null && return 1
      die "$what exited at start-up; its log ($log) ends:
$(tail -n 5 "$log")"
    fi
    sleep 0.05
  done
  die "$what $not_ready within $secs s (log: $log)"
}

# launch_redis "FIELDS..." DIR PORT WHAT ARGS...: redis-server ARGS in DIR (log: DIR/redis.log),
# awaited (5 s at most) until it is up (redis_up); returns 1 if its port was taken meanwhile.
launch_redis() {
  local fields=$1 d=$2 port=$3 what=$4
  shift 4
  launch "$fields" "$d" "$d/redis.log" redis-server "$@"
  await_start 5 "$what" "did not answer PING" "$d/redis.log" redis_up "$port" "$d/redis.log"
}
