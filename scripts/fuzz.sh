#!/usr/bin/env bash
# Builds the libFuzzer drivers (tests/fuzz/fuzz_*.c) with clang, ASan and
# UBSan, and runs each one from its committed seed corpus
# (tests/fuzz/corpus/<driver>/, read-only: new inputs go to
# build-fuzz/corpus-<driver>/) with its dictionary (tests/fuzz/<driver>.dict)
# when there is one. A finding leaves crash-*/leak-*/timeout-* files in
# tests/artifacts/fuzz/ and makes this script fail.
#   scripts/fuzz.sh [seconds per driver, default 60] [driver...]
#   FUZZ_RUNS=10000000 scripts/fuzz.sh 0 fuzz_redis   # a number of executions instead
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
#   fuzz_tls           what a client sends before and during the TLS handshake (server/tls.c)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
shift || true
DRIVERS=("$@")
[ ${#DRIVERS[@]} -gt 0 ] || DRIVERS=(fuzz_http1 fuzz_websocket fuzz_native fuzz_redis fuzz_layer_msg fuzz_layer_config fuzz_edge fuzz_tls)
OUT=build-fuzz
mkdir -p "$OUT" tests/artifacts/fuzz
CFLAGS=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE
  -DLLHTTP_STRICT_MODE=1 -Iserver -I/usr/share/include/llhttp)
LLHTTP=(/usr/share/llhttp/api.c /usr/share/llhttp/http.c /usr/share/llhttp/llhttp.c)
LIBS=($(pkg-config --cflags --libs libuv jansson hiredis msgpack libssl libcrypto zlib) -lwslay)
# Every server/ module but the ones a driver includes itself (to reach its
# static functions) and the supervisor (fork, signals: nothing to fuzz).
server_but() {
  local f
  for f in server/*.c; do
    case " $* server/supervisor.c " in *" $f "*) ;; *) echo "$f" ;; esac
  done
}
build() { # driver, sources...
  local d=$1
  shift
  clang "${CFLAGS[@]}" "tests/fuzz/$d.c" "$@" "${LIBS[@]}" -o "$OUT/$d"
}
for d in "${DRIVERS[@]}"; do
  case $d in
    fuzz_websocket) build $d server/websocket.c ;;
    fuzz_tls) build $d server/tls.c server/log.c ;;
    fuzz_http1) build $d $(server_but) "${LLHTTP[@]}" ;;
    fuzz_native) build $d $(server_but server/native.c) "${LLHTTP[@]}" ;;
    fuzz_redis) build $d $(server_but server/layer_redis.c) "${LLHTTP[@]}" ;;
    fuzz_layer_msg | fuzz_layer_config | fuzz_edge) build $d $(server_but) "${LLHTTP[@]}" ;;
    *) echo "fuzz.sh: unknown driver $d" >&2; exit 2 ;;
  esac
done
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
  echo "== $d (${FUZZ_RUNS:+$FUZZ_RUNS runs}${FUZZ_RUNS:-$SECONDS_EACH s})"
  ASAN_OPTIONS=detect_leaks=1 "$OUT/$d" "${args[@]}" "$OUT/corpus-$d" "${seeds[@]}" \
    >"$OUT/$d.log" 2>&1 || status=1
  grep -E "^(#[0-9]+.*(DONE|pulse)|stat::|Done|==[0-9]+==ERROR|SUMMARY)" "$OUT/$d.log" | tail -12
done
exit $status
