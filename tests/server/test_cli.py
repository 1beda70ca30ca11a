"""Command line: --version, --help, unknown flag, bad APP, flags accepted."""
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import APPS, IMPL, REPO, dfws_binary, free_port, run_cli, server_env


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


# ------------------------------------------------ the declaration of the options

def test_help_lists_every_option_of_the_declaration():
    """--help-markdown walks the same table as --help: every flag of one is in
    the other (and the options dict has a key for each value-holding row)."""
    md = run_cli(["--help-markdown"])
    assert md.returncode == 0, md.stderr
    flags = set()
    for line in md.stdout.splitlines():
        if line.startswith("| `"):  # a row: its first cell names the flag
            flags.update(re.findall(r"`(--[a-z_-]+)", line.split(" | ")[0]))
    assert len(flags) > 60 and "--ssl-certfile" in flags and "--websocket_timeout" in flags
    text = run_cli(["--help"]).stdout
    for flag in flags:
        assert flag in text, "--help does not mention %s" % flag
    for line in text.splitlines():
        assert len(line) <= 92, line


def test_docs_cli_md_follows_the_declaration():
    """docs/cli.md's option tables are --help-markdown's output, verbatim
    (scripts/gen_cli_doc.py rewrites them)."""
    sys.path.insert(0, os.path.join(REPO, "scripts"))
    try:
        import gen_cli_doc
    finally:
        sys.path.pop(0)
    out = run_cli(["--help-markdown"]).stdout
    with open(os.path.join(REPO, "docs", "cli.md"), encoding="utf-8") as f:
        text = f.read()
    assert gen_cli_doc.replace_block(text, gen_cli_doc.BEGIN + out + gen_cli_doc.END) == text, (
        "docs/cli.md is out of date: run scripts/gen_cli_doc.py")


@pytest.mark.parametrize("args, message", [
    (["--port", "70000"], "--port takes a number from 0 to 65535: 70000"),
    (["--workers", "0"], "--workers takes a number from 1 to 1024: 0"),
    (["--ping-interval", "soon"], "--ping-interval takes a number of seconds: soon"),
    (["--limit-request-line", "8"], "--limit-request-line takes a size in bytes, at least 16: 8"),
    (["--lifespan", "maybe"], "--lifespan takes auto, on or off: maybe"),
    (["--ws-per-message-deflate", "maybe"], "--ws-per-message-deflate takes true or false"),
    (["-e", "udp:53"], "unsupported endpoint: udp:53"),
])
def test_bad_values_name_the_flag(args, message):
    r = run_cli(args, app="hello_app:app")
    assert r.returncode == 2, r
    assert "dfws-asgi: error: " + message in r.stderr, r.stderr
    assert "usage: dfws-asgi" in r.stderr


def test_missing_app_or_value_exits_2():
    r = run_cli(["-p", "0"])
    assert r.returncode == 2 and "the APP argument is required" in r.stderr, r.stderr
    r = run_cli(["hello_app:app", "--port"])
    assert r.returncode == 2 and "option --port needs a value" in r.stderr, r.stderr


def python_env():
    """The environment of a Python that imports the binary's dfws (the ASan
    build needs its runtime loaded first, as scripts/asan-dfws-asgi does)."""
    env = server_env(None)
    if "asan" in os.path.basename(dfws_binary()):
        lib = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True,
                             text=True).stdout.strip()
        env["LD_PRELOAD"] = lib
    return env


def python_of_binary():
    binary = dfws_binary()
    if "asan" in os.path.basename(binary):
        return os.path.join(REPO, ".venv-asan", "bin", "python")
    with open(binary, "rb") as f:
        first = f.readline()
    return first[2:].strip().decode() if first.startswith(b"#!") else PYTHON


def test_options_dict_without_argv(tmp_path):
    """dfws.__main__.main(options={...}): what dfws.testing.DfwsProcess
    hands over, no command line made up. Keys are _dfws.options()'s (or
    flags' names); lists repeat a flag; False leaves a flag out."""
    port = free_port()
    code = (
        "import sys\n"
        "from dfws.__main__ import main\n"
        "sys.exit(main(options={'app': 'scope_app:app', 'bind': '127.0.0.1', 'port': %d,\n"
        "    'verbosity': 0, 'native_websockets': False, 'no_server_name': True,\n"
        "    'proxy_headers': False, 'reload_dir': None, 'static-path-mount': [%r],\n"
        "    'websocket_timeout': 30.5}))\n" % (port, str(tmp_path)))
    (tmp_path / "hello.txt").write_text("hi\n")
    proc = subprocess.Popen([python_of_binary(), "-c", code], cwd=APPS, env=python_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                    s.sendall(b"GET /static/hello.txt HTTP/1.1\r\nHost: x\r\n"
                              b"Connection: close\r\n\r\n")
                    data = b""
                    while chunk := s.recv(65536):
                        data += chunk
                break
            except OSError:
                assert time.monotonic() < deadline, "not serving"
                time.sleep(0.1)
        assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"\r\n\r\nhi\n"), data
        assert b"\r\nserver:" not in data.lower(), data  # no_server_name
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


def test_options_dict_bad_value_exits_2():
    code = ("import sys\nfrom dfws.__main__ import main\n"
            "sys.exit(main(options={'app': 'hello_app:app', 'port': 'eighty'}))\n")
    r = subprocess.run([python_of_binary(), "-c", code], cwd=APPS, env=python_env(),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r
    assert "--port takes a number from 0 to 65535: eighty" in r.stderr, r.stderr
