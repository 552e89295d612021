# Sourced by the scripts that run tests/node/*.test.mjs (rls_node_client.sh, dashboard_test.sh):
# node_tests_prepare checks the arguments, finds node and npm (exit 77, CTest's skip, when either
# is missing or node is older than 18, which node:test needs) and installs the pinned npm packages
# (`npm ci` into tests/node/node_modules, gitignored) when they are missing or package-lock.json
# changed since the last install (exit 77 when npm ci fails: no network to the registry).
# Sets: binary, root, node_dir.
#
#   source tests/scripts/node_tests.sh
#   node_tests_prepare "$0" "$@"

node_tests_prepare() {
  local self=$1
  shift
  if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $self FLOODGATE_BINARY [FLOODGATE_SOURCE_DIR]" >&2
    exit 2
  fi
  binary=$(realpath -- "$1")
  root=$(cd "${2:-$(dirname "$self")/../..}" && pwd)
  node_dir="$root/tests/node"

  [[ -x $binary ]] || { echo "FAIL: no executable floodgate binary at $binary" >&2; exit 1; }
  [[ -f $node_dir/package-lock.json ]] || { echo "FAIL: no $node_dir/package-lock.json" >&2; exit 1; }

  local tool
  for tool in node npm; do
    command -v "$tool" > /dev/null 2>&1 || {
      echo "SKIP: $tool is not installed (Debian: nodejs, npm)"
      exit 77
    }
  done
  local node_major
  node_major=$(node -p 'process.versions.node.split(".")[0]')
  if [[ $node_major -lt 18 ]]; then
    echo "SKIP: node $(node --version) is too old for node:test (18 or newer needed)"
    exit 77
  fi

  # npm writes node_modules/.package-lock.json on every install: a lock file newer than it means
  # the pinned set changed since.
  if [[ ! -f $node_dir/node_modules/.package-lock.json ||
        $node_dir/package-lock.json -nt $node_dir/node_modules/.package-lock.json ]]; then
    echo "npm ci in $node_dir"
    if ! (cd "$node_dir" && timeout 180 npm ci --no-audit --no-fund); then
      echo "SKIP: npm ci failed in $node_dir (offline, or the npm registry cannot be reached?)"
      exit 77
    fi
  fi
}
