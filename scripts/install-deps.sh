#!/usr/bin/env bash
# Installs the Debian bookworm packages dfws needs to build, test, benchmark
# and serve the demo. Safe to run again: apt only fetches what is missing.
set -euo pipefail

PACKAGES=(
  # build
  build-essential clang libclang-rt-14-dev pkg-config meson ninja-build python3-mesonpy python3-venv python3-pip
  python3-dev libpython3.11-dev
  # C libraries
  libuv1-dev node-llhttp libwslay-dev libjansson-dev libhiredis-dev libmsgpack-dev libssl-dev
  # Python side (PyPI is not used: every Python dependency is a Debian package)
  python3-uvloop python3-django python3-django-channels python3-channels-redis
  python3-django-redis python3-celery python3-redis python3-msgpack python3-cryptography
  # tests and benchmarks
  redis-server python3-pytest python3-pytest-django python3-websockets
  daphne uvicorn python3-httptools wrk chromium
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
