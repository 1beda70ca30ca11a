#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this):
#   1. build and install (scripts/build.sh: Debian packages, npm bundle, .venv)
#   2. C unit tests (every protocol module, inputs in every chunking)
#   3. black-box pytest suites against the installed dfws-asgi
#   4. browser client unit tests (node --test) and end-to-end tests in Chromium
#   5. the same C unit tests and the server suite on an ASan+UBSan build
# Each step runs even if an earlier one failed; the last line sums them up.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$ROOT/.venv/bin:$PATH"
PY=/usr/bin/python3
mkdir -p tests/artifacts

passed=0
failed=0
failures=()
step() {
  local name=$1
  shift
  echo
  echo "=== $name"
  local t0=$SECONDS
  if "$@"; then
    passed=$((passed + 1))
    echo "=== $name: ok ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1))
    failures+=("$name")
    echo "=== $name: FAILED ($((SECONDS - t0)) s)"
  fi
}

if ! scripts/build.sh; then
  echo "build failed"
  echo "suites: 0 passed, 1 failed"
  exit 1
fi
export DFWS_ASGI="$ROOT/.venv/bin/dfws-asgi"

meson_build() { # dir, extra meson options...
  local dir=$1
  shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" --buildtype=debug "$@" >"tests/artifacts/meson-$(basename "$dir").log" || return 1
  fi
  ninja -C "$dir" >"tests/artifacts/ninja-$(basename "$dir").log" || { tail -50 "tests/artifacts/ninja-$(basename "$dir").log"; return 1; }
}
unit_tests() { # build dir
  meson test -C "$1" --print-errorlogs --num-processes 2
}

step "C build (debug, -Werror)" meson_build build-test -Dwerror=true
step "C unit tests" unit_tests build-test
step "server (HTTP, lifespan, CLI)" $PY -m pytest -q -p no:cacheprovider tests/server
export DFWS_LAYER_TOOL="$ROOT/build-test/tests/c/layer_tool"
for suite in websocket embedded layer native app demo; do
  if [ -d "tests/$suite" ]; then
    step "pytest tests/$suite" $PY -m pytest -q -p no:cacheprovider "tests/$suite"
  fi
done
if [ -f npm/package.json ]; then
  step "browser client unit tests" bash -c "cd npm && npm test"
fi
if [ -f tests/browser/package.json ]; then
  step "browser end-to-end (Chromium)" bash -c "cd tests/browser && npm ci --no-audit --no-fund --loglevel=error && npm test"
fi

# Sanitizers: ASan + UBSan, aborting on the first report. The embedded
# interpreter is not instrumented; LeakSanitizer is off because CPython keeps
# memory alive at exit by design.
# A small quarantine keeps the memory-bound tests (1 GiB upload, slow
# reader) meaningful: ASan's default holds 256 MiB of freed blocks.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1:quarantine_size_mb=8
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
step "C build (ASan+UBSan)" meson_build build-asan -Db_sanitize=address,undefined -Db_lundef=false
step "C unit tests (ASan+UBSan)" unit_tests build-asan
for suite in server websocket embedded native; do
  step "tests/$suite (ASan+UBSan binary)" env DFWS_ASGI="$ROOT/build-asan/asgi/dfws-asgi" \
    DFWS_PYTHONPATH="$ROOT" $PY -m pytest -q -p no:cacheprovider "tests/$suite"
done
step "fuzzing (libFuzzer, 15 s per driver)" bash -c 'scripts/fuzz.sh 15 && ! ls tests/artifacts/fuzz/crash-* tests/artifacts/fuzz/leak-* 2>/dev/null'

echo
if [ $failed -gt 0 ]; then
  echo "failed: ${failures[*]}"
fi
echo "suites: $passed passed, $failed failed"
[ $failed -eq 0 ]
