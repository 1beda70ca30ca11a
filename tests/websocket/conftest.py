"""Black-box fixtures for the WebSocket tests of dfws-asgi.

Adapted from tests/server/conftest.py (same Server / RawConn helpers), with
the apps in tests/websocket/apps, a raw WebSocket client (WSRaw) that builds
frames by hand for malformed input, and helpers to drive the ``websockets``
library (python3-websockets 10.4) from synchronous tests. What the suites
share is tests/support's dfws_testsupport.

The same tests run against reference servers to prove they are right:

    DFWS_IMPL=uvicorn .venv/bin/python -m pytest tests/websocket -q
    DFWS_IMPL=daphne  .venv/bin/python -m pytest tests/websocket -q

In a reference run only tests marked ``@pytest.mark.ref("uvicorn")`` (or
"daphne") run.  The binary under test is ``$DFWS_ASGI``, else the one
next to the Python running pytest, else the checkout's .venv/ or build/.
"""

import asyncio
import base64
import hashlib
import json
import os
import struct
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "support"))  # dfws_testsupport
from dfws_testsupport import http  # noqa: E402
from dfws_testsupport.binary import REPO, dfws_binary  # noqa: E402,F401
from dfws_testsupport.http import exchange as http_exchange  # noqa: E402,F401
from dfws_testsupport.net import free_port  # noqa: E402
from dfws_testsupport.peers import (build_command, impl, pytest_collection_modifyitems,  # noqa: E402,F401
                                    pytest_configure, pytest_report_header, require_binary)
from dfws_testsupport.proc import (RssSampler, children_of, rss_bytes,  # noqa: E402,F401
                                   tree_rss_bytes)
from dfws_testsupport.server import READY_PATH, ServerProcess, server_env, stop_all  # noqa: E402,F401

APPS = os.path.join(HERE, "apps")
PYTHON = sys.executable  # the venv pytest runs in: dfws and the peers are installed there
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
IMPL = impl()


# -------------------------------------------------------------------- server

class Server(ServerProcess):
    """A running server process; ``out`` is its side-file directory
    (env DFWS_TEST_OUT) which also holds stdout.txt / stderr.txt."""

    whole_lines = False  # the apps' side files are read as they grow

    def __init__(self, app, args, outdir, port=None, cwd=APPS, extra_env=None):
        require_binary()
        self.app = app
        port = port or free_port()
        super().__init__(build_command(["-b", "127.0.0.1", "-p", str(port)] + list(args), app),
                         outdir, cwd, port=port, extra_env=extra_env)

    def url(self, path):
        return "ws://127.0.0.1:%d%s" % (self.port, path)

    def connect(self, timeout=10):
        return RawConn.tcp(self.port, timeout)

    def ws_raw(self, path="/echo", headers=(), timeout=10, **kw):
        """Raw WebSocket client after a successful handshake."""
        return WSRaw.open(self.port, path, headers, timeout, **kw)

    def events(self, tag="default"):
        """ASGI events the app received on connections tagged `tag`."""
        data = self.read_out("events-" + tag, "")
        return [json.loads(line) for line in data.splitlines() if line]

    def wait_event(self, tag, type_, timeout=10):
        """Waits until the app recorded an event of `type_`; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            for ev in self.events(tag):
                if ev.get("type") == type_:
                    return ev
            if time.monotonic() > deadline:
                raise AssertionError("app never got %s on %r; events: %r\n%s"
                                     % (type_, tag, self.events(tag), self.describe()))
            time.sleep(0.05)


def _factory(tmp_dir_fn):
    started = []
    counter = [0]

    def factory(app="ws_app:app", *args, cwd=APPS, extra_env=None, wait=True):
        counter[0] += 1
        out = tmp_dir_fn(counter[0])
        srv = Server(app, args, out, cwd=cwd, extra_env=extra_env)
        started.append(srv)
        if wait:
            srv.wait_ready()
        return srv

    def finish():
        stop_all(started)

    return factory, finish


@pytest.fixture
def start_server(tmp_path):
    """start_server("ws_app:app", *args) -> Server; SIGTERM at teardown,
    a non-zero exit fails the test."""
    def mk(n):
        d = tmp_path / ("srv%d" % n)
        d.mkdir()
        return d
    factory, finish = _factory(mk)
    yield factory
    finish()


@pytest.fixture(scope="module")
def module_server_factory(tmp_path_factory):
    """Like start_server, shared by the tests of one module."""
    factory, finish = _factory(lambda n: tmp_path_factory.mktemp("srv%d" % n))
    yield factory
    finish()


# ------------------------------------------------------------ raw HTTP client

class RawConn(http.RawConn):
    """tests/support's raw connection whose read_head gives (status,
    headers), as the WebSocket handshake tests read it."""

    def read_head(self):
        _, status, _, headers = self._read_head()
        return status, headers


def ws_key():
    return base64.b64encode(os.urandom(16)).decode()


def ws_accept_for(key):
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()


def upgrade_request(path="/echo", headers=(), key=None, version="13", host=True):
    """Bytes of a WebSocket upgrade request; `headers` are added last."""
    lines = ["GET %s HTTP/1.1" % path]
    if host:
        lines.append("Host: testserver")
    lines += ["Upgrade: websocket", "Connection: Upgrade"]
    if key is not False:
        lines.append("Sec-WebSocket-Key: %s" % (key or ws_key()))
    if version is not None:
        lines.append("Sec-WebSocket-Version: %s" % version)
    lines += ["%s: %s" % kv for kv in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# ------------------------------------------------------ raw WebSocket client

OP_CONT, OP_TEXT, OP_BIN, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def mask_bytes(payload, key):
    n = len(payload)
    if n == 0:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def encode_frame(opcode, payload=b"", fin=True, rsv=0, mask=True, key=None):
    """A client frame built by hand: any opcode, RSV bits, masked or not."""
    if isinstance(payload, str):
        payload = payload.encode()
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)
    mbit = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        head = bytes([b0, mbit | n])
    elif n < 65536:
        head = bytes([b0, mbit | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = key or os.urandom(4)
    return head + key + mask_bytes(payload, key)


def close_payload(code, reason=b""):
    if isinstance(reason, str):
        reason = reason.encode()
    return struct.pack("!H", code) + reason


class Frame:
    def __init__(self, fin, rsv, opcode, payload):
        self.fin, self.rsv, self.opcode, self.payload = fin, rsv, opcode, payload

    @property
    def close_code(self):
        assert self.opcode == OP_CLOSE
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else 1005

    @property
    def close_reason(self):
        return self.payload[2:].decode("utf-8")

    def __repr__(self):
        return "<Frame op=%d fin=%d rsv=%d len=%d %r>" % (
            self.opcode, self.fin, self.rsv, len(self.payload), self.payload[:60])


class WSRaw:
    """A WebSocket client over a raw socket (frames built and parsed here)."""

    def __init__(self, conn, response_headers=()):
        self.conn = conn
        self.response_headers = list(response_headers)

    @classmethod
    def open(cls, port, path="/echo", headers=(), timeout=10, rcvbuf=None):
        conn = RawConn.tcp(port, timeout, rcvbuf=rcvbuf)
        key = ws_key()
        conn.send(upgrade_request(path, headers, key=key))
        status, hdrs = conn.read_head()
        assert status == 101, "handshake answered %d %r" % (status, hdrs)
        got = [v for k, v in hdrs if k == "sec-websocket-accept"]
        assert got == [ws_accept_for(key)], hdrs
        return cls(conn, hdrs)

    def send_frame(self, opcode, payload=b"", **kw):
        self.conn.send(encode_frame(opcode, payload, **kw))

    def send_text(self, text):
        self.send_frame(OP_TEXT, text.encode())

    def send_bytes(self, data):
        self.send_frame(OP_BIN, data)

    def send_close(self, code=1000, reason=b""):
        self.send_frame(OP_CLOSE, close_payload(code, reason))

    def recv_frame(self, timeout=None):
        if timeout is not None:
            self.conn.sock.settimeout(timeout)
        h = self.conn.read_exact(2)
        fin, rsv, op = h[0] >> 7, (h[0] >> 4) & 7, h[0] & 0x0F
        assert not h[1] & 0x80, "server frame is masked"
        n = h[1] & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.conn.read_exact(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.conn.read_exact(8))[0]
        return Frame(fin, rsv, op, self.conn.read_exact(n))

    def recv_message(self, timeout=None, answer_pings=True):
        """Next data message as (opcode, payload); answers pings, skips pongs;
        a close frame raises AssertionError."""
        op, parts = None, []
        while True:
            f = self.recv_frame(timeout)
            if f.opcode == OP_PING:
                if answer_pings:
                    self.send_frame(OP_PONG, f.payload)
                continue
            if f.opcode == OP_PONG:
                continue
            assert f.opcode != OP_CLOSE, "unexpected close %d %r" % (
                f.close_code, f.payload[2:])
            if op is None:
                op = f.opcode
            parts.append(f.payload)
            if f.fin:
                return op, b"".join(parts)

    def expect_close(self, code, timeout=5, then_eof=True):
        """Reads frames until a close frame: asserts its code, that only
        pings/pongs came before it and (then_eof) that the server then
        closes the TCP connection. Returns the close Frame."""
        self.conn.sock.settimeout(timeout)
        seen = []
        while True:
            try:
                f = self.recv_frame()
            except EOFError:
                raise AssertionError("connection closed without a close frame; "
                                     "frames before: %r" % seen)
            if f.opcode == OP_CLOSE:
                break
            seen.append(f)
            assert f.opcode in (OP_PING, OP_PONG), "data frame before close: %r" % seen
        assert f.close_code == code, "close code %d (%r), expected %d" % (
            f.close_code, f.payload[2:], code)
        if then_eof:
            self.conn.wait_closed(timeout)
        return f

    def close(self):
        self.conn.close()


# ------------------------------------------------ websockets library helpers

def run(coro, timeout=30):
    """Runs a coroutine to completion in a fresh event loop."""
    async def guarded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(guarded())


def ws_connect(url, **kw):
    """websockets.connect with test defaults (no client keepalive, no size
    limit, short close timeout)."""
    import websockets
    kw.setdefault("ping_interval", None)
    kw.setdefault("max_size", None)
    kw.setdefault("close_timeout", 3)
    kw.setdefault("open_timeout", 10)
    return websockets.connect(url, **kw)
