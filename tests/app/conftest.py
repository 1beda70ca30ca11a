import os
import subprocess
import sys

import pytest
from django.core.cache import caches

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "support"))  # dfws_testsupport
from dfws_testsupport.net import poll  # noqa: E402
from dfws_testsupport.redis import RedisServer  # noqa: E402


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


wait_for = poll  # predicate()'s first true value, or its last one after the timeout


@pytest.fixture(scope="session")
def redis_server():
    """A redis-server of our own on the session's free port."""
    from django.conf import settings

    try:
        server = RedisServer(port=settings.REDIS_PORT, extra=["--databases", "16"]).start()
    except RuntimeError as e:
        pytest.fail(str(e))
    yield settings.REDIS_URL
    server.stop()


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
