import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproj.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from chatproj.consumers import AsyncChatConsumer, SyncChatConsumer  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": AuthMiddlewareStack(URLRouter([
        path("chat/sync/<str:room>/", SyncChatConsumer.as_asgi()),
        path("chat/async/<str:room>/", AsyncChatConsumer.as_asgi()),
    ])),
})
