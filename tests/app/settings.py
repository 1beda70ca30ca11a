"""Settings of df_websockets' own test suite (LocMemCache + thread workers)."""
import os
import socket


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# one port per test session, shared with the worker subprocesses through env
REDIS_PORT = int(os.environ.setdefault("DFWS_TEST_REDIS_PORT", str(_free_port())))
REDIS_URL = "redis://127.0.0.1:%d" % REDIS_PORT

SECRET_KEY = "df_websockets-tests"
DEBUG = False
ALLOWED_HOSTS = ["example.com", "testserver", "localhost", "127.0.0.1"]
INSTALLED_APPS = [
    "df_websockets",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "dfws_testapp",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "df_websockets.middleware.WebsocketMiddleware",
]
ROOT_URLCONF = "dfws_testapp.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DFWS_TEST_DB", ":memory:"),
    }
}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
STATIC_URL = "/static/"
USE_TZ = True
LANGUAGE_CODE = "en-us"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
WEBSOCKET_WORKERS = "thread"
WEBSOCKET_DEFAULT_QUEUE = "celery"
# used only by the Celery end-to-end test (its own redis-server)
CELERY_BROKER_URL = REDIS_URL + "/3"
CELERY_TASK_DEFAULT_QUEUE = "celery"
# CHANNEL_LAYERS deliberately unset: df_websockets installs EmbeddedChannelLayer
