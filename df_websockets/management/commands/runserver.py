"""``manage.py runserver [addr:port]`` through the dfws-asgi server.

Keeps Django's autoreloader: each reloaded child runs
``dfws-asgi df_websockets.devserver:application -b ADDR -p PORT`` (which
serves ``settings.ASGI_APPLICATION`` and, with DEBUG, static files) and stops
it when the child exits. The binary is looked up in ``$DFWS_ASGI``, next to
``sys.executable``, then on PATH; without it, Django's runserver is used with
a warning. The command wins over staticfiles' and daphne's wherever
``df_websockets`` stands in INSTALLED_APPS when the binary is installed
(``df_websockets.apps.claim_runserver``).
"""
import atexit
import os
import shutil
import signal
import subprocess
import sys
from datetime import datetime

from django.conf import settings
from django.core.management.commands.runserver import Command as RunserverCommand
from django.utils import autoreload

BINARY_NAME = "dfws-asgi"
DEV_APPLICATION = "df_websockets.devserver:application"


def find_dfws_asgi():
    """Path of the dfws-asgi binary, or None."""
    candidate = os.environ.get("DFWS_ASGI")
    if candidate and os.access(candidate, os.X_OK):
        return candidate
    candidate = os.path.join(os.path.dirname(sys.executable), BINARY_NAME)
    if os.access(candidate, os.X_OK):
        return candidate
    return shutil.which(BINARY_NAME)


def asgi_target(path=None):
    """``"pkg.mod.attr"`` (ASGI_APPLICATION style) -> ``"pkg.mod:attr"``."""
    path = path or getattr(settings, "ASGI_APPLICATION", None) or "df_websockets.routing.application"
    if ":" in path:
        return path
    module, _, attr = path.rpartition(".")
    return "%s:%s" % (module, attr)


def _die_with_parent():
    """In the child: get SIGTERM when this runserver process dies (Linux)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Command(RunserverCommand):
    help = "Start the development server through dfws-asgi (HTTP + websockets)."

    def build_command(self, binary):
        return [binary, DEV_APPLICATION, "-b", self.addr, "-p", str(self.port)]

    def inner_run(self, *args, **options):
        binary = find_dfws_asgi()
        if binary is None:
            self.stderr.write(
                "Warning: the dfws-asgi binary was not found (next to %s or on PATH); "
                "falling back to Django's runserver, without websockets.\n" % sys.executable
            )
            return super().inner_run(*args, **options)
        autoreload.raise_last_exception()
        self.stdout.write("Performing system checks...\n\n")
        self.check(display_num_errors=True)
        self.check_migrations()
        self.stdout.write(datetime.now().strftime("%B %d, %Y - %X"))
        self.stdout.write(
            "Django version %s, using settings %r\n"
            "Starting dfws-asgi development server at http://%s:%s/ (application %s)\n"
            "Quit the server with CONTROL-C."
            % (self.get_version(), settings.SETTINGS_MODULE,
               "[%s]" % self.addr if self._raw_ipv6 else self.addr, self.port,
               asgi_target())
        )
        command = self.build_command(binary)
        env = dict(os.environ)
        if settings.SETTINGS_MODULE:
            env.setdefault("DJANGO_SETTINGS_MODULE", settings.SETTINGS_MODULE)
        process = subprocess.Popen(command, env=env, preexec_fn=_die_with_parent)

        def stop():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()

        atexit.register(stop)
        try:
            code = process.wait()
        except KeyboardInterrupt:
            stop()
            sys.exit(0)
        if code != 0:
            # keep the reloader watching: fixing the code restarts the server
            self.stderr.write("dfws-asgi exited with code %s\n" % code)
