"""Fixtures for the C channel layer tests: redis-server instances on free
loopback ports and the layer_tool binary (tests/c/layer_tool.c)."""

import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))  # dfws_testsupport
from dfws_testsupport.net import free_port  # noqa: E402,F401
from dfws_testsupport.redis import RedisServer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

GCC_LINE = (
    "gcc -std=gnu11 -g -O1 -Wall -Wextra -Wstrict-prototypes "
    "-fsanitize=address,undefined -fno-sanitize-recover -Iserver "
    "server/layer.c server/layer_memory.c server/layer_redis.c server/layer_pubsub.c "
    "server/redis_conn.c server/fernet.c server/buf.c "
    "tests/c/layer_tool.c -o {out} "
    "$(pkg-config --cflags --libs libuv msgpack jansson hiredis) -lcrypto"
)


@pytest.fixture
def redis_factory():
    servers = []

    def make(**kw):
        srv = RedisServer(**kw).start()
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.stop()


@pytest.fixture
def redis_server(redis_factory):
    return redis_factory()


@pytest.fixture(scope="session")
def layer_tool():
    path = Path(os.environ.get("DFWS_LAYER_TOOL", ROOT / "build/tests/c/layer_tool"))
    if not path.is_absolute():
        path = ROOT / path
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(GCC_LINE.format(out=path), shell=True, cwd=ROOT, check=True)
    return str(path)


def tool_env():
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    return env


class Tool:
    """One-shot invocations of layer_tool."""

    def __init__(self, path):
        self.path = path

    def run(self, config, *args, timeout=20):
        cmd = [self.path, "--config", json.dumps(config), *[
            json.dumps(a) if isinstance(a, dict) else str(a) for a in args]]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=tool_env())

    def lines(self, config, *args, timeout=20):
        res = self.run(config, *args, timeout=timeout)
        return res, [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


class Serve:
    """A long-lived ``layer_tool serve`` process."""

    def __init__(self, path, config):
        self.proc = subprocess.Popen(
            [path, "--config", json.dumps(config), "serve"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=tool_env())
        self.replies = queue.Queue()
        self.messages = queue.Queue()
        self.stderr = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            ev = json.loads(line)
            (self.messages if ev.get("event") == "message" else self.replies).put(ev)

    def _read_err(self):
        for line in self.proc.stderr:
            self.stderr.append(line)

    def cmd(self, *args, timeout=10):
        self.proc.stdin.write(json.dumps(list(args)) + "\n")
        self.proc.stdin.flush()
        return self.replies.get(timeout=timeout)

    def message(self, timeout=10):
        return self.messages.get(timeout=timeout)

    def no_message(self, wait=1.0):
        try:
            ev = self.messages.get(timeout=wait)
        except queue.Empty:
            return True
        raise AssertionError(f"unexpected message {ev!r}")

    def close(self):
        if self.proc.poll() is None:
            try:
                self.cmd("quit")
            except (queue.Empty, BrokenPipeError):
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def tool(layer_tool):
    return Tool(layer_tool)


@pytest.fixture
def serve(layer_tool):
    procs = []

    def start(config):
        s = Serve(layer_tool, config)
        procs.append(s)
        return s

    yield start
    for s in procs:
        rc = s.close()
        assert rc == 0, "layer_tool serve exited with %r:\n%s" % (rc, "".join(s.stderr))


@pytest.fixture
def tmp_dir():
    d = tempfile.mkdtemp(prefix="dfws-layer-")
    yield d
    shutil.rmtree(d, ignore_errors=True)
