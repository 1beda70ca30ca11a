"""ASGI application used by ``manage.py runserver`` under dfws-asgi: the
project's ``ASGI_APPLICATION`` plus static files (DEBUG + staticfiles), as
Django's and daphne's runserver do.

When runserver asks for it (``$DFWS_RUNSERVER_MODULES``), the server also
lists the files of its Python modules there, as Django's autoreloader would
watch them in this process, and again whenever a module was imported since
(a view's first request, a signal handler's lazy import): runserver's
reloader watches them (see the runserver command).
"""
import logging
import os
import sys
import threading

from df_websockets.load import setup_django

setup_django()

from django.conf import settings  # noqa: E402
from django.utils.module_loading import import_string  # noqa: E402

from df_websockets.constants import RUNSERVER_MODULES_ENV as MODULES_ENV  # noqa: E402

POLL_SECONDS = 1.0
logger = logging.getLogger("df_websockets.devserver")


def _build():
    path = getattr(settings, "ASGI_APPLICATION", None) or "df_websockets.routing.application"
    app = import_string(path)
    from django.apps import apps

    if settings.DEBUG and apps.is_installed("django.contrib.staticfiles"):
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

        app = ASGIStaticFilesHandler(app)
    return app


def write_module_files(path):
    """Write the files Django's autoreloader watches in this process to
    ``path`` (atomically: runserver reads it from another process): a line
    ``pid <pid>``, then ``<mtime_ns> <file>`` per file, its modification
    time when it was listed (runserver reloads at once when it differs: the
    file changed after this process loaded it)."""
    from django.utils.autoreload import iter_all_python_module_files

    lines = ["pid %d" % os.getpid()]
    files = {str(f) for f in iter_all_python_module_files()} | set(_unimported_app_modules)
    for file in sorted(files):
        try:
            lines.append("%d %s" % (os.stat(file).st_mtime_ns, file))
        except OSError:
            continue
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


_unimported_app_modules = []  # files of the apps' signals/forms modules that failed to import


def find_unimported_app_modules():
    """The apps' ``signals`` and ``forms`` modules that exist but are not
    imported (import_signals_and_functions logged why, e.g. a SyntaxError):
    fixing one must reload the server too."""
    from importlib.util import find_spec

    from django.apps import apps

    files = []
    for config in apps.get_app_configs():
        for name in ("signals", "forms"):
            dotted = "%s.%s" % (config.name, name)
            if dotted in sys.modules:
                continue
            try:
                spec = find_spec(dotted)
            except Exception:
                continue
            if spec is not None and spec.origin and os.path.isfile(spec.origin):
                files.append(spec.origin)
    return files


def report_modules(path, interval=POLL_SECONDS):
    """Write the module files now (before the server serves: the times
    listed are those of the files just loaded), then, in a daemon thread,
    again each time ``sys.modules`` grew."""
    def write():
        try:
            write_module_files(path)
        except OSError as exc:  # runserver then watches its own modules only
            logger.warning("cannot list the server's modules in %s: %s", path, exc)

    count = len(sys.modules)
    write()

    def loop():
        seen = count
        event = threading.Event()
        while not event.wait(interval):
            if len(sys.modules) != seen:
                seen = len(sys.modules)
                write()

    threading.Thread(target=loop, name="dfws-devserver-modules", daemon=True).start()


application = _build()

if os.environ.get(MODULES_ENV):
    # the apps' signals and forms modules, which dfws-asgi imports when it
    # serves the native socket: listed from the first report on
    from df_websockets.tasks import import_signals_and_functions

    import_signals_and_functions()
    _unimported_app_modules.extend(find_unimported_app_modules())
    report_modules(os.environ[MODULES_ENV])
