#!/usr/bin/env bash
# Builds a dfws wheel with VENV's Python (its ABI) and prints its path:
#   scripts/wheel.sh VENV OUTDIR [meson setup argument ...]
# e.g. scripts/wheel.sh .venv dist   or, for the sanitizer build,
#   scripts/wheel.sh .venv build-asan/dist -Db_sanitize=address,undefined -Dbuildtype=debug
# The wheel is rebuilt only when the sources, the arguments or VENV's
# Python changed (a hash of them is kept beside it).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$1
OUT=$2
shift 2
mkdir -p "$OUT"
stamp=$( (git ls-files -co --exclude-standard -- . ':!tests' ':!bench' ':!docs' ':!demo' \
  | sort | xargs -d '\n' sha256sum 2>/dev/null || true; echo "$*"; "$VENV/bin/python" -VV) \
  | sha256sum | cut -c1-16)
if [ -f "$OUT/.stamp" ] && [ "$(cat "$OUT/.stamp")" = "$stamp" ] && ls "$OUT"/dfws-*.whl >/dev/null 2>&1; then
  ls "$OUT"/dfws-*.whl
  exit 0
fi
rm -f "$OUT"/dfws-*.whl "$OUT/.stamp"
args=()
for a in "$@"; do args+=("--config-settings=setup-args=$a"); done
PIP_BUILD_CONSTRAINT="$PWD/requirements/build.txt" PIP_USE_FEATURE=build-constraint "$VENV/bin/pip" wheel --quiet --no-deps \
  "${args[@]}" -w "$OUT" . >&2
echo "$stamp" >"$OUT/.stamp"
ls "$OUT"/dfws-*.whl
