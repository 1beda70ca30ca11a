"""permessage-deflate (RFC 7692) on ASGI WebSockets: negotiation, compressed
frames both ways, the limits applied after inflation, and the same traffic
with the extension refused by the client or switched off on the server."""
import os
import zlib

import pytest
import websockets

from conftest import OP_BIN, OP_CONT, OP_PING, OP_TEXT, run, ws_connect

OFFER = ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")
TAIL = b"\x00\x00\xff\xff"


def deflate(data):
    """A message compressed as a permessage-deflate client does it."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(TAIL)
    return out[:-4]


def inflate(payload):
    return zlib.decompressobj(-15).decompress(payload + TAIL)


def extension_of(ws):
    return dict(ws.response_headers).get("sec-websocket-extensions")


@pytest.fixture(scope="module")
def srv(module_server_factory):
    return module_server_factory("ws_app:app")


# ------------------------------------------------ the websockets library

def test_websockets_client_negotiates_and_roundtrips(srv):
    texts = ["hello", "", "caf\u00e9 \u2603 \U0001F600" * 50, '{"k": "v"}' * 20000]
    blobs = [bytes(range(256)) * 10, b"", os.urandom(100000), b"\x00" * 300000]

    async def go():
        async with ws_connect(srv.url("/echo?tag=pmd")) as ws:
            ext = ws.response_headers.get("Sec-WebSocket-Extensions")
            assert ext and ext.startswith("permessage-deflate"), ext
            assert "server_no_context_takeover" in ext
            assert "client_no_context_takeover" in ext
            assert [e.name for e in ws.extensions] == ["permessage-deflate"]
            for t in texts:
                await ws.send(t)
                assert await ws.recv() == t
            for b in blobs:
                await ws.send(b)
                assert await ws.recv() == b
    run(go())
    evs = [e for e in srv.events("pmd") if e["type"] == "websocket.receive"]
    assert [e["text"] for e in evs[:len(texts)]] == texts


def test_websockets_client_without_compression(srv):
    async def go():
        async with ws_connect(srv.url("/echo"), compression=None) as ws:
            assert ws.response_headers.get("Sec-WebSocket-Extensions") is None
            assert ws.extensions == []
            for t in ["x" * 1000, "hello"]:
                await ws.send(t)
                assert await ws.recv() == t
            await ws.send(b"\x00" * 100000)
            assert await ws.recv() == b"\x00" * 100000
    run(go())


@pytest.mark.parametrize("flag", [["--ws-per-message-deflate", "false"],
                                  ["--no-ws-per-message-deflate"]])
def test_switched_off_answers_without_extension(start_server, flag):
    s = start_server("ws_app:app", *flag)

    async def go():
        async with ws_connect(s.url("/echo")) as ws:
            assert ws.response_headers.get("Sec-WebSocket-Extensions") is None
            await ws.send("y" * 5000)
            assert await ws.recv() == "y" * 5000
    run(go())
    # RSV1 on a connection without the extension: 1002
    w = s.ws_raw("/echo", headers=[OFFER])
    assert "sec-websocket-extensions" not in dict(w.response_headers)
    w.send_frame(OP_TEXT, deflate(b"Hello"), rsv=4)
    w.expect_close(1002)


def test_bad_flag_value_is_a_usage_error():
    import subprocess
    from conftest import dfws_binary
    p = subprocess.run([dfws_binary(), "--ws-per-message-deflate", "maybe", "x:app"],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 2 and "--ws-per-message-deflate" in p.stderr


# ------------------------------------------------ raw frames

def test_raw_compressed_frames_both_ways(srv):
    w = srv.ws_raw("/echo", headers=[OFFER])
    ext = dict(w.response_headers)["sec-websocket-extensions"]
    assert ext == ("permessage-deflate; server_no_context_takeover; "
                   "client_no_context_takeover")
    big = ("the same words again and again " * 400).encode()
    # one compressed frame; the echo comes back compressed (RSV1)
    w.send_frame(OP_TEXT, deflate(big), rsv=4)
    f = w.recv_frame(timeout=5)
    assert (f.opcode, f.rsv, f.fin) == (OP_TEXT, 4, 1)
    assert len(f.payload) < len(big) // 10
    assert inflate(f.payload) == big
    # the RFC 7692 7.2.3.1 example, fragmented, RSV1 on the first frame only
    w.send_frame(OP_TEXT, b"\xf2\x48\xcd", fin=False, rsv=4)
    w.send_frame(OP_PING, b"p")
    w.send_frame(OP_CONT, b"\xc9\xc9\x07\x00")
    assert w.recv_frame(timeout=5).opcode == 10  # the pong
    f = w.recv_frame(timeout=5)
    # "Hello" is shorter than the threshold (128 bytes): sent as it is
    assert (f.opcode, f.rsv, f.payload) == (OP_TEXT, 0, b"Hello")
    # a plain frame on the same connection is fine too
    w.send_frame(OP_BIN, big)
    f = w.recv_frame(timeout=5)
    assert f.rsv == 4 and inflate(f.payload) == big
    # data that does not compress goes back as it is
    noise = os.urandom(5000)
    w.send_frame(OP_BIN, deflate(noise), rsv=4)
    f = w.recv_frame(timeout=5)
    assert (f.rsv, f.payload) == (0, noise)
    w.close()


@pytest.mark.parametrize("offer,accepted", [
    ("permessage-deflate; server_max_window_bits=10",
     "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
     "server_max_window_bits=10"),
    ("permessage-deflate; server_max_window_bits=8", None),
    ("permessage-deflate; unknown_param", None),
    ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", None),
    ("permessage-deflate; client_max_window_bits=99", None),
    ("x-webkit-deflate-frame", None),
    ("permessage-deflate;;;, \"garbage", None),
    ("permessage-deflate; server_max_window_bits=8, permessage-deflate; client_max_window_bits=9",
     "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
     "client_max_window_bits=9"),
])
def test_offers_declined_or_accepted_never_failing(srv, offer, accepted):
    w = srv.ws_raw("/echo", headers=[("Sec-WebSocket-Extensions", offer)])
    assert dict(w.response_headers).get("sec-websocket-extensions") == accepted
    w.send_text("still works")
    assert w.recv_message(timeout=5) == (OP_TEXT, b"still works")
    if accepted is None:
        # no extension: RSV1 is a protocol error
        w.send_frame(OP_TEXT, deflate(b"Hello"), rsv=4)
        w.expect_close(1002)
    w.close()


def test_small_window_is_honoured(srv):
    w = srv.ws_raw("/echo", headers=[("Sec-WebSocket-Extensions",
                                      "permessage-deflate; server_max_window_bits=9")])
    data = os.urandom(600) * 20  # repeats beyond a 512-byte window
    w.send_bytes(data)
    f = w.recv_frame(timeout=5)
    assert f.rsv == 4
    # a 9-bit inflater can read it: no reference reaches further back
    d = zlib.decompressobj(-9)
    assert d.decompress(f.payload + TAIL) == data
    w.close()


@pytest.mark.parametrize("frames,code", [
    # RSV1 on a continuation frame
    ([(OP_TEXT, b"Hel", False, 0), (OP_CONT, b"lo", True, 4)], 1002),
    ([(OP_TEXT, b"\xf2\x48\xcd", False, 4), (OP_CONT, b"\xc9\xc9\x07\x00", True, 4)], 1002),
    # RSV1 on a control frame
    ([(OP_PING, b"", True, 4)], 1002),
    # RSV2 stays reserved
    ([(OP_TEXT, b"\x00", True, 6)], 1002),
    # not DEFLATE data
    ([(OP_BIN, b"\xff\xff\xff\xff", True, 4)], 1007),
    # inflated text that is not UTF-8
    ([(OP_TEXT, deflate(b"ok \xed\xa0\x80"), True, 4)], 1007),
    ([(OP_TEXT, deflate(b"cut \xe2\x82"), True, 4)], 1007),
    # the second message of RFC 7692 7.2.3.2 needs the first one's window,
    # which no-context-takeover does not keep
    ([(OP_TEXT, b"\xf2\x00\x11\x00\x00", True, 4)], 1007),
])
def test_protocol_errors(srv, frames, code):
    w = srv.ws_raw("/echo", headers=[OFFER])
    for op, payload, fin, rsv in frames:
        w.send_frame(op, payload, fin=fin, rsv=rsv)
    w.expect_close(code)
    # the server keeps serving
    w2 = srv.ws_raw("/echo", headers=[OFFER])
    w2.send_text("alive")
    assert w2.recv_message(timeout=5) == (OP_TEXT, b"alive")
    w2.close()


def test_decompression_bomb_closes_1009(start_server):
    s = start_server("ws_app:app", "--websocket-max-message-size", "1048576")
    bomb = deflate(b"\x00" * (64 << 20))  # 64 MiB of zeros, about 64 KiB on the wire
    assert len(bomb) < 100000
    w = s.ws_raw("/echo", headers=[OFFER])
    w.send_frame(OP_BIN, bomb, rsv=4)
    w.expect_close(1009)
    # spread over frames
    w = s.ws_raw("/echo", headers=[OFFER])
    w.send_frame(OP_BIN, bomb[:30000], fin=False, rsv=4)
    w.send_frame(OP_CONT, bomb[30000:])
    w.expect_close(1009)
    # exactly the limit after inflation is fine
    w = s.ws_raw("/echo", headers=[OFFER])
    w.send_frame(OP_BIN, deflate(b"a" * 1048576), rsv=4)
    op, got = w.recv_message(timeout=10)
    assert got == b"a" * 1048576 or inflate(got) == b"a" * 1048576
    w.close()
    assert "message too big (once inflated)" in s.stderr()
