"""Several hosts sharing Redis shards (issue 15, item 3), black-box.

Two dfws-asgi hosts (``--workers 2`` each), two redis-server shards, a
Celery worker and a Channels worker, each "host" on an address of its own:
  - ``loopback``: 127.0.0.2 and 127.0.0.3 for the servers, 127.0.0.1 for
    Redis and the workers (always runs);
  - ``netns``: network namespaces this suite creates (``ip netns add``):
    one per host, one for Redis, one for the workers, one for the test's
    clients, each with a veth into a bridge living in a namespace of its own,
    addresses 10.213.N.0/24 inside the namespaces only (no route out, the
    root namespace gets no address). Skipped with the reason when namespaces
    cannot be made (not root, no CAP_NET_ADMIN).
The test's own sockets (pages, windows, view triggers) are opened from the
client namespace: the pytest thread enters it with setns(2) around them.

The helpers (Project, Window, signal_values) are tests/native's, loaded from
its conftest.py under another module name.
"""
import contextlib
import ctypes
import importlib.util
import os
import socket
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "native_helpers", os.path.join(HERE, "..", "native", "conftest.py"))
native = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(native)

native_db = native.native_db  # the session's migrated database (a fixture)
pytest_runtest_makereport = native.pytest_runtest_makereport  # logs on failure

ROLES = ("redis", "hosta", "hostb", "workers", "client")
CLONE_NEWNET = 0x40000000


def pytest_report_header(config):
    return "server under test: %s" % native.dfws_binary()


class LoopbackNet:
    """Every role on the machine's loopback, servers on addresses of their own."""

    kind = "loopback"
    ADDR = {"redis": "127.0.0.1", "hosta": "127.0.0.2", "hostb": "127.0.0.3",
            "workers": "127.0.0.1", "client": "127.0.0.1"}

    def addr(self, role):
        return self.ADDR[role]

    def prefix(self, role):
        return []

    @contextlib.contextmanager
    def client(self):
        yield

    def close(self):
        pass


class NamespaceNet:
    """One network namespace per role, all on one bridge (its own namespace)."""

    kind = "netns"

    @staticmethod
    def remove_stale():
        """Namespaces left by a run that was killed (its pid is gone)."""
        out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            name = line.split()[0] if line.split() else ""
            pid = name[len("dfwsmh"):].split("-")[0]
            if name.startswith("dfwsmh") and pid.isdigit() and not os.path.exists("/proc/" + pid):
                subprocess.run(["ip", "netns", "del", name], capture_output=True)

    def __init__(self):
        self.remove_stale()
        n = os.getpid() % 250
        self.tag = "dfwsmh%d" % os.getpid()
        self.subnet = "10.213.%d" % n
        self.made = []
        self.lan = self.tag + "-lan"
        try:
            self._ip("netns", "add", self.lan)
        except subprocess.CalledProcessError as e:
            raise OSError("ip netns add failed: %s" % e.stderr.strip()) from None
        self.made.append(self.lan)
        self._in(self.lan, "ip", "link", "add", "br0", "type", "bridge")
        self._in(self.lan, "ip", "link", "set", "br0", "up")
        for i, role in enumerate(ROLES):
            ns = self.ns(role)
            self._ip("netns", "add", ns)
            self.made.append(ns)
            peer = "p%d" % i
            self._ip("link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", peer,
                     "netns", self.lan)
            self._in(self.lan, "ip", "link", "set", peer, "master", "br0", "up")
            self._in(ns, "ip", "addr", "add", "%s/24" % self.addr(role), "dev", "eth0")
            self._in(ns, "ip", "link", "set", "eth0", "up")
            self._in(ns, "ip", "link", "set", "lo", "up")
        self._libc = ctypes.CDLL(None, use_errno=True)
        # the bridge learns its ports: wait until the client reaches Redis' namespace
        native.wait_until(self._reachable, 10, what="the namespaces' bridge forwarding")

    def _reachable(self):
        probe = "import socket,sys; s=socket.socket(); s.settimeout(0.5); s.bind(('%s', 0)); s.listen(); print('up')" % self.addr("redis")
        return "up" in subprocess.run(["ip", "netns", "exec", self.ns("redis"), "python3", "-c", probe],
                                      capture_output=True, text=True).stdout

    def _ip(self, *args):
        subprocess.run(["ip", *args], check=True, capture_output=True, text=True)

    def _in(self, ns, *argv):
        subprocess.run(["ip", "netns", "exec", ns, *argv], check=True, capture_output=True, text=True)

    def ns(self, role):
        return "%s-%s" % (self.tag, role)

    def addr(self, role):
        return "%s.%d" % (self.subnet, 10 + ROLES.index(role))

    def prefix(self, role):
        return ["ip", "netns", "exec", self.ns(role)]

    def _setns(self, path):
        fd = os.open(path, os.O_RDONLY)
        try:
            if self._libc.setns(fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, "setns(%s): %s" % (path, os.strerror(err)))
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def client(self):
        """Sockets made inside live in the client namespace (this thread only)."""
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            self._setns("/var/run/netns/" + self.ns("client"))
            try:
                yield
            finally:
                if self._libc.setns(home, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back home failed")
        finally:
            os.close(home)

    def close(self):
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def make_net(kind):
    if kind == "loopback":
        return LoopbackNet()
    try:
        return NamespaceNet()
    except (OSError, FileNotFoundError) as e:
        pytest.skip("network namespaces unavailable here (%s): needs root or CAP_NET_ADMIN "
                    "and iproute2" % e)


class Shard:
    """A redis-server for one shard, in the Redis role's namespace."""

    def __init__(self, net, tmp, name):
        self.net = net
        self.addr = net.addr("redis")
        self.port = native.free_port() if net.kind == "loopback" else 6379 + int(name[-1])
        self.name = name
        self.log_path = os.path.join(str(tmp), name + ".log")
        self.proc = subprocess.Popen(
            net.prefix("redis") + ["redis-server", "--port", str(self.port), "--bind", self.addr,
                                   "--save", "", "--appendonly", "no"]
            # reached from other namespaces (private ones, made by this suite)
            + (["--protected-mode", "no"] if net.kind == "netns" else []),
            stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
        native.wait_until(lambda: self.cli("PING") == "PONG", 10, what="redis %s" % name)

    @property
    def url(self):
        return "redis://%s:%d" % (self.addr, self.port)

    def cli(self, *args):
        return subprocess.run(self.net.prefix("redis") + ["redis-cli", "-h", self.addr, "-p", str(self.port),
                                                          *args],
                              capture_output=True, text=True, timeout=10).stdout.strip()

    def stop(self):
        native.stop_process(self.proc)
