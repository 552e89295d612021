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

# shellcheck source=tests/scripts/node_tests.sh
source "$(dirname "$0")/node_tests.sh"
node_tests_prepare "$0" "$@"

cd "$root"
echo "node $(node --version), floodgate $binary"
FLOODGATE_BINARY=$binary FLOODGATE_SOURCE_DIR=$root exec node --test tests/node/rls_client.test.mjs
