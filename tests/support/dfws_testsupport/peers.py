"""dfws-asgi's command line translated for the reference servers the
black-box suites also run against (DFWS_IMPL=uvicorn or daphne), to prove
the tests right. A dfws option a reference has no equivalent for skips the
test (pytest.skip). bench/peers.py starts the peers its own way (their
benchmark settings), from no dfws options."""
import os
import sys

import pytest

from .binary import dfws_binary
from .binary import require_binary as _require_binary

IMPLS = ("dfws", "uvicorn", "daphne")

# dfws options that take a value
VALUE_FLAGS = {
    "-b", "--bind", "-p", "--port", "-u", "--unix-socket", "--fd",
    "--access-log", "-v", "--verbosity", "-t", "--http-timeout",
    "--websocket_timeout", "--websocket_connect_timeout", "--ping-interval",
    "--ping-timeout", "--application-close-timeout", "--root-path",
    "--proxy-headers-host", "--proxy-headers-port", "-s", "--server-name",
    "--log-fmt", "--workers", "--lifespan", "--lifespan-timeout", "--backlog",
    "--limit-request-line", "--limit-request-headers", "--limit-request-body",
    "--keep-alive-timeout", "--header-timeout", "--shutdown-timeout",
    "--graceful-timeout", "--socket-mode", "--limit-max-requests",
    "--limit-max-requests-jitter", "--workers-max-rss", "--workers-lifetime",
    "--reload-dir", "--websocket-max-message-size", "--websocket-max-frame-size",
}

# dfws option -> uvicorn option, same value
UVICORN = {
    "-b": "--host", "--bind": "--host", "-p": "--port", "--port": "--port",
    "-u": "--uds", "--unix-socket": "--uds", "--fd": "--fd",
    "--root-path": "--root-path", "--lifespan": "--lifespan",
    "--workers": "--workers", "--backlog": "--backlog",
    "--keep-alive-timeout": "--timeout-keep-alive",
    "--ping-interval": "--ws-ping-interval", "--ping-timeout": "--ws-ping-timeout",
}
UVICORN_IGNORED = {"-v", "--verbosity", "--access-log", "--shutdown-timeout",
                   "--application-close-timeout"}

# dfws options daphne has no equivalent for (the others are daphne's own)
DAPHNE_MISSING = {
    "--workers", "--lifespan", "--lifespan-timeout", "--backlog", "--shutdown-timeout",
    "--limit-request-line", "--limit-request-headers", "--limit-request-body",
    "--keep-alive-timeout", "--header-timeout", "--websocket-max-message-size",
    "--websocket-max-frame-size",
}


def impl():
    """The server under test: $DFWS_IMPL (dfws, uvicorn or daphne)."""
    name = os.environ.get("DFWS_IMPL", "dfws")
    if name not in IMPLS:
        raise RuntimeError("DFWS_IMPL must be dfws, uvicorn or daphne, not %r" % name)
    return name


def require_binary():
    """Fails the test unless the reference runs or dfws-asgi is executable."""
    if impl() == "dfws":
        _require_binary(pytest.fail)


def pairs(args):
    """dfws arguments as (option, value or None) pairs."""
    out, i = [], 0
    while i < len(args):
        a = args[i]
        if a in VALUE_FLAGS:
            out.append((a, args[i + 1]))
            i += 2
        else:
            out.append((a, None))
            i += 1
    return out


def to_uvicorn(args, app, python=sys.executable):
    out = [python, "-m", "uvicorn", "--loop", "uvloop", "--http", "httptools",
           "--ws", "websockets"]
    for flag, val in pairs(args):
        if flag == "--proxy-headers":
            out += ["--proxy-headers", "--forwarded-allow-ips", "*"]
        elif flag == "--no-server-name":
            out.append("--no-server-header")
        elif flag in UVICORN_IGNORED:
            continue
        elif flag == "--websocket-max-message-size":
            out += ["--ws-max-size", str(int(val) or 2 ** 62)]
        elif flag in UVICORN:
            out += [UVICORN[flag], val]
        else:
            raise pytest.skip.Exception("flag %s has no uvicorn equivalent" % flag)
    if "--ping-interval" not in args:
        out += ["--ws-ping-interval", "20"]
    if "--access-log" not in args:
        out.append("--no-access-log")
    return out + [app]


def to_daphne(args, app, python=sys.executable):
    out = [python, "-m", "daphne"]
    for flag, val in pairs(args):
        if flag in DAPHNE_MISSING:
            raise pytest.skip.Exception("flag %s has no daphne equivalent" % flag)
        out.append(flag)
        if val is not None:
            out.append(val)
    return out + [app]


def build_command(args, app, name=None):
    """Full argv of the server under test (``name``, default $DFWS_IMPL)
    given dfws-style ``args`` and the ``app`` (None: none given)."""
    name = name or impl()
    args = list(args)
    if name == "uvicorn":
        return to_uvicorn(args, app)
    if name == "daphne":
        return to_daphne(args, app)
    return [dfws_binary()] + args + ([app] if app else [])


# The hooks of a suite that also runs against the references (its
# conftest.py imports them): only tests marked @pytest.mark.ref("uvicorn")
# (or "daphne") run in a reference run, the others cover behaviour the
# reference does not share.
def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "ref(*impls): reference servers (uvicorn, daphne) that share this "
        "behaviour; the test runs against them when DFWS_IMPL names one",
    )


def pytest_collection_modifyitems(config, items):
    name = impl()
    if name == "dfws":
        return
    for item in items:
        marker = item.get_closest_marker("ref")
        if marker is None or name not in marker.args:
            item.add_marker(pytest.mark.skip(reason="behaviour not shared by %s" % name))


def pytest_report_header(config):
    if impl() == "dfws":
        return "server under test: %s" % dfws_binary()
    return "server under test: reference %s" % impl()
