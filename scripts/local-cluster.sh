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
# die/say, the state dir, free ports, starting and stopping the recorded processes: shared with
# redis-cluster.sh and redis-sentinel.sh.
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
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

recall_dir

# http_status PORT PATH: the status code of GET PATH on 127.0.0.1:PORT (bash's /dev/tcp, no curl
# needed), empty when nothing answers within 2 s.
http_status() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 2 bash -c '
    exec 3<> "/dev/tcp/127.0.0.1/$0" || exit 1
    printf "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" "$1" >&3
    IFS=" " read -r _ code _ <&3 && echo "$code"' "$1" "$2" 2> /dev/null || true
}

# Records: DIR/pids holds "NAME PORT PID" per started process (NAME: redis, floodgate1..3,
# nginx; PORT: its main port). Each process runs in its own directory DIR/NAME, so /proc/PID/cwd
# identifies it even if the PID has been reused since; a zombie has no cwd and counts as gone.
# DIR/.made-by-local-cluster.sh marks a dir this script created (and so may remove).
# ours NAME PORT PID (a DIR/pids line): that process is alive and ours.
ours() { [[ "$(readlink "/proc/$3/cwd" 2> /dev/null)" == "$dir/$1" ]]; }

# children PID: the PIDs of PID's children (nginx's workers), read from /proc.
children() { cat /proc/"$1"/task/*/children 2> /dev/null || true; }

# stop_all (common.sh) stops the fronts first, then the instances, then Redis: what is still
# running keeps answering.
stop_order() {
  awk '{ o = $1 == "nginx" ? 0 : $1 == "redis" ? 2 : 1; print o, $0 }' "$dir/pids" |
    sort -s -n -k1,1 | cut -d' ' -f2-
}
# An nginx master killed with SIGKILL would leave its workers as orphans: they go with it.
kill_hard() {
  local kids="" pid
  [[ ${1%%:*} == nginx ]] && kids=$(children "${1##*:}")
  kill -KILL "${1##*:}" 2> /dev/null || true
  for pid in $kids; do kill -KILL "$pid" 2> /dev/null || true; done
}

case "$cmd" in
  status)
    status_dir "nothing recorded"
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
    status_exit "$alive" "$dead"
    ;;
  down)
    down_cmd "nothing recorded" "process(es)"
    ;;
esac

# ---- up -----------------------------------------------------------------------------------------

need redis-server redis-server
need nginx nginx
need timeout coreutils
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

begin_up "process(es)" "cluster"
rm -rf -- "$dir"/redis "$dir"/floodgate[0-9] "$dir"/nginx

port_range 0 # no second port per process

# listeners_only PORT PID: every socket listening on PORT belongs to PID. floodgate binds with
# SO_REUSEPORT, so a second floodgate (same user) on a port already in use starts without error
# and the kernel would split the connections between the two: the port must be checked.
listeners_only() {
  command -v ss > /dev/null 2>&1 || return 0
  local others
  others=$(ss -Htlnp "sport = :$1" 2> /dev/null | grep -o 'pid=[0-9]*' | grep -vx "pid=$2" || true)
  [[ -z $others ]]
}

t_start=$(now_ms)
refresh_busy
# 7 consecutive ports when there are, so that the ports read well: LB, instances 1-3, Redis, auth
# front, application (the slots below).
choose_block 7
: > "$dir/pids"

# ---- Redis (slot 4) ----
start_redis() {
  local port=$1 d="$dir/redis"
  rm -rf -- "$d"
  mkdir -p "$d"
  launch_redis "redis $port" "$d" "$port" "redis-server on port $port" --port "$port" \
    --bind 127.0.0.1 --daemonize no --dir "$d" --save "" --appendonly no || return 1
  redis_pid=${launched[-1]}
}
redis_pid=""
start_on_free_port 4 redis-server start_redis
redis_port=$started_port
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
  login:
    algorithm: fixed_window
    limit: 2
    window: 60
    key: [api_key]
auth:
  rule: auth
  routes:                           # POST /login/... has a budget of its own (X-Original-*)
    - {path: /login, method: POST, rule: login}
EOF
fi

# ---- floodgate instances (slots 1-3) ----
declare -A fg_port=() fg_pid=()
# start_floodgate PORT N: 0 when ready, 1 when the port turned out to be taken.
start_floodgate() {
  local port=$1 n=$2 name="floodgate$2"
  local d="$dir/$name"
  rm -rf -- "$d"
  mkdir -p "$d"
  local extra=()
  [[ -n $store_timeout ]] && extra+=(STORE_TIMEOUT_MS="$store_timeout")
  [[ -n $failure_mode ]] && extra+=(FAILURE_MODE="$failure_mode")
  launch "$name $port" "$d" "$d/floodgate.log" env HOST=127.0.0.1 PORT="$port" GRPC_PORT=-1 \
    ADMIN_PORT=-1 THREADS="$threads" BACKEND=redis REDIS_URL="$redis_url" CONFIG_FILE="$rules" \
    ${extra[@]+"${extra[@]}"} "$floodgate" serve
  await_start 10 "$name on port $port" "was not ready (GET /ready 200)" "$d/floodgate.log" \
    floodgate_ready "$name" "$port" "${launched[-1]}" "$d/floodgate.log" || return 1
  fg_port[$n]=$port fg_pid[$n]=${launched[-1]}
}
# floodgate_ready NAME PORT PID LOG: 0 when it listens and GET /ready answers 200, 1 not yet, 2 when
# another process listens on its port too (it is stopped then: the caller moves it).
floodgate_ready() {
  grep -q '"msg":"listening on' "$4" 2> /dev/null || return 1
  if ! listeners_only "$2" "$3"; then
    say "port $2 is also listened on by another process (SO_REUSEPORT); moving $1"
    kill -KILL "$3" 2> /dev/null || true
    wait "$3" 2> /dev/null || true
    return 2
  fi
  [[ "$(http_status "$2" /ready)" == 200 ]]
}
for n in 1 2 3; do
  start_on_free_port "$n" "floodgate$n" start_floodgate "$n"
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
  launch "nginx $lb" "$d" "$d/nginx.out" nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log"
  await_start 5 nginx "did not answer GET /health (through to floodgate) on port $lb" \
    "$d/error.log" nginx_ready "$lb" "$app" || return 1
  nginx_pid=${launched[-1]}
}
# nginx_ready LB APP: the load balancer answers GET /health (through to floodgate), and the
# application, when there is one, GET /.
nginx_ready() {
  [[ "$(http_status "$1" /health)" == 200 ]] && { ((with_auth == 0)) || [[ "$(http_status "$2" /)" == 200 ]]; }
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

end_up
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
