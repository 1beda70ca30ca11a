"""ASGI application used by ``manage.py runserver`` under dfws-asgi: the
project's ``ASGI_APPLICATION`` plus static files (DEBUG + staticfiles), as
Django's and daphne's runserver do."""
from df_websockets.load import setup_django

setup_django()

from django.conf import settings  # noqa: E402
from django.utils.module_loading import import_string  # noqa: E402


def _build():
    path = getattr(settings, "ASGI_APPLICATION", None) or "df_websockets.routing.application"
    app = import_string(path)
    from django.apps import apps

    if settings.DEBUG and apps.is_installed("django.contrib.staticfiles"):
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

        app = ASGIStaticFilesHandler(app)
    return app


application = _build()
