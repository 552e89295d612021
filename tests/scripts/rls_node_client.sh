#!/usr/bin/env bash
# Runs tests/node/rls_client.test.mjs: a second, independent gRPC client (Node.js, @grpc/grpc-js
# and @grpc/proto-loader) against floodgate's Envoy rate limit service, proving the wire format
# from outside C++: the client suite on the memory store and again on the Redis store (a
# redis-server the test starts itself from /usr/bin/redis-server; that suite is skipped, not
# failed, when redis-server is not installed), and envoyproxy/ratelimit's README examples
# (tests/data/envoy-ratelimit-configs/) on the memory store. Installs the pinned npm packages
# first (`npm ci` into tests/node/node_modules, which is gitignored) when they are missing or
# package-lock.json changed since the last install.
# Exits 77 (CTest's SKIP_RETURN_CODE) when node or npm is missing, node is too old for node:test,
# or `npm ci` fails (no network to the npm registry). Bounded to 240 s in all.
#
#   tests/scripts/rls_node_client.sh BINARY [SOURCE_DIR]
#   e.g. tests/scripts/rls_node_client.sh build/release/src/floodgate .
#
set -euo pipefail

# The whole run is bounded: on expiry timeout signals this script's process group (npm, node and
# the floodgate the test started stay in it).
if [[ -z ${FG_NODE_RLS_BOUNDED:-} ]]; then
  FG_NODE_RLS_BOUNDED=1 exec timeout -k 10 240 "$0" "$@"
fi

if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 FLOODGATE_BINARY [FLOODGATE_SOURCE_DIR]" >&2
  exit 2
fi
binary=$(realpath -- "$1")
root=$(cd "${2:-$(dirname "$0")/../..}" && pwd)
node_dir="$root/tests/node"

[[ -x $binary ]] || { echo "FAIL: no executable floodgate binary at $binary" >&2; exit 1; }
[[ -f $node_dir/package-lock.json ]] || { echo "FAIL: no $node_dir/package-lock.json" >&2; exit 1; }

for tool in node npm; do
  command -v "$tool" > /dev/null 2>&1 || {
    echo "SKIP: $tool is not installed (Debian: nodejs, npm)"
    exit 77
  }
done
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [[ $node_major -lt 18 ]]; then
  echo "SKIP: node $(node --version) is too old for node:test (18 or newer needed)"
  exit 77
fi

# npm writes node_modules/.package-lock.json on every install: a lock file newer than it means the
# pinned set changed since.
if [[ ! -f $node_dir/node_modules/.package-lock.json ||
      $node_dir/package-lock.json -nt $node_dir/node_modules/.package-lock.json ]]; then
  echo "npm ci in $node_dir"
  if ! (cd "$node_dir" && timeout 180 npm ci --no-audit --no-fund); then
    echo "SKIP: npm ci failed in $node_dir (offline, or the npm registry cannot be reached?)"
    exit 77
  fi
fi

cd "$root"
echo "node $(node --version), floodgate $binary"
FLOODGATE_BINARY=$binary FLOODGATE_SOURCE_DIR=$root exec node --test tests/node/rls_client.test.mjs
