"""Clients that vanish at awkward moments must not disturb the server."""
import socket
import struct
import time

import pytest

from conftest import OP_TEXT, RawConn, encode_frame, run, upgrade_request, ws_connect

pytestmark = pytest.mark.ref("uvicorn")


@pytest.fixture
def srv(start_server):
    return start_server("ws_app:app")


def assert_alive(srv):
    if srv.proc.poll() is not None:
        srv.stopped = True  # reported here, not again at teardown
    assert srv.proc.poll() is None, (
        "server died with %s\n%s" % (srv.proc.returncode, srv.describe()))

    async def go():
        async with ws_connect(srv.url("/echo")) as ws:
            await ws.send("alive")
            assert await ws.recv() == "alive"
    run(go())


def test_client_gone_right_after_upgrade_request(srv):
    # the server writes the 101 and then the app's first message into a
    # socket the peer has closed: EPIPE must not kill the process (SIGPIPE)
    for i in range(300):
        c = RawConn.tcp(srv.port)
        c.send(upgrade_request("/scope"))
        c.close()
        if srv.proc.poll() is not None:
            break
    time.sleep(0.3)
    assert_alive(srv)


def test_client_gone_right_after_101(srv):
    for i in range(200):
        c = RawConn.tcp(srv.port)
        c.send(upgrade_request("/scope"))
        try:
            c.read_head()
        except (EOFError, OSError):
            break  # the server died: reported below
        c.close()
    time.sleep(0.3)
    assert_alive(srv)


def test_client_reset_while_server_streams(srv):
    for i in range(20):
        ws = srv.ws_raw("/flood?mb=20&tag=rst%d" % i)
        ws.send_text("go")
        time.sleep(0.02)
        ws.conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        ws.close()
    time.sleep(0.3)
    assert_alive(srv)


def test_client_reset_with_unread_echoes(srv):
    for i in range(20):
        ws = srv.ws_raw("/echo?tag=unread%d" % i)
        ws.conn.send(b"".join(encode_frame(OP_TEXT, b"m" * 1000) for _ in range(500)))
        time.sleep(0.01)
        ws.close()  # unread data: the kernel sends RST
    time.sleep(0.3)
    assert_alive(srv)
