"""ASGI entry point served by both dfws-asgi and daphne: df_websockets'
routing (Django for HTTP, df_websockets' consumer for WEBSOCKET_URL when the
server does not handle the socket natively)."""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wsproj.settings")

import django  # noqa: E402

django.setup()

from df_websockets.routing import application  # noqa: E402,F401  (re-exported)
