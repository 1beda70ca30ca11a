"""``--django-static``: Django's collected static files served from C.

The C server serves a URL prefix from a directory (``--static-path-route`` /
``--static-path-mount``, server/static.c). For a Django project that uses
``django.contrib.staticfiles``, ``--django-static`` mounts ``STATIC_URL`` on
``STATIC_ROOT``, where ``manage.py collectstatic`` gathers every app's files
(df_websockets' ``js/df_websockets.min.js`` among them). The settings are
read once per worker, after the application loaded them; a project where
this cannot work is refused at start-up with the fix.
"""
import os
import sys
from urllib.parse import urlsplit


class StaticConfigError(Exception):
    pass


def django_static_mount():
    """(route, directory) to serve for --django-static; StaticConfigError
    says why there is none."""
    settings = None
    if "django" in sys.modules:
        from django.conf import settings as s

        settings = s if s.configured else None
    if settings is None:
        raise StaticConfigError(
            "--django-static serves a Django project's STATIC_ROOT, and the application "
            "configured no Django settings (DJANGO_SETTINGS_MODULE); use --static-path-route "
            "and --static-path-mount DIR instead")
    if "django.contrib.staticfiles" not in settings.INSTALLED_APPS:
        raise StaticConfigError(
            "--django-static: django.contrib.staticfiles is not in INSTALLED_APPS; add it (and "
            "run `python manage.py collectstatic`), or use --static-path-mount DIR")
    url = settings.STATIC_URL or ""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        raise StaticConfigError(
            "--django-static: STATIC_URL is %r, another host: nothing to serve here" % url)
    route = parts.path.rstrip("/")
    if not route.startswith("/"):
        raise StaticConfigError(
            "--django-static: STATIC_URL %r must be a path below the site, such as /static/"
            % url)
    root = settings.STATIC_ROOT
    if not root:
        raise StaticConfigError(
            "--django-static: STATIC_ROOT is not set; set it in the settings (e.g. "
            "STATIC_ROOT = BASE_DIR / \"staticfiles\") and run `python manage.py collectstatic`")
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise StaticConfigError(
            "--django-static: STATIC_ROOT %s does not exist; run `python manage.py "
            "collectstatic` first" % root)
    return route, root
