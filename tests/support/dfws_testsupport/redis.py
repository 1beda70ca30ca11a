"""A redis-server of our own on a free loopback port (never the machine's)."""
import shutil
import socket
import subprocess
import time

from .net import free_port


class RedisServer:
    """One redis-server, restartable on the same port. ``extra``: more
    redis-server options (e.g. ``--requirepass``)."""

    def __init__(self, port=None, extra=()):
        self.port = port or free_port()
        self.extra = list(extra)
        self.proc = None

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def start(self, timeout=10):
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is required (Debian package redis-server)")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--bind", "127.0.0.1", *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self._listening():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("redis-server did not start on port %d" % self.port)
            time.sleep(0.05)
        return self

    def _listening(self):
        """Whether it accepts a connection (and answers PING when it needs
        no password)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                if "--requirepass" in self.extra:
                    return True
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cli(self, *args, db=0, password=None, check=True):
        """A command through redis-cli; its stdout, stripped."""
        cmd = ["redis-cli", "-p", str(self.port), "-n", str(db)]
        if password:
            cmd += ["--no-auth-warning", "-a", password]
        out = subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True,
                             check=check, timeout=10)
        return out.stdout.strip()

    def command(self, *args):
        """A command through redis-cli (database 0); its stdout as printed."""
        return subprocess.run(["redis-cli", "-p", str(self.port), *[str(a) for a in args]],
                              capture_output=True, text=True, timeout=10).stdout
