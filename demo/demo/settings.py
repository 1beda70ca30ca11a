"""Settings of the dfws demo project (Django 4.2 or 5.2).

Environment variables (all optional):

- ``DFWS_DEMO_REDIS_URL``: ``redis://host:port/db``. When set, the channel
  layer is ``channels_redis.core.RedisChannelLayer`` and the cache is
  Django's ``django.core.cache.backends.redis.RedisCache``, both on that URL, so that other processes
  (``manage.py demo_broadcast``, ``manage.py shell``, several ``--workers``)
  reach the browser windows. When unset, df_websockets' embedded in-process
  channel layer and a LocMemCache are used: one process, no Redis.
- ``DFWS_DEMO_DB``: path of the SQLite database (default: a file in the
  system's temporary folder, which is always writable).
- ``DFWS_DEMO_DEBUG``: ``0`` / ``false`` / ``no`` turns DEBUG off.
- ``DFWS_DEMO_LOCMEM_CACHE``: ``1`` keeps the windows' topics in a
  LocMemCache (lost when the server restarts) instead of a file cache.
- ``DFWS_DEMO_SECRET_KEY``: Django's SECRET_KEY (a fixed development key by default).
"""
import os
import tempfile

BASE_DIR = os.path.dirname(os.path.abspath(__file__))


def _env_bool(name, default):
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() not in {"0", "false", "no", "off"}


DEBUG = _env_bool("DFWS_DEMO_DEBUG", True)
SECRET_KEY = os.environ.get(
    "DFWS_DEMO_SECRET_KEY", "dfws-demo-insecure-key-for-local-development-only"
)
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "df_websockets",
    "demo.apps.DemoConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "df_websockets.middleware.WebsocketMiddleware",
]

ROOT_URLCONF = "demo.urls"
ASGI_APPLICATION = "demo.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DFWS_DEMO_DB")
        or os.path.join(tempfile.gettempdir(), "dfws-demo-%d.sqlite3" % os.getuid()),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DFWS_DEMO_REDIS_URL = os.environ.get("DFWS_DEMO_REDIS_URL", "").strip()

if DFWS_DEMO_REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [DFWS_DEMO_REDIS_URL]},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": DFWS_DEMO_REDIS_URL,
        }
    }
elif _env_bool("DFWS_DEMO_LOCMEM_CACHE", False):
    # Django's default cache, private to the process: a restart loses every
    # window's topics, and df_websockets tells the open pages to get new keys
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    # No CHANNEL_LAYERS: df_websockets provides its embedded layer as default.
    # The window -> topics entries live in a file cache so that pages still
    # open when the server restarts find their topics again on reconnect
    # (an in-memory cache would die with the process).
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": os.environ.get(
                "DFWS_DEMO_CACHE_DIR",
                os.path.join(tempfile.gettempdir(), "dfws-demo-cache-%d" % os.getuid()),
            ),
        }
    }

# Signals called by browsers run in a thread pool of the web process.
WEBSOCKET_WORKERS = "thread"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = os.environ.get("DFWS_DEMO_STATIC_ROOT") or os.path.join(
    tempfile.gettempdir(), "dfws-demo-static-%d" % os.getuid()
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s [%(name)s] [%(levelname)s] %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    # one handler, on the root logger: servers that configure logging first
    # (daphne's basicConfig) do not print our lines twice
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "demo": {"level": "INFO"},
        "df_websockets": {"level": "INFO"},
        # Django's own console handler would print its records a second time
        "django": {"handlers": [], "level": "INFO"},
    },
}
