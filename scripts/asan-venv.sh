#!/usr/bin/env bash
# .venv-asan: the newest stack with a dfws wheel built with ASan + UBSan
# (debug). Run it through scripts/asan-dfws-asgi, which preloads libasan.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv-asan/bin/python ] || python3 -m venv .venv-asan
.venv-asan/bin/pip install --quiet --upgrade pip==25.3
.venv-asan/bin/pip install --quiet -r requirements/django52.txt -r requirements/build.txt
wheel=$(scripts/wheel.sh .venv-asan build-asan-wheel -Db_sanitize=address,undefined \
  -Db_lundef=false -Dbuildtype=debug)
.venv-asan/bin/pip install --quiet --force-reinstall --no-deps "$wheel"
