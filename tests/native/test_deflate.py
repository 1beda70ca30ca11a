"""permessage-deflate on the native df_websockets socket: windows that
negotiate it get compressed deliveries, windows that refuse it (websockets'
``compression=None``) get the same messages plain, and a delivery to many
windows is compressed once (the server's counters, /deflate-stats/)."""
import json
import zlib

import pytest

from conftest import (
    Project, Server, connect_ws, drain_all, open_window, page_cookies, run, signal_values,
    stop_clean, Window,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory, native_db):
    project = Project(tmp_path_factory.mktemp("deflate"), native_db, workers="thread")
    srv = Server(project, "-v", "2").start()
    yield srv
    stop_clean(srv)


def stats(server):
    status, body, _ = server.get("/deflate-stats/")
    assert status == 200, body
    return json.loads(body)


async def plain_window(server):
    key, jar = page_cookies(server, "/page/")
    return Window(key, jar, await connect_ws(server, jar, compression=None))


def test_broadcast_compressed_once_for_every_window(server):
    big = "a value long enough to be worth compressing; " * 40

    async def scenario():
        zipped = [await open_window(server, "/page/") for _ in range(6)]
        plain = [await plain_window(server) for _ in range(2)]
        for w in zipped:
            ext = w.ws.response_headers.get("Sec-WebSocket-Extensions")
            assert ext and ext.startswith("permessage-deflate"), ext
            assert [e.name for e in w.ws.extensions] == ["permessage-deflate"]
        for w in plain:
            assert w.ws.response_headers.get("Sec-WebSocket-Extensions") is None
            assert w.ws.extensions == []
        windows = zipped + plain
        before = stats(server)
        # two broadcasts delivered in one go: each window gets A then B
        server.fire([{"to": "broadcast", "value": big + "A"},
                     {"to": "broadcast", "value": big + "B"}])
        frames = await drain_all(windows, 2)
        for f in frames:
            assert signal_values(f) == [big + "A", big + "B"]
        after = stats(server)
        assert after["compressed"] - before["compressed"] == 2, (before, after)
        assert after["reused"] - before["reused"] == 2 * (len(zipped) - 1), (before, after)
        assert after["bytes_out"] - before["bytes_out"] < (after["bytes_in"] - before["bytes_in"]) / 5
        # small messages (heartbeats) go as they are, both ways
        for w in windows:
            await w.heartbeat()
            await w.close()

    run(scenario())


def test_compressed_frames_on_the_wire_and_calls_inflated(server):
    """Raw frames: the delivery has RSV1 set and inflates to the JSON the
    window would get; a compressed heartbeat from the browser is answered."""
    import socket
    import base64
    import os
    import struct

    key, jar = page_cookies(server, "/page/")
    s = socket.create_connection(("127.0.0.1", server.port), 5)
    wskey = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET /ws/ HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
               "Origin: %s\r\nCookie: %s\r\n"
               "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
               % (server.port, wskey, server.origin,
                  "; ".join("%s=%s" % kv for kv in jar.items()))).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    head, buf = buf.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    assert (b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
            b"client_no_context_takeover\r\n") in head + b"\r\n"

    def read_frame():
        nonlocal buf
        while len(buf) < 2:
            buf += s.recv(65536)
        n = buf[1] & 0x7F
        hl = 2 + {126: 2, 127: 8}.get(n, 0)
        while len(buf) < hl:
            buf += s.recv(65536)
        if n == 126:
            n = struct.unpack("!H", buf[2:4])[0]
        elif n == 127:
            n = struct.unpack("!Q", buf[2:10])[0]
        while len(buf) < hl + n:
            buf += s.recv(65536)
        frame, buf = buf[:hl + n], buf[hl + n:]
        return frame[0], frame[hl:]

    def send_frame(b0, payload):
        mask = os.urandom(4)
        masked = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        assert len(payload) < 126
        s.sendall(bytes([b0, 0x80 | len(payload)]) + mask + masked)

    value = "x" * 1000
    server.fire([{"to": "window", "key": key, "value": value}])
    b0, payload = read_frame()
    assert b0 == 0xC1, hex(b0)  # FIN, RSV1, text
    assert len(payload) < 200
    msg = json.loads(zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff"))
    assert msg["opts"] == {"value": value}
    # a compressed heartbeat comes back (plain: below the threshold)
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    z = c.compress(b"--heartbeat--") + c.flush(zlib.Z_SYNC_FLUSH)
    send_frame(0xC1, z[:-4])
    assert read_frame() == (0x81, b"--heartbeat--")
    # RSV1 on a continuation frame: 1002
    send_frame(0x41, z[:3])
    send_frame(0xC0, z[3:-4])
    b0, payload = read_frame()
    assert b0 == 0x88 and struct.unpack("!H", payload[:2])[0] == 1002
    s.close()
