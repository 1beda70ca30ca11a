"""Settings of the df_websockets benchmark project (bench/native_bench.py).

Everything shared goes through the redis-server the benchmark starts, whose
URL is in the environment variable WSPROJ_REDIS_URL (redis://127.0.0.1:PORT):
channels_redis' RedisChannelLayer on db 0 and Django's Redis cache (the
window key -> topics entries) on db 1. No database is used by the views
(anonymous users, signed-cookie sessions); sqlite in memory keeps auth happy.
"""
import os

REDIS_URL = os.environ.get("WSPROJ_REDIS_URL", "redis://127.0.0.1:6379")

SECRET_KEY = "dfws-bench-wsproj"
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
ROOT_URLCONF = "wsproj.urls"
ASGI_APPLICATION = "df_websockets.routing.application"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
TEMPLATES = []

WEBSOCKET_WORKERS = "thread"      # no Celery: broadcasts only reach browsers
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
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}
