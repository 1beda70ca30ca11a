"""Black-box fixtures for the dfws-asgi HTTP server tests.

Each test starts the server binary as a subprocess, with its working
directory in ``tests/server/apps`` (so ``module:attr`` resolves there), talks
to it over raw sockets, then stops it with SIGTERM and checks it exits 0.

The same tests can run against a reference server to prove they are right:

    DFWS_IMPL=uvicorn .venv/bin/python -m pytest tests/server -q
    DFWS_IMPL=daphne  .venv/bin/python -m pytest tests/server -q

In a reference run only tests marked ``@pytest.mark.ref("uvicorn")`` (or
"daphne") run: the others cover behaviour the reference does not share.
The binary under test is ``$DFWS_ASGI``, else ``/work/main/.venv/bin/dfws-asgi``
if it exists, else ``/work/main/build/dfws-asgi``.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
APPS = os.path.join(HERE, "apps")
REPO = os.path.dirname(os.path.dirname(HERE))
PYTHON = sys.executable  # the venv pytest runs in: dfws and the peers are installed there
READY_PATH = "/__ready__"  # requested once by Server.wait_ready()

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
            item.add_marker(
                pytest.mark.skip(reason="behaviour not shared by %s" % IMPL)
            )


def pytest_report_header(config):
    if IMPL == "dfws":
        return "server under test: %s" % dfws_binary()
    return "server under test: reference %s" % IMPL


# ---------------------------------------------------------------- command line

# dfws flags that take a value (used to translate to a reference server)
_VALUE_FLAGS = {
    "-b", "--bind", "-p", "--port", "-u", "--unix-socket", "--fd",
    "--access-log", "-v", "--verbosity", "-t", "--http-timeout",
    "--websocket_timeout", "--websocket_connect_timeout", "--ping-interval",
    "--ping-timeout", "--application-close-timeout", "--root-path",
    "--proxy-headers-host", "--proxy-headers-port", "-s", "--server-name",
    "--log-fmt", "--workers", "--lifespan", "--lifespan-timeout", "--backlog",
    "--limit-request-line", "--limit-request-headers", "--limit-request-body",
    "--keep-alive-timeout", "--header-timeout", "--shutdown-timeout",
    "--graceful-timeout", "--socket-mode", "--limit-max-requests",
    "--limit-max-requests-jitter", "--workers-max-rss", "--workers-lifetime",
    "--reload-dir",
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
         "-u": "--uds", "--unix-socket": "--uds", "--fd": "--fd",
         "--root-path": "--root-path", "--lifespan": "--lifespan",
         "--workers": "--workers", "--backlog": "--backlog",
         "--keep-alive-timeout": "--timeout-keep-alive"}
    out = [PYTHON, "-m", "uvicorn", "--loop", "uvloop", "--http", "httptools"]
    for flag, val in _pairs(args):
        if flag == "--proxy-headers":
            out += ["--proxy-headers", "--forwarded-allow-ips", "*"]
        elif flag == "--no-server-name":
            out.append("--no-server-header")
        elif flag in ("-v", "--verbosity", "--access-log", "--shutdown-timeout"):
            continue
        elif flag in m:
            out += [m[flag], val]
        else:
            raise pytest.skip.Exception("flag %s has no uvicorn equivalent" % flag)
    if "--access-log" not in args:
        out.append("--no-access-log")
    return out + [app]


def _to_daphne(args, app):
    out = [PYTHON, "-m", "daphne"]
    for flag, val in _pairs(args):
        if flag in ("--workers", "--lifespan", "--lifespan-timeout", "--backlog",
                    "--shutdown-timeout",
                    "--limit-request-line", "--limit-request-headers",
                    "--limit-request-body", "--keep-alive-timeout",
                    "--header-timeout"):
            raise pytest.skip.Exception("flag %s has no daphne equivalent" % flag)
        out.append(flag)
        if val is not None:
            out.append(val)
    return out + [app]


def build_command(args, app):
    """Full argv for the server under test, given dfws-style args."""
    args = list(args)
    if IMPL == "uvicorn":
        return _to_uvicorn(args, app)
    if IMPL == "daphne":
        return _to_daphne(args, app)
    return [dfws_binary()] + args + ([app] if app else [])


def require_binary():
    if IMPL == "dfws" and not os.access(dfws_binary(), os.X_OK):
        pytest.fail("dfws-asgi binary not found or not executable: %s" % dfws_binary())


def run_cli(args, app=None, timeout=15, cwd=APPS, env=None):
    """Run the server expecting it to exit by itself; returns CompletedProcess."""
    require_binary()
    cmd = build_command(args, app)
    return subprocess.run(cmd, cwd=cwd, capture_output=True, timeout=timeout,
                          env=env or server_env(None), text=True)


def server_env(outdir):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the server runs the installed dfws
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if outdir:
        env["DFWS_TEST_OUT"] = str(outdir)
    return env


# --------------------------------------------------------------------- ports

def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def port():
    return free_port()


# -------------------------------------------------------------------- server

class Server:
    """A running server process.

    ``out`` is a per-test directory (env DFWS_TEST_OUT for the apps) that also
    holds ``stdout.txt`` / ``stderr.txt``.
    """

    def __init__(self, app, args, outdir, port=None, unix=None, wait=True,
                 pass_fds=(), extra_env=None, cwd=APPS):
        require_binary()
        self.app = app
        self.port = port
        self.unix = unix
        self.out = str(outdir)
        self.stdout_path = os.path.join(self.out, "stdout.txt")
        self.stderr_path = os.path.join(self.out, "stderr.txt")
        base = []
        if unix:
            base += ["-u", unix]
        elif port is not None and "--fd" not in args:
            base += ["-b", "127.0.0.1", "-p", str(port)]
        self.cmd = build_command(base + list(args), app)
        env = server_env(self.out)
        env.update(extra_env or {})
        self._stdout = open(self.stdout_path, "wb")
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.cmd, cwd=cwd, stdout=self._stdout,
                                     stderr=self._stderr, env=env,
                                     pass_fds=pass_fds)
        self.pid = self.proc.pid
        self.started_at = time.monotonic()
        self.stopped = False
        if wait:
            self.wait_ready()

    # --- state
    def stdout(self):
        if not self._stdout.closed:
            self._stdout.flush()
        with open(self.stdout_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stderr(self):
        if not self._stderr.closed:
            self._stderr.flush()
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def describe(self):
        return "cmd: %s\nstdout:\n%s\nstderr:\n%s" % (
            " ".join(self.cmd), self.stdout()[-3000:], self.stderr()[-3000:])

    def wait_ready(self, timeout=20, probe=True):
        """Wait until the port accepts and, with probe, until a request to
        READY_PATH gets a status line (any status): a server may listen
        before its app is imported and its lifespan startup has run."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stopped = True  # reported here, not again at teardown
                self._close_files()
                pytest.fail("server exited early with %s\n%s"
                            % (self.proc.returncode, self.describe()))
            try:
                if self.unix:
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.settimeout(max(0.1, deadline - time.monotonic()))
                    s.connect(self.unix)
                else:
                    s = socket.create_connection(("127.0.0.1", self.port), 0.5)
                    s.settimeout(max(0.1, deadline - time.monotonic()))
                try:
                    if probe:
                        s.sendall(build_request("GET", READY_PATH, [("Connection", "close")]))
                        if not s.recv(16).startswith(b"HTTP/1."):
                            raise OSError("no status line")
                finally:
                    s.close()
                return
            except OSError:
                time.sleep(0.03)
        pytest.fail("server not ready within %ss\n%s" % (timeout, self.describe()))

    def connect(self, timeout=10):
        if self.unix:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect(self.unix)
            return RawConn(s)
        return RawConn.tcp(self.port, timeout)

    def request(self, method="GET", path="/", headers=(), body=b"", timeout=10,
                version="1.1"):
        """One request on a fresh connection; returns a Response."""
        c = self.connect(timeout)
        try:
            c.send(build_request(method, path, headers, body, version))
            return c.read_response(head=(method == "HEAD"))
        finally:
            c.close()

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, expect_code=0, timeout=8):
        """SIGTERM the server, wait for it, check its exit code."""
        if self.stopped:
            return self.proc.returncode
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_tree(self.pid)
            self.proc.wait(5)
            self._close_files()
            pytest.fail("server did not exit within %ss of SIGTERM\n%s"
                        % (timeout, self.describe()))
        self._close_files()
        if expect_code is not None:
            assert code == expect_code, (
                "server exit code %s, expected %s\n%s"
                % (code, expect_code, self.describe()))
        return code

    def _close_files(self):
        for f in (self._stdout, self._stderr):
            try:
                f.close()
            except Exception:
                pass

    def kill(self):
        if self.proc.poll() is None:
            kill_tree(self.pid)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self.stopped = True
        self._close_files()

    # --- side files written by the apps
    def out_file(self, name):
        return os.path.join(self.out, name)

    def read_out(self, name, default=None):
        try:
            with open(self.out_file(name)) as f:
                return f.read()
        except FileNotFoundError:
            return default

    def wait_out(self, name, timeout=10, contains=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = self.read_out(name)
            # complete lines only: the app may be half-way through a write
            if data and data.endswith("\n") and (contains is None or contains in data):
                return data
            time.sleep(0.05)
        return self.read_out(name)


@pytest.fixture
def start_server(tmp_path):
    """Factory: start_server("mod:app", *args, unix=None, port=None, wait=True).

    Stopped at teardown with SIGTERM; a non-zero exit code fails the test
    unless the test already stopped it itself.
    """
    started = []
    counter = [0]

    def factory(app, *args, unix=None, port=None, wait=True, pass_fds=(),
                extra_env=None, cwd=APPS):
        counter[0] += 1
        out = tmp_path / ("srv%d" % counter[0])
        out.mkdir()
        if port is None and unix is None and "--fd" not in args:
            port = free_port()
        srv = Server(app, args, out, port=port, unix=unix, wait=False,
                     pass_fds=pass_fds, extra_env=extra_env, cwd=cwd)
        started.append(srv)
        if wait:
            srv.wait_ready()
        return srv

    yield factory
    errors = []
    for srv in started:
        if srv.stopped:
            continue
        try:
            srv.stop()
        except BaseException as e:  # pytest.fail raises Failed (BaseException)
            errors.append(str(e))
    if errors:
        pytest.fail("\n".join(errors))


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("mod")


def kill_tree(pid):
    for child in process_tree(pid)[1:]:
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


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


def process_tree(pid):
    """pid and all its descendants, pid first."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        out.append(p)
        todo += children_of(p)
    return out


def rss_bytes(pid):
    """Resident set size of one process, in bytes (0 if gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return 0


def tree_rss_bytes(pid):
    """Summed RSS of a process and all its descendants, in bytes."""
    return sum(rss_bytes(p) for p in process_tree(pid))


class RssSampler:
    """Samples a process tree's RSS in a background thread; ``peak`` in bytes."""

    def __init__(self, pid, interval=0.05):
        import threading
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


# ------------------------------------------------------------ raw HTTP client

def build_request(method="GET", path="/", headers=(), body=b"", version="1.1",
                  host=True):
    lines = ["%s %s HTTP/%s" % (method, path, version)]
    names = {k.lower() for k, _ in headers}
    if host and "host" not in names:
        lines.append("Host: testserver")
    if body and "content-length" not in names and "transfer-encoding" not in names:
        lines.append("Content-Length: %d" % len(body))
    for k, v in headers:
        lines.append("%s: %s" % (k, v))
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if isinstance(body, str):
        body = body.encode()
    return head + body


class Response:
    def __init__(self, version, status, reason, headers, body, raw, chunks=None):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (lower-case name str, value str)
        self.body = body
        self.raw = raw  # exact bytes of this response as received
        self.chunks = chunks  # list of chunk payloads if chunked, else None

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %s %r %r>" % (self.status, self.headers, self.body[:200])


class IncompleteResponse(Exception):
    """The peer closed before a complete response; ``partial`` holds the bytes."""

    def __init__(self, msg, partial):
        super().__init__(msg)
        self.partial = partial


class RawConn:
    """A raw client socket with a strict HTTP/1.x response reader."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.eof = False

    @classmethod
    def tcp(cls, port, timeout=10, host="127.0.0.1"):
        s = socket.create_connection((host, port), timeout)
        s.settimeout(timeout)
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
            data = self.sock.recv(262144)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _take(self, n):
        out, self.buf = self.buf[:n], self.buf[n:]
        self._raw += out
        return out

    def _read_line(self):
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise IncompleteResponse("EOF in line", self._raw + self.buf)
        i = self.buf.index(b"\r\n")
        line = self._take(i + 2)
        return line[:-2]

    def _read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise IncompleteResponse("EOF after %d of %d bytes" % (len(self.buf), n),
                                         self._raw + self.buf)
        return self._take(n)

    def read_head(self):
        """Read one status line + headers; returns (version, status, reason, headers)."""
        self._raw = b""
        line = self._read_line()
        m = re.match(rb"^HTTP/(1\.[01]) (\d{3})(?: (.*))?$", line)
        if not m:
            raise AssertionError("bad status line %r" % line)
        headers = []
        while True:
            h = self._read_line()
            if h == b"":
                break
            name, sep, value = h.partition(b":")
            assert sep, "bad header line %r" % h
            assert name == name.strip() and name, "bad header name %r" % h
            headers.append((name.decode("latin-1").lower(),
                            value.strip().decode("latin-1")))
        return m.group(1).decode(), int(m.group(2)), (m.group(3) or b"").decode("latin-1"), headers

    def read_response(self, head=False, allow_100=False):
        """Read one full response. 1xx responses are returned as such only if
        allow_100; otherwise they are an error (none is expected)."""
        version, status, reason, headers = self.read_head()
        raw_head = self._raw
        resp = Response(version, status, reason, headers, b"", raw_head)
        if 100 <= status < 200 or status in (204, 304) or head:
            if 100 <= status < 200 and not allow_100:
                raise AssertionError("unexpected interim response %d" % status)
            resp.raw = self._raw
            return resp
        te = [v.lower() for k, v in headers if k == "transfer-encoding"]
        cl = [v for k, v in headers if k == "content-length"]
        if te:
            assert te == ["chunked"], "unexpected transfer-encoding %r" % te
            assert not cl, "both content-length and chunked"
            chunks = []
            while True:
                size_line = self._read_line()
                m = re.match(rb"^([0-9a-fA-F]+)(;.*)?$", size_line)
                assert m, "bad chunk size line %r" % size_line
                size = int(m.group(1), 16)
                if size == 0:
                    # trailers until empty line
                    while self._read_line() != b"":
                        pass
                    break
                chunks.append(self._read_exact(size))
                assert self._read_exact(2) == b"\r\n", "chunk not followed by CRLF"
            resp.chunks = chunks
            resp.body = b"".join(chunks)
        elif cl:
            assert len(set(cl)) == 1, "several content-length %r" % cl
            resp.body = self._read_exact(int(cl[0]))
        else:
            while self._fill():
                pass
            resp.body = self._take(len(self.buf))
        resp.raw = self._raw
        return resp

    def read_chunk(self):
        """After read_head() of a chunked response: the next chunk's payload,
        b"" for the last chunk (trailers consumed)."""
        size_line = self._read_line()
        m = re.match(rb"^([0-9a-fA-F]+)(;.*)?$", size_line)
        assert m, "bad chunk size line %r" % size_line
        size = int(m.group(1), 16)
        if size == 0:
            while self._read_line() != b"":
                pass
            return b""
        data = self._read_exact(size)
        assert self._read_exact(2) == b"\r\n", "chunk not followed by CRLF"
        return data

    def read_until_close(self, timeout=None):
        """All bytes until the peer closes; returns them."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        while self._fill():
            pass
        out, self.buf = self.buf, b""
        return out

    def is_closed_by_peer(self, timeout=5):
        """True if the peer closes (EOF/RST) within timeout without sending data."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        if data:
            self.buf += data
            return False
        self.eof = True
        return True


def get(port, path="/", headers=(), timeout=10):
    c = RawConn.tcp(port, timeout)
    try:
        c.send(build_request("GET", path, headers))
        return c.read_response()
    finally:
        c.close()


@pytest.fixture
def raw():
    """Factory for RawConn over TCP: raw(port) -> RawConn; closed at teardown."""
    conns = []

    def factory(port, timeout=10):
        c = RawConn.tcp(port, timeout)
        conns.append(c)
        return c

    yield factory
    for c in conns:
        c.close()
