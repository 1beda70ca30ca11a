"""Broadcast helpers shared by the broadcast page, ``/ping/``, the
``demo_broadcast`` management command and ``manage.py shell``:

    from demo.broadcast import broadcast
    broadcast("hello from a shell")

Another process reaches the browser windows only through a shared channel
layer: set ``DFWS_DEMO_REDIS_URL`` for both the server and the shell.
"""
import logging

from django.core.cache import cache

from df_websockets.tasks import BROADCAST, trigger

logger = logging.getLogger(__name__)

BROADCAST_SELECTOR = "#broadcast-target"
COUNTER_PREFIX = "dfws-demo:count:"
COUNTER_TIMEOUT = 24 * 3600
MAX_CONTENT_LENGTH = 200


def next_count(name):
    """Increments and returns the counter ``name`` kept in the default cache
    (shared by every process when the cache is Redis)."""
    key = COUNTER_PREFIX + name
    cache.add(key, 0, timeout=COUNTER_TIMEOUT)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add() and incr()
        cache.set(key, 1, timeout=COUNTER_TIMEOUT)
        return 1


def broadcast(content=None, source="shell"):
    """Sets the text of ``#broadcast-target`` in every open demo window.

    ``content`` defaults to ``"<source> <n>"`` where n counts broadcasts. The
    browser sets it as text (``html.text``), never as HTML. Returns the text.
    """
    if content is None:
        content = "%s %d" % (source, next_count("broadcast"))
    content = str(content)[:MAX_CONTENT_LENGTH]
    logger.info("broadcasting %r from %s", content, source)
    trigger(None, "html.text", to=[BROADCAST], selector=BROADCAST_SELECTOR, content=content)
    return content
