"""Fixtures of the demo tests (Django test client + df_websockets' SignalQueue).

The demo's settings come from pytest.ini (DJANGO_SETTINGS_MODULE=demo.settings)
and must be the default ones: no Redis (DFWS_DEMO_REDIS_URL unset).
"""
import os
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_DIR = os.path.join(REPO_ROOT, "demo")

# the demo project; df_websockets and dfws are the installed ones (the venv)
if DEMO_DIR not in sys.path:
    sys.path.insert(0, DEMO_DIR)


def pytest_configure(config):
    from django.conf import settings

    if not settings.configured or settings.ROOT_URLCONF != "demo.urls":
        raise pytest.UsageError(
            "tests/demo need DJANGO_SETTINGS_MODULE=demo.settings "
            "(run: python3 -m pytest tests/demo)"
        )
    if settings.DFWS_DEMO_REDIS_URL:
        raise pytest.UsageError("tests/demo run without Redis: unset DFWS_DEMO_REDIS_URL")


@pytest.fixture(autouse=True)
def _clear_cache():
    """Click counters and window topics live in the cache: start empty."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def signal_queue():
    from df_websockets.testing import SignalQueue

    with SignalQueue() as queue:
        yield queue


@pytest.fixture
def window_info():
    from df_websockets.window_info import WindowInfo

    info = WindowInfo()
    info.window_key = "demotestwindowkey0123456789abcde"
    return info
