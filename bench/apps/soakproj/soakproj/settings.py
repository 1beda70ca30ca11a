"""Settings of the recovery soak project (bench/soak.py).

Environment (set by bench/soak.py for the hosts and the trigger process):

- ``SOAK_SHARDS``: the channel layer's shards, in order (channels_redis'
  consistent hashing over them: each topic group, and its history, lives on
  one of them): a JSON list whose items are ``redis://127.0.0.1:PORT`` URLs
  or Sentinel-managed shards, ``{"master_name": NAME, "sentinels":
  [["127.0.0.1", PORT], ...]}`` (the "sentinel" fault's); comma-separated
  URLs are accepted too;
- ``SOAK_CACHE``: the redis URL of Django's cache (the windows' topics),
  kept apart from the shards so that killing a shard does not make every
  window unknown;
- ``SOAK_HISTORY_SIZE``, ``SOAK_HISTORY_TTL``: WEBSOCKET_HISTORY_SIZE/_TTL.
"""
import json
import os

SECRET_KEY = "dfws-soak"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
    "df_websockets",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "df_websockets.middleware.WebsocketMiddleware",
]
ROOT_URLCONF = "soakproj.urls"
ASGI_APPLICATION = "df_websockets.routing.application"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
TEMPLATES = []

WEBSOCKET_WORKERS = "thread"  # no Celery: the signals only go to browsers
WEBSOCKET_HISTORY_SIZE = int(os.environ.get("SOAK_HISTORY_SIZE", "100"))
WEBSOCKET_HISTORY_TTL = int(os.environ.get("SOAK_HISTORY_TTL", "120"))

_SHARDS = os.environ.get("SOAK_SHARDS", "redis://127.0.0.1:6379").strip()
_SHARDS = json.loads(_SHARDS) if _SHARDS.startswith("[") else [u for u in _SHARDS.split(",") if u]


def _layer_host(shard):
    # socket_timeout None: redis-py 8 times reads out after 5 s by default,
    # which breaks channels_redis' blocking receive (docs/deploy.md); the C
    # layer of the dfws-asgi hosts ignores the key. The trigger process only
    # sends, but its settings are the ones a Celery worker would have.
    if isinstance(shard, dict):  # Sentinel: the master found through the sentinels
        return {"master_name": shard["master_name"],
                "sentinels": [tuple(s) for s in shard["sentinels"]],
                "db": 0, "socket_timeout": None}
    return {"address": shard + "/0", "socket_timeout": None}


CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [_layer_host(s) for s in _SHARDS]},
    }
}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ.get("SOAK_CACHE", "redis://127.0.0.1:6379") + "/1",
    }
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}
