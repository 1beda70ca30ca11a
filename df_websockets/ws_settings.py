"""df_websockets settings, read lazily from django.conf.settings.

Every attribute of this module (``ws_settings.WEBSOCKET_URL`` …) is computed
when it is read, so ``override_settings`` in tests is honoured. Deprecated
setting names are still read, with a :class:`RemovedInDfWebsockets2Warning`.
"""
import logging
import warnings

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from df_websockets.constants import (
    WORKER_ALIASES,
    WORKER_CELERY,
    WORKER_MODES,
    WORKER_THREAD,
    RemovedInDfWebsockets2Warning,
)

logger = logging.getLogger("df_websockets.signals")


def _default_workers():
    try:
        import celery  # noqa: F401
    except ImportError:
        return WORKER_THREAD
    return WORKER_CELERY


DEFAULTS = {
    "CELERY_APP": "df_websockets",
    "WEBSOCKET_DEFAULT_QUEUE": "celery",
    "WEBSOCKET_CACHE_EXPIRE": 36000,
    "WEBSOCKET_CACHE_PREFIX": "df_ws",
    "WEBSOCKET_CACHE_BACKEND": "default",
    "WEBSOCKET_SIGNAL_DECODER": "json.JSONDecoder",
    "WEBSOCKET_SIGNAL_ENCODER": "django.core.serializers.json.DjangoJSONEncoder",
    "WEBSOCKET_TOPIC_SERIALIZER": "df_websockets.topics.serialize_topic",
    "WEBSOCKET_WORKERS": _default_workers,
    "WEBSOCKET_POOL_SIZES": {None: 10},
    "WINDOW_INFO_MIDDLEWARES": [
        "df_websockets.ws_middleware.WindowKeyMiddleware",
        "df_websockets.ws_middleware.DjangoAuthMiddleware",
        "df_websockets.ws_middleware.Djangoi18nMiddleware",
        "df_websockets.ws_middleware.BrowserMiddleware",
    ],
    "WEBSOCKET_URL": "/ws/",
    # recovery of missed signals (docs/recovery.md)
    "WEBSOCKET_HISTORY_SIZE": 100,
    "WEBSOCKET_HISTORY_TTL": 120,
    "WEBSOCKET_RECOVERY_MAX_BYTES": 1048576,
    "ASGI_APPLICATION": "df_websockets.routing.application",
}
# new name -> old (deprecated) name, still honoured
DEPRECATED_NAMES = {
    "WEBSOCKET_DEFAULT_QUEUE": "CELERY_DEFAULT_QUEUE",
    "WEBSOCKET_CACHE_EXPIRE": "WEBSOCKET_REDIS_EXPIRE",
    "WEBSOCKET_CACHE_PREFIX": "WEBSOCKET_REDIS_PREFIX",
}
# old names readable as attributes of this module too
_OLD_TO_NEW = {v: k for k, v in DEPRECATED_NAMES.items()}
_MISSING = object()


def compatibility_setting(new_name, old_name, default, _stacklevel=2):
    """Upstream's helper: ``settings.<new_name>``, else the deprecated
    ``settings.<old_name>`` (with a RemovedInDfWebsockets2Warning), else ``default``."""
    if hasattr(settings, new_name):
        return getattr(settings, new_name)
    if old_name and hasattr(settings, old_name):
        warnings.warn(
            "setting %s is deprecated, use %s instead" % (old_name, new_name),
            RemovedInDfWebsockets2Warning,
            stacklevel=_stacklevel,
        )
        return getattr(settings, old_name)
    return default


def get(name):
    """Return the value of the df_websockets setting ``name``."""
    name = _OLD_TO_NEW.get(name, name)
    if name not in DEFAULTS:
        raise AttributeError("unknown df_websockets setting %r" % name)
    # the warning points at the code that read ws_settings.<name>
    value = compatibility_setting(name, DEPRECATED_NAMES.get(name), _MISSING, _stacklevel=4)
    if value is _MISSING:
        value = DEFAULTS[name]
        if callable(value):
            value = value()
    return value


def get_worker_mode():
    """The normalized worker mode; ImproperlyConfigured on an unknown value."""
    mode = get("WEBSOCKET_WORKERS")
    mode = WORKER_ALIASES.get(mode, mode)
    if mode not in WORKER_MODES:
        raise ImproperlyConfigured(
            "WEBSOCKET_WORKERS = %r is invalid: use one of %s."
            % (mode, ", ".join(repr(x) for x in WORKER_MODES))
        )
    return mode


def get_pool_size(queue):
    sizes = get("WEBSOCKET_POOL_SIZES") or {}
    return int(sizes.get(queue, sizes.get(None, 5)))


def get_history_settings():
    """(size, ttl, max_bytes) of the history and recovery of missed signals,
    checked: ImproperlyConfigured on a value that is not a non-negative
    integer (size 0 turns history off)."""
    values = []
    for name in ("WEBSOCKET_HISTORY_SIZE", "WEBSOCKET_HISTORY_TTL", "WEBSOCKET_RECOVERY_MAX_BYTES"):
        value = get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ImproperlyConfigured("%s = %r is invalid: use an integer >= 0." % (name, value))
        values.append(value)
    if values[0] and not values[1]:
        raise ImproperlyConfigured("WEBSOCKET_HISTORY_TTL must be > 0 when WEBSOCKET_HISTORY_SIZE is.")
    return tuple(values)


def __getattr__(name):
    try:
        return get(name)
    except AttributeError:
        raise AttributeError(
            "module 'df_websockets.ws_settings' has no attribute %r" % name
        ) from None


def __dir__():
    return sorted(list(globals()) + list(DEFAULTS) + list(_OLD_TO_NEW))
