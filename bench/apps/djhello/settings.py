"""Settings of the benchmark project: production-like (DEBUG off), nothing
that needs a database, no middleware, so the numbers show the protocol server
plus Django's own request handling (sync view run through asgiref)."""

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
INSTALLED_APPS = []
MIDDLEWARE = []
DATABASES = {}
ROOT_URLCONF = "djhello.urls"
USE_TZ = True
TIME_ZONE = "UTC"  # Django sets the process TZ from this: keep server log times in UTC
USE_I18N = False
