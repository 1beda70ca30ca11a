"""Minimal Django settings for the dfws-asgi black-box tests."""
SECRET_KEY = "dfws-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = []
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
ROOT_URLCONF = "djproj.urls"
DATABASES = {}
USE_TZ = True
APPEND_SLASH = False
FILE_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024  # the 5 MB upload goes to a temp file
LOGGING = {"version": 1, "disable_existing_loggers": False}
