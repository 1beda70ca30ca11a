"""What dfws-asgi does for the Django project around the application.

In the ``--workers N`` supervisor, before it forks (``prepare_supervisor``):
the project's settings module is imported — never the application: the
supervisor must fork clean workers, and an application (its
``django.setup()``, its apps' ``ready()``) may open connections or start
threads that a fork would copy half-made. A settings module is plain data
in almost every project. It is ``$DJANGO_SETTINGS_MODULE``, else the one the
application module names in ``os.environ.setdefault(...)`` (read from its
source, which is not imported), else none. With it:

- logging is configured from the project's ``LOGGING``, as
  ``django.setup()`` does in the workers, so that the supervisor's own
  lines go where the project sends its logs;
- an in-process channel layer (df_websockets' default embedded layer,
  Channels' ``InMemoryChannelLayer``) is refused once, with the fix: each
  worker would have a layer of its own.

In each worker, once the application is loaded (``refuse_to_start``):
Django's system checks run (those of ``manage.py check``, without the
database ones), are logged, and an ``Error`` stops the worker; the
in-process layer is refused there too (when no settings module was found
before the fork).
"""
import logging
import os
import re
import sys

logger = logging.getLogger("dfws.server")

SKIP_CHECKS_ENV = "DFWS_SKIP_CHECKS"  # set by manage.py runserver, which ran them
EMBEDDED_LAYER = "df_websockets.layers.EmbeddedChannelLayer"
_SETDEFAULT = re.compile(
    r"""environ\.setdefault\(\s*["']DJANGO_SETTINGS_MODULE["']\s*,\s*["']([\w.]+)["']\s*\)""")


def in_process_layer(installed_apps, channel_layers):
    """The backend of the project's default channel layer when it lives in
    one process, else None (a shared layer, or no layer in use)."""
    from dfws.layer_config import to_dict

    config = (channel_layers or {}).get("default")
    if not config:
        # df_websockets' AppConfig installs its embedded layer
        if not any(app == "df_websockets" or app.startswith("df_websockets.")
                   for app in installed_apps or ()):
            return None
        config = {"BACKEND": EMBEDDED_LAYER}
    try:
        kind = to_dict(config)["kind"]
    except ValueError:
        return None  # dfws.runner.start_channel_layer says what is wrong
    return config.get("BACKEND") if kind == "memory" else None


def workers_refusal(workers, backend):
    return (
        "--workers %d with the in-process channel layer %s: each worker would have a layer "
        "of its own, and a message sent in one worker (a trigger, a group_send) would never "
        "reach the windows and consumers of the others. Use one worker (--workers 1), or a "
        "layer every worker shares: CHANNEL_LAYERS = {'default': {'BACKEND': "
        "'channels_redis.core.RedisChannelLayer', 'CONFIG': {'hosts': "
        "['redis://127.0.0.1:6379']}}} (pip install 'dfws[redis]'), with a shared CACHES "
        "(e.g. django.core.cache.backends.redis.RedisCache)" % (workers, backend)
    )


# ---- the supervisor ----------------------------------------------------------


def _module_source(dotted):
    """Source of module ``dotted`` found on sys.path, without importing it or
    its packages; None when not found."""
    parts = dotted.split(".")
    for entry in sys.path:
        base = os.path.join(entry or os.getcwd(), *parts)
        for candidate in (base + ".py", os.path.join(base, "__init__.py")):
            try:
                with open(candidate, encoding="utf-8") as f:
                    return f.read()
            except (OSError, UnicodeDecodeError):
                continue
    return None


def settings_module_name(app_path):
    """The Django settings module a worker will use for ``app_path``
    ("module:attr"), found without importing anything; None if unknown."""
    name = os.environ.get("DJANGO_SETTINGS_MODULE")
    if name:
        return name
    source = _module_source(app_path.partition(":")[0])
    match = _SETDEFAULT.search(source or "")
    return match.group(1) if match else None


def prepare_supervisor(opts):
    """Before the fork: logging from the project's LOGGING, and why the
    workers must not start (a message), or None."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)  # as dfws.runner does for the application
    name = settings_module_name(opts["app"])
    if not name:
        return None
    # what the application module would set (the workers inherit it)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", name)
    try:
        from django.conf import settings
        from django.utils.log import configure_logging

        settings.INSTALLED_APPS  # imports the settings module
    except Exception as exc:  # the workers will report it with a traceback
        logger.warning("supervisor: cannot read the settings module %s: %s", name, exc)
        return None
    try:
        configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)
    except Exception as exc:
        logger.warning("supervisor: logging not configured from %s.LOGGING: %s", name, exc)
    backend = in_process_layer(settings.INSTALLED_APPS, getattr(settings, "CHANNEL_LAYERS", None))
    return workers_refusal(opts["workers"], backend) if backend else None


# ---- each worker --------------------------------------------------------------


def django_ready():
    """Whether the application set Django up (its app registry is ready)."""
    if "django" not in sys.modules:
        return False
    from django.apps import apps
    from django.conf import settings

    return settings.configured and apps.ready


def run_system_checks():
    """Run Django's system checks and log what they say. Returns why the
    worker must not start (an unsilenced Error), or None."""
    if os.environ.get(SKIP_CHECKS_ENV) or not django_ready():
        return None
    from django.core import checks

    try:
        messages = checks.run_checks(include_deployment_checks=False)
    except Exception:
        logger.exception("Django's system checks failed to run")
        return "Django's system checks failed to run (traceback above)"
    serious = 0
    for message in messages:
        if message.is_silenced():
            continue
        if message.is_serious():
            serious += 1
            logger.error("system check: %s", message)
        elif message.level >= checks.WARNING:
            logger.warning("system check: %s", message)
        else:
            logger.info("system check: %s", message)
    if not serious:
        return None
    return ("Django's system checks found %d error%s (logged above): fix them, or list their "
            "ids in SILENCED_SYSTEM_CHECKS" % (serious, "" if serious == 1 else "s"))


def refuse_to_start(opts):
    """Why this worker must not serve the loaded application: a list of
    reasons, empty when it may."""
    problems = [run_system_checks()]
    if opts["workers"] > 1 and django_ready():
        from django.conf import settings

        backend = in_process_layer(settings.INSTALLED_APPS,
                                   getattr(settings, "CHANNEL_LAYERS", None))
        problems.append(workers_refusal(opts["workers"], backend) if backend else None)
    return [problem for problem in problems if problem]
