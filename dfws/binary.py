"""Where the dfws-asgi binary is: one lookup for ``manage.py runserver``,
the test suites (tests/support) and the benchmarks (bench/).

Standard library only, and imported without the rest of dfws, so a Python
that has no dfws installed (bench/'s peers venv) can load it from the
checkout.
"""
import os
import shutil
import sys

BINARY_NAME = "dfws-asgi"
ENV = "DFWS_ASGI"  # an explicit path wins over every other place


def _executable(path):
    return bool(path) and os.path.isfile(path) and os.access(path, os.X_OK)


def find_dfws_asgi(also=()):
    """Path of an executable dfws-asgi, or None: ``$DFWS_ASGI``, the one
    next to ``sys.executable`` (the venv dfws is installed in), each path of
    ``also`` in turn, then PATH."""
    candidates = [os.environ.get(ENV),
                  os.path.join(os.path.dirname(sys.executable), BINARY_NAME)]
    for path in candidates + list(also):
        if _executable(path):
            return path
    return shutil.which(BINARY_NAME)
