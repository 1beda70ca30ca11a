"""The Celery application (``celery -A df_websockets worker``), configured from
Django settings (``CELERY_*`` names, e.g. ``CELERY_BROKER_URL``), with task
autodiscovery in every installed app.

DJANGO_SETTINGS_MODULE must be set (``manage.py worker``/``manage.py celery`` do it).
"""
from celery import Celery

def _app_name():
    from django.conf import settings

    try:
        return getattr(settings, "DF_MODULE_NAME", None) or "df_websockets"
    except Exception:
        return "df_websockets"


app = Celery(_app_name())
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
