"""Redis Sentinel for the channel layer, black-box: a real redis-server
master and replica, three real sentinels (``redis-server --sentinel``), all
on free loopback ports, and dfws-asgi serving tests/native's project with
CHANNEL_LAYERS naming the master through the sentinels.

The helpers (Project, Server, windows) are tests/native's, loaded from its
conftest.py under another module name; this suite only adds the Redis
processes and its settings module (layersettings.py)."""
import importlib.util
import os
import shutil
import socket
import subprocess
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "native_helpers", os.path.join(HERE, "..", "native", "conftest.py"))
native = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(native)

native_db = native.native_db  # the session's migrated database (a fixture)
pytest_runtest_makereport = native.pytest_runtest_makereport  # server logs on failure


def pytest_report_header(config):
    return "server under test: %s" % native.dfws_binary()


class RedisProc:
    """redis-server (or a sentinel) on a free loopback port."""

    def __init__(self, tmp, name, extra=(), sentinel=False, conf=""):
        self.port = native.free_port()
        self.name = name
        self.tmp = str(tmp)
        self.extra = list(extra)
        self.sentinel = sentinel
        self.conf = conf
        self.proc = None

    def start(self):
        os.makedirs(os.path.join(self.tmp, self.name), exist_ok=True)
        conf = os.path.join(self.tmp, self.name, "redis.conf")
        with open(conf, "w") as f:  # sentinels rewrite their file: one each
            f.write("port %d\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir %s\n%s" % (
                self.port, os.path.join(self.tmp, self.name), self.conf))
        argv = ["redis-server", conf, *self.extra] + (["--sentinel"] if self.sentinel else [])
        self.log_path = os.path.join(self.tmp, self.name + ".log")
        self.proc = subprocess.Popen(argv, stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT)
        native.wait_until(self.up, 10, what="%s on port %d" % (self.name, self.port))
        return self

    def up(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True,
                              text=True, timeout=10).stdout.strip()


class SentinelSet:
    """A master, a replica and three sentinels watching "mymaster"."""

    NAME = "mymaster"

    def __init__(self, tmp):
        self.master = RedisProc(tmp, "master").start()
        self.replica = RedisProc(tmp, "replica", ["--replicaof", "127.0.0.1", str(self.master.port)]).start()
        conf = ("sentinel monitor mymaster 127.0.0.1 %d 2\n"
                "sentinel down-after-milliseconds mymaster 1000\n"
                "sentinel failover-timeout mymaster 10000\n"
                "sentinel parallel-syncs mymaster 1\n" % self.master.port)
        self.sentinels = [RedisProc(tmp, "sentinel%d" % i, sentinel=True, conf=conf).start()
                          for i in range(3)]
        self.wait_ready()

    def wait_ready(self):
        """The current master has an online replica, and every sentinel
        knows that replica up and the two other sentinels (a failover needs
        the replica; the quorum needs the others)."""
        def ready():
            port = self.master_port()
            master = next((p for p in (self.master, self.replica) if p.port == port), None)
            if master is None or "state=online" not in master.cli("INFO", "replication"):
                return False
            for s in self.sentinels:
                info = s.cli("SENTINEL", "master", self.NAME).split("\n")
                fields = dict(zip(info[0::2], info[1::2]))
                if fields.get("num-other-sentinels") != "2" or fields.get("flags") != "master":
                    return False
                replicas = s.cli("SENTINEL", "replicas", self.NAME).split("\n")
                flags = [replicas[i + 1] for i in range(0, len(replicas) - 1) if replicas[i] == "flags"]
                if "slave" not in flags:
                    return False
            return True
        native.wait_until(ready, 60, interval=0.2, what="sentinels knowing the replica and each other")

    def master_port(self, via=0):
        out = self.sentinels[via].cli("SENTINEL", "get-master-addr-by-name", self.NAME).split()
        return int(out[1]) if len(out) == 2 else None

    def hosts_entry(self):
        return {"master_name": self.NAME,
                "sentinels": [["127.0.0.1", s.port] for s in self.sentinels]}

    def stop(self):
        for p in self.sentinels + [self.replica, self.master]:
            p.stop()

    def logs(self):
        out = []
        for p in self.sentinels + [self.replica, self.master]:
            try:
                with open(p.log_path, "rb") as f:
                    out.append("==== %s\n%s" % (p.name, f.read().decode("utf8", "replace")[-3000:]))
            except OSError:
                pass
        return "\n".join(out)


def sentinel_available():
    return shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None


@pytest.fixture(scope="module")
def sentinel_set(tmp_path_factory):
    if not sentinel_available():
        pytest.fail("redis-server and redis-cli are required (scripts/install-deps.sh installs them)")
    s = SentinelSet(tmp_path_factory.mktemp("sentinel"))
    yield s
    s.stop()


def wait_for(predicate, timeout, what):
    return native.wait_until(predicate, timeout, what=what)


now = time.monotonic
