"""Graceful shutdown with open WebSockets."""
import signal
import time

import pytest
import websockets

from conftest import OP_TEXT, run, ws_connect


def test_sigterm_closes_websockets_with_1001(start_server):
    s = start_server("ws_app:app")

    async def go():
        import asyncio
        async with ws_connect(s.url("/echo?tag=shut")) as ws:
            await ws.send("before")
            assert await ws.recv() == "before"
            s.signal(signal.SIGTERM)
            with pytest.raises(websockets.exceptions.ConnectionClosed) as ei:
                await asyncio.wait_for(ws.recv(), 8)
            return ei.value
    exc = run(go())
    assert exc.rcvd is not None, "no close frame from the server: %r" % exc
    assert exc.rcvd.code == 1001
    t0 = time.monotonic()
    assert s.wait_exit(expect_code=0, timeout=10) == 0
    assert time.monotonic() - t0 < 5
    ev = s.wait_event("shut", "websocket.disconnect", timeout=1)
    assert ev["code"] == 1001


def _signal_open_sockets(s, tags, sig, code, timeout=5):
    """Opens one raw WebSocket per tag, sends `sig` to the server, expects
    each to be closed with `code` and answers; returns the close frames."""
    raws = [s.ws_raw("/echo?tag=%s" % tag) for tag in tags]
    frames = []
    try:
        for r in raws:
            r.send_text("hi")
            assert r.recv_message(timeout=5) == (OP_TEXT, b"hi")
        s.signal(sig)
        for r in raws:
            frames.append(r.expect_close(code, timeout=timeout, then_eof=False))
            r.send_close(code)
            r.conn.wait_closed(5)
    finally:
        for r in raws:
            r.close()
    return frames


def test_sigterm_several_sockets_and_raw_client(start_server):
    s = start_server("ws_app:app")
    _signal_open_sockets(s, ["shut%d" % i for i in range(3)], signal.SIGTERM, 1001)
    assert s.wait_exit(expect_code=0, timeout=10) == 0
    for i in range(3):
        assert s.wait_event("shut%d" % i, "websocket.disconnect", timeout=1)["code"] == 1001


def test_sigterm_with_client_not_answering_close(start_server):
    s = start_server("ws_app:app", "--shutdown-timeout", "3")
    r = s.ws_raw("/echo?tag=deaf")
    try:
        r.send_text("hi")
        assert r.recv_message(timeout=5) == (OP_TEXT, b"hi")
        t0 = time.monotonic()
        s.signal(signal.SIGTERM)
        r.expect_close(1001, timeout=5, then_eof=False)
        # never answer: the server must still exit by itself
        assert s.wait_exit(expect_code=0, timeout=12) == 0
        assert time.monotonic() - t0 < 10
    finally:
        r.close()
    s.wait_event("deaf", "websocket.disconnect", timeout=1)


def test_sigterm_with_handshake_pending(start_server):
    s = start_server("ws_app:app", "--websocket_connect_timeout", "30")
    from conftest import RawConn, upgrade_request
    c = RawConn.tcp(s.port)
    try:
        c.send(upgrade_request("/never?tag=pending"))
        s.wait_event("pending", "websocket.connect", timeout=5)
        s.signal(signal.SIGTERM)
        data = c.wait_closed(8)
        assert not data.startswith(b"HTTP/1.1 101"), data
    finally:
        c.close()
    assert s.wait_exit(expect_code=0, timeout=10) == 0
    s.wait_event("pending", "websocket.disconnect", timeout=1)


def _ready_workers(s, n, timeout=20):
    deadline = time.monotonic() + timeout
    while s.stderr().count(") ready") < n:
        assert time.monotonic() < deadline, s.describe()
        time.sleep(0.05)


@pytest.mark.parametrize("workers", [1, 2])
def test_sighup_closes_websockets_with_1012_and_keeps_serving(start_server, workers):
    # several workers: a rolling restart; one: a restart in place (same pid)
    s = start_server("ws_app:app", "--workers", str(workers))
    if workers > 1:
        _ready_workers(s, workers)
    frames = _signal_open_sockets(s, ["hup%d" % i for i in range(4)], signal.SIGHUP, 1012,
                                  timeout=15)
    assert [f.payload[2:] for f in frames] == [b"service restart"] * 4
    for i in range(4):
        assert s.wait_event("hup%d" % i, "websocket.disconnect", timeout=5)["code"] == 1012
    # the client reconnects at once: a worker takes it
    r = s.ws_raw("/echo?tag=again", timeout=20)
    try:
        r.send_text("back")
        assert r.recv_message(timeout=10) == (OP_TEXT, b"back")
    finally:
        r.close()
    assert s.proc.poll() is None
