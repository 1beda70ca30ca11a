"""ASGI entry point: ``djhello.asgi:application`` (run from bench/apps)."""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djhello.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
