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
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from df_websockets import checks  # noqa: F401  (registers the checks)

        claim_runserver()

        if not getattr(settings, "ASGI_APPLICATION", None):
            settings.ASGI_APPLICATION = "df_websockets.routing.application"
        if not getattr(settings, "CHANNEL_LAYERS", None):
            settings.CHANNEL_LAYERS = {
                k: dict(v) for k, v in DEFAULT_CHANNEL_LAYERS.items()
            }


class DfWebsocketsApp(DFWebsocketsConfig):
    """Upstream's name, for projects that list ``df_websockets.apps.DfWebsocketsApp``
    in INSTALLED_APPS. ``default = False``: ``"df_websockets"`` alone still
    picks DFWebsocketsConfig (Django refuses two default configs)."""

    default = False


def claim_runserver():
    """Make ``manage.py runserver`` ours when dfws-asgi is installed.

    Django lets the first app of INSTALLED_APPS that has a ``runserver``
    command win, and projects list ``django.contrib.staticfiles`` and
    ``daphne`` before ``df_websockets`` (upstream's README does): ours then
    would never run. Django caches the name -> app table once per process,
    so taking the entry there is enough; without the binary, whoever else
    provides runserver keeps it.
    """
    from django.core.management import get_commands

    from df_websockets.management.commands.runserver import find_dfws_asgi

    if find_dfws_asgi() is not None:
        get_commands()["runserver"] = "df_websockets"

