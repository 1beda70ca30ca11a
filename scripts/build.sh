#!/usr/bin/env bash
# Builds the browser bundle and a dfws wheel, and installs it with its
# pinned Python dependencies (PyPI) into a plain virtual environment of the
# machine's python3 (the first on PATH, >= 3.11):
#   scripts/build.sh                  .venv, the newest stack (requirements/django52.txt)
#   DFWS_STACK=django42 DFWS_VENV=.venv-dj42 scripts/build.sh
# The wheel is built once per source state (dist/); every venv installs it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STACK=${DFWS_STACK:-django52}
VENV=${DFWS_VENV:-.venv}
PYTHON=${DFWS_BASE_PYTHON:-python3}

scripts/install-deps.sh

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "build: $PYTHON is $("$PYTHON" --version 2>&1); dfws needs Python >= 3.11" >&2
  exit 1
fi

if [ -f npm/package.json ]; then
  (cd npm && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent)
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --upgrade pip==25.3
"$VENV/bin/pip" install --quiet -r "requirements/$STACK.txt" -r requirements/build.txt

# One wheel for every venv of this source state; the build environment's
# meson-python, meson and ninja come from PyPI, pinned by requirements/build.txt.
wheel=$(scripts/wheel.sh "$VENV" dist)
"$VENV/bin/pip" install --quiet --force-reinstall --no-deps "$wheel"
echo "build: dfws-asgi installed at $ROOT/$VENV/bin/dfws-asgi ($STACK)"
