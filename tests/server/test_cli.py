"""Command line: --version, --help, unknown flag, bad APP, flags accepted."""
import re

import pytest

from conftest import IMPL, run_cli


def test_version():
    r = run_cli(["--version"])
    assert r.returncode == 0, r.stderr
    out = (r.stdout.strip() or r.stderr.strip())
    assert re.fullmatch(r"dfws-asgi \d+\.\d+\.\d+", out), (r.stdout, r.stderr)


def test_help_exits_0_and_lists_flags():
    r = run_cli(["--help"])
    assert r.returncode == 0, r.stderr
    text = r.stdout + r.stderr
    for flag in ("--bind", "--port", "--unix-socket", "--fd", "--access-log",
                 "--http-timeout", "--application-close-timeout", "--root-path",
                 "--proxy-headers", "--server-name", "--no-server-name",
                 "--workers", "--lifespan", "--lifespan-timeout", "--limit-request-body",
                 "--header-timeout", "--keep-alive-timeout", "--shutdown-timeout",
                 "--graceful-timeout", "--socket-mode", "--limit-max-requests",
                 "--limit-max-requests-jitter", "--workers-max-rss", "--workers-lifetime",
                 "--reload", "--reload-dir"):
        assert flag in text, "--help does not mention %s" % flag


@pytest.mark.ref("daphne")
def test_unknown_flag_exits_2_with_usage():
    r = run_cli(["--no-such-flag-xyz"], app="hello_app:app")
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "usage" in r.stderr.lower()
    assert "--no-such-flag-xyz" in r.stderr


@pytest.mark.ref("daphne", "uvicorn")
def test_missing_module_exits_1_naming_it():
    r = run_cli(["-p", "0"] if IMPL != "uvicorn" else [], app="no_such_module_xyz:app")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "no_such_module_xyz" in r.stderr


@pytest.mark.ref("daphne", "uvicorn")
def test_missing_attribute_exits_1_naming_it():
    r = run_cli(["-p", "0"] if IMPL != "uvicorn" else [], app="hello_app:no_such_attr_xyz")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "no_such_attr_xyz" in r.stderr


def test_missing_nested_attribute_exits_1_naming_it():
    r = run_cli(["-p", "0"], app="scope_app:holder.inner.nope_xyz")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "nope_xyz" in r.stderr


@pytest.mark.ref("daphne")
def test_dotted_attribute_app(start_server):
    srv = start_server("scope_app:holder.inner.app")
    r = srv.request("GET", "/dotted")
    assert r.status == 200
    assert b"'/dotted'" in r.body


def test_daphne_flags_accepted(start_server, tmp_path):
    srv = start_server(
        "hello_app:app", "-v", "2", "--websocket_timeout", "30",
        "--websocket_connect_timeout", "5", "--ping-interval", "20",
        "--ping-timeout", "30", "--application-close-timeout", "10",
        "-t", "30", "--backlog", "64", "--shutdown-timeout", "5",
        "--keep-alive-timeout", "5", "--header-timeout", "10",
        "--limit-request-line", "8190", "--limit-request-headers", "65536",
        "--limit-request-body", "0", "--lifespan", "auto", "--workers", "1")
    r = srv.request("GET", "/")
    assert (r.status, r.body) == (200, b"hello world!")


def test_log_fmt_formats_server_log(start_server):
    srv = start_server("errors_app:app", "-v", "1", "--log-fmt", "LOGX %(name)s| %(message)s")
    r = srv.request("GET", "/before")
    assert r.status == 500
    srv.stop()
    err = srv.stderr()
    lines = [l for l in err.splitlines() if l.startswith("LOGX dfws.server| ")]
    assert lines, err
    assert "boom-before-start" in err
