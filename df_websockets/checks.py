"""System checks (``manage.py check``)."""
from django.conf import settings
from django.core.checks import Error, Warning, register

from df_websockets import ws_settings
from df_websockets.constants import WORKER_CHANNEL, WORKER_PROCESS, WORKER_THREAD

SHARED_CACHE_HINT = (
    "Use a cache shared by every process, e.g. "
    "CACHES[%r] = {'BACKEND': 'django.core.cache.backends.redis.RedisCache', "
    "'LOCATION': 'redis://127.0.0.1:6379/1'} (Django's own, with the redis "
    "package: pip install redis), or set WEBSOCKET_WORKERS = 'thread'."
)


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
    if mode == WORKER_CHANNEL and layer_backend.endswith(("InMemoryChannelLayer", "EmbeddedChannelLayer")):
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
            id="df_websockets.W003",
        ))
    if mode == WORKER_PROCESS and layer_backend.endswith(("InMemoryChannelLayer", "EmbeddedChannelLayer")):
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
