"""Settings of the worker subprocesses (channels / celery modes): everything
shared through the test's own redis-server."""
import os

from settings import *  # noqa: F401,F403
from settings import REDIS_URL

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DFWS_TEST_DB", ":memory:"),
    }
}
WEBSOCKET_WORKERS = os.environ.get("DFWS_TEST_WORKERS", "channels")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL + "/1",
    }
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL + "/2"]},
    }
}
CELERY_BROKER_URL = REDIS_URL + "/3"
