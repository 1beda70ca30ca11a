"""Lifespan protocol: startup/shutdown, state, failures, auto/on/off."""
import time

import pytest

from conftest import free_port, run_cli


def test_startup_and_shutdown_events(start_server):
    s = start_server("lifespan_app:app")
    assert s.read_out("lifespan") == "called\nlifespan.startup\n"
    r = s.request("GET", "/")
    assert r.body == b"[('list', [1, 2]), ('token', 'abc123')]"
    s.stop()  # SIGTERM -> exit 0 after lifespan shutdown
    assert s.read_out("lifespan") == ("called\nlifespan.startup\nlifespan.shutdown\n"
                                      "shutdown-done\n")


@pytest.mark.ref("uvicorn")
def test_shutdown_runs_on_sigterm(start_server):
    s = start_server("lifespan_app:app")
    s.stop()
    assert "lifespan.shutdown" in s.read_out("lifespan")
    assert "shutdown-done" in s.read_out("lifespan")


def _wait_exit(cmd_args, app, timeout=15):
    return run_cli(["-p", str(free_port())] + cmd_args, app=app, timeout=timeout)


def test_startup_failed_exits_1_with_message():
    r = _wait_exit([], "lifespan_fail_app:app")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "database-is-down-42" in r.stderr


def test_startup_failed_exits_1_with_lifespan_on():
    r = _wait_exit(["--lifespan", "on"], "lifespan_fail_app:app")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "database-is-down-42" in r.stderr


def test_lifespan_on_exception_exits_1():
    r = _wait_exit(["--lifespan", "on"], "lifespan_raise_app:app")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "no-lifespan-here-17" in r.stderr


@pytest.mark.ref("uvicorn")
def test_lifespan_auto_tolerates_unsupported_app(start_server):
    s = start_server("lifespan_raise_app:app")
    assert s.wait_out("lifespan", 3) == "raised\n"
    r = s.request("GET", "/")
    assert (r.status, r.body) == (200, b"served")
    s.stop()
    # the app is not called again with lifespan at shutdown
    assert s.read_out("lifespan") == "raised\n"


@pytest.mark.ref("uvicorn")
def test_lifespan_off_never_calls_app(start_server):
    s = start_server("lifespan_app:app", "--lifespan", "off")
    r = s.request("GET", "/")
    assert r.status == 200
    assert r.body == b"no-state" or r.body == b"[]"
    s.stop()
    assert s.read_out("lifespan") is None


@pytest.mark.ref("uvicorn")
def test_lifespan_off_serves_failing_app(start_server):
    s = start_server("lifespan_fail_app:app", "--lifespan", "off")
    r = s.request("GET", "/")
    assert (r.status, r.body) == (200, b"should not serve")
