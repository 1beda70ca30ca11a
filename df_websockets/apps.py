"""App config. ``ready()`` fills two defaults when the project leaves them out:
``ASGI_APPLICATION = "df_websockets.routing.application"`` (as upstream does)
and ``CHANNEL_LAYERS = {"default": {"BACKEND": "df_websockets.layers.EmbeddedChannelLayer"}}``
(one process needs no Redis; inside dfws-asgi it is the server's C layer)."""
from django.apps import AppConfig
from django.conf import settings

DEFAULT_CHANNEL_LAYERS = {"default": {"BACKEND": "df_websockets.layers.EmbeddedChannelLayer"}}


class DFWebsocketsConfig(AppConfig):
    name = "df_websockets"
    verbose_name = "Websockets for Django"
    default_auto_field = "django.db.models.AutoField"

    def ready(self):
        from df_websockets import checks  # noqa: F401  (registers the checks)

        if not getattr(settings, "ASGI_APPLICATION", None):
            settings.ASGI_APPLICATION = "df_websockets.routing.application"
        if not getattr(settings, "CHANNEL_LAYERS", None):
            settings.CHANNEL_LAYERS = {
                k: dict(v) for k, v in DEFAULT_CHANNEL_LAYERS.items()
            }
