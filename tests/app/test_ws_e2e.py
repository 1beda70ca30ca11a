"""End to end with real processes: a redis-server started here, `manage.py
worker` in channels mode and in celery mode, and `manage.py runserver`."""
import asyncio
import os
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
import time
import urllib.request

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from conftest import HERE, read_log, wait_for
from df_websockets.routing import application
from df_websockets.tasks import WINDOW, trigger_signal
from df_websockets.window_info import WindowInfo

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def redis_settings(settings, redis_server):
    """The test process uses the same cache / layer / broker as the workers."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": redis_server + "/1"}}
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                           "CONFIG": {"hosts": [redis_server + "/2"]}}}
    return settings


def run(coro_fn, timeout=40):
    """Run the async scenario ``coro_fn()``, its consumers disconnected at its
    end, within ``timeout`` seconds."""
    async def bounded():
        return await asyncio.wait_for(coro_fn(), timeout)

    return async_to_sync(bounded)()


def open_page(client):
    response = client.get("/topics/", HTTP_HOST="example.com:8000")
    key = response.cookies["dfwskey"].value
    return key, ("dfwskey=%s" % key).encode()


def communicator(cookie):
    comm = WebsocketCommunicator(application, "/ws/", headers=[
        (b"host", b"example.com:8000"), (b"origin", b"http://example.com:8000"), (b"cookie", cookie)])
    comm.scope["server"] = ("example.com", 8000)
    return comm


def browser_round_trip(cookie, out, value, timeout=15):
    """Browser calls dfws_testapp.record; the worker's handler writes `out`
    and triggers dfws_testapp.recorded back to this window."""
    async def scenario():
        comm = communicator(cookie)
        assert (await comm.connect())[0]
        await comm.send_json_to({"signal": "dfws_testapp.record",
                                 "opts": {"path": str(out), "value": value}})
        message = await comm.receive_json_from(timeout)
        await comm.disconnect()
        return message

    return run(scenario)


def test_channels_worker_subprocess(redis_settings, client, spawn_manage, tmp_path):
    redis_settings.WEBSOCKET_WORKERS = "channels"
    worker = spawn_manage("worker", "-Q", "dfws-q1,dfws-q2", workers="channels")
    assert wait_for(lambda: "listening on dfws-q1, dfws-q2" in read_log(worker), 20), read_log(worker)
    key, cookie = open_page(client)
    out = tmp_path / "channels.txt"
    message = browser_round_trip(cookie, out, "via-channels")
    assert (message["signal"], message["opts"]) == ("dfws_testapp.recorded", {"value": "via-channels"})
    assert wait_for(lambda: out.exists() and sorted(out.read_text().splitlines())
                    == ["again via-channels", "via-channels"])
    assert worker.poll() is None


def test_celery_worker_subprocess(redis_settings, client, spawn_manage, tmp_path):
    redis_settings.WEBSOCKET_WORKERS = "celery"
    worker = spawn_manage("worker", "-Q", "dfws-q1,dfws-q2,celery", "-P", "solo", "-c", "1",
                          "--without-gossip", "--without-mingle", "--without-heartbeat",
                          "-l", "INFO", workers="celery")
    assert wait_for(lambda: "ready." in read_log(worker), 30), read_log(worker)
    key, cookie = open_page(client)
    out = tmp_path / "celery.txt"
    message = browser_round_trip(cookie, out, "via-celery")
    assert (message["signal"], message["opts"]) == ("dfws_testapp.recorded", {"value": "via-celery"})
    assert wait_for(lambda: out.exists() and sorted(out.read_text().splitlines())
                    == ["again via-celery", "via-celery"])
    log = read_log(worker)
    assert "df_websockets.tasks._server_signal_call" in log

    # [bug] countdown + browser topics: delivered by the worker after the delay
    wi = WindowInfo()
    wi.window_key = key

    async def deferred():
        comm = communicator(cookie)
        assert (await comm.connect())[0]
        from asgiref.sync import sync_to_async

        start = time.monotonic()
        await sync_to_async(trigger_signal)(wi, "e2e.later", to=[WINDOW], kwargs={"n": 1}, countdown=1)
        message = await comm.receive_json_from(15)
        elapsed = time.monotonic() - start
        await comm.disconnect()
        return message, elapsed

    message, elapsed = run(deferred)
    assert (message["signal"], message["opts"]) == ("e2e.later", {"n": 1})
    assert elapsed >= 0.9


# ---- runserver --------------------------------------------------------------------
def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _without_dfws_asgi(env):
    """The interpreter and environment of a Python that has the venv's
    packages but no dfws-asgi beside it or on PATH (a pip-installed dfws
    always puts one beside the venv's python): the base interpreter, with
    the venv's site-packages on PYTHONPATH."""
    base_python = os.path.realpath(sys.executable)
    assert not os.path.exists(os.path.join(os.path.dirname(base_python), "dfws-asgi"))
    env["DFWS_ASGI"] = ""
    env["PATH"] = "/usr/bin:/bin"
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (env.get("PYTHONPATH"), sysconfig.get_paths()["purelib"]) if p)
    return base_python


def _runserver(port, extra_env, python=sys.executable):
    env = dict(os.environ)
    env.update(extra_env)
    env["DJANGO_SETTINGS_MODULE"] = "settings"
    env["PYTHONUNBUFFERED"] = "1"
    if python is None:
        python = _without_dfws_asgi(env)
    return subprocess.Popen(
        [python, os.path.join(HERE, "manage.py"), "runserver", "127.0.0.1:%d" % port, "--noreload"],
        cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.stdout.read()


def test_asgi_target():
    from df_websockets.management.commands.runserver import asgi_target

    assert asgi_target() == "df_websockets.routing:application"
    assert asgi_target("proj.asgi.application") == "proj.asgi:application"
    assert asgi_target("proj.asgi:app") == "proj.asgi:app"


def test_runserver_runs_dfws_asgi(tmp_path):
    record = tmp_path / "argv.txt"
    fake = tmp_path / "dfws-asgi"
    # the fake server records its pid, settings, arguments and what its --fd is
    fake.write_text("#!/bin/sh\necho \"$$ $DJANGO_SETTINGS_MODULE $* $(readlink /proc/$$/fd/$3)\""
                    " > %s\nexec sleep 60\n" % record)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    port = _free_port()
    proc = _runserver(port, {"DFWS_ASGI": str(fake)})
    try:
        assert wait_for(lambda: record.exists() and record.read_text().strip(), 20)
        pid, dsm, *argv, fd_target = record.read_text().split()
        assert dsm == "settings"
        # the listening socket runserver opened once, served through --fd
        assert argv[:2] == ["df_websockets.devserver:application", "--fd"]
        assert argv[3:] == ["--shutdown-timeout", "1"]
        assert fd_target.startswith("socket:[")
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # accepted into the backlog: runserver listens on the port
    finally:
        output = _stop(proc)
    assert "Starting dfws-asgi development server at http://127.0.0.1:%d/" % port in output
    # the server dies with runserver
    assert wait_for(lambda: not os.path.exists("/proc/%s" % pid)
                    or open("/proc/%s/stat" % pid).read().split()[2] == "Z", 10)


def test_runserver_falls_back_without_binary(tmp_path):
    port = _free_port()
    proc = _runserver(port, {"PYTHONPATH": HERE}, python=None)
    try:
        def get():
            try:
                return urllib.request.urlopen("http://127.0.0.1:%d/plain/" % port, timeout=1).read()
            except OSError:
                return None
        assert wait_for(get, 20) == b"ok"
    finally:
        output = _stop(proc)
    assert "dfws-asgi binary was not found" in output


def test_devserver_application_serves_static(settings):
    import importlib

    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    settings.DEBUG = True
    import df_websockets.devserver as devserver

    devserver = importlib.reload(devserver)
    assert isinstance(devserver.application, ASGIStaticFilesHandler)
    settings.DEBUG = False
    assert importlib.reload(devserver).application is application


def test_runserver_is_ours_wherever_df_websockets_is_listed(tmp_path):
    """Upstream's README lists df_websockets after channels and daphne (and
    projects put staticfiles first): runserver must still be dfws-asgi's."""
    (tmp_path / "late_settings.py").write_text(
        "from settings import *\n"
        "INSTALLED_APPS = ['django.contrib.auth', 'django.contrib.contenttypes',\n"
        "    'django.contrib.sessions', 'django.contrib.messages', 'django.contrib.staticfiles',\n"
        "    'channels', 'daphne', 'df_websockets', 'dfws_testapp']\n")
    fake = tmp_path / "dfws-asgi"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    code = ("import django; django.setup()\n"
            "from django.core.management import get_commands\n"
            "print(get_commands()['runserver'])\n")
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="late_settings",
               PYTHONPATH=os.pathsep.join([str(tmp_path), HERE, os.path.dirname(os.path.dirname(HERE))]))
    env["DFWS_ASGI"] = str(fake)
    out = subprocess.run([sys.executable, "-c", code], cwd=HERE, env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "df_websockets", out.stderr
    # without the binary, Django's own rule stands: the first app listed wins
    base_python = _without_dfws_asgi(env)
    out = subprocess.run([base_python, "-c", code], cwd=HERE, env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "django.contrib.staticfiles", out.stderr
