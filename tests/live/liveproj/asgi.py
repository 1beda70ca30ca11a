import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "liveproj.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_http = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from df_websockets.routing import websocket_urlpatterns  # noqa: E402
from liveproj.consumers import RoomConsumer  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_http,
    "websocket": URLRouter([path("room/<str:room>/", RoomConsumer.as_asgi()),
                            *websocket_urlpatterns]),
})
