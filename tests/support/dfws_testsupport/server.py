"""A server process under test (dfws-asgi or a reference server): started
with its stdout and stderr in files of its own folder (also the apps'
DFWS_TEST_OUT side files), ready when a request gets a status line, stopped
with SIGTERM and its exit status checked."""
import os
import signal
import socket
import subprocess
import time

import pytest

from .http import RawConn, build_request
from .proc import kill_tree

READY_PATH = "/__ready__"  # requested once by ServerProcess.wait_ready()


def server_env(outdir=None):
    """The environment of a server under test: the installed dfws (no
    PYTHONPATH), unbuffered output, the apps' side-file folder."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if outdir:
        env["DFWS_TEST_OUT"] = str(outdir)
    return env


class ServerProcess:
    """One running server: ``cmd`` started in ``cwd`` and listening on
    127.0.0.1:``port`` or the unix socket ``unix``. ``out`` is its folder,
    holding stdout.txt and stderr.txt. ``whole_lines``: wait_out returns a
    side file only once it ends with a newline (the app may be half-way
    through a write)."""

    whole_lines = True

    def __init__(self, cmd, outdir, cwd, port=None, unix=None, pass_fds=(), extra_env=None):
        self.cmd = cmd
        self.port = port
        self.unix = unix
        self.out = str(outdir)
        self.stdout_path = os.path.join(self.out, "stdout.txt")
        self.stderr_path = os.path.join(self.out, "stderr.txt")
        env = server_env(self.out)
        env.update(extra_env or {})
        self._stdout = open(self.stdout_path, "wb")
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=cwd, stdout=self._stdout, stderr=self._stderr,
                                     env=env, pass_fds=pass_fds)
        self.pid = self.proc.pid
        self.started_at = time.monotonic()
        self.stopped = False

    # --- state
    def _read(self, f, path):
        if not f.closed:
            f.flush()
        with open(path, "rb") as fd:
            return fd.read().decode("utf-8", "replace")

    def stdout(self):
        return self._read(self._stdout, self.stdout_path)

    def stderr(self):
        return self._read(self._stderr, self.stderr_path)

    def describe(self):
        return "cmd: %s\nstdout:\n%s\nstderr:\n%s" % (
            " ".join(self.cmd), self.stdout()[-3000:], self.stderr()[-3000:])

    def _connect_socket(self, timeout, connect_timeout=None):
        """A socket connected to the server (``connect_timeout``, default
        ``timeout``, for the TCP connect), ``timeout`` for what follows."""
        if self.unix:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect(self.unix)
            return s
        s = socket.create_connection(("127.0.0.1", self.port), connect_timeout or timeout)
        s.settimeout(timeout)
        return s

    def wait_ready(self, timeout=20, probe=True):
        """Waits until the socket accepts and, with probe, until a request to
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
                s = self._connect_socket(max(0.1, deadline - time.monotonic()), 0.5)
                try:
                    if probe:
                        s.sendall(build_request("GET", READY_PATH, [("Connection", "close")]))
                        if not s.recv(16).startswith(b"HTTP/1."):
                            raise OSError("no status line")
                finally:
                    s.close()
                return self
            except OSError:
                time.sleep(0.03)
        pytest.fail("server not ready within %ss\n%s" % (timeout, self.describe()))

    def connect(self, timeout=10):
        """A RawConn to the server."""
        return RawConn(self._connect_socket(timeout))

    def request(self, method="GET", path="/", headers=(), body=b"", timeout=10, version="1.1"):
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
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit(expect_code, timeout, "of SIGTERM")

    def wait_exit(self, expect_code=0, timeout=10, after=""):
        """After the test signalled the server itself: waits for it to exit
        WITHOUT sending another signal, checks the exit code."""
        self.stopped = True
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_tree(self.pid)
            self.proc.wait(5)
            self._close_files()
            pytest.fail("server did not exit within %ss %s\n%s"
                        % (timeout, after, self.describe()))
        self._close_files()
        if expect_code is not None:
            assert code == expect_code, ("server exit code %s, expected %s\n%s"
                                         % (code, expect_code, self.describe()))
        return code

    def kill(self):
        if self.proc.poll() is None:
            kill_tree(self.pid)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self.stopped = True
        self._close_files()

    def _close_files(self):
        for f in (self._stdout, self._stderr):
            try:
                f.close()
            except Exception:
                pass

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
        """The side file ``name`` once it exists (and holds ``contains``);
        what it holds after ``timeout`` s otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = self.read_out(name)
            if data is not None and (contains is None or contains in data) and (
                    not self.whole_lines or data.endswith("\n")):
                return data
            time.sleep(0.05)
        return self.read_out(name)


def stop_all(servers):
    """Teardown of a server factory: stops every server the test did not
    stop itself; one pytest failure naming every bad exit."""
    errors = []
    for srv in servers:
        if srv.stopped:
            continue
        try:
            srv.stop()
        except BaseException as e:  # pytest.fail raises Failed (BaseException)
            errors.append(str(e))
    if errors:
        pytest.fail("\n".join(errors))
