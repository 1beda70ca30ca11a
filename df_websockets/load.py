"""Load what df_websockets needs before it can work: Django's app registry
(for the ASGI entry points a server imports first) and the Celery application
used by df_websockets' Celery task."""
import importlib
import logging
import os
import threading

logger = logging.getLogger("df_websockets.signals")
_lock = threading.Lock()
_celery_app = None


def setup_django():
    """Populate Django's app registry unless it is populated (or being
    populated: a module imported from an app's ``ready()``).

    What ``django.core.asgi.get_asgi_application()`` does, for modules that a
    server imports before anything else, such as ``df_websockets.routing``
    (``dfws-asgi df_websockets.routing:application``, upstream's README).
    The script prefix is left to the ASGI handler, which sets it per request.
    """
    from django.apps import apps

    if apps.ready or apps.loading:
        return
    import django
    from django.conf import ENVIRONMENT_VARIABLE, settings
    from django.core.exceptions import ImproperlyConfigured

    if not settings.configured and not os.environ.get(ENVIRONMENT_VARIABLE):
        raise ImproperlyConfigured(
            "df_websockets needs the project's settings: set %s, e.g. "
            "%s=myproject.settings dfws-asgi df_websockets.routing:application"
            % (ENVIRONMENT_VARIABLE, ENVIRONMENT_VARIABLE)
        )
    django.setup(set_prefix=False)


def load_celery():
    """Import the Celery app named by the ``CELERY_APP`` setting (default
    ``df_websockets``, i.e. ``df_websockets.celery.app``) so that shared tasks
    bind to it. Returns the app, or None outside celery mode / without Celery."""
    global _celery_app
    from df_websockets import ws_settings
    from df_websockets.constants import WORKER_CELERY

    if _celery_app is not None:
        return _celery_app
    try:
        if ws_settings.get_worker_mode() != WORKER_CELERY:
            return None
    except Exception:
        return None
    with _lock:
        if _celery_app is not None:
            return _celery_app
        name = ws_settings.CELERY_APP
        os.environ.setdefault("CELERY_APP", name)
        module = None
        for candidate in ("%s.celery" % name, name):
            try:
                module = importlib.import_module(candidate)
            except ImportError:
                continue
            app = getattr(module, "app", None) or getattr(module, "celery", None)
            if app is not None and hasattr(app, "send_task"):
                _celery_app = app
                break
        if _celery_app is None:
            logger.error("cannot load the Celery app %r (CELERY_APP setting)", name)
        return _celery_app
