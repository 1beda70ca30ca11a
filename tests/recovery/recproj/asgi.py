"""df_websockets' routing: Django for HTTP, the signal socket on /ws/
(served natively by dfws-asgi)."""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recproj.settings")

import django  # noqa: E402

django.setup()

from df_websockets.routing import application  # noqa: E402,F401  (re-exported)
