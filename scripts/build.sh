#!/usr/bin/env bash
# Builds the browser bundle and installs dfws (C server + Python packages)
# into .venv/, a --system-site-packages venv of Debian's /usr/bin/python3.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

scripts/install-deps.sh

if [ -f npm/package.json ]; then
  (cd npm && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent)
fi

if [ ! -x .venv/bin/python3 ]; then
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
# --no-build-isolation: meson-python comes from Debian (PyPI is unreachable).
.venv/bin/pip install --quiet --no-build-isolation --no-deps "$ROOT"
echo "build: dfws-asgi installed at $ROOT/.venv/bin/dfws-asgi"
