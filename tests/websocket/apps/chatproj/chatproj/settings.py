"""Settings of the tiny Channels chat project served by dfws-asgi in the tests.
The SQLite database is $CHAT_DB, else chat.sqlite3 in $DFWS_TEST_OUT."""
import os

SECRET_KEY = "dfws-websocket-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "chatproj.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("CHAT_DB") or os.path.join(
            os.environ.get("DFWS_TEST_OUT", "/tmp"), "chat.sqlite3"),
    }
}
ASGI_APPLICATION = "chatproj.asgi.application"
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING_CONFIG = None
