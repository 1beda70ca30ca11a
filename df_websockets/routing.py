"""``df_websockets.routing.application``: the ASGI application of the
daphne-compatible path (HTTP by Django, ``WEBSOCKET_URL`` by DFConsumer,
``channel`` scopes by the background consumer)."""
from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.urls import path

from df_websockets import ws_settings
from df_websockets.consumers import DFChannelNameRouter, DFConsumer


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
    "celery": DFChannelNameRouter(),
    "http": ASGIHandler(),
}
application = ProtocolTypeRouter(mapping)
