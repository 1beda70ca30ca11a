#!/usr/bin/env python3
"""RSS per idle WebSocket with and without permessage-deflate.

Starts dfws-asgi on tests/websocket/apps/ws_app.py (an ASGI echo consumer),
opens N WebSockets on /echo from this process over raw sockets, each
offering permessage-deflate as Chromium does, sends one compressed message
on each and reads its (compressed) echo, so that whatever a message leaves
behind is counted, then reads the server's VmRSS with the N windows idle.
Runs the server twice: --ws-per-message-deflate true, then false (the offer
is then declined and the same messages go plain).

    .venv/bin/python bench/deflate_rss.py --windows 10000
"""
import argparse
import base64
import os
import socket
import subprocess
import sys
import time
import zlib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APPS = os.path.join(REPO, "tests", "websocket", "apps")
sys.path.insert(0, os.path.join(REPO, "tests", "support"))
from dfws_testsupport.binary import dfws_binary  # noqa: E402
from dfws_testsupport.net import free_port  # noqa: E402
from dfws_testsupport.proc import rss_bytes  # noqa: E402
OFFER = "permessage-deflate; client_max_window_bits"
MESSAGE = b'{"signal": "demo.update", "opts": {"rows": [%s]}}' % b", ".join(
    b'{"id": %d, "name": "row %d", "state": "idle"}' % (i, i) for i in range(20))


def rss_kib(pid):
    return rss_bytes(pid) // 1024


def masked_frame(b0, payload):
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([b0, 0x80 | n]) if n < 126 else bytes([b0, 0x80 | 126]) + n.to_bytes(2, "big")
    body = (int.from_bytes(payload, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big"))
    return head + mask + body.to_bytes(n, "big")


def recv_frame(s):
    buf = b""
    while len(buf) < 4:
        buf += s.recv(65536)
    n = buf[1] & 0x7F
    hl = 2 + {126: 2, 127: 8}.get(n, 0)
    n = int.from_bytes(buf[2:hl], "big") if hl > 2 else n
    while len(buf) < hl + n:
        buf += s.recv(65536)
    return buf[0], buf[hl:hl + n]


def open_window(port, payload, b0):
    s = socket.create_connection(("127.0.0.1", port), 10)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Extensions: %s\r\n\r\n" % (key, OFFER)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head
    s.sendall(masked_frame(b0, payload))
    recv_frame(s)
    return s, b"permessage-deflate" in head


def measure(dfws, windows, deflate):
    port = free_port()
    proc = subprocess.Popen([dfws, "-b", "127.0.0.1", "-p", str(port), "-v", "0",
                             "--ws-per-message-deflate", "true" if deflate else "false",
                             "ws_app:app"], cwd=APPS, stdout=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                time.sleep(0.05)
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        zipped = (c.compress(MESSAGE) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
        payload, b0 = (zipped, 0xC1) if deflate else (MESSAGE, 0x81)
        # warm-up: one-off costs (the compressor, the spare inflater, the
        # interpreter's first WebSocket) are not per-window memory
        warm = [open_window(port, payload, b0)[0] for _ in range(100)]
        for s in warm:
            s.close()
        time.sleep(1)
        rss0 = rss_kib(proc.pid)
        socks, agreed = [], 0
        for _ in range(windows):
            s, ok = open_window(port, payload, b0)
            socks.append(s)
            agreed += ok
        time.sleep(2)
        rss1 = rss_kib(proc.pid)
        for s in socks:
            s.close()
        return rss0, rss1, agreed
    finally:
        proc.terminate()
        proc.wait(10)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--windows", type=int, default=2000)
    p.add_argument("--dfws", default=dfws_binary())
    args = p.parse_args()
    print("%d idle ASGI WebSockets on /echo, one %d-byte message each (%d compressed)"
          % (args.windows, len(MESSAGE), len(zlib.compress(MESSAGE)) - 6))
    for deflate in (True, False):
        rss0, rss1, agreed = measure(args.dfws, args.windows, deflate)
        print("permessage-deflate %-5s: %d/%d agreed, RSS %.1f -> %.1f MiB, %.2f KiB per window"
              % ("on" if deflate else "off", agreed, args.windows, rss0 / 1024, rss1 / 1024,
                 (rss1 - rss0) / args.windows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
