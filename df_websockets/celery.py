"""The Celery application (``celery -A df_websockets worker``), configured from
Django settings, with task autodiscovery in every installed app.

Celery settings are read under both spellings projects use: Celery's old
names (``BROKER_URL``, ``CELERY_RESULT_BACKEND``…, what upstream reads) and the
``CELERY_``-prefixed names of Celery's Django guide (``CELERY_BROKER_URL``,
``CELERY_TASK_DEFAULT_QUEUE``…), which win when both are set.

DJANGO_SETTINGS_MODULE must be set (``manage.py worker``/``manage.py celery`` do it).
"""
import logging.config
from types import SimpleNamespace

from celery import Celery
from celery.app.defaults import DEFAULTS


def get_project_module_name():
    """The Celery app's name: ``settings.DF_MODULE_NAME``, else ``"df_websockets"``."""
    from django.conf import settings

    try:
        return getattr(settings, "DF_MODULE_NAME", None) or "df_websockets"
    except Exception:  # settings not configured
        return "df_websockets"


def get_celery_settings():
    """Celery's configuration from Django's settings, with Celery's lowercase
    names (so Celery never sees old and new names mixed)."""
    from django.conf import settings

    try:
        from celery.app.defaults import _TO_NEW_KEY
    except ImportError:  # a Celery without the old names
        _TO_NEW_KEY = {}
    config = {}
    for old_name, new_name in _TO_NEW_KEY.items():
        if hasattr(settings, old_name):
            config[new_name] = getattr(settings, old_name)
    for new_name in DEFAULTS:
        django_name = "CELERY_" + new_name.upper()
        if hasattr(settings, django_name):
            config[new_name] = getattr(settings, django_name)
    return SimpleNamespace(**config)


def setup_celery_logging(**kwargs):
    """Configure logging from Django's ``LOGGING`` setting (when set).

    Upstream connects it to ``celery.signals.setup_logging``, which replaces
    Celery's own logging set-up (``-l``, ``--logfile``); ours is not
    connected. Connect it in a project to get upstream's behaviour:
    ``celery.signals.setup_logging.connect(setup_celery_logging)``.
    """
    from django.conf import settings

    if settings.LOGGING:
        logging.config.dictConfig(settings.LOGGING)


app = Celery(get_project_module_name())
app.config_from_object(get_celery_settings())
app.autodiscover_tasks()
