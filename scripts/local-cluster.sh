#!/usr/bin/env bash
# Starts, inspects and stops the multi-instance topology natively on 127.0.0.1: one redis-server,
# three floodgate instances sharing it (BACKEND=redis), nginx load balancing to them with
# deploy/nginx/lb.conf, and (unless --no-auth) deploy/nginx/auth_request.conf's front: nginx asking
# floodgate's GET /v1/auth before passing a request to a tiny application (an nginx server that
# answers 200 and writes each request it sees to its own access log, so that a test can prove it
# never saw a denied request). The nginx configs are the shipped files, with only their
# `floodgateN:8080` / `app:8080` server lines and their `listen` ports replaced by the real
# loopback ports. Nothing is installed or persisted, and `down` stops exactly the processes this
# script started, by the PIDs it recorded (never by name: other Redis, nginx or floodgate
# processes may be running).
#
#   scripts/local-cluster.sh up     [--dir DIR] [--floodgate PATH] [--rules FILE] [--threads N]
#                                   [--store-timeout-ms MS] [--failure-mode MODE] [--no-auth]
#   scripts/local-cluster.sh status [--dir DIR]
#   scripts/local-cluster.sh down   [--dir DIR]
#
# `up` prints NAME=value lines on stdout (progress goes to stderr), e.g.
#   CLUSTER_DIR=/tmp/floodgate-local-cluster.XXXXXX
#   LB_URL=http://127.0.0.1:41000            nginx, deploy/nginx/lb.conf
#   FLOODGATE1_URL=http://127.0.0.1:41001    FLOODGATE1_PID=1234  (and 2, 3)
#   AUTH_URL=http://127.0.0.1:41005          nginx, deploy/nginx/auth_request.conf
#   APP_URL=http://127.0.0.1:41006           the application behind AUTH_URL
#   APP_ACCESS_LOG=DIR/nginx/app-access.log  one line per request the application saw
#   REDIS_URL=redis://127.0.0.1:41004        REDIS_PID=1233
#   NGINX_PID=1238
# so that `eval "$(scripts/local-cluster.sh up)"` sets them in a shell.
#
# Needs: redis-server (Debian: redis-server), nginx (Debian: nginx, with its auth_request module),
# the floodgate binary (default: build/release/src/floodgate of this checkout).
set -euo pipefail

me=local-cluster
# nginx lives in /usr/sbin, which a non-root user's PATH often lacks.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
  cat <<EOF
usage: $0 up|down|status [options]

  up        start redis-server, 3 floodgate instances on it (BACKEND=redis), nginx load balancing
            to them (deploy/nginx/lb.conf) and the auth_request front with its application
            (deploy/nginx/auth_request.conf) on free loopback ports; wait until each is ready;
            print the URLs and PIDs as NAME=value lines
  status    print each recorded process and whether it is alive (and ready), exit 0 when all are
            alive, 1 when some are dead, 3 when none is
  down      stop the recorded processes (SIGTERM, then SIGKILL after 5 s) and remove DIR if up
            made it

options:
  --dir DIR          state directory (default for up: a fresh mktemp dir; for the others: the last
                     dir up used, recorded in \$TMPDIR)
  --floodgate PATH   the floodgate binary (default: $root/build/release/src/floodgate)
  --rules FILE       rules file for the instances (CONFIG_FILE); default: a generated one whose
                     auth rule (GET /v1/auth) allows 5 requests per 60 s per X-API-Key, exactly
                     (sliding_window_log; requests without the header share the key "-")
  --threads N        THREADS of each instance (default 0: one per core)
  --store-timeout-ms MS, --failure-mode MODE
                     STORE_TIMEOUT_MS and FAILURE_MODE of each instance (default: floodgate's, 10 ms
                     and fail_open, or what the environment says). Everything here shares the
                     machine's cores: under heavy load a Redis answer can take longer than 10 ms,
                     and such checks are answered by the failure mode (degraded, not exact)
  --no-auth          no auth_request front and no application
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

dir="" floodgate="$root/build/release/src/floodgate" rules="" threads=0 with_auth=1
store_timeout="" failure_mode=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) dir=${2:?--dir needs a value}; shift 2 ;;
    --floodgate) floodgate=${2:?--floodgate needs a value}; shift 2 ;;
    --rules) rules=${2:?--rules needs a value}; shift 2 ;;
    --threads) threads=${2:?--threads needs a value}; shift 2 ;;
    --store-timeout-ms) store_timeout=${2:?--store-timeout-ms needs a value}; shift 2 ;;
    --failure-mode) failure_mode=${2:?--failure-mode needs a value}; shift 2 ;;
    --no-auth) with_auth=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
[[ $threads =~ ^[0-9]+$ ]] || die "--threads must be a number"
[[ -z $store_timeout || $store_timeout =~ ^[0-9]+$ ]] || die "--store-timeout-ms must be a number"
case "$failure_mode" in "" | fail_open | fail_closed | local) ;; *) die "--failure-mode must be fail_open, fail_closed or local" ;; esac

# Where `up` records the dir it used, so that the other commands need no --dir. Under $TMPDIR so
# that a test can keep its own.
last_file="${TMPDIR:-/tmp}/floodgate-$me-$(id -u).last"
if [[ -z $dir && $cmd != up && -f $last_file ]]; then
  dir=$(< "$last_file")
fi

# now_ms: wall clock in milliseconds, from bash's own clock.
now_ms() { local t=${EPOCHREALTIME//[!0-9]/}; echo $((t / 1000)); }

# http_status PORT PATH: the status code of GET PATH on 127.0.0.1:PORT (bash's /dev/tcp, no curl
# needed), empty when nothing answers within 2 s.
http_status() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 2 bash -c '
    exec 3<> "/dev/tcp/127.0.0.1/$0" || exit 1
    printf "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" "$1" >&3
    IFS=" " read -r _ code _ <&3 && echo "$code"' "$1" "$2" 2> /dev/null || true
}

# redis_ping PORT: succeeds when the redis-server on PORT answers PING (no redis-cli needed).
redis_ping() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 2 bash -c '
    exec 3<> "/dev/tcp/127.0.0.1/$0" || exit 1
    printf "PING\r\n" >&3
    IFS= read -r line <&3 && [[ $line == "+PONG"* ]]' "$1" 2> /dev/null
}

# Records: DIR/pids holds "NAME PORT PID" per started process (NAME: redis, floodgate1..3,
# nginx; PORT: its main port). Each process runs in its own directory DIR/NAME, so /proc/PID/cwd
# identifies it even if the PID has been reused since; a zombie has no cwd and counts as gone.
# DIR/.made-by-local-cluster.sh marks a dir this script created (and so may remove).
marker() { echo "$dir/.made-by-$me.sh"; }
ours() { [[ "$(readlink "/proc/$3/cwd" 2> /dev/null)" == "$dir/$1" ]]; }

# children PID: the PIDs of PID's children (nginx's workers), read from /proc.
children() { cat /proc/"$1"/task/*/children 2> /dev/null || true; }

# stop_all: SIGTERM every recorded process still ours, wait up to 5 s, SIGKILL what is left (and
# the workers of an nginx master killed that way, which would otherwise stay as orphans).
stop_all() {
  local f="$dir/pids"
  [[ -f $f ]] || return 0
  local name port pid e live=() left=() kids
  # The fronts first, then the instances, then Redis: what is still running keeps answering.
  while read -r name port pid; do
    if ours "$name" "$port" "$pid"; then
      kill -TERM "$pid" 2> /dev/null || true
      live+=("$name:$port:$pid")
    fi
  done < <(awk '{ o = $1 == "nginx" ? 0 : $1 == "redis" ? 2 : 1; print o, $0 }' "$f" | sort -s -n -k1,1 | cut -d' ' -f2-)
  local deadline=$(($(now_ms) + 5000))
  still_ours() { local rest=${1#*:}; ours "${1%%:*}" "${rest%%:*}" "${rest#*:}"; }
  while :; do
    left=()
    for e in ${live[@]+"${live[@]}"}; do still_ours "$e" && left+=("$e"); done
    [[ ${#left[@]} -eq 0 || $(now_ms) -ge $deadline ]] && break
    sleep 0.1
  done
  if [[ ${#left[@]} -gt 0 ]]; then
    say "SIGKILL to ${left[*]} (still running 5 s after SIGTERM)"
    for e in "${left[@]}"; do
      kids=""
      [[ ${e%%:*} == nginx ]] && kids=$(children "${e##*:}")
      kill -KILL "${e##*:}" 2> /dev/null || true
      for pid in $kids; do kill -KILL "$pid" 2> /dev/null || true; done
    done
    deadline=$(($(now_ms) + 2000))
    while :; do
      live=("${left[@]}") left=()
      for e in "${live[@]}"; do still_ours "$e" && left+=("$e"); done
      [[ ${#left[@]} -eq 0 ]] && break
      [[ $(now_ms) -lt $deadline ]] || die "could not stop ${left[*]}"
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

case "$cmd" in
  status)
    [[ -n $dir && -f $dir/pids ]] || { echo "$me: nothing recorded${dir:+ in $dir}"; exit 3; }
    dir=$(cd "$dir" && pwd -P)
    alive=0 dead=0
    while read -r name port pid; do
      if ours "$name" "$port" "$pid"; then
        alive=$((alive + 1))
        case "$name" in
          redis) redis_ping "$port" && state=ready || state=not-answering ;;
          floodgate*) state="ready=$(http_status "$port" /ready)" ;;
          nginx) state="lb-health=$(http_status "$port" /health)" ;;
        esac
        printf '%-10s 127.0.0.1:%s pid=%s alive %s\n' "$name" "$port" "$pid" "$state"
      else
        dead=$((dead + 1))
        printf '%-10s 127.0.0.1:%s pid=%s dead\n' "$name" "$port" "$pid"
      fi
    done < "$dir/pids"
    ((alive == 0)) && exit 3
    ((dead > 0)) && exit 1
    exit 0
    ;;
  down)
    [[ -n $dir && -d $dir ]] || { say "nothing recorded${dir:+ in $dir}; nothing to stop"; exit 0; }
    dir=$(cd "$dir" && pwd -P)
    n=0
    [[ -f $dir/pids ]] && n=$(wc -l < "$dir/pids")
    stop_all
    remove_dir
    say "stopped $n process(es)$([[ -d $dir ]] && echo "; kept $dir" || echo "; removed $dir")"
    exit 0
    ;;
esac

# ---- up -----------------------------------------------------------------------------------------

command -v redis-server > /dev/null 2>&1 || die "redis-server not found: install the Debian package redis-server"
command -v nginx > /dev/null 2>&1 || die "nginx not found: install the Debian package nginx"
command -v timeout > /dev/null 2>&1 || die "timeout not found: install the Debian package coreutils"
[[ -x $floodgate ]] || die "no executable floodgate binary at $floodgate (build it, or give --floodgate PATH)"
floodgate=$(realpath -- "$floodgate")
lb_conf="$root/deploy/nginx/lb.conf"
auth_conf="$root/deploy/nginx/auth_request.conf"
[[ -f $lb_conf ]] || die "missing $lb_conf"
((with_auth == 0)) || [[ -f $auth_conf ]] || die "missing $auth_conf"
if [[ -n $rules ]]; then
  [[ -f $rules ]] || die "no rules file at $rules"
  rules=$(realpath -- "$rules")
fi

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

# A dir that still runs processes is refused, not taken over.
if [[ -f $dir/pids ]]; then
  running=0
  while read -r name port pid; do ours "$name" "$port" "$pid" && running=$((running + 1)); done < "$dir/pids"
  ((running == 0)) || die "$dir already runs $running process(es); run '$0 down --dir $dir' first"
  say "$dir holds a stopped cluster's state; starting afresh"
  rm -f "$dir/pids"
fi
rm -rf -- "$dir"/redis "$dir"/floodgate[0-9] "$dir"/nginx

# If anything below fails (or the user interrupts), stop what was started and leave no dir behind.
up_done=0
on_exit() {
  if ((up_done == 0)); then
    say "up failed; stopping the processes it started"
    stop_all || true
    remove_dir || true
  fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# Listening ports, from ss when present (it sees listeners on every address, not only loopback);
# without ss a connect through bash's /dev/tcp is the check (loopback listeners only; the
# start-up checks below cover the rest).
declare -A busy=()
refresh_busy() {
  busy=()
  local p
  if command -v ss > /dev/null 2>&1; then
    while read -r p; do busy[$p]=1; done < <(ss -Htln 2> /dev/null | awk '{ n = split($4, a, ":"); print a[n] }')
  fi
}
port_free() {
  [[ -n ${busy[$1]:-} ]] && return 1
  if ! command -v ss > /dev/null 2>&1; then
    (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null && return 1
  fi
  return 0
}

# Random ports come from below the kernel's ephemeral range (ip_local_port_range): a port in that
# range can be taken at any time by an outgoing connection's local end.
eph_low=32768
read -r eph_low _ < /proc/sys/net/ipv4/ip_local_port_range 2> /dev/null || true
range_hi=$((eph_low - 1))
range_lo=$((range_hi - 9000))
if ((range_lo < 1024)); then range_lo=40000 range_hi=55000; fi
declare -A taken=()
# pick_block: the first of 7 consecutive free ports at a random place (ports that read well: LB,
# instances 1-3, Redis, auth front, application); pick_port: one random free port no process of
# this cluster uses yet, the fallback.
nslots=7
pick_block() {
  local i j p ok
  for ((i = 0; i < 50; i++)); do
    p=$((range_lo + (RANDOM * 32768 + RANDOM) % (range_hi - range_lo - nslots)))
    ok=1
    for ((j = 0; j < nslots; j++)); do port_free $((p + j)) || { ok=0; break; }; done
    ((ok)) && { echo "$p"; return 0; }
  done
  return 1
}
pick_port() {
  local i p
  for ((i = 0; i < 200; i++)); do
    p=$((range_lo + (RANDOM * 32768 + RANDOM) % (range_hi - range_lo + 1)))
    [[ -z ${taken[$p]:-} ]] && port_free "$p" && { echo "$p"; return 0; }
  done
  return 1
}
# port_for SLOT: sets got_port to the block's port SLOT if still free, else a random free one (not
# a $(...) subshell: taken[] must remember it).
got_port=""
port_for() {
  if [[ -n $block && -z ${taken[$((block + $1))]:-} ]] && port_free $((block + $1)); then
    got_port=$((block + $1))
  else
    got_port=$(pick_port) || die "no free loopback port found in $range_lo-$range_hi"
  fi
  taken[$got_port]=1
}

# listeners_only PORT PID: every socket listening on PORT belongs to PID. floodgate binds with
# SO_REUSEPORT, so a second floodgate (same user) on a port already in use starts without error
# and the kernel would split the connections between the two: the port must be checked.
listeners_only() {
  command -v ss > /dev/null 2>&1 || return 0
  local others
  others=$(ss -Htlnp "sport = :$1" 2> /dev/null | grep -o 'pid=[0-9]*' | grep -vx "pid=$2" || true)
  [[ -z $others ]]
}

# record NAME PORT PID / unrecord NAME PORT PID
record() { echo "$1 $2 $3" >> "$dir/pids"; }
unrecord() {
  grep -v "^$1 $2 $3\$" "$dir/pids" > "$dir/pids.tmp" || true
  mv "$dir/pids.tmp" "$dir/pids"
}

# exited_on_taken_port NAME PID LOG: the process died at start-up because its port was taken.
exited_on_taken_port() {
  wait "$2" 2> /dev/null || true
  grep -q -i "address already in use" "$3"
}

t_start=$(now_ms)
refresh_busy
block=$(pick_block) || block=""
: > "$dir/pids"

# ---- Redis (slot 4) ----
start_redis() {
  local port=$1 pid d="$dir/redis"
  rm -rf -- "$d"
  mkdir -p "$d"
  (cd "$d" && exec redis-server --port "$port" --bind 127.0.0.1 --daemonize no --dir "$d" \
    --save "" --appendonly no) < /dev/null >> "$d/redis.log" 2>&1 &
  pid=$!
  record redis "$port" "$pid"
  local deadline=$(($(now_ms) + 5000))
  while [[ $(now_ms) -lt $deadline ]]; do
    # PONG alone could come from another process that took the port first: our log must agree.
    if redis_ping "$port" && grep -q "Ready to accept connections" "$d/redis.log"; then
      redis_pid=$pid
      return 0
    fi
    if ! ours redis "$port" "$pid"; then
      unrecord redis "$port" "$pid"
      exited_on_taken_port redis "$pid" "$d/redis.log" && return 1
      die "redis-server on port $port exited at start-up; its log ($d/redis.log) ends:
$(tail -n 5 "$d/redis.log")"
    fi
    sleep 0.05
  done
  die "redis-server on port $port did not answer PING within 5 s (log: $d/redis.log)"
}
redis_port="" redis_pid=""
for _ in 1 2 3 4 5; do
  port_for 4
  p=$got_port
  if start_redis "$p"; then redis_port=$p; break; fi
  say "port $p was taken meanwhile; trying another"
  refresh_busy
done
[[ -n $redis_port ]] || die "could not start redis-server after 5 attempts"
redis_url="redis://127.0.0.1:$redis_port"

# ---- rules ----
if [[ -z $rules ]]; then
  rules="$dir/rules.yaml"
  cat > "$rules" <<'EOF'
# Generated by scripts/local-cluster.sh: the rule GET /v1/auth applies (the auth_request front).
rules:
  auth:
    algorithm: sliding_window_log   # exact: at most 5 in any 60 s, no window-boundary bursts
    limit: 5
    window: 60
    key: [api_key]                  # X-API-Key; requests without one share the key "-"
auth:
  rule: auth
EOF
fi

# ---- floodgate instances (slots 1-3) ----
declare -A fg_port=() fg_pid=()
# start_floodgate N PORT: 0 when ready, 1 when the port turned out to be taken.
start_floodgate() {
  local n=$1 port=$2 pid name="floodgate$1"
  local d="$dir/$name"
  rm -rf -- "$d"
  mkdir -p "$d"
  local extra=()
  [[ -n $store_timeout ]] && extra+=(STORE_TIMEOUT_MS="$store_timeout")
  [[ -n $failure_mode ]] && extra+=(FAILURE_MODE="$failure_mode")
  (cd "$d" && exec env HOST=127.0.0.1 PORT="$port" GRPC_PORT=-1 ADMIN_PORT=-1 THREADS="$threads" \
    BACKEND=redis REDIS_URL="$redis_url" CONFIG_FILE="$rules" ${extra[@]+"${extra[@]}"} \
    "$floodgate" serve) < /dev/null >> "$d/floodgate.log" 2>&1 &
  pid=$!
  record "$name" "$port" "$pid"
  local deadline=$(($(now_ms) + 10000)) code
  while [[ $(now_ms) -lt $deadline ]]; do
    if ! ours "$name" "$port" "$pid"; then
      unrecord "$name" "$port" "$pid"
      exited_on_taken_port "$name" "$pid" "$d/floodgate.log" && return 1
      die "$name on port $port exited at start-up; its log ($d/floodgate.log) ends:
$(tail -n 5 "$d/floodgate.log")"
    fi
    if grep -q '"msg":"listening on' "$d/floodgate.log" 2> /dev/null; then
      if ! listeners_only "$port" "$pid"; then
        say "port $port is also listened on by another process (SO_REUSEPORT); moving $name"
        kill -KILL "$pid" 2> /dev/null || true
        wait "$pid" 2> /dev/null || true
        unrecord "$name" "$port" "$pid"
        return 1
      fi
      code=$(http_status "$port" /ready)
      if [[ $code == 200 ]]; then
        fg_port[$n]=$port fg_pid[$n]=$pid
        return 0
      fi
    fi
    sleep 0.05
  done
  die "$name on port $port was not ready (GET /ready 200) within 10 s (log: $d/floodgate.log)"
}
for n in 1 2 3; do
  ok=0
  for _ in 1 2 3 4 5; do
    port_for "$n"
    p=$got_port
    if start_floodgate "$n" "$p"; then ok=1; break; fi
    say "port $p was taken meanwhile; trying another"
    refresh_busy
  done
  ((ok)) || die "could not start floodgate$n after 5 attempts"
done

# ---- nginx (slots 0, 5, 6) ----
# render SRC DST SED_ARGS...: the shipped config with its hosts and ports replaced; every
# replacement must have happened (the shipped file changed shape otherwise).
render() {
  local src=$1 dst=$2
  shift 2
  sed -E "$@" "$src" > "$dst"
  if grep -Eq '(floodgate[0-9]|app):8080|listen +[0-9]+;' "$dst"; then
    die "could not substitute every host and port in $src (left: $(grep -En '(floodgate[0-9]|app):8080|listen +[0-9]+;' "$dst" | head -n 3 | tr '\n' ' '))"
  fi
}
# start_nginx LB AUTH APP: 0 when ready, 1 when a port turned out to be taken.
nginx_pid=""
start_nginx() {
  local lb=$1 auth=$2 app=$3 d="$dir/nginx" pid
  rm -rf -- "$d"
  mkdir -p "$d/temp"
  local hosts=(-e "s/\<floodgate1:8080\>/127.0.0.1:${fg_port[1]}/"
    -e "s/\<floodgate2:8080\>/127.0.0.1:${fg_port[2]}/"
    -e "s/\<floodgate3:8080\>/127.0.0.1:${fg_port[3]}/")
  render "$lb_conf" "$d/lb.conf" "${hosts[@]}" -e "s/^( *listen +)80;/\1127.0.0.1:$lb;/"
  local includes="include $d/lb.conf;"
  if ((with_auth)); then
    render "$auth_conf" "$d/auth_request.conf" "${hosts[@]}" -e "s/\<app:8080\>/127.0.0.1:$app/" \
      -e "s/^( *listen +)8000;/\1127.0.0.1:$auth;/"
    includes+=$'\n'"    include $d/auth_request.conf;"
  fi
  local app_server=""
  if ((with_auth)); then
    app_server="
    # The application behind the auth_request front: answers 200 to anything and writes each
    # request it sees to its own access log.
    server {
        listen 127.0.0.1:$app;
        access_log $d/app-access.log app;
        location / {
            default_type text/plain;
            return 200 \"app: \$request_method \$request_uri\\n\";
        }
    }"
  fi
  cat > "$d/nginx.conf" <<EOF
# Generated by scripts/local-cluster.sh: deploy/nginx/*.conf with the real loopback ports.
daemon off;
worker_processes auto;
pid $d/nginx.pid;
error_log $d/error.log warn;

events {
    worker_connections 4096;
}

http {
    default_type application/octet-stream;
    # Everything inside this dir; bodies and responses are kept in memory (up to 1 MiB), so the
    # workers (user nobody when run as root) never need the temp paths.
    client_body_temp_path $d/temp/client_body;
    proxy_temp_path $d/temp/proxy;
    fastcgi_temp_path $d/temp/fastcgi;
    uwsgi_temp_path $d/temp/uwsgi;
    scgi_temp_path $d/temp/scgi;
    client_body_buffer_size 1m;
    client_max_body_size 1m;
    proxy_max_temp_file_size 0;

    log_format app '\$time_iso8601 \$request_method \$request_uri key=\$http_x_api_key status=\$status';
    access_log $d/access.log;

    $includes
$app_server
}
EOF
  (cd "$d" && exec nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log") < /dev/null >> "$d/nginx.out" 2>&1 &
  pid=$!
  record nginx "$lb" "$pid"
  local deadline=$(($(now_ms) + 5000))
  while [[ $(now_ms) -lt $deadline ]]; do
    if ! ours nginx "$lb" "$pid"; then
      unrecord nginx "$lb" "$pid"
      exited_on_taken_port nginx "$pid" "$d/error.log" && return 1
      die "nginx exited at start-up; its error log ($d/error.log) ends:
$(tail -n 5 "$d/error.log" "$d/nginx.out" 2> /dev/null)"
    fi
    if [[ "$(http_status "$lb" /health)" == 200 ]] &&
       { ((with_auth == 0)) || [[ "$(http_status "$app" /)" == 200 ]]; }; then
      nginx_pid=$pid
      return 0
    fi
    sleep 0.05
  done
  die "nginx did not answer GET /health (through to floodgate) on port $lb within 5 s (log: $d/error.log)"
}
lb_port="" auth_port="" app_port=""
for _ in 1 2 3 4 5; do
  port_for 0; lb_port=$got_port
  port_for 5; auth_port=$got_port
  port_for 6; app_port=$got_port
  if start_nginx "$lb_port" "$auth_port" "$app_port"; then break; fi
  say "a port of $lb_port $auth_port $app_port was taken meanwhile; trying others"
  lb_port=""
  refresh_busy
done
[[ -n $lb_port ]] || die "could not start nginx after 5 attempts"

echo "$dir" > "$last_file"
up_done=1
say "redis, 3 floodgate instances and nginx ready in $(($(now_ms) - t_start)) ms; '$0 down --dir $dir' stops them"

echo "CLUSTER_DIR=$dir"
echo "LB_URL=http://127.0.0.1:$lb_port"
for n in 1 2 3; do
  echo "FLOODGATE${n}_URL=http://127.0.0.1:${fg_port[$n]}"
  echo "FLOODGATE${n}_PID=${fg_pid[$n]}"
done
if ((with_auth)); then
  echo "AUTH_URL=http://127.0.0.1:$auth_port"
  echo "APP_URL=http://127.0.0.1:$app_port"
  echo "APP_ACCESS_LOG=$dir/nginx/app-access.log"
fi
echo "REDIS_URL=$redis_url"
echo "REDIS_PID=$redis_pid"
echo "NGINX_PID=$nginx_pid"
echo "RULES_FILE=$rules"
