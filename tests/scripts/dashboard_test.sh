#!/usr/bin/env bash
# Runs tests/node/dashboard.test.mjs: the admin port's live dashboard (GET /) in Debian's headless
# Chromium, driven through puppeteer-core, against the real floodgate binary: the page asks for the
# admin token, streams the stats, shows denied traffic and the top limited key, and blocklists and
# un-blocklists a key through its forms (checked on the check port). Saves dashboard.png into
# $FLOODGATE_ARTIFACT_DIR (default: the system's temporary directory).
# Installs the pinned npm packages first (`npm ci` into tests/node/node_modules, which is gitignored)
# when they are missing or package-lock.json changed since the last install; puppeteer-core never
# downloads a browser.
# Exits 77 (CTest's SKIP_RETURN_CODE) only when node or npm is missing or too old, or `npm ci`
# fails (no network to the npm registry). A missing /usr/bin/chromium (or $FLOODGATE_CHROMIUM) is a failure, not a
# skip: scripts/install-deps.sh installs it. Bounded to 240 s in all.
#
#   tests/scripts/dashboard_test.sh BINARY [SOURCE_DIR]
#   e.g. tests/scripts/dashboard_test.sh build/release/src/floodgate .
#
set -euo pipefail

# The whole run is bounded: on expiry timeout signals this script's process group (npm, node, and
# the floodgate and Chromium the test started stay in it).
if [[ -z ${FG_DASHBOARD_BOUNDED:-} ]]; then
  FG_DASHBOARD_BOUNDED=1 exec timeout -k 10 240 "$0" "$@"
fi

# shellcheck source=tests/scripts/node_tests.sh
source "$(dirname "$0")/node_tests.sh"
node_tests_prepare "$0" "$@"
chromium=${FLOODGATE_CHROMIUM:-/usr/bin/chromium}
if [[ ! -x $chromium ]]; then
  echo "FAIL: no Chromium at $chromium (Debian: apt-get install chromium; scripts/install-deps.sh" \
       "installs it)" >&2
  exit 1
fi

cd "$root"
echo "node $(node --version), $("$chromium" --version 2>/dev/null || echo "$chromium"), floodgate $binary"
FLOODGATE_BINARY=$binary FLOODGATE_SOURCE_DIR=$root FLOODGATE_CHROMIUM=$chromium \
  exec node --test tests/node/dashboard.test.mjs
