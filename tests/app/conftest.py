import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
from django.core.cache import caches

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(autouse=True)
def _isolate():
    """Each test starts with empty caches, the app signals registered, and
    gets back the signal registry it found."""
    from df_websockets import decorators, tasks

    tasks.import_signals_and_functions()
    saved = {k: list(v) for k, v in decorators.REGISTERED_SIGNALS.items()}
    for cache in caches.all():
        cache.clear()
    yield
    decorators.REGISTERED_SIGNALS.clear()
    decorators.REGISTERED_SIGNALS.update(saved)


def wait_for(predicate, timeout=10.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


@pytest.fixture(scope="session")
def redis_server():
    """A redis-server of our own on the session's free port."""
    from django.conf import settings

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is required (Debian package redis-server)")
    port = settings.REDIS_PORT
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--appendonly", "no",
         "--bind", "127.0.0.1", "--databases", "16"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )

    def ready():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    if not wait_for(ready, timeout=10):
        proc.kill()
        pytest.fail("redis-server did not start on port %d" % port)
    yield settings.REDIS_URL
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def spawn_manage(tmp_path):
    """Start ``manage.py <args>`` (redis settings); stop it at teardown."""
    procs = []

    def spawn(*args, workers="channels"):
        env = dict(os.environ)
        env.update({
            "DJANGO_SETTINGS_MODULE": "settings_redis",
            "DFWS_TEST_WORKERS": workers,
            "PYTHONUNBUFFERED": "1",
        })
        log = open(tmp_path / ("manage-%d.log" % len(procs)), "w+")
        proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "manage.py")] + list(args),
            cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        proc.log = log
        procs.append(proc)
        return proc

    yield spawn
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.log.close()


def read_log(proc):
    proc.log.flush()
    with open(proc.log.name) as fd:
        return fd.read()
