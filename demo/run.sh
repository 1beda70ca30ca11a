#!/bin/sh
# Start the dfws demo: create/upgrade the SQLite tables, then serve
# demo.asgi:application. Extra arguments go to the server, e.g.
#   ./run.sh --bind 127.0.0.1 --port 8000
# DFWS_SERVER picks another server (DFWS_SERVER=daphne ./run.sh),
# PYTHON another interpreter (default: the python3 first on PATH, i.e. the
# active virtualenv's).
set -eu
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
SERVER="${DFWS_SERVER:-dfws-asgi}"

"$PYTHON" manage.py migrate --noinput
if ! command -v "$SERVER" >/dev/null 2>&1; then
    echo "run.sh: '$SERVER' not found in PATH (install dfws, or set DFWS_SERVER=daphne)" >&2
    exit 127
fi
exec "$SERVER" demo.asgi:application "$@"
