"""Settings of the recovery soak project (bench/soak.py).

Environment (set by bench/soak.py for the hosts and the trigger process):

- ``SOAK_SHARDS``: comma-separated ``redis://127.0.0.1:PORT`` URLs, the
  channel layer's shards (channels_redis' consistent hashing over them:
  each topic group, and its history, lives on one of them);
- ``SOAK_CACHE``: the redis URL of Django's cache (the windows' topics),
  kept apart from the shards so that killing a shard does not make every
  window unknown;
- ``SOAK_HISTORY_SIZE``, ``SOAK_HISTORY_TTL``: WEBSOCKET_HISTORY_SIZE/_TTL.
"""
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

_SHARDS = [u for u in os.environ.get("SOAK_SHARDS", "redis://127.0.0.1:6379").split(",") if u]
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [u + "/0" for u in _SHARDS]},
    }
}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ.get("SOAK_CACHE", _SHARDS[0]) + "/1",
    }
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}
