"""System checks (``manage.py check``; dfws-asgi runs them at start-up too,
and refuses to start on an Error)."""
import os
import sys

from django.conf import settings
from django.core.checks import Error, Warning, register

from df_websockets import ws_settings
from df_websockets.constants import WORKER_CELERY, WORKER_CHANNEL, WORKER_PROCESS, WORKER_THREAD

SHARED_CACHE = (
    "Use a cache shared by every process, e.g. "
    "CACHES[%r] = {'BACKEND': 'django.core.cache.backends.redis.RedisCache', "
    "'LOCATION': 'redis://127.0.0.1:6379/1'} (Django's own, with the redis "
    "package: pip install redis)"
)
SHARED_CACHE_HINT = SHARED_CACHE + ", or set WEBSOCKET_WORKERS = 'thread'."


PER_PROCESS_CACHES = ("django.core.cache.backends.locmem.LocMemCache",)
IN_PROCESS_LAYERS = ("InMemoryChannelLayer", "EmbeddedChannelLayer")


def server_workers():
    """``--workers`` of the dfws-asgi server running this code (1 elsewhere)."""
    module = sys.modules.get("dfws._dfws")
    try:
        return int(module.options()["workers"]) if module is not None else 1
    except Exception:  # loaded, but not serving (no command line parsed)
        return 1


def _celery_broker_configured():
    names = ("CELERY_BROKER_URL", "BROKER_URL", "CELERY_BROKER_HOST", "BROKER_HOST")
    return any(getattr(settings, name, None) for name in names) or bool(
        os.environ.get("CELERY_BROKER_URL"))


@register()
def check_websockets(app_configs=None, **kwargs):
    errors = []
    alias = ws_settings.WEBSOCKET_CACHE_BACKEND
    caches = getattr(settings, "CACHES", {})
    try:
        mode = ws_settings.get_worker_mode()
    except Exception as e:
        return [Error(str(e), hint="Set WEBSOCKET_WORKERS to 'thread', 'process', "
                      "'channels' or 'celery'.", id="df_websockets.E003")]
    if alias not in caches:
        errors.append(Error(
            "WEBSOCKET_CACHE_BACKEND is %r but CACHES has no such alias." % alias,
            hint="Add CACHES[%r] or set WEBSOCKET_CACHE_BACKEND to one of %s. "
            % (alias, ", ".join(repr(x) for x in caches) or "your CACHES aliases")
            + SHARED_CACHE_HINT % alias,
            id="df_websockets.E001",
        ))
        return errors
    backend = caches[alias].get("BACKEND", "")
    if backend.endswith("DummyCache"):
        errors.append(Error(
            "CACHES[%r] is a DummyCache: windows would never get their topics." % alias,
            hint=SHARED_CACHE_HINT % alias,
            id="df_websockets.E002",
        ))
    elif backend.endswith("LocMemCache") and mode != WORKER_THREAD:
        errors.append(Error(
            "CACHES[%r] is a LocMemCache, which other processes cannot read, "
            "while WEBSOCKET_WORKERS is %r." % (alias, mode),
            hint=SHARED_CACHE_HINT % alias,
            id="df_websockets.E002",
        ))
    layers = getattr(settings, "CHANNEL_LAYERS", {}) or {}
    layer_backend = layers.get("default", {}).get("BACKEND", "")
    if not isinstance(layer_backend, str):
        layer_backend = "%s.%s" % (layer_backend.__module__, layer_backend.__qualname__)
    workers = server_workers()
    if backend in PER_PROCESS_CACHES and workers > 1:
        errors.append(Error(
            "CACHES[%r] is a %s, private to each process, while dfws-asgi runs %d worker "
            "processes: a window whose page one worker rendered connects to another that "
            "cannot read its topics, and receives nothing." % (alias, backend.rpartition(".")[2],
                                                             workers),
            hint=SHARED_CACHE % alias + ", or run one worker (--workers 1).",
            id="df_websockets.E004",
        ))
    elif backend in PER_PROCESS_CACHES and "channels_redis" in layer_backend:
        errors.append(Warning(
            "CACHES[%r] is a %s, private to this process, with the shared channel layer %s: "
            "windows whose pages another process or host rendered find no topics here, and "
            "every window loses its topics when this process restarts."
            % (alias, backend.rpartition(".")[2], layer_backend),
            hint=SHARED_CACHE % alias + ".",
            id="df_websockets.W003",
        ))
    if (mode == WORKER_CELERY and not hasattr(settings, "WEBSOCKET_WORKERS")
            and not _celery_broker_configured()):
        errors.append(Warning(
            "WEBSOCKET_WORKERS is 'celery' (the default when celery is installed) but no "
            "Celery broker is configured: signals run on the server would wait for a broker "
            "at Celery's default amqp://guest@localhost//.",
            hint="Set WEBSOCKET_WORKERS = 'thread' to run them in the web process, or "
            "CELERY_BROKER_URL (e.g. 'redis://127.0.0.1:6379/2') and start 'manage.py worker'.",
            id="df_websockets.W004",
        ))
    if mode == WORKER_CHANNEL and layer_backend.endswith(IN_PROCESS_LAYERS):
        errors.append(Warning(
            "WEBSOCKET_WORKERS is 'channels' but the channel layer %s lives in one "
            "process: 'manage.py worker' cannot receive its messages." % layer_backend,
            hint="Set CHANNEL_LAYERS['default'] to channels_redis.core.RedisChannelLayer "
            "(pip install channels_redis) or use WEBSOCKET_WORKERS = 'thread'.",
            id="df_websockets.W001",
        ))
    if mode == WORKER_CHANNEL and layer_backend.endswith("RedisPubSubChannelLayer"):
        errors.append(Warning(
            "WEBSOCKET_WORKERS is 'channels' but the channel layer %s is pub/sub, not a "
            "queue: every 'manage.py worker' on a queue runs every call, a call made while "
            "none listens is lost, and 'manage.py worker' cannot start on it." % layer_backend,
            hint="Set CHANNEL_LAYERS['default'] to channels_redis.core.RedisChannelLayer "
            "or use WEBSOCKET_WORKERS = 'thread' or 'celery'.",
            id="df_websockets.W005",
        ))
    if mode == WORKER_PROCESS and layer_backend.endswith(IN_PROCESS_LAYERS):
        errors.append(Warning(
            "WEBSOCKET_WORKERS is 'process' but the channel layer %s lives in the web "
            "process: signals that handlers running in the pool send to browsers are lost."
            % layer_backend,
            hint="Set CHANNEL_LAYERS['default'] to channels_redis.core.RedisChannelLayer "
            "(pip install channels_redis) or use WEBSOCKET_WORKERS = 'thread'.",
            id="df_websockets.W002",
        ))
    return errors


effective_cache_check = check_websockets  # upstream's name
