#!/usr/bin/env bash
# Builds the libFuzzer drivers (tests/fuzz/) with clang and runs each one.
#   scripts/fuzz.sh [seconds per driver, default 60]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
OUT=build-fuzz
mkdir -p "$OUT" tests/artifacts/fuzz
CFLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE -Iserver -I/usr/share/include/llhttp"
clang $CFLAGS tests/fuzz/fuzz_websocket.c server/websocket.c -lwslay -lcrypto -lz -o $OUT/fuzz_websocket
clang $CFLAGS tests/fuzz/fuzz_http1.c server/http1.c server/conn.c server/buf.c server/log.c server/access_log.c \
  server/ws_conn.c server/websocket.c server/cli.c server/server.c /usr/share/llhttp/api.c /usr/share/llhttp/http.c \
  /usr/share/llhttp/llhttp.c $(pkg-config --cflags --libs libuv) -lwslay -lcrypto -lz -o $OUT/fuzz_http1
for f in fuzz_websocket fuzz_http1; do
  mkdir -p "$OUT/corpus-$f"
  echo "== $f ($SECONDS_EACH s)"
  ASAN_OPTIONS=detect_leaks=1 "$OUT/$f" -max_total_time="$SECONDS_EACH" -max_len=4096 \
    -artifact_prefix=tests/artifacts/fuzz/ "$OUT/corpus-$f" 2>&1 | tail -3
done
