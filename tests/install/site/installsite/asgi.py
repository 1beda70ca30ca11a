import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "installsite.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_app = get_asgi_application()

from channels.generic.websocket import WebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402


class Echo(WebsocketConsumer):
    def receive(self, text_data=None, bytes_data=None):
        self.send(text_data="echo:" + text_data)


application = ProtocolTypeRouter({
    "http": django_app,
    "websocket": URLRouter([path("echo/", Echo.as_asgi())]),
})
