#!/usr/bin/env bash
# Installs the Debian bookworm packages floodgate needs to build, test and run — only those that
# are missing, so a machine that has them all does no apt work at all.
#
set -euo pipefail

build_pkgs=(
  g++ cmake ninja-build pkg-config make git ccache clang-format
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libxxhash-dev libspdlog-dev libfmt-dev libcli11-dev libyaml-cpp-dev
  libhiredis-dev libssl-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
)
test_pkgs=(
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-14 libclang-rt-14-dev
  prometheus
  redis-server redis-tools openssl
  nginx python3-yaml
  nodejs
  # The dashboard's browser test (tests/node/dashboard.test.mjs): headless Chromium, driven by
  # puppeteer-core, and a font for legible screenshots.
  chromium fonts-dejavu-core
)
# npm (the Node.js gRPC client test, tests/node): Debian's npm package, unless an npm is already
# there: NodeSource's nodejs package bundles npm and conflicts with Debian's.
if ! command -v npm > /dev/null 2>&1; then
  test_pkgs+=(npm)
fi

want=("${build_pkgs[@]}" "${test_pkgs[@]}")

missing=()
for pkg in "${want[@]}"; do
  # dpkg-query answers "install ok installed" only for a package that is fully installed.
  if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]]; then
    missing+=("$pkg")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [[ "$(id -u)" -ne 0 ]]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# Packages such as prometheus (wanted here for promtool only) and nginx (the local cluster test
# runs its own) would start a system service on install; a temporary policy-rc.d tells Debian's
# scripts not to start anything.
made_policy=0
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d > /dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  made_policy=1
fi
trap '[[ $made_policy == 1 ]] && $sudo rm -f /usr/sbin/policy-rc.d' EXIT
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
