#!/usr/bin/env bash
# The main job: build what is needed, then serve the demo Django project on
# dfws-asgi with the embedded channel layer (no Redis needed).
#   scripts/serve-demo.sh [extra dfws-asgi options, e.g. -p 8080]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
cd demo
../.venv/bin/python3 manage.py migrate --noinput >/dev/null
echo "serving the demo on http://127.0.0.1:8000/ (Ctrl-C to stop): open /sheet/ and /chat/ in two browsers"
exec ../.venv/bin/dfws-asgi demo.asgi:application "$@"
