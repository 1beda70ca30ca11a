"""What dfws-asgi says and refuses at start-up for a Django project: the
system checks (df_websockets' included) are logged and an Error stops it;
``--workers N`` with an in-process channel layer is refused before the
fork, with the fix; a per-process cache with several workers is an Error;
Django apps that do not speak lifespan get no INFO line about it; a trigger
through the embedded layer outside the server says it reaches no window."""
import os
import subprocess

import pytest

from conftest import PROJ, PYTHON, Project, Server, dfws_binary, stop_process, wait_until


def start(project, *args, name="server"):
    """dfws-asgi on the project, without waiting for it to serve."""
    server = Server(project, *args, name=name)
    argv = [dfws_binary(), "-b", "127.0.0.1", "-p", str(server.port), "-v", "1",
            "--shutdown-timeout", "2", *args, server.app]
    server.proc = project.spawn(name, argv)
    return server


def served(server):
    try:
        return server.get("/pid/")[0] == 200
    except OSError:
        return False


def test_a_system_check_error_stops_the_server(tmp_path, native_db):
    # celery workers with a LocMemCache: df_websockets.E002
    project = Project(tmp_path, native_db, workers="celery")
    server = start(project)
    try:
        assert server.proc.wait(60) == 1
    finally:
        project.stop_all()
    log = server.log()
    assert "ERROR    system check: ?: (df_websockets.E002) CACHES['default'] is a LocMemCache" in log
    assert "\tHINT: Use a cache shared by every process" in log
    assert ("dfws-asgi: error: Django's system checks found 1 error (logged above): fix them, "
            "or list their ids in SILENCED_SYSTEM_CHECKS") in log
    assert "serving" not in log


def test_a_silenced_error_lets_it_start(tmp_path, native_db):
    project = Project(tmp_path, native_db, workers="celery")
    project.env["NATIVE_SILENCED"] = "df_websockets.E002"
    server = Server(project).start()
    try:
        log = server.log()
        assert "df_websockets.E002" not in log
        assert "serving nativeproj.asgi:application" in log
    finally:
        stop_process(server.proc)
        project.stop_all()


def test_workers_with_the_embedded_layer_refused_before_the_fork(tmp_path, native_db):
    project = Project(tmp_path, native_db)
    server = start(project, "--workers", "2")
    try:
        assert server.proc.wait(60) == 1
    finally:
        project.stop_all()
    log = server.log()
    assert log.count("dfws-asgi: error: --workers 2 with the in-process channel layer "
                     "df_websockets.layers.EmbeddedChannelLayer: each worker would have a layer "
                     "of its own") == 1, log
    assert "Use one worker (--workers 1), or a layer every worker shares: CHANNEL_LAYERS" in log
    assert "channels_redis.core.RedisChannelLayer" in log
    assert "worker 0 started" not in log  # nothing was forked


def test_per_process_cache_with_workers_is_an_error(tmp_path, native_db, redis_server):
    """Redis layer, LocMemCache, --workers 2: a page rendered by one worker
    and a socket accepted by the other would be a deaf window."""
    project = Project(tmp_path, native_db, redis_url=redis_server.url)
    project.env["NATIVE_LOCMEM_CACHE"] = "1"
    server = start(project, "--workers", "2")
    try:
        wait_until(lambda: server.log().count("dfws-asgi: error: Django's system checks found 1 "
                                              "error") >= 2, 60, what="both workers refusing")
        assert not served(server)
    finally:
        stop_process(server.proc)
        project.stop_all()
    log = server.log()
    assert ("(df_websockets.E004) CACHES['default'] is a LocMemCache, private to each process, "
            "while dfws-asgi runs 2 worker processes") in log
    assert "or run one worker (--workers 1)." in log


def test_per_process_cache_with_a_redis_layer_is_a_warning(tmp_path, native_db, redis_server):
    project = Project(tmp_path, native_db, redis_url=redis_server.url)
    project.env["NATIVE_LOCMEM_CACHE"] = "1"
    server = Server(project).start()
    try:
        log = server.log()
        assert ("WARNING  system check: ?: (df_websockets.W003) CACHES['default'] is a "
                "LocMemCache, private to this process, with the shared channel layer "
                "channels_redis.core.RedisChannelLayer") in log
    finally:
        stop_process(server.proc)
        project.stop_all()


@pytest.mark.parametrize("verbosity,shown", [("1", False), ("2", True)])
def test_lifespan_unsupported_is_a_debug_line(tmp_path, native_db, verbosity, shown):
    project = Project(tmp_path, native_db)
    server = Server(project, "-v", verbosity).start()
    try:
        assert ("ASGI 'lifespan' protocol appears unsupported." in server.log()) is shown
        assert ("channel layer: in-process" in server.log())
    finally:
        stop_process(server.proc)
        project.stop_all()


def test_settings_module_found_without_importing_the_application(tmp_path):
    env = dict(os.environ, PYTHONPATH=PROJ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    code = ("import sys; from dfws.project import settings_module_name; "
            "print(settings_module_name('nativeproj.asgi:application')); "
            "print('nativeproj' in sys.modules, 'django' in sys.modules)")
    result = subprocess.run([PYTHON, "-c", code], cwd=str(tmp_path), env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.split("\n")[:2] == ["nativeproj.settings", "False False"], result


def test_trigger_through_the_embedded_layer_outside_the_server_warns(tmp_path, native_db):
    project = Project(tmp_path, native_db)
    result = project.shell_fire([{"to": "broadcast", "value": "nobody"},
                                 {"to": "broadcast", "value": "still nobody"}])
    assert result.stderr.count("reaches none") == 1, result.stderr
    assert ("a group message went through the embedded channel layer of process" in
            result.stderr)
    assert "CHANNEL_LAYERS = {'default': {'BACKEND': 'channels_redis.core.RedisChannelLayer'" \
        in result.stderr
