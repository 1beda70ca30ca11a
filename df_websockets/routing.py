"""``df_websockets.routing.application``: the ASGI application of the
daphne-compatible path (HTTP by Django, ``WEBSOCKET_URL`` by DFConsumer,
``channel`` scopes by the background consumer).

A server may import this module first (upstream's README:
``ASGI_APPLICATION = "df_websockets.routing.application"``, and
``DJANGO_SETTINGS_MODULE=proj.settings dfws-asgi df_websockets.routing:application``):
it sets Django up itself, as ``get_asgi_application()`` would.
"""
from df_websockets.load import setup_django

setup_django()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import OriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.handlers.asgi import ASGIHandler  # noqa: E402
from django.urls import path  # noqa: E402

from df_websockets import ws_settings  # noqa: E402
from df_websockets.consumers import DFChannelNameRouter, DFConsumer  # noqa: E402


class AllowedHostsOrigin(OriginValidator):
    """Reject websocket handshakes whose ``Origin`` is not in ALLOWED_HOSTS
    (read at each handshake; ``localhost``/``127.0.0.1``/``[::1]`` when DEBUG
    and ALLOWED_HOSTS is empty). Clients that send no Origin (non-browsers,
    which could forge it anyway) are accepted. Upstream had no check at all.
    """

    def __init__(self, application):
        super().__init__(application, [])

    def valid_origin(self, parsed_origin):
        if parsed_origin is None:
            return True
        allowed = list(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not allowed:
            allowed = ["localhost", "127.0.0.1", "[::1]"]
        self.allowed_origins = allowed
        return self.validate_origin(parsed_origin)


websocket_urlpatterns = [
    path(ws_settings.WEBSOCKET_URL[1:], DFConsumer.as_asgi()),
]

mapping = {
    "websocket": AllowedHostsOrigin(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    "channel": DFChannelNameRouter(),
    # upstream routes scopes typed after the default queue too
    ws_settings.WEBSOCKET_DEFAULT_QUEUE: DFChannelNameRouter(),
    "http": ASGIHandler(),
}
application = ProtocolTypeRouter(mapping)
