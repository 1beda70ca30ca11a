"""Black-box fixtures for the WebSocket tests of dfws-asgi.

Adapted from tests/server/conftest.py (same Server / RawConn helpers), with
the apps in tests/websocket/apps, a raw WebSocket client (WSRaw) that builds
frames by hand for malformed input, and helpers to drive the ``websockets``
library (python3-websockets 10.4) from synchronous tests.

The same tests run against reference servers to prove they are right:

    DFWS_IMPL=uvicorn .venv/bin/python -m pytest tests/websocket -q
    DFWS_IMPL=daphne  .venv/bin/python -m pytest tests/websocket -q

In a reference run only tests marked ``@pytest.mark.ref("uvicorn")`` (or
"daphne") run.  The binary under test is ``$DFWS_ASGI``, else
``/work/main/.venv/bin/dfws-asgi`` if it exists, else
``/work/main/build/dfws-asgi``.
"""

import asyncio
import base64
import hashlib
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
APPS = os.path.join(HERE, "apps")
REPO = os.path.dirname(os.path.dirname(HERE))
PYTHON = sys.executable  # the venv pytest runs in: dfws and the peers are installed there
READY_PATH = "/__ready__"
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

IMPL = os.environ.get("DFWS_IMPL", "dfws")
if IMPL not in ("dfws", "uvicorn", "daphne"):
    raise RuntimeError("DFWS_IMPL must be dfws, uvicorn or daphne, not %r" % IMPL)


def dfws_binary():
    env = os.environ.get("DFWS_ASGI")
    if env:
        return env
    venv = os.path.join(REPO, ".venv", "bin", "dfws-asgi")
    if os.path.exists(venv):
        return venv
    return os.path.join(REPO, "build", "dfws-asgi")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "ref(*impls): reference servers (uvicorn, daphne) that share this "
        "behaviour; the test runs against them when DFWS_IMPL names one",
    )


def pytest_collection_modifyitems(config, items):
    if IMPL == "dfws":
        return
    for item in items:
        marker = item.get_closest_marker("ref")
        if marker is None or IMPL not in marker.args:
            item.add_marker(pytest.mark.skip(reason="behaviour not shared by %s" % IMPL))


def pytest_report_header(config):
    if IMPL == "dfws":
        return "server under test: %s" % dfws_binary()
    return "server under test: reference %s" % IMPL


# ---------------------------------------------------------------- command line

_VALUE_FLAGS = {
    "-b", "--bind", "-p", "--port", "-u", "--unix-socket", "--fd",
    "--access-log", "-v", "--verbosity", "-t", "--http-timeout",
    "--websocket_timeout", "--websocket_connect_timeout", "--ping-interval",
    "--ping-timeout", "--application-close-timeout", "--root-path",
    "--proxy-headers-host", "--proxy-headers-port", "-s", "--server-name",
    "--log-fmt", "--workers", "--lifespan", "--backlog",
    "--limit-request-line", "--limit-request-headers", "--limit-request-body",
    "--keep-alive-timeout", "--header-timeout", "--shutdown-timeout",
    "--websocket-max-message-size", "--websocket-max-frame-size",
}


def _pairs(args):
    out, i = [], 0
    while i < len(args):
        a = args[i]
        if a in _VALUE_FLAGS:
            out.append((a, args[i + 1]))
            i += 2
        else:
            out.append((a, None))
            i += 1
    return out


def _to_uvicorn(args, app):
    m = {"-b": "--host", "--bind": "--host", "-p": "--port", "--port": "--port",
         "-u": "--uds", "--unix-socket": "--uds", "--root-path": "--root-path",
         "--lifespan": "--lifespan", "--ping-interval": "--ws-ping-interval",
         "--ping-timeout": "--ws-ping-timeout"}
    out = [PYTHON, "-m", "uvicorn", "--loop", "uvloop", "--http", "httptools",
           "--ws", "websockets"]
    for flag, val in _pairs(args):
        if flag == "--proxy-headers":
            out += ["--proxy-headers", "--forwarded-allow-ips", "*"]
        elif flag in ("-v", "--verbosity", "--access-log", "--shutdown-timeout",
                      "--application-close-timeout"):
            continue
        elif flag == "--websocket-max-message-size":
            out += ["--ws-max-size", str(int(val) or 2 ** 62)]
        elif flag in m:
            out += [m[flag], val]
        else:
            raise pytest.skip.Exception("flag %s has no uvicorn equivalent" % flag)
    if "--ping-interval" not in args:
        out += ["--ws-ping-interval", "20"]
    return out + ["--no-access-log", app]


def _to_daphne(args, app):
    out = [PYTHON, "-m", "daphne"]
    for flag, val in _pairs(args):
        if flag in ("--workers", "--lifespan", "--backlog", "--shutdown-timeout",
                    "--limit-request-line", "--limit-request-headers",
                    "--limit-request-body", "--keep-alive-timeout",
                    "--header-timeout", "--websocket-max-message-size",
                    "--websocket-max-frame-size"):
            raise pytest.skip.Exception("flag %s has no daphne equivalent" % flag)
        out.append(flag)
        if val is not None:
            out.append(val)
    return out + [app]


def build_command(args, app):
    args = list(args)
    if IMPL == "uvicorn":
        return _to_uvicorn(args, app)
    if IMPL == "daphne":
        return _to_daphne(args, app)
    return [dfws_binary()] + args + ([app] if app else [])


def require_binary():
    if IMPL == "dfws" and not os.access(dfws_binary(), os.X_OK):
        pytest.fail("dfws-asgi binary not found or not executable: %s" % dfws_binary())


def server_env(outdir):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the server runs the installed dfws
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if outdir:
        env["DFWS_TEST_OUT"] = str(outdir)
    return env


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# -------------------------------------------------------------------- server

class Server:
    """A running server process; ``out`` is its side-file directory
    (env DFWS_TEST_OUT) which also holds stdout.txt / stderr.txt."""

    def __init__(self, app, args, outdir, port=None, cwd=APPS, extra_env=None):
        require_binary()
        self.app = app
        self.port = port or free_port()
        self.out = str(outdir)
        self.stdout_path = os.path.join(self.out, "stdout.txt")
        self.stderr_path = os.path.join(self.out, "stderr.txt")
        self.cmd = build_command(["-b", "127.0.0.1", "-p", str(self.port)] + list(args), app)
        env = server_env(self.out)
        env.update(extra_env or {})
        self._stdout = open(self.stdout_path, "wb")
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.cmd, cwd=cwd, stdout=self._stdout,
                                     stderr=self._stderr, env=env)
        self.pid = self.proc.pid
        self.stopped = False

    def stderr(self):
        if not self._stderr.closed:
            self._stderr.flush()
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stdout(self):
        if not self._stdout.closed:
            self._stdout.flush()
        with open(self.stdout_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def describe(self):
        return "cmd: %s\nstdout:\n%s\nstderr:\n%s" % (
            " ".join(self.cmd), self.stdout()[-3000:], self.stderr()[-3000:])

    def wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail("server exited early with %s\n%s"
                            % (self.proc.returncode, self.describe()))
            try:
                s = socket.create_connection(("127.0.0.1", self.port), 0.5)
                s.settimeout(max(0.1, deadline - time.monotonic()))
                try:
                    s.sendall(("GET %s HTTP/1.1\r\nHost: testserver\r\n"
                               "Connection: close\r\n\r\n" % READY_PATH).encode())
                    if not s.recv(16).startswith(b"HTTP/1."):
                        raise OSError("no status line")
                finally:
                    s.close()
                return self
            except OSError:
                time.sleep(0.03)
        pytest.fail("server not ready within %ss\n%s" % (timeout, self.describe()))

    def url(self, path):
        return "ws://127.0.0.1:%d%s" % (self.port, path)

    def connect(self, timeout=10):
        return RawConn.tcp(self.port, timeout)

    def ws_raw(self, path="/echo", headers=(), timeout=10, **kw):
        """Raw WebSocket client after a successful handshake."""
        return WSRaw.open(self.port, path, headers, timeout, **kw)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, expect_code=0, timeout=8):
        if self.stopped:
            return self.proc.returncode
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            self._close_files()
            pytest.fail("server did not exit within %ss of SIGTERM\n%s"
                        % (timeout, self.describe()))
        self._close_files()
        if expect_code is not None:
            assert code == expect_code, ("server exit code %s, expected %s\n%s"
                                         % (code, expect_code, self.describe()))
        return code

    def wait_exit(self, expect_code=0, timeout=10):
        """After the test signalled the server itself: waits for it to exit
        WITHOUT sending another signal, checks the exit code."""
        self.stopped = True
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            self._close_files()
            pytest.fail("server did not exit within %ss\n%s" % (timeout, self.describe()))
        self._close_files()
        if expect_code is not None:
            assert code == expect_code, ("server exit code %s, expected %s\n%s"
                                         % (code, expect_code, self.describe()))
        return code

    def _close_files(self):
        for f in (self._stdout, self._stderr):
            try:
                f.close()
            except Exception:
                pass

    # --- side files written by the apps
    def read_out(self, name, default=None):
        try:
            with open(os.path.join(self.out, name)) as f:
                return f.read()
        except FileNotFoundError:
            return default

    def wait_out(self, name, timeout=10, contains=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = self.read_out(name)
            if data is not None and (contains is None or contains in data):
                return data
            time.sleep(0.05)
        return self.read_out(name)

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
        errors = []
        for srv in started:
            if srv.stopped:
                continue
            try:
                srv.stop()
            except BaseException as e:  # pytest.fail raises Failed
                errors.append(str(e))
        if errors:
            pytest.fail("\n".join(errors))

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

class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # list of (lower-case name, value)
        self.body = body

    def header(self, name, default=None):
        for k, v in self.headers:
            if k == name.lower():
                return v
        return default

    def header_all(self, name):
        return [v for k, v in self.headers if k == name.lower()]

    def __repr__(self):
        return "<Response %s %r %r>" % (self.status, self.headers, self.body[:200])


class RawConn:
    """A raw client socket with a strict HTTP/1.x response reader."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.eof = False

    @classmethod
    def tcp(cls, port, timeout=10, rcvbuf=None):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
        return cls(s)

    def local_port(self):
        return self.sock.getsockname()[1]

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self):
        if self.eof:
            return False
        try:
            data = self.sock.recv(1 << 20)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError("EOF after %d of %d bytes" % (len(self.buf), n))
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_line(self):
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise EOFError("EOF in line; got %r" % self.buf)
        i = self.buf.index(b"\r\n")
        line, self.buf = self.buf[:i], self.buf[i + 2:]
        return line

    def read_head(self):
        line = self.read_line()
        m = re.match(rb"^HTTP/1\.[01] (\d{3})(?: .*)?$", line)
        assert m, "bad status line %r" % line
        headers = []
        while True:
            h = self.read_line()
            if h == b"":
                break
            name, sep, value = h.partition(b":")
            assert sep and name == name.strip() and name, "bad header line %r" % h
            headers.append((name.decode("latin-1").lower(),
                            value.strip().decode("latin-1")))
        return int(m.group(1)), headers

    def read_response(self):
        """One full non-101 response (Content-Length, chunked or until close)."""
        status, headers = self.read_head()
        resp = Response(status, headers, b"")
        te = [v.lower() for k, v in headers if k == "transfer-encoding"]
        cl = [v for k, v in headers if k == "content-length"]
        if te:
            assert te == ["chunked"] and not cl, headers
            while True:
                size = int(self.read_line().split(b";")[0], 16)
                if size == 0:
                    while self.read_line() != b"":
                        pass
                    break
                resp.body += self.read_exact(size)
                assert self.read_exact(2) == b"\r\n"
        elif cl:
            resp.body = self.read_exact(int(cl[0]))
        else:
            while self._fill():
                pass
            resp.body, self.buf = self.buf, b""
        return resp

    def wait_closed(self, timeout=5):
        """Reads until EOF/RST; returns the bytes received before it, or
        raises AssertionError if the peer keeps the connection open."""
        self.sock.settimeout(timeout)
        try:
            while self._fill():
                pass
        except socket.timeout:
            raise AssertionError("peer did not close within %ss (got %r)"
                                 % (timeout, self.buf[:200]))
        out, self.buf = self.buf, b""
        return out


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


def http_exchange(port, data, timeout=10):
    """Sends raw bytes on a fresh connection, returns the Response."""
    c = RawConn.tcp(port, timeout)
    try:
        c.send(data)
        return c.read_response()
    finally:
        c.close()


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


# ---------------------------------------------------------------- /proc info

def children_of(pid):
    kids = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                    kids += [int(x) for x in f.read().split()]
            except FileNotFoundError:
                pass
    except FileNotFoundError:
        pass
    return kids


def rss_bytes(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return 0


def tree_rss_bytes(pid):
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss_bytes(p)
        todo += children_of(p)
    return total


class RssSampler:
    """Samples a process tree's RSS in a thread; ``peak`` in bytes."""

    def __init__(self, pid, interval=0.05):
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_bytes(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, tree_rss_bytes(self.pid))
