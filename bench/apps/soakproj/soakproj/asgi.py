"""df_websockets' routing, served by dfws-asgi (native socket)."""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "soakproj.settings")

import django  # noqa: E402

django.setup()

from df_websockets.routing import application  # noqa: E402,F401  (re-exported)
