"""``manage.py runserver`` through dfws-asgi reloads on an edit of a module
that only the server imports (the app's ``signals``: runserver's own process
never imports it), keeps its port accepting while it restarts, and the next
browser call runs the new code."""
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest

from conftest import PROJ, PYTHON, TIMEOUT, open_window, project_env, run, stop_process, wait_until

STARTED = re.compile(r"Starting dfws-asgi development server at http://127\.0\.0\.1:(\d+)/")
SERVING = "serving df_websockets.devserver:application"


class Runserver:
    """``manage.py runserver 127.0.0.1:0`` in a copy of proj/ (what open_window needs)."""

    def __init__(self, tmp, db):
        self.dir = str(tmp / "proj")
        shutil.copytree(PROJ, self.dir, ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3"))
        out = tmp / "out"
        out.mkdir()
        self.env = project_env(db, out=str(out))
        self.env["PYTHONPATH"] = self.dir
        self.log_path = str(tmp / "runserver.log")
        self.port = None

    def start(self):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [PYTHON, "manage.py", "runserver", "127.0.0.1:0"], cwd=self.dir, env=self.env,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        match = wait_until(lambda: self._alive() and STARTED.search(self.log()), 60,
                           what="runserver's banner")
        self.port = int(match.group(1))
        wait_until(lambda: self.log().count(SERVING) == 1, 60, what="dfws-asgi under runserver")
        return self

    def _alive(self):
        assert self.proc.poll() is None, "runserver exited:\n" + self.log()
        return True

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf8", "replace")

    @property
    def origin(self):
        return "http://127.0.0.1:%d" % self.port

    def get(self, path, cookies=None):
        from conftest import Server

        return Server.get(self, path, cookies)

    def edit(self, relpath, old, new):
        path = os.path.join(self.dir, relpath)
        with open(path) as f:
            source = f.read()
        assert old in source
        with open(path, "w") as f:
            f.write(source.replace(old, new))
        later = time.time() + 2  # a newer mtime even on a coarse clock
        os.utime(path, (later, later))


@pytest.fixture
def runserver(tmp_path, native_db):
    server = Runserver(tmp_path, native_db).start()
    yield server
    stop_process(server.proc)


async def echo(server, value):
    window = await open_window(server, "/page/")
    await window.send(json.dumps({"signal": "native.echo", "opts": {"value": value}}))
    reply = await window.recv_json(timeout=15)
    await window.close()
    return reply["opts"]["value"]


def test_edit_of_a_signals_module_reloads_and_port_keeps_accepting(runserver):
    assert run(echo(runserver, "before")) == "before"
    log = runserver.log()
    assert "Traceback" not in log, log

    refused = []
    done = threading.Event()

    def knock():  # connects all along the restart: never refused
        while not done.is_set():
            try:
                socket.create_connection(("127.0.0.1", runserver.port), timeout=TIMEOUT).close()
            except ConnectionRefusedError as exc:
                refused.append(exc)
            time.sleep(0.02)

    knocker = threading.Thread(target=knock)
    knocker.start()
    try:
        runserver.edit("nativeapp/signals.py",
                       'trigger(window_info, "native.echoed", to=[WINDOW], value=value,',
                       'trigger(window_info, "native.echoed", to=[WINDOW], value="edited " + value,')
        wait_until(lambda: runserver._alive() and runserver.log().count(SERVING) == 2, 60,
                   what="a second dfws-asgi after the edit")
    finally:
        done.set()
        knocker.join()
    assert refused == [], "the port refused connections during the reload"
    assert run(echo(runserver, "after")) == "edited after"
    log = runserver.log()
    assert log.count("received SIGTERM, shutting down") == 1, log
    assert "Traceback" not in log, log


def test_a_broken_signals_module_is_reported_and_its_fix_reloads(runserver):
    runserver.edit("nativeapp/signals.py", "def noopts(window_info):", "def noopts(window_info:")
    # the server starts without the module's signals, and says why
    wait_until(lambda: runserver._alive() and runserver.log().count(SERVING) == 2, 60,
               what="the server restarted on the broken module")
    assert "cannot import nativeapp.signals" in runserver.log()
    assert "SyntaxError" in runserver.log()
    runserver.edit("nativeapp/signals.py", "def noopts(window_info:", "def noopts(window_info):")
    wait_until(lambda: runserver._alive() and runserver.log().count(SERVING) == 3, 60,
               what="the server restarted on the fixed module")
    assert run(echo(runserver, "fixed")) == "fixed"


def test_noreload_serves_through_the_same_socket_path(tmp_path, native_db):
    server = Runserver(tmp_path, native_db)
    with open(server.log_path, "ab") as log:
        server.proc = subprocess.Popen(
            [PYTHON, "manage.py", "runserver", "--noreload", "127.0.0.1:0"], cwd=server.dir,
            env=server.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        server.port = int(wait_until(lambda: server._alive() and STARTED.search(server.log()), 60,
                                     what="runserver's banner").group(1))
        wait_until(lambda: SERVING in server.log(), 60, what="dfws-asgi")
        assert run(echo(server, "once")) == "once"
    finally:
        stop_process(server.proc)


def test_port_in_use_is_reported(tmp_path, native_db):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        server = Runserver(tmp_path, native_db)
        result = subprocess.run([PYTHON, "manage.py", "runserver", "127.0.0.1:%d" % port],
                                cwd=server.dir, env=server.env, capture_output=True, text=True,
                                timeout=60)
    assert result.returncode == 1
    assert "Error: That port is already in use." in result.stderr

