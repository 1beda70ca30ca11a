"""``manage.py runserver [addr:port]`` through the dfws-asgi server.

Keeps Django's autoreloader, with three processes:

- the first ``runserver`` process (Django's reloader parent) opens the
  listening socket once and keeps it: every server started afterwards
  serves that socket (``dfws-asgi --fd``), so the port never closes across
  reloads — a browser that connects while the server restarts waits in the
  socket's backlog instead of being refused;
- each reloaded ``runserver`` child runs the system checks, then
  ``dfws-asgi df_websockets.devserver:application --fd N`` (which serves
  ``settings.ASGI_APPLICATION`` and, with DEBUG, static files), and stops it
  when it exits;
- the server writes the files of its Python modules (the apps' ``signals``
  and ``forms``, consumers, views, and what they import) to a file; the
  child watches those it does not import itself (Django's reloader watches
  the others), so editing any of them restarts the child, hence the server.

The binary is looked up in ``$DFWS_ASGI``, next to ``sys.executable``, then
on PATH; without it, Django's runserver is used with a warning. The command
wins over staticfiles' and daphne's wherever ``df_websockets`` stands in
INSTALLED_APPS when the binary is installed
(``df_websockets.apps.claim_runserver``).
"""
import atexit
import errno
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from datetime import datetime

from django.conf import settings
from django.core.management.commands.runserver import Command as RunserverCommand
from django.utils import autoreload

from df_websockets.constants import RUNSERVER_MODULES_ENV as MODULES_ENV
from dfws.binary import find_dfws_asgi
from dfws.project import SKIP_CHECKS_ENV  # the server: runserver ran the checks

DEV_APPLICATION = "df_websockets.devserver:application"
# set by the first runserver process for the reloaded ones and their server
FD_ENV = "DFWS_RUNSERVER_FD"
POLL_SECONDS = 1.0  # as Django's StatReloader


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


def read_module_report(path):
    """(server pid, {file: mtime_ns when the server listed it}) from the
    report df_websockets.devserver writes; (None, {}) when unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return None, {}
    if not lines or not lines[0].startswith("pid "):
        return None, {}
    files = {}
    for line in lines[1:]:
        mtime, _, file = line.partition(" ")
        if file and mtime.isdigit():
            files[file] = int(mtime)
    return int(lines[0][4:]), files


class ServerModules:
    """Watches the modules of the server that this process does not import
    itself (Django's reloader watches those): their files come from the
    server's report (``read_module_report``), re-read when it changes.

    A file changed when its modification time differs from the one the
    current server listed (it changed after that server loaded it), or,
    before that server's first report, from the one seen at start (the list
    of the previous server is taken at once: an edit made while the new
    server starts is not missed). Then ``on_change(file)``.
    """

    def __init__(self, path, on_change):
        self.path = path
        self.on_change = on_change
        self.server_pid = None  # set once the server is started
        self._stamp = None
        self._baseline = {}  # file -> mtime_ns it must keep
        self._current_report = False

    def _read(self):
        try:
            stamp = os.stat(self.path).st_mtime_ns
        except OSError:
            return
        if stamp == self._stamp:
            return
        pid, files = read_module_report(self.path)
        if pid is None:
            return  # being replaced: read it next time
        self._stamp = stamp
        own = {str(f) for f in autoreload.iter_all_python_module_files()}
        files = {f: m for f, m in files.items() if f not in own}
        if pid == self.server_pid:
            if not self._current_report:  # the server's own times replace the first sight
                self._baseline = {}
                self._current_report = True
            for file, mtime in files.items():
                self._baseline.setdefault(file, mtime)
        elif not self._current_report:
            for file in files:
                if file not in self._baseline:
                    self._baseline[file] = _mtime(file)

    def poll(self):
        """Read the report if it changed; ``on_change`` for a changed file."""
        self._read()
        for file, mtime in self._baseline.items():
            if _mtime(file) != mtime:
                self.on_change(file)
                return True
        return False

    def run(self, stop):
        """Poll until ``stop`` (an Event) is set or a file changed."""
        while not self.poll():
            if stop.wait(POLL_SECONDS):
                return


def _mtime(file):
    try:
        return os.stat(file).st_mtime_ns
    except OSError:
        return None


class Command(RunserverCommand):
    help = "Start the development server through dfws-asgi (HTTP + websockets)."

    def build_command(self, binary, fd):
        return [binary, DEV_APPLICATION, "--fd", str(fd), "--shutdown-timeout", "1"]

    def run(self, **options):
        if find_dfws_asgi() is not None and FD_ENV not in os.environ:
            self.listen()
        super().run(**options)

    def listen(self):
        """Open the listening socket for this process and the ones it starts."""
        family = socket.AF_INET6 if self.use_ipv6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.addr, int(self.port)))
            sock.listen(1024)
        except OSError as e:
            messages = {
                errno.EACCES: "You don't have permission to access that port.",
                errno.EADDRINUSE: "That port is already in use.",
                errno.EADDRNOTAVAIL: "That IP address can't be assigned to.",
            }
            self.stderr.write("Error: %s" % messages.get(e.errno, e))
            sys.exit(1)
        sock.set_inheritable(True)
        self._socket = sock  # kept open as long as this process lives
        modules = tempfile.NamedTemporaryFile(prefix="dfws-runserver-", suffix=".modules",
                                              delete=False)
        modules.close()
        os.unlink(modules.name)  # the server creates it
        atexit.register(lambda: os.path.exists(modules.name) and os.unlink(modules.name))
        os.environ[FD_ENV] = str(sock.fileno())
        os.environ[MODULES_ENV] = modules.name

    def inner_run(self, *args, **options):
        binary = find_dfws_asgi()
        if binary is None:
            self.stderr.write(
                "Warning: the dfws-asgi binary was not found (next to %s or on PATH); "
                "falling back to Django's runserver, without websockets.\n" % sys.executable
            )
            return super().inner_run(*args, **options)
        autoreload.raise_last_exception()
        if not options.get("skip_checks"):
            self.stdout.write("Performing system checks...\n\n")
            self.check(display_num_errors=True)
        self.check_migrations()
        fd = int(os.environ[FD_ENV])
        port = socket.socket(fileno=os.dup(fd))
        bound_port = port.getsockname()[1]
        port.close()
        self.stdout.write(datetime.now().strftime("%B %d, %Y - %X"))
        self.stdout.write(
            "Django version %s, using settings %r\n"
            "Starting dfws-asgi development server at http://%s:%s/ (application %s)\n"
            "Quit the server with CONTROL-C."
            % (self.get_version(), settings.SETTINGS_MODULE,
               "[%s]" % self.addr if self._raw_ipv6 else self.addr, bound_port,
               asgi_target())
        )
        env = dict(os.environ)
        env[SKIP_CHECKS_ENV] = "1"
        if settings.SETTINGS_MODULE:
            env.setdefault("DJANGO_SETTINGS_MODULE", settings.SETTINGS_MODULE)
        stop_watching = threading.Event()
        process = None

        def stop():
            stop_watching.set()
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()

        def reload(file):
            # what Django's reloader does (trigger_reload), from this thread
            autoreload.logger.info("%s changed, reloading.", file)
            stop()
            os._exit(3)

        modules = ServerModules(env[MODULES_ENV], on_change=reload)
        if options.get("use_reloader"):
            threading.Thread(target=modules.run, args=(stop_watching,),
                             name="dfws-runserver-modules", daemon=True).start()
        else:
            env.pop(MODULES_ENV, None)  # nothing watches it
        process = subprocess.Popen(self.build_command(binary, fd), env=env, pass_fds=(fd,),
                                   preexec_fn=_die_with_parent)
        modules.server_pid = process.pid
        atexit.register(stop)
        try:
            code = process.wait()
        except KeyboardInterrupt:
            stop()
            sys.exit(0)
        if code != 0:
            # keep the reloader watching: fixing the code restarts the server
            self.stderr.write("dfws-asgi exited with code %s\n" % code)
