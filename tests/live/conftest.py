"""tests/live runs the installed dfws in its own process (the live server
is forked from it). From the repository root, ``python -m pytest`` puts the
checkout first on sys.path, whose dfws/ has no built extension: run with
``PYTHONSAFEPATH=1`` (as scripts/test.sh does), or from tests/live."""
import importlib.util

import pytest


def pytest_configure(config):
    if importlib.util.find_spec("dfws._dfws") is None:
        import dfws

        raise pytest.UsageError(
            "tests/live need the installed dfws, not %s (no built extension): run "
            "PYTHONSAFEPATH=1 python3 -m pytest tests/live, or run pytest from tests/live"
            % dfws.__path__[0])
