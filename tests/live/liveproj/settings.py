"""A project as a user's browser tests see it: one Channels consumer (a
room chat over the channel layer), df_websockets pages, a model. The
database is a SQLite file: ChannelsLiveServerTestCase refuses in-memory ones."""
import os
import tempfile

BASE_DIR = os.path.dirname(os.path.abspath(__file__))
SECRET_KEY = "dfws-live-tests"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "channels",
    "df_websockets",
    "liveproj",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "df_websockets.middleware.WebsocketMiddleware",
]
ROOT_URLCONF = "liveproj.urls"
ASGI_APPLICATION = "liveproj.asgi.application"
_DB = os.path.join(tempfile.gettempdir(), "dfws-live-%d.sqlite3" % os.getpid())
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": _DB,
        "TEST": {"NAME": _DB + ".test"},
    }
}
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
}]
STATIC_URL = "/static/"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
WEBSOCKET_WORKERS = "thread"
# CHANNEL_LAYERS and CACHES left out: df_websockets' embedded layer, Django's LocMemCache
