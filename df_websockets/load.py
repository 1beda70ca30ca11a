"""Load the Celery application used by df_websockets' Celery task."""
import importlib
import logging
import os
import threading

logger = logging.getLogger("df_websockets.signals")
_lock = threading.Lock()
_celery_app = None


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
