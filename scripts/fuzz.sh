#!/usr/bin/env bash
# Builds the libFuzzer drivers (tests/fuzz/fuzz_*.c: meson -Dfuzz=true, clang,
# ASan and UBSan, in build-fuzz/ or $DFWS_FUZZ_BUILD) and runs each one from
# its committed seed corpus
# (tests/fuzz/corpus/<driver>/, read-only: new inputs go to
# build-fuzz/corpus-<driver>/) with its dictionary (tests/fuzz/<driver>.dict)
# when there is one. A finding leaves crash-*/leak-*/timeout-* files in
# tests/artifacts/fuzz/ and makes this script fail.
#   scripts/fuzz.sh [seconds per driver, default 60] [driver...]
#   FUZZ_RUNS=10000000 scripts/fuzz.sh 0 fuzz_redis   # a number of executions instead
#   FUZZ_RUNS=0 scripts/fuzz.sh                      # each corpus once (a smoke test)
# The committed corpora are small (tests/fuzz/reduce_corpus.py keeps the few
# inputs that cover every edge); what a run finds stays in build-fuzz/.
# Drivers (what bytes from outside each one feeds):
#   fuzz_http1         HTTP/1 requests from a client (server/http1.c)
#   fuzz_websocket     WebSocket frames from a client (server/websocket.c)
#   fuzz_native        signal calls a browser sends the native socket (server/native.c)
#   fuzz_redis         Redis replies: popped members, group members, pub/sub messages
#                      (server/layer_redis.c, server/layer_pubsub.c)
#   fuzz_layer_msg     channels_redis msgpack messages (server/layer.c)
#   fuzz_layer_config  CHANNEL_LAYERS JSON and Redis URLs (server/layer.c)
#   fuzz_edge          PROXY protocol headers, --forwarded-allow-ips, static file paths,
#                      Range, Accept-Encoding, dates (server/proxy.c, server/static.c)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
shift || true
DRIVERS=("$@")
if [ ${#DRIVERS[@]} -eq 0 ]; then # every driver there is
  for f in tests/fuzz/fuzz_*.c; do DRIVERS+=("$(basename "$f" .c)"); done
fi
OUT=${DFWS_FUZZ_BUILD:-build-fuzz}
MESON=$(command -v meson || echo .venv/bin/meson)
mkdir -p tests/artifacts/fuzz
if [ ! -f "$OUT/build.ninja" ]; then
  CC=clang "$MESON" setup "$OUT" --buildtype=debugoptimized -Dfuzz=true \
    >tests/artifacts/meson-fuzz.log 2>&1 || { cat tests/artifacts/meson-fuzz.log; exit 1; }
fi
# a driver missing from tests/fuzz/meson.build is an unknown target here
targets=()
for d in "${DRIVERS[@]}"; do targets+=("tests/fuzz/$d"); done
ninja -C "$OUT" "${targets[@]}" >"$OUT/ninja-fuzz.log" 2>&1 || { tail -40 "$OUT/ninja-fuzz.log"; exit 1; }
status=0
for d in "${DRIVERS[@]}"; do
  mkdir -p "$OUT/corpus-$d"
  args=(-max_len=4096 -timeout=10 -artifact_prefix=tests/artifacts/fuzz/ -print_final_stats=1)
  if [ -n "${FUZZ_RUNS:-}" ]; then
    args+=(-runs="$FUZZ_RUNS")
  else
    args+=(-max_total_time="$SECONDS_EACH")
  fi
  [ -f "tests/fuzz/$d.dict" ] && args+=(-dict="tests/fuzz/$d.dict")
  seeds=()
  [ -d "tests/fuzz/corpus/$d" ] && seeds=("tests/fuzz/corpus/$d")
  if [ -n "${FUZZ_RUNS:-}" ]; then echo "== $d ($FUZZ_RUNS runs)"; else echo "== $d ($SECONDS_EACH s)"; fi
  ASAN_OPTIONS=detect_leaks=1 "$OUT/tests/fuzz/$d" "${args[@]}" "$OUT/corpus-$d" "${seeds[@]}" \
    >"$OUT/$d.log" 2>&1 || status=1
  grep -E "^(#[0-9]+.*(DONE|pulse)|stat::|Done|==[0-9]+==ERROR|SUMMARY)" "$OUT/$d.log" | tail -12
done
exit $status
