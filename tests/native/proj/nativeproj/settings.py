"""Settings of the native-socket test project, switched by environment:

- NATIVE_REDIS_URL (e.g. redis://127.0.0.1:6390): unset -> no CHANNEL_LAYERS
  (df_websockets installs EmbeddedChannelLayer: the server's in-process C
  layer) and a LocMemCache; set -> channels_redis on db 0, Django's Redis cache
  on db 1 and the Celery broker on db 2 (several processes share topics);
- NATIVE_REDIS_LAYER: "core" (default, channels_redis.core.RedisChannelLayer)
  or "pubsub" (channels_redis.pubsub.RedisPubSubChannelLayer);
- NATIVE_CACHE_URL: the Redis cache's URL when it is not NATIVE_REDIS_URL/1
  (a cache that is down while the layer is up);
- NATIVE_WORKERS: WEBSOCKET_WORKERS (thread by default);
- NATIVE_OUT: directory where signal handlers leave their proof files;
- NATIVE_DB: the sqlite database (users of the USER-topic tests);
- NATIVE_LOG_LEVEL: level of the df_websockets loggers (INFO);
- NATIVE_LOCMEM_CACHE: set -> a LocMemCache even with Redis;
- NATIVE_FILE_CACHE: a directory -> a FileBasedCache there;
- NATIVE_SILENCED: SILENCED_SYSTEM_CHECKS (ids separated by spaces);
- NATIVE_DECODER: WEBSOCKET_SIGNAL_DECODER (e.g. nativeapp.slow.SlowDecoder);
- NATIVE_HISTORY_SIZE, NATIVE_HISTORY_TTL, NATIVE_RECOVERY_MAX_BYTES: the
  history and recovery settings (docs/recovery.md). History is off unless
  NATIVE_HISTORY_SIZE is set: the suite's other modules check upstream's
  exact message shape (conftest.signal_values), which has no "topic"/"pos".
"""
import os

BASE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REDIS_URL = os.environ.get("NATIVE_REDIS_URL", "")
REDIS_LAYERS = {
    "core": "channels_redis.core.RedisChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}

SECRET_KEY = "dfws-native-tests"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
    "df_websockets",
    "nativeapp",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "df_websockets.middleware.WebsocketMiddleware",
    "nativeapp.slow.SlowConnectMiddleware",
]
ROOT_URLCONF = "nativeproj.urls"
ASGI_APPLICATION = "df_websockets.routing.application"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("NATIVE_DB", os.path.join(BASE_DIR, "native.sqlite3")),
        "OPTIONS": {"timeout": 20},
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
USE_TZ = True
LANGUAGE_CODE = "en-us"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
TEMPLATES = []

WEBSOCKET_WORKERS = os.environ.get("NATIVE_WORKERS", "thread")
WEBSOCKET_DEFAULT_QUEUE = "celery"
WEBSOCKET_POOL_SIZES = {None: 2}
NATIVE_OUT = os.environ.get("NATIVE_OUT", "")
WEBSOCKET_HISTORY_SIZE = int(os.environ.get("NATIVE_HISTORY_SIZE", "0"))
WEBSOCKET_HISTORY_TTL = int(os.environ.get("NATIVE_HISTORY_TTL", "120"))
WEBSOCKET_RECOVERY_MAX_BYTES = int(os.environ.get("NATIVE_RECOVERY_MAX_BYTES", "1048576"))
if os.environ.get("NATIVE_DECODER"):
    WEBSOCKET_SIGNAL_DECODER = os.environ["NATIVE_DECODER"]

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": REDIS_LAYERS[os.environ.get("NATIVE_REDIS_LAYER") or "core"],
            "CONFIG": {"hosts": [REDIS_URL + "/0"]},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ.get("NATIVE_CACHE_URL") or REDIS_URL + "/1",
        }
    }
    CELERY_BROKER_URL = REDIS_URL + "/2"
else:
    # CHANNEL_LAYERS unset on purpose: the embedded in-process layer
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CELERY_BROKER_URL = "memory://"
SILENCED_SYSTEM_CHECKS = os.environ.get("NATIVE_SILENCED", "").split()
if os.environ.get("NATIVE_LOCMEM_CACHE"):  # a per-process cache whatever the layer
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if os.environ.get("NATIVE_FILE_CACHE"):  # shared by the processes of one host
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                          "LOCATION": os.environ["NATIVE_FILE_CACHE"]}}
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {
        "df_websockets": {
            "handlers": ["stderr"], "level": os.environ.get("NATIVE_LOG_LEVEL", "INFO"),
            "propagate": False,
        },
    },
}
