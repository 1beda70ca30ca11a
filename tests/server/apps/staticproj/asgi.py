"""df_websockets' application: HTTP by Django, WEBSOCKET_URL natively."""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "staticproj.settings")

import django  # noqa: E402

django.setup()

from df_websockets.routing import application  # noqa: E402,F401
