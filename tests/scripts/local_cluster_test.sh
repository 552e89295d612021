#!/usr/bin/env bash
# Runs tests/node/lb_exactness.test.mjs (node:test, Node's own http module only: no npm packages):
# the multi-instance topology of scripts/local-cluster.sh — redis-server, three floodgate
# instances on it, nginx with deploy/nginx/lb.conf and auth_request.conf — linted with `nginx -t`,
# exactness under 200 concurrent keep-alive clients through the load balancer (fixed_window,
# token_bucket, sliding_window_log), an instance killed with SIGKILL mid-run, and the
# auth_request front.
# Exits 77 (CTest's SKIP_RETURN_CODE) when nginx, redis-server or node is missing, or node is too
# old for node:test. Bounded to 300 s in all; the cluster is stopped (by its recorded PIDs) however
# the test ends.
#
#   tests/scripts/local_cluster_test.sh BINARY [SOURCE_DIR]
#   e.g. tests/scripts/local_cluster_test.sh build/release/src/floodgate .
#
set -euo pipefail

# The whole run is bounded: on expiry timeout signals this script's process group (node, and the
# cluster processes started under it).
if [[ -z ${FG_LOCAL_CLUSTER_BOUNDED:-} ]]; then
  FG_LOCAL_CLUSTER_BOUNDED=1 exec timeout -k 10 300 "$0" "$@"
fi

if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 FLOODGATE_BINARY [FLOODGATE_SOURCE_DIR]" >&2
  exit 2
fi
binary=$(realpath -- "$1")
# nginx lives in /usr/sbin, which a non-root user's PATH often lacks (the test and
# local-cluster.sh find it there too).
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
root=$(cd "${2:-$(dirname "$0")/../..}" && pwd)

[[ -x $binary ]] || { echo "FAIL: no executable floodgate binary at $binary" >&2; exit 1; }

for tool in nginx:nginx redis-server:redis-server node:nodejs; do
  command -v "${tool%%:*}" > /dev/null 2>&1 || {
    echo "SKIP: ${tool%%:*} is not installed (Debian: ${tool#*:})"
    exit 77
  }
done
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [[ $node_major -lt 20 ]]; then
  echo "SKIP: node $(node --version) is too old for this node:test file (20 or newer needed)"
  exit 77
fi
if ! nginx -V 2>&1 | grep -q -- --with-http_auth_request_module; then
  echo "SKIP: this nginx has no auth_request module"
  exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/floodgate-local-cluster-test.XXXXXX")
cluster_dir="$tmp/cluster"
# However node ends (failure, timeout's SIGTERM), the cluster goes: `down` stops exactly the PIDs
# local-cluster.sh recorded in $cluster_dir (a no-op when the test already did it).
# shellcheck disable=SC2317 # called by the trap
cleanup() {
  "$root/scripts/local-cluster.sh" down --dir "$cluster_dir" > /dev/null 2>&1 || true
  rm -rf -- "$tmp"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

cd "$root"
echo "node $(node --version), $(nginx -v 2>&1), $(redis-server --version | cut -d' ' -f1-3), floodgate $binary"
status=0
TMPDIR=$tmp FLOODGATE_BINARY=$binary FLOODGATE_SOURCE_DIR=$root LOCAL_CLUSTER_DIR=$cluster_dir \
  node --test --test-reporter=spec tests/node/lb_exactness.test.mjs || status=$?
exit "$status"
