"""Fixtures of tests/recovery: dfws-asgi serving recproj/ (a subprocess),
a private redis-server, Chromium (tests/cdp.py), and a TCP proxy between
the browser and the server that the test can cut and restore.
"""
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import threading
import urllib.request

import pytest

from cdp import chromium, stop, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dfws_asgi():
    path = os.environ.get("DFWS_ASGI") or shutil.which("dfws-asgi")
    assert path, "dfws-asgi not found: set DFWS_ASGI or put it on PATH"
    return path


def project_env(**extra):
    """The environment of a process that runs recproj (server or trigger)."""
    env = dict(os.environ)
    for name in ("DJANGO_SETTINGS_MODULE", "REC_REDIS_URL", "REC_HISTORY_SIZE"):
        env.pop(name, None)
    env["PYTHONPATH"] = HERE + os.pathsep + env.get("PYTHONPATH", "")
    env["DJANGO_SETTINGS_MODULE"] = "recproj.settings"
    env["PYTHONUNBUFFERED"] = "1"
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Server:
    """dfws-asgi serving recproj.asgi:application on a fixed port; can be
    killed and started again on the same port."""

    def __init__(self, tmp, env):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.env = env
        self.log_path = os.path.join(str(tmp), "server-%d.log" % self.port)
        self.log = open(self.log_path, "a")
        self.process = None

    def start(self):
        self.log.write("--- start\n")
        self.log.flush()
        self.process = subprocess.Popen(
            [dfws_asgi(), "-b", "127.0.0.1", "-p", str(self.port), "recproj.asgi:application"],
            cwd=HERE, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)

        def ready():
            try:
                with urllib.request.urlopen(self.url + "/client.js", timeout=1) as answer:
                    return answer.status == 200
            except OSError:
                return False
        try:
            wait_for(ready, "dfws-asgi serving recproj", timeout=30, process=self.process)
        except AssertionError as e:
            raise AssertionError("%s\n%s" % (e, self.output()[-3000:]))

    def kill(self):
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            stop(self.process)
        self.log.close()

    def output(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=10) as answer:
            assert answer.status == 200, (path, answer.status)
            return answer.read().decode()


@pytest.fixture
def server_factory(tmp_path):
    servers = []

    def make(**extra):
        env = project_env(REC_CACHE_DIR=tmp_path / ("cache-%d" % len(servers)), **extra)
        server = Server(tmp_path, env)
        servers.append(server)
        server.start()
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def redis_url(tmp_path):
    executable = shutil.which("redis-server") or "/usr/bin/redis-server"
    assert os.path.exists(executable), "redis-server is required (Debian package redis-server)"
    port = free_port()
    process = subprocess.Popen(
        [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        cwd=str(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def answers():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False
    try:
        wait_for(answers, "redis-server", process=process)
        yield "redis://127.0.0.1:%d" % port
    finally:
        stop(process)


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("chromium")) as devtools:
        yield devtools


class CuttableProxy:
    """A TCP proxy on its own loopback port to ``target_port``, in a thread.

    ``cut()`` closes every proxied connection at once (both ends, as a
    network outage or a dead load balancer would: the browser sees its
    socket drop) and, until ``restore()``, closes each new connection as
    soon as it is accepted, so that the client's reconnections fail."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.port = None
        self.up = True
        self.accepted = 0
        self._writers = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "the proxy did not start"

    def _run(self):
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader, writer):
        self.accepted += 1
        if not self.up:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src, dst):
            try:
                while True:
                    data = await src.read(65536)
                    if not data:
                        break
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.transport.abort()
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))

    def _call(self, fn):
        done = threading.Event()

        def run():
            try:
                fn()
            finally:
                done.set()
        self._loop.call_soon_threadsafe(run)
        assert done.wait(10)

    def cut(self):
        def abort_all():
            self.up = False
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()
        self._call(abort_all)

    def restore(self):
        def up():
            self.up = True
        self._call(up)

    def close(self):
        async def shut():
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
        asyncio.run_coroutine_threadsafe(shut(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture
def proxy_factory():
    proxies = []

    def make(target_port):
        proxy = CuttableProxy(target_port)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()


def trigger_from_another_process(redis_url, topic, numbers):
    """Trigger rec.item n=... to topic from a separate Python process (as
    Celery or ``manage.py shell`` would), through channels_redis."""
    code = ("import django; django.setup()\n"
            "from df_websockets.tasks import trigger\n"
            "from df_websockets.window_info import WindowInfo\n"
            "info = WindowInfo()\n"
            "for n in %r:\n"
            "    trigger(info, 'rec.item', to=[%r], n=n)\n" % (list(numbers), topic))
    result = subprocess.run([sys.executable, "-c", code], cwd=HERE,
                            env=project_env(REC_REDIS_URL=redis_url),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
