"""-u PATH: a live socket is never taken over, a stale one is replaced,
--socket-mode sets the file's permissions; restarts keep the socket."""
import os
import signal
import stat

from conftest import run_cli
from loadgen import KeepAliveLoad
from test_supervisor import new_generation, workers


def test_live_socket_is_refused_and_keeps_serving(start_server, tmp_path):
    path = str(tmp_path / "app.sock")
    first = start_server("restart_app:app", unix=path)
    r = run_cli(["-u", path], "hello_app:app")
    assert r.returncode == 1, r
    assert "cannot listen on %s: another server is listening on it" % path in r.stderr
    # the first server still owns the path
    assert first.request("GET", "/pid").body == str(first.pid).encode()


def test_stale_socket_is_replaced(start_server, tmp_path):
    path = str(tmp_path / "app.sock")
    dead = start_server("restart_app:app", unix=path)
    dead.kill()  # SIGKILL: the socket file stays behind
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    s = start_server("restart_app:app", unix=path)
    assert s.request("GET", "/pid").body == str(s.pid).encode()
    assert "replacing the stale socket %s" % path in s.stderr()


def test_other_file_is_never_removed(tmp_path):
    path = tmp_path / "app.sock"
    path.write_text("precious")
    r = run_cli(["-u", str(path)], "hello_app:app")
    assert r.returncode == 1
    assert "the path exists and is not a socket" in r.stderr
    assert path.read_text() == "precious"


def test_socket_mode(start_server, tmp_path):
    path = str(tmp_path / "app.sock")
    s = start_server("restart_app:app", "--socket-mode", "660", unix=path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    assert s.request("GET", "/pid").status == 200
    s.stop()
    s = start_server("restart_app:app", "--socket-mode", "0o600", unix=path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_socket_mode_needs_a_unix_socket_and_octal(tmp_path):
    r = run_cli(["--socket-mode", "660"], "hello_app:app")
    assert r.returncode == 2 and "--socket-mode applies to a UNIX socket" in r.stderr
    r = run_cli(["-u", str(tmp_path / "s"), "--socket-mode", "rw"], "hello_app:app")
    assert r.returncode == 2 and "octal" in r.stderr
    r = run_cli(["-u", str(tmp_path / "s"), "--socket-mode", "890"], "hello_app:app")
    assert r.returncode == 2 and "octal" in r.stderr


def test_rolling_restart_on_a_unix_socket(start_server, tmp_path):
    path = str(tmp_path / "app.sock")
    s = start_server("restart_app:app", "--workers", "2", "--socket-mode", "660", unix=path)
    old = workers(s, 2)
    ino = os.stat(path).st_ino
    with KeepAliveLoad(unix=path, path="/pid", clients=3) as load:
        s.signal(signal.SIGHUP)
        new_generation(s, old, 2)
    assert load.refused == 0 and load.resets == 0 and not load.errors, load.summary()
    assert set(load.statuses) == {200} and load.total() > 0, load.summary()
    # the same socket file, never re-created
    assert os.stat(path).st_ino == ino
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
