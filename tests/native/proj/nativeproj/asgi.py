"""ASGI entry point: df_websockets' application (HTTP by Django, WEBSOCKET_URL
by DFConsumer when the server does not serve it natively)."""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nativeproj.settings")

import django  # noqa: E402

django.setup()

from df_websockets.routing import application  # noqa: E402,F401
