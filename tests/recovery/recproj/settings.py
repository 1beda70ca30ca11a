"""Settings of the recovery test project (tests/recovery).

Environment (set by the tests for the server and the trigger processes):

- ``REC_REDIS_URL``: ``redis://127.0.0.1:PORT``: channels_redis' layer on
  db 0 and Django's Redis cache on db 1, so that the history and the
  windows' topics outlive a restart of dfws-asgi and another process can
  trigger. Unset: df_websockets' embedded layer (history in the process)
  and a file cache in ``REC_CACHE_DIR``.
- ``REC_HISTORY_SIZE``: ``WEBSOCKET_HISTORY_SIZE`` (default 5, small so
  that a long outage is "too old").
"""
import os
import tempfile

SECRET_KEY = "dfws-recovery-tests"
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
ROOT_URLCONF = "recproj.urls"
ASGI_APPLICATION = "df_websockets.routing.application"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
TEMPLATES = []
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

WEBSOCKET_WORKERS = "thread"
WEBSOCKET_HISTORY_SIZE = int(os.environ.get("REC_HISTORY_SIZE", "5"))
WEBSOCKET_HISTORY_TTL = 120

REDIS_URL = os.environ.get("REC_REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL + "/0"]},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL + "/1",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": os.environ.get(
                "REC_CACHE_DIR", os.path.join(tempfile.gettempdir(), "dfws-rec-%d" % os.getpid())),
        }
    }
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "INFO"},
}
