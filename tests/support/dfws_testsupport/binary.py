"""The dfws-asgi under test and the repository's paths."""
import os
import sys

SUPPORT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/support
TESTS = os.path.dirname(SUPPORT)
REPO = os.path.dirname(TESTS)

try:
    from dfws.binary import find_dfws_asgi
except ImportError:  # a Python without dfws (bench/'s peers venv): the checkout's
    sys.path.append(REPO)
    from dfws.binary import find_dfws_asgi


def dfws_binary():
    """``$DFWS_ASGI`` whatever it is (require_binary says when it is not
    executable: a test never falls back to another binary than the one it
    was told), else dfws.binary's lookup with the checkout's .venv and
    build/ last."""
    env = os.environ.get("DFWS_ASGI")
    if env:
        return env
    return find_dfws_asgi(also=(os.path.join(REPO, ".venv", "bin", "dfws-asgi"),
                                os.path.join(REPO, "build", "dfws-asgi"))) \
        or os.path.join(REPO, ".venv", "bin", "dfws-asgi")


def require_binary(fail):
    """Calls ``fail(message)`` (pytest.fail, sys.exit) unless the binary
    under test is executable; returns its path."""
    path = dfws_binary()
    if not os.access(path, os.X_OK):
        fail("dfws-asgi binary not found or not executable: %s" % path)
    return path
