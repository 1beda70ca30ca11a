"""Black-box fixtures for the dfws-asgi HTTP server tests.

Each test starts the server binary as a subprocess, with its working
directory in ``tests/server/apps`` (so ``module:attr`` resolves there), talks
to it over raw sockets, then stops it with SIGTERM and checks it exits 0.

The same tests can run against a reference server to prove they are right:

    DFWS_IMPL=uvicorn .venv/bin/python -m pytest tests/server -q
    DFWS_IMPL=daphne  .venv/bin/python -m pytest tests/server -q

In a reference run only tests marked ``@pytest.mark.ref("uvicorn")`` (or
"daphne") run: the others cover behaviour the reference does not share.
The binary under test is ``$DFWS_ASGI``, else the one next to the Python
running pytest, else the checkout's .venv/ or build/ (tests/support's
dfws_testsupport, which holds the helpers every suite shares).
"""

import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "support"))  # dfws_testsupport
from dfws_testsupport.binary import REPO, dfws_binary  # noqa: E402
from dfws_testsupport.http import (IncompleteResponse, RawConn, Response,  # noqa: E402,F401
                                   build_request, get)
from dfws_testsupport.net import free_port  # noqa: E402
from dfws_testsupport.peers import (build_command, impl, pytest_collection_modifyitems,  # noqa: E402,F401
                                    pytest_configure, pytest_report_header, require_binary)
from dfws_testsupport.proc import (RssSampler, children_of, kill_tree,  # noqa: E402,F401
                                   process_tree, rss_bytes, tree_rss_bytes)
from dfws_testsupport.server import READY_PATH, ServerProcess, server_env, stop_all  # noqa: E402,F401

APPS = os.path.join(HERE, "apps")
PYTHON = sys.executable  # the venv pytest runs in: dfws and the peers are installed there
IMPL = impl()


def run_cli(args, app=None, timeout=15, cwd=APPS, env=None):
    """Run the server expecting it to exit by itself; returns CompletedProcess."""
    require_binary()
    cmd = build_command(args, app)
    return subprocess.run(cmd, cwd=cwd, capture_output=True, timeout=timeout,
                          env=env or server_env(None), text=True)


@pytest.fixture
def port():
    return free_port()


class Server(ServerProcess):
    """A running server process.

    ``out`` is a per-test directory (env DFWS_TEST_OUT for the apps) that also
    holds ``stdout.txt`` / ``stderr.txt``.
    """

    def __init__(self, app, args, outdir, port=None, unix=None, wait=True,
                 pass_fds=(), extra_env=None, cwd=APPS):
        require_binary()
        self.app = app
        base = []
        if unix:
            base += ["-u", unix]
        elif port is not None and "--fd" not in args:
            base += ["-b", "127.0.0.1", "-p", str(port)]
        super().__init__(build_command(base + list(args), app), outdir, cwd, port=port,
                         unix=unix, pass_fds=pass_fds, extra_env=extra_env)
        if wait:
            self.wait_ready()


@pytest.fixture
def start_server(tmp_path):
    """Factory: start_server("mod:app", *args, unix=None, port=None, wait=True).

    Stopped at teardown with SIGTERM; a non-zero exit code fails the test
    unless the test already stopped it itself.
    """
    started = []
    counter = [0]

    def factory(app, *args, unix=None, port=None, wait=True, pass_fds=(),
                extra_env=None, cwd=APPS):
        counter[0] += 1
        out = tmp_path / ("srv%d" % counter[0])
        out.mkdir()
        if port is None and unix is None and "--fd" not in args:
            port = free_port()
        srv = Server(app, args, out, port=port, unix=unix, wait=False,
                     pass_fds=pass_fds, extra_env=extra_env, cwd=cwd)
        started.append(srv)
        if wait:
            srv.wait_ready()
        return srv

    yield factory
    stop_all(started)


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("mod")


@pytest.fixture
def raw():
    """Factory for RawConn over TCP: raw(port) -> RawConn; closed at teardown."""
    conns = []

    def factory(port, timeout=10):
        c = RawConn.tcp(port, timeout)
        conns.append(c)
        return c

    yield factory
    for c in conns:
        c.close()
