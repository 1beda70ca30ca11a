"""ASGI entry point of the dfws demo:

    cd demo && dfws-asgi demo.asgi:application     (or: daphne demo.asgi:application)

The same protocols as ``df_websockets.routing.application`` (its websocket
endpoint on ``WEBSOCKET_URL`` and its ``channel`` workers), except that the
``http`` part wraps Django's ASGI handler in ``ASGIStaticFilesHandler`` so
that ``/static/js/df_websockets.min.js`` is served without nginx when DEBUG
is on (or when ``DFWS_DEMO_SERVE_STATIC=1``).
"""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

# get_asgi_application() runs django.setup(): it must come before any import
# of models, consumers or df_websockets' routing.
django_http = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from df_websockets import routing as df_routing  # noqa: E402


def _serve_static():
    flag = os.environ.get("DFWS_DEMO_SERVE_STATIC", "").strip().lower()
    if flag:
        return flag not in {"0", "false", "no", "off"}
    return settings.DEBUG


def build_application():
    """A ProtocolTypeRouter with df_websockets' protocols and our http app."""
    mapping = dict(df_routing.application.application_mapping)
    http = django_http
    if _serve_static():
        http = ASGIStaticFilesHandler(http)
    mapping["http"] = http
    return ProtocolTypeRouter(mapping)


application = build_application()
