#!/usr/bin/env bash
# Installs the Debian bookworm packages dfws needs to build, test and serve
# the demo: compilers and the C libraries' -dev packages, redis-server,
# Chromium and Node.js for the tests. Python packages come from PyPI, pinned
# (requirements/), into virtual environments: see scripts/build.sh.
# Safe to run again: apt only fetches what is missing.
set -euo pipefail

PACKAGES=(
  # build: compilers; meson, ninja and meson-python come from PyPI
  build-essential clang libclang-rt-14-dev pkg-config
  # scripts/test.sh checks the C formatting (.clang-format) with it
  clang-format
  # C libraries (the wheel bundles them: auditwheel)
  libuv1-dev node-llhttp libwslay-dev libjansson-dev libhiredis-dev libmsgpack-dev libssl-dev
  zlib1g-dev
  # Debian's own Python 3.11, on which the tests also install dfws
  python3 python3-venv python3-dev libpython3.11-dev
  # tests (redis-server also runs the sentinels: redis-server --sentinel;
  # iproute2's ip makes tests/multihost's network namespaces)
  redis-server chromium nginx iproute2
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi
# redis-server's Debian service is not needed: tests start their own.
