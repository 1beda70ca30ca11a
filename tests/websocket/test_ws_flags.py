"""Command-line flags for WebSockets: keep-alive pings, lifetime and
connect timeouts, message and frame size limits."""
import time

import pytest
import websockets

from conftest import (OP_BIN, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,
                      RawConn, encode_frame, run, upgrade_request, ws_connect)


# ---- --ping-interval / --ping-timeout -----------------------------------------

@pytest.mark.ref("uvicorn")
def test_unanswered_pings_drop_the_client(start_server):
    s = start_server("ws_app:app", "--ping-interval", "0.5", "--ping-timeout", "1")
    ws = s.ws_raw("/echo?tag=noping")
    try:
        t0 = time.monotonic()
        first_ping = None
        frames = []
        while True:
            try:
                f = ws.recv_frame(timeout=8)  # never answer
            except EOFError:
                break
            frames.append(f)
            if f.opcode == OP_PING and first_ping is None:
                first_ping = time.monotonic()
            assert f.opcode in (OP_PING, OP_CLOSE), frames
        end = time.monotonic()
    finally:
        ws.close()
    assert first_ping is not None, "no ping from the server before it closed"
    assert first_ping - t0 < 3.0, "first ping after %.2fs" % (first_ping - t0)
    # dropped after the ping timeout, not before
    assert 0.7 <= end - first_ping <= 4.0, "dropped %.2fs after the ping" % (end - first_ping)
    ev = s.wait_event("noping", "websocket.disconnect")
    assert ev["code"] in (1006, 1011), ev


@pytest.mark.ref("uvicorn")
def test_answered_pings_keep_the_client(start_server):
    s = start_server("ws_app:app", "--ping-interval", "0.3", "--ping-timeout", "0.6")
    ws = s.ws_raw("/echo?tag=pong")
    try:
        pings = 0
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            try:
                f = ws.recv_frame(timeout=max(0.05, deadline - time.monotonic()))
            except TimeoutError:
                break
            assert f.opcode == OP_PING, f
            assert len(f.payload) <= 125
            pings += 1
            ws.send_frame(OP_PONG, f.payload)
        assert pings >= 3, "only %d pings in 3 s with --ping-interval 0.3" % pings
        ws.send_text("still open")
        assert ws.recv_message(timeout=5) == (OP_TEXT, b"still open")
    finally:
        ws.close()


@pytest.mark.ref("uvicorn")
def test_websockets_client_answers_pings_and_stays(start_server):
    s = start_server("ws_app:app", "--ping-interval", "0.3", "--ping-timeout", "0.6")

    async def go():
        import asyncio
        async with ws_connect(s.url("/echo")) as ws:
            await asyncio.sleep(2.5)
            await ws.send("after 2.5 s")
            assert await ws.recv() == "after 2.5 s"
    run(go())


# ---- --websocket_timeout --------------------------------------------------------


def test_websocket_timeout_closes_connection(start_server):
    s = start_server("ws_app:app", "--websocket_timeout", "2")  # daphne: int

    async def go():
        async with ws_connect(s.url("/echo?tag=lifetime")) as ws:
            t0 = time.monotonic()
            await ws.send("early")
            assert await ws.recv() == "early"
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                while True:
                    await ws.recv()
            return time.monotonic() - t0
    elapsed = run(go())
    assert 1.7 <= elapsed <= 4.5, "closed after %.2fs with --websocket_timeout 2" % elapsed
    s.wait_event("lifetime", "websocket.disconnect")


def test_websocket_timeout_sends_close_frame(start_server):
    s = start_server("ws_app:app", "--websocket_timeout", "1")
    ws = s.ws_raw("/echo?tag=lifetime2")
    try:
        t0 = time.monotonic()
        f = ws.recv_frame(timeout=5)
        elapsed = time.monotonic() - t0
        assert f.opcode == OP_CLOSE, f
        assert 0.8 <= elapsed <= 3, elapsed
        ws.send_frame(OP_CLOSE, f.payload[:2])
        ws.conn.wait_closed(5)
    finally:
        ws.close()


# ---- --websocket_connect_timeout -------------------------------------------------


def test_connect_timeout_drops_unaccepted_socket(start_server):
    s = start_server("ws_app:app", "--websocket_connect_timeout", "1")
    c = RawConn.tcp(s.port)
    try:
        t0 = time.monotonic()
        c.send(upgrade_request("/never?tag=never"))
        data = c.wait_closed(6)
        elapsed = time.monotonic() - t0
    finally:
        c.close()
    assert not data.startswith(b"HTTP/1.1 101"), data
    assert 0.8 <= elapsed <= 4.0, "dropped after %.2fs with --websocket_connect_timeout 1" % elapsed
    s.wait_event("never", "websocket.disconnect")


def test_accept_within_connect_timeout_is_fine(start_server):
    s = start_server("ws_app:app", "--websocket_connect_timeout", "1")

    async def go():
        import asyncio
        async with ws_connect(s.url("/echo")) as ws:
            await asyncio.sleep(1.5)  # longer than the connect timeout
            await ws.send("ok")
            assert await ws.recv() == "ok"
    run(go())


# ---- size limits ----------------------------------------------------------------

@pytest.mark.ref("uvicorn")
def test_max_message_size(start_server):
    s = start_server("ws_app:app", "--websocket-max-message-size", "1000")
    ws = s.ws_raw("/echo")
    try:
        ws.send_bytes(b"a" * 1000)
        assert ws.recv_message(timeout=5) == (OP_BIN, b"a" * 1000)
        ws.send_text("b" * 1000)
        assert ws.recv_message(timeout=5) == (OP_TEXT, b"b" * 1000)
        ws.send_bytes(b"c" * 1001)
        ws.expect_close(1009)
    finally:
        ws.close()
    ws = s.ws_raw("/echo")
    try:  # small frames, message too big
        ws.conn.send(encode_frame(OP_TEXT, b"d" * 600, fin=False)
                     + encode_frame(OP_CONT, b"d" * 600, fin=True))
        ws.expect_close(1009)
    finally:
        ws.close()


def test_max_frame_size(start_server):
    s = start_server("ws_app:app", "--websocket-max-frame-size", "1000",
                     "--websocket-max-message-size", "0")
    ws = s.ws_raw("/echo")
    try:
        frames = encode_frame(OP_BIN, b"e" * 1000, fin=False)
        for _ in range(4):
            frames += encode_frame(OP_CONT, b"e" * 1000, fin=False)
        frames += encode_frame(OP_CONT, b"", fin=True)
        ws.conn.send(frames)
        assert ws.recv_message(timeout=5) == (OP_BIN, b"e" * 5000)
        ws.send_bytes(b"f" * 1001)
        ws.expect_close(1009)
    finally:
        ws.close()


@pytest.mark.ref("uvicorn")
def test_zero_means_unlimited(start_server):
    s = start_server("ws_app:app", "--websocket-max-message-size", "0",
                     "--websocket-max-frame-size", "0")
    big = bytes(range(256)) * (3 * 4096)  # 3 MiB

    async def go():
        async with ws_connect(s.url("/echo")) as ws:
            await ws.send(big)
            assert await ws.recv() == big
    run(go())
    ws = s.ws_raw("/echo")
    try:
        ws.conn.send(encode_frame(OP_BIN, big[:1 << 20], fin=False)
                     + encode_frame(OP_CONT, big[1 << 20:], fin=True))
        assert ws.recv_message(timeout=10) == (OP_BIN, big)
    finally:
        ws.close()


def test_default_limit_is_one_mib(start_server):
    s = start_server("ws_app:app")
    ws = s.ws_raw("/echo")
    try:
        ws.send_bytes(b"g" * (1 << 20))
        assert ws.recv_message(timeout=10) == (OP_BIN, b"g" * (1 << 20))
        ws.send_bytes(b"h" * ((1 << 20) + 1))
        ws.expect_close(1009)
    finally:
        ws.close()


# ---- --application-close-timeout ---------------------------------------------------

@pytest.mark.ref("daphne")
def test_application_close_timeout_cancels_stubborn_app(start_server):
    s = start_server("ws_app:app", "--application-close-timeout", "1")

    async def go():
        async with ws_connect(s.url("/stubborn?tag=stub")) as ws:
            await ws.close(1000)
    run(go())
    s.wait_event("stub", "websocket.disconnect")
    line = s.wait_out("stubborn-stub", timeout=6)
    assert line and line.startswith("cancelled"), line
    delay = float(line.split()[1])
    assert 0.7 <= delay <= 3.0, "cancelled %.2fs after the disconnect" % delay
