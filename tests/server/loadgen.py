"""A small wrk-like load generator for the restart tests (not a test module).

A few client threads each keep one HTTP/1.1 keep-alive connection and send
GET requests back to back. They behave as HTTP clients do (RFC 9112 9.3.1):
a connection that the server closes after a complete response (with or
without ``Connection: close``) is replaced by a new one, and a request sent
on a *reused* connection that the server closed before any byte of the
response came back is sent again on a new connection (``retried``).

Everything else is a failure, counted apart so a test can require zero:

- ``refused``: connect() refused (nothing listened on the port);
- ``resets``: a new connection reset or closed before its first response,
  or a response cut in the middle;
- ``errors``: anything else (time-outs, bad responses), with a description.
"""
import collections
import socket
import threading
import time

from conftest import IncompleteResponse, RawConn, build_request


class KeepAliveLoad:
    def __init__(self, port=None, path="/pid", clients=4, unix=None, timeout=20):
        self.port = port
        self.unix = unix
        self.path = path
        self.clients = clients
        self.timeout = timeout
        self.lock = threading.Lock()
        self.statuses = collections.Counter()
        self.bodies = collections.Counter()  # body -> responses (the apps answer their pid)
        self.refused = 0
        self.resets = 0
        self.retried = 0
        self.connections = 0
        self.errors = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True)
                         for _ in range(clients)]

    # -- running
    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 5)

    def _connect(self):
        if self.unix:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(self.timeout)
            s.connect(self.unix)
            return RawConn(s)
        return RawConn.tcp(self.port, self.timeout)

    def _count(self, field, n=1):
        with self.lock:
            setattr(self, field, getattr(self, field) + n)

    def _run(self):
        conn, reused = None, False
        while not self._stop.is_set():
            if conn is None:
                try:
                    conn = self._connect()
                except ConnectionRefusedError:
                    self._count("refused")
                    time.sleep(0.01)
                    continue
                except OSError as exc:
                    with self.lock:
                        self.errors.append("connect: %r" % exc)
                    time.sleep(0.01)
                    continue
                self._count("connections")
                reused = False
            try:
                conn.send(build_request("GET", self.path))
                r = conn.read_response()
            except (IncompleteResponse, ConnectionResetError, BrokenPipeError) as exc:
                partial = getattr(exc, "partial", b"")
                conn.close()
                conn = None
                if reused and not partial:
                    self._count("retried")  # the loop sends it again
                else:
                    self._count("resets")
                continue
            except (OSError, AssertionError) as exc:
                with self.lock:
                    self.errors.append("request: %r" % exc)
                conn.close()
                conn = None
                continue
            with self.lock:
                self.statuses[r.status] += 1
                self.bodies[r.body] += 1
            reused = True
            if (r.header("connection") or "").lower() == "close":
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    # -- results
    def total(self):
        with self.lock:
            return sum(self.statuses.values())

    def summary(self):
        with self.lock:
            return ("responses %s, refused %d, resets %d, retried %d, connections %d,"
                    " errors %s" % (dict(self.statuses), self.refused, self.resets,
                                    self.retried, self.connections, self.errors[:5]))
