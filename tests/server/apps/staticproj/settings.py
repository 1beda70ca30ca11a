"""A df_websockets project with django.contrib.staticfiles, for
--django-static (tests/server/test_static.py). STATIC_ROOT comes from
$STATICPROJ_ROOT; unset, it is left unset (the start-up error is tested)."""
import os

SECRET_KEY = "dfws-static-tests"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "channels",
    "df_websockets",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "df_websockets.middleware.WebsocketMiddleware",
]
ROOT_URLCONF = "staticproj.urls"
ASGI_APPLICATION = "df_websockets.routing.application"
DATABASES = {}
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
TEMPLATES = []
WEBSOCKET_WORKERS = "thread"
STATIC_URL = os.environ.get("STATICPROJ_URL", "static/")
if os.environ.get("STATICPROJ_ROOT"):
    STATIC_ROOT = os.environ["STATICPROJ_ROOT"]
LOGGING = {"version": 1, "disable_existing_loggers": False}
