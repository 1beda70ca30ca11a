"""A minimal Django project as a user would have it: one view, one Channels
consumer, df_websockets' native socket, no Redis (embedded layer)."""
SECRET_KEY = "dfws-install-tests"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
    "df_websockets",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "df_websockets.middleware.WebsocketMiddleware",
]
ROOT_URLCONF = "installsite.urls"
ASGI_APPLICATION = "installsite.asgi.application"
DATABASES = {}
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
WEBSOCKET_WORKERS = "thread"
