"""Black-box fixtures of the native df_websockets socket tests.

The real ``dfws-asgi`` binary (``$DFWS_ASGI``, else the one next to the
Python running pytest, else the checkout's .venv/ or build/: tests/support)
serves the Django project in ``proj/``; the tests talk to it like a browser: a page GET (which sets the ``dfwskey``/``dfwsurl``
cookies), then a raw WebSocket (the websockets package) carrying those cookies and
an ``Origin`` header. Redis-backed modules start their own redis-server on a
free loopback port. Server logs are kept in the test's tmp dir and printed on
failure.
"""
import asyncio
import http.client
import json
import re
import os
import subprocess
import sys
import time
from http.cookies import SimpleCookie
from urllib.parse import quote, unquote_plus

import pytest
import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "support"))  # dfws_testsupport
from dfws_testsupport.binary import REPO, dfws_binary  # noqa: E402,F401
from dfws_testsupport.net import free_port  # noqa: E402
from dfws_testsupport.net import wait_until as _wait_until  # noqa: E402
from dfws_testsupport.proc import children_of, stop_process  # noqa: E402
from dfws_testsupport.redis import RedisServer  # noqa: E402

PROJ = os.path.join(HERE, "proj")
PYTHON = sys.executable  # the stack under test: the Python running pytest
TIMEOUT = 5.0


def wait_until(predicate, timeout=TIMEOUT, interval=0.05, what="condition"):
    return _wait_until(predicate, timeout, interval, what)


def pytest_report_header(config):
    return "server under test: %s" % dfws_binary()


proc_children = children_of  # pids whose parent is pid (forked from any of its threads)


def socket_owner(server_port, client_port, pids):
    """Which of ``pids`` holds the server side of the TCP connection
    127.0.0.1:client_port -> 127.0.0.1:server_port (None if none does)."""
    want_local = "0100007F:%04X" % server_port
    want_remote = "0100007F:%04X" % client_port
    inode = None
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == want_local and fields[2] == want_remote:
                inode = fields[9]
                break
    if inode is None:
        return None
    target = "socket:[%s]" % inode
    for pid in pids:
        fd_dir = "/proc/%d/fd" % pid
        try:
            for fd in os.listdir(fd_dir):
                try:
                    if os.readlink(os.path.join(fd_dir, fd)) == target:
                        return pid
                except OSError:
                    continue
        except OSError:
            continue
    return None


# ------------------------------------------------------------------ redis

@pytest.fixture(scope="module")
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()


# ------------------------------------------------------------------ project

_DB = {}


def user_pk_of(username):
    """pk of a user of the session's database (sqlite3, read-only)."""
    import sqlite3

    with sqlite3.connect(_DB["path"]) as db:
        row = db.execute("SELECT id FROM auth_user WHERE username = ?", (username,)).fetchone()
    return row[0] if row else None


@pytest.fixture(scope="session")
def native_db(tmp_path_factory):
    """A migrated sqlite database shared by every server of the session."""
    path = str(tmp_path_factory.mktemp("db") / "native.sqlite3")
    env = project_env(db=path)
    subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=PROJ, env=env,
                   check=True, timeout=120)
    _DB["path"] = path
    return path


def project_env(db, redis_url=None, workers="thread", out="", log_level="INFO", redis_layer=None,
                cache_url=None):
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update({
        "DJANGO_SETTINGS_MODULE": "nativeproj.settings",
        "NATIVE_DB": db,
        "NATIVE_WORKERS": workers,
        "NATIVE_OUT": out,
        "NATIVE_LOG_LEVEL": log_level,
        # dfws and df_websockets are the installed ones (the venv);
        # DFWS_NATIVE_PYTHONPATH is tried first (e.g. a patched df_websockets)
        "PYTHONPATH": os.pathsep.join(
            [p for p in (os.environ.get("DFWS_NATIVE_PYTHONPATH"), PROJ) if p]),
        "PYTHONUNBUFFERED": "1",
    })
    for name, value in (("NATIVE_REDIS_URL", redis_url), ("NATIVE_REDIS_LAYER", redis_layer),
                        ("NATIVE_CACHE_URL", cache_url)):
        if value:
            env[name] = value
        else:
            env.pop(name, None)
    return env


class Project:
    """The environment of one configuration of proj/ (layer, worker mode)."""

    def __init__(self, tmp, db, redis_url=None, workers="thread", log_level="INFO", redis_layer=None,
                 cache_url=None):
        self.tmp = str(tmp)
        self.out = os.path.join(self.tmp, "out")
        os.makedirs(self.out, exist_ok=True)
        self.env = project_env(db, redis_url, workers, self.out, log_level, redis_layer, cache_url)
        self.procs = []

    # -- subprocesses --------------------------------------------------
    def spawn(self, name, argv, extra_env=None):
        log = open(os.path.join(self.tmp, name + ".log"), "ab")
        env = dict(self.env, **(extra_env or {}))
        proc = subprocess.Popen(argv, cwd=PROJ, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        proc.log_path = log.name
        proc.log_file = log
        self.procs.append(proc)
        return proc

    def manage(self, *args, timeout=60):
        """Run ``manage.py args``; its CompletedProcess (check=True)."""
        result = subprocess.run([PYTHON, "manage.py", *args], cwd=PROJ, env=self.env,
                                capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, "manage.py %s failed:\n%s%s" % (
            " ".join(args), result.stdout, result.stderr)
        return result

    def shell_fire(self, specs):
        """Trigger from a separate process: manage.py shell -c fire(specs)."""
        code = "from nativeapp.fire import fire; fire(%r)" % (specs,)
        return self.manage("shell", "-c", code)

    def proofs(self, prefix=""):
        return sorted(n for n in os.listdir(self.out)
                      if n.startswith(prefix) and n.endswith(".json"))

    def proof(self, signal_name, key, value, timeout=TIMEOUT):
        path = os.path.join(self.out, "%s--%s--%s.json" % (signal_name, key, value))
        wait_until(lambda: os.path.exists(path), timeout, what="proof file %s" % path)
        with open(path) as f:
            return json.load(f)

    def logs(self):
        text = []
        for proc in self.procs:
            try:
                with open(proc.log_path, "rb") as f:
                    text.append("==== %s\n%s" % (proc.log_path,
                                                 f.read().decode("utf8", "replace")[-6000:]))
            except OSError:
                pass
        return "\n".join(text)

    def stop_all(self):
        for proc in reversed(self.procs):
            stop_process(proc)
        for proc in self.procs:
            proc.log_file.close()


def stop_clean(server):
    """Stop ``server``, then its project's other processes: the server must
    exit 0 without logging a traceback."""
    code = server.stop()
    server.project.stop_all()
    assert code == 0, "dfws-asgi exit status %s:\n%s" % (code, server.log())
    assert "Traceback" not in server.log(), server.log()


class Server:
    """dfws-asgi serving ``app`` (nativeproj.asgi:application) on a free port."""

    def __init__(self, project, *args, name="server", app="nativeproj.asgi:application"):
        self.project = project
        self.port = free_port()
        self.args = list(args)
        self.name = name
        self.app = app
        self.proc = None

    @property
    def origin(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        argv = [dfws_binary(), "-b", "127.0.0.1", "-p", str(self.port), "-v", "1",
                "--shutdown-timeout", "2", *self.args, self.app]
        self.proc = self.project.spawn(self.name, argv)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("dfws-asgi exited with %s:\n%s" % (
                    self.proc.returncode, self.log()))
            try:
                return self.get("/pid/")[0] == 200
            except OSError:
                return False

        wait_until(ready, 30, what="dfws-asgi on port %d" % self.port)
        return self

    def stop(self):
        return stop_process(self.proc)

    def log(self):
        with open(self.proc.log_path, "rb") as f:
            return f.read().decode("utf8", "replace")

    def get(self, path, cookies=None, headers=None):
        """GET path -> (status, body bytes, SimpleCookie of Set-Cookie)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            headers = dict(headers or {}, Host="127.0.0.1:%d" % self.port)
            if cookies:
                headers["Cookie"] = "; ".join("%s=%s" % kv for kv in cookies.items())
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            jar = SimpleCookie()
            for value in resp.headers.get_all("Set-Cookie") or []:
                jar.load(value)
            return resp.status, resp.read(), jar
        finally:
            conn.close()

    def fire(self, specs):
        status, body, _ = self.get("/trigger/?specs=" + quote(json.dumps(specs)))
        assert status == 200, body
        return json.loads(body)

    def children(self):
        """Pids of the processes forked by the server (its --workers)."""
        return proc_children(self.proc.pid)


# ------------------------------------------------------------------ windows

class Window:
    """A browser window: its page's cookies and its WebSocket."""

    def __init__(self, key, cookies, ws, user=None):
        self.key = key
        self.cookies = cookies
        self.ws = ws
        self.user = user

    @property
    def local_port(self):
        return self.ws.transport.get_extra_info("sockname")[1]

    async def send(self, data):
        await self.ws.send(data)

    async def recv(self, timeout=TIMEOUT):
        return await asyncio.wait_for(self.ws.recv(), timeout)

    async def recv_json(self, timeout=TIMEOUT):
        message = await self.recv(timeout)
        assert isinstance(message, str), message
        return json.loads(message)

    async def heartbeat(self, timeout=TIMEOUT):
        """Send --heartbeat--, expect it back verbatim (skipping nothing)."""
        await self.ws.send("--heartbeat--")
        assert await self.recv(timeout) == "--heartbeat--"

    async def drain(self, quiet=0.6, limit=10.0, expect=0):
        """Every frame received until ``quiet`` s pass without one, waiting
        up to TIMEOUT for each of the first ``expect`` frames (slow machines)."""
        frames = []
        for _ in range(expect):
            try:
                frames.append(await asyncio.wait_for(self.ws.recv(), TIMEOUT))
            except asyncio.TimeoutError:
                return frames
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                frames.append(await asyncio.wait_for(self.ws.recv(), quiet))
            except asyncio.TimeoutError:
                break
        return frames

    async def close(self):
        await self.ws.close()


def page_cookies(server, page="/page/", cookies=None):
    """GET a page; returns (window key, cookie dict to send on the socket)."""
    status, body, jar = server.get(page, cookies)
    assert status == 200, body
    data = json.loads(body)
    assert "dfwskey" in jar and "dfwsurl" in jar, "page set no websocket cookies: %s" % jar
    assert jar["dfwskey"].value == data["window_key"]
    assert unquote_plus(jar["dfwsurl"].value) == "ws://127.0.0.1:%d/ws/" % server.port
    jar_dict = dict(cookies or {})
    jar_dict.update({k: morsel.value for k, morsel in jar.items()})
    return data["window_key"], jar_dict


async def connect_ws(server, cookies=None, origin="default", path="/ws/", **kw):
    headers = {}
    if cookies:
        headers["Cookie"] = "; ".join("%s=%s" % kv for kv in cookies.items())
    if origin == "default":
        origin = server.origin
    return await websockets.connect(
        "ws://127.0.0.1:%d%s" % (server.port, path), extra_headers=headers, origin=origin,
        open_timeout=TIMEOUT, ping_interval=None, close_timeout=2, **kw)


async def open_window(server, page="/page/", cookies=None, origin="default", **kw):
    """Page GET, then the WebSocket with the page's cookies (a new window)."""
    if cookies:
        cookies = {k: v for k, v in cookies.items() if k != "dfwskey"}  # a new window
    key, jar = page_cookies(server, page, cookies)
    ws = await connect_ws(server, jar, origin, **kw)
    return Window(key, jar, ws)


async def login_window(server, username, room=None):
    page = "/login/%s/" % username + ("?room=%s" % room if room else "")
    window = await open_window(server, page)
    window.user = username
    return window


async def drain_all(windows, expect=None, quiet=0.6):
    """``drain`` every window concurrently; list of frame lists. ``expect``:
    how many frames each window should get (an int, or one per window)."""
    if not isinstance(expect, (list, tuple)):
        expect = [expect or 0] * len(windows)
    return await asyncio.gather(*(w.drain(quiet, expect=n) for w, n in zip(windows, expect)))


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def assert_unknown_window_notice(frame):
    """``frame`` is what a window whose key has no topics is told."""
    message = json.loads(frame)
    assert set(message) == {"signal", "opts", "signal_id"}, message
    assert message["signal"] == "df_websockets.unknown_window"
    assert message["opts"] == {"code": 4004, "reason": "unknown window key"}


def signal_values(frames, signal_name="native.msg"):
    """The ``value`` of every ``signal_name`` frame (checking the frame shape)."""
    values = []
    for frame in frames:
        message = json.loads(frame)
        assert set(message) == {"signal", "opts", "signal_id"}, message
        if message["signal"] == signal_name:
            values.append(message["opts"]["value"])
    return sorted(values)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        seen = set()
        for value in getattr(item, "funcargs", {}).values():
            project = value.project if isinstance(value, Server) else value
            if isinstance(project, Project) and id(project) not in seen:
                seen.add(id(project))
                report.sections.append(("server logs", project.logs()))


# ---- recovery of missed signals (test_recovery, test_recovery_redis) --------------

POS = re.compile(r"^[0-9a-f]{8}-[1-9][0-9]*$")
FAILED = "df_websockets.recovery_failed"


def recover_path(positions):
    """The socket's path with the dfws_recover request (docs/recovery.md)."""
    return "/ws/?dfws_recover=" + quote(json.dumps(positions))


async def receive(window, n, timeout=TIMEOUT):
    """n messages, decoded, checking that each carries its topic and position."""
    out = []
    for _ in range(n):
        message = await window.recv_json(timeout)
        if message["signal"] != FAILED:
            assert set(message) == {"signal", "opts", "signal_id", "topic", "pos"}, message
            assert POS.match(message["pos"]), message
        out.append(message)
    return out


async def nothing_more(ws, quiet=0.6):
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(ws.recv(), quiet)
