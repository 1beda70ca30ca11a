"""What a dfws-asgi worker does.

C parsed the command line and opened the listening socket (dfws.__main__);
this module loads the application, creates the uvloop event loop whose
libuv loop the C server shares, runs lifespan, serves until SIGTERM/SIGINT
and shuts down gracefully. Everything here runs once per worker, never per
request.

Why a worker stops decides how it drains (docs/deploy.md):

- "stop" (SIGTERM/SIGINT, or its supervisor is gone): WebSockets close with
  1001, --shutdown-timeout bounds the wait;
- "restart" (its supervisor replaces it: SIGHUP, --reload, recycling; a
  replacement already serves): WebSockets close with 1012, connections
  accepted but still unused get their first request answered,
  --graceful-timeout bounds the wait;
- "reexec" (SIGHUP to a lone worker, no supervisor): drains as for a
  restart while its listening socket stays open, then executes itself again
  in the same process (same pid), which takes the socket back. Clients that
  connect meanwhile wait in the listen backlog; none is refused.
"""
import asyncio
import importlib
import logging
import os
import random
import signal
import sys
import time

from dfws.binding import load_extension
from dfws.lifespan import Lifespan

_dfws = load_extension()

logger = logging.getLogger("dfws.server")
access_logger = logging.getLogger("dfws.access")


class AppLoadError(Exception):
    pass


def load_app(path):
    """Import "module:attr" (attr may be dotted) like daphne does."""
    module_name, sep, attrs = path.partition(":")
    if not sep or not module_name or not attrs:
        raise AppLoadError(
            f'application path "{path}" must be of the form "module:attribute"'
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise AppLoadError(f'could not import module "{module_name}" ({exc})') from None
        raise
    obj = module
    for attr in attrs.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise AppLoadError(
                f'module "{module_name}" has no attribute "{attrs}"'
            ) from None
    return obj


def log_exception(message, exc):
    logger.error("%s", message, exc_info=(type(exc), exc, exc.__traceback__))


def configure_logging(opts):
    level = {0: logging.WARNING, 1: logging.INFO}.get(opts["verbosity"], logging.DEBUG)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format=opts["log_fmt"], stream=sys.stderr)
    logging.getLogger("dfws").setLevel(level)
    # daphne's rule: --access-log PATH or -, else stdout when verbosity >= 1
    dest = opts["access_log"] or ("-" if opts["verbosity"] >= 1 else None)
    access_logger.propagate = False
    access_logger.setLevel(logging.INFO)
    global _access_handler
    if dest:
        handler = (
            logging.StreamHandler(sys.stdout)
            if dest == "-"
            else logging.FileHandler(dest, encoding="utf-8")
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
        access_logger.addHandler(handler)
        _access_handler = handler
    else:
        access_logger.disabled = True


_access_handler = None  # the dfws.access handler configure_logging made


def route_access_log(server):
    """Where the C server writes access-log lines, decided once the
    application (and with it the project's LOGGING) is loaded: straight into
    the stream of the handler configure_logging made, with no Python per
    line, while it is the logger's only handler; through `logging`, one
    record per line, when the project configured its own handlers (or
    filters) for `dfws.access`."""
    handler = _access_handler
    if handler is None:
        server.set_access_log("off")
    elif access_logger.handlers == [handler] and not access_logger.filters \
            and not handler.filters:
        handler.flush()
        server.set_access_log("fd", handler.stream.fileno())
    else:
        server.set_access_log("logging")


def describe_listener(opts):
    if opts["fd"] >= 0:
        return f"file descriptor {opts['fd']}"
    if opts["unix_socket"]:
        return f"unix:{opts['unix_socket']}"
    host = opts["bind"]
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{opts['port']}"


async def _wait_for_requests(server, timeout, restart=False):
    def left():
        n = server.active_requests() + server.websockets()
        # a restart also lets unused connections bring their first request
        return n or (server.connections() if restart else 0)

    deadline = time.monotonic() + timeout
    while left() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    if left():
        logger.warning("%s timeout: closing %d unfinished requests and WebSockets",
                       "graceful" if restart else "shutdown", left())


async def _unless(aw, halt):
    """Runs `aw` unless the future `halt` is set first: (True, its result)
    or (False, None), `aw` then cancelled."""
    task = asyncio.ensure_future(aw)
    await asyncio.wait([task, halt], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        return True, task.result()
    task.cancel()
    await asyncio.wait([task])
    return False, None


async def _lifespan_shutdown(lifespan, timeout, halt):
    """Lifespan shutdown, bounded by --shutdown-timeout and cut short by
    another stop signal: an app that never answers cannot keep the worker."""
    try:
        done, _ = await _unless(asyncio.wait_for(lifespan.shutdown(), timeout or None), halt)
        if not done:
            logger.warning("lifespan shutdown abandoned: stop signal received again")
    except asyncio.TimeoutError:
        logger.warning("lifespan shutdown not answered within %g s (--shutdown-timeout)", timeout)


def _cancel_remaining(loop):
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in tasks:
        t.cancel()
    if tasks:
        loop.run_until_complete(asyncio.wait(tasks, timeout=5))


def main():
    opts = _dfws.options()
    configure_logging(opts)
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        app = load_app(opts["app"])
    except AppLoadError as exc:
        print(f"dfws-asgi: error: {exc}", file=sys.stderr)
        return 1
    from asgiref.compatibility import guarantee_single_callable

    from dfws.project import refuse_to_start

    app = guarantee_single_callable(app)
    problems = refuse_to_start(opts)
    static_mount = None
    if opts["django_static"]:
        from dfws.static import StaticConfigError, django_static_mount

        try:
            static_mount = django_static_mount()
        except StaticConfigError as exc:
            problems.append(str(exc))
    for problem in problems:
        print(f"dfws-asgi: error: {problem}", file=sys.stderr)
    if problems:
        return 1

    import uvloop

    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    proc = _dfws.process_info()
    channel = proc["channel"]  # to the supervisor, or -1
    stop = loop.create_future()
    # SIGTERM/SIGINT stop the worker in every phase: the first one ends a
    # lifespan startup that has not answered, one more ends a lifespan
    # shutdown that has not
    stop_signal = loop.create_future()
    late_stop = loop.create_future()

    def request_stop(why, what):
        if not stop.done():
            stop.set_result((why, what))

    late = []  # stop signals that came once the worker was already stopping

    def on_signal():
        signum = _dfws.take_pending_signal()
        if not signum:
            return
        if signum in STOP_SIGNALS:
            for f in (stop_signal, late_stop) if stop.done() else (stop_signal,):
                if not f.done():
                    f.set_result(signum)
        if stop.done():
            late.append(signum)
        elif signum != signal.SIGHUP:
            request_stop("stop", "received " + signal.Signals(signum).name)
        elif channel >= 0:
            logger.info("SIGHUP ignored: the supervisor (pid %d) restarts the workers",
                        os.getppid())
        else:
            request_stop("reexec", "received SIGHUP")

    # SIGTERM, SIGINT and SIGHUP keep the C handler that took them during
    # start-up (asgi/startup.c) for the worker's whole life: it records the
    # signal and wakes the loop through a pipe. Unlike loop.add_signal_handler
    # (uvloop reads its wake-up fd only while the loop runs), none is lost
    # between two runs of the loop, and none ever meets the default action.
    wakeup = _dfws.signal_wakeup_fd()
    loop.add_reader(wakeup, _drain_pipe_then, wakeup, on_signal)
    on_signal()  # what came during start-up

    lifespan = Lifespan(app, _dfws.lifespan_mode(), opts["lifespan_timeout"])
    answered, started = loop.run_until_complete(_unless(lifespan.startup(), stop_signal))
    if not answered:
        logger.info("%s during lifespan startup, stopping", stop.result()[1])
        _cancel_remaining(loop)
        loop.remove_reader(wakeup)
        loop.close()
        return 0
    if not started:
        loop.remove_reader(wakeup)
        loop.close()
        return 1
    try:
        server = _dfws.Server(
            loop, app, lifespan.state if lifespan.supported else None, log_exception
        )
    except Exception as exc:
        print(f"dfws-asgi: error: {exc}", file=sys.stderr)
        loop.run_until_complete(lifespan.shutdown())
        return 1
    try:
        if static_mount:
            server.add_static(*static_mount)
        if start_channel_layer(server, loop) and opts["native_websockets"]:
            start_native(server, loop)
        start_django_fast_path(server, app, opts)
        route_access_log(server)
    except Exception as exc:
        print(f"dfws-asgi: error: {exc}", file=sys.stderr)
        server.close()
        loop.run_until_complete(lifespan.shutdown())
        return 1
    if channel >= 0:
        loop.add_reader(channel, _on_supervisor, loop, channel, request_stop)
    if proc["limit_max_requests"]:
        limit = proc["limit_max_requests"] + random.randint(0, proc["limit_max_requests_jitter"])
        server.retire_after(limit)
        logger.info("this worker asks for a replacement after %d requests", limit)
    logger.info("dfws-asgi %s serving %s on %s (pid %d)", _version(), opts["app"],
                describe_listener(opts), os.getpid())
    _dfws.notify_ready()
    why, what = loop.run_until_complete(stop)
    restart = why != "stop"
    logger.info("%s, %s", what, {"stop": "shutting down", "restart": "draining",
                                 "reexec": "restarting in place"}[why])
    # the listener is closed below; a restart in place keeps the socket open
    keep_fd = os.dup(proc["listen_fd"]) if why == "reexec" else -1
    server.shutdown(restart)
    loop.run_until_complete(_wait_for_requests(
        server, proc["graceful_timeout"] if restart else opts["shutdown_timeout"], restart))
    server.close()
    loop.run_until_complete(asyncio.sleep(0))
    loop.run_until_complete(_lifespan_shutdown(lifespan, opts["shutdown_timeout"], late_stop))
    _cancel_remaining(loop)
    loop.run_until_complete(loop.shutdown_asyncgens())
    if channel >= 0:
        loop.remove_reader(channel)
    loop.remove_reader(wakeup)
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()
    if why == "reexec":
        # blocked, they stay pending across exec(2) for the new image; one
        # that came before is a stop that wins over the restart
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS + (signal.SIGHUP,))
        late.append(_dfws.take_pending_signal())
        if not set(late) & set(STOP_SIGNALS):
            return reexec(keep_fd)
        logger.info("stopping instead of restarting: a stop signal came meanwhile")
    exit_watchdog(0, 5.0)
    return 0


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _drain_pipe_then(fd, callback):
    try:
        os.read(fd, 512)
    except (BlockingIOError, InterruptedError):
        pass
    callback()


def _on_supervisor(loop, fd, request_stop):
    """A message on the channel from the supervisor (server/supervisor.h)."""
    try:
        data = os.read(fd, 64)
    except BlockingIOError:
        return
    except OSError:
        data = b""
    if not data:
        loop.remove_reader(fd)
        logger.warning("the supervisor is gone: shutting down")
        request_stop("stop", "supervisor gone")
    elif b"D" in data:
        request_stop("restart", "a new worker replaces this one")


def reexec(listen_fd):
    """Execute this same command again in this process, on the same socket.

    Called once the worker has drained and closed everything; other threads
    (stuck sync views) end with the old image. Returns only on failure.
    """
    from dfws.__main__ import RESTART_FD_ENV

    os.set_inheritable(listen_fd, True)
    os.environ[RESTART_FD_ENV] = str(listen_fd)
    argv = list(sys.orig_argv)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(sys.executable, argv)
    except OSError as exc:
        print(f"dfws-asgi: error: cannot restart in place ({sys.executable}): {exc}",
              file=sys.stderr)
        return 1


def exit_watchdog(code, seconds):
    """Exit with `code` even if the interpreter cannot finish.

    At exit CPython joins every non-daemon thread. A sync consumer or view
    still blocked in a worker thread (waiting, through async_to_sync, for the
    loop that is now closed) would keep the process alive forever after a
    graceful shutdown; after `seconds` the process exits anyway, naming them.
    """
    import threading

    def fire():
        stuck = [t.name for t in threading.enumerate()
                 if t is not threading.current_thread() and not t.daemon]
        logger.warning("threads still running %.0f s after shutdown (%s): exiting anyway",
                       seconds, ", ".join(stuck) or "none")
        logging.shutdown()
        os._exit(code)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()


def django_settings():
    """Django's settings when the application is a configured Django project."""
    if "django" not in sys.modules:
        return None
    from django.conf import settings

    return settings if settings.configured else None


_LAYER_NAMES = {"memory": "in-process", "redis": "Redis", "pubsub": "Redis pub/sub"}


_pending = set()  # tasks of this module, referenced until they are done


async def _report_first_connection(name, deadline=6.0):
    """Once the C layer's first connections succeeded or failed (a refused
    or unresolvable host fails at once, a silent one after the 5 s connect
    timeout), warn if Redis cannot be reached. Runs on the loop: the server
    serves meanwhile, exactly as it will afterwards."""
    end = time.monotonic() + deadline
    state, why = _dfws.layer_state()
    while state == "connecting" and time.monotonic() < end:
        await asyncio.sleep(0.01)
        state, why = _dfws.layer_state()
    if state == "down":
        logger.warning(
            "channel layer: %s unreachable: %s; retrying in the background, the native "
            "socket answers 503 meanwhile", name, why,
        )
    elif state == "connecting":
        logger.warning("channel layer: %s not connected after %.0f s; still trying", name, deadline)


def start_channel_layer(server, loop):
    """Start the C channel layer from CHANNEL_LAYERS["default"].

    A project without CHANNEL_LAYERS gets the embedded in-process layer (what
    df_websockets.layers.EmbeddedChannelLayer talks to). A Redis layer (core
    or pub/sub) is started only when df_websockets is installed: its windows
    are what the C layer serves. Anything else is left to the project's own
    Python layer. A Redis that cannot be reached is said at once, with the
    reason; the layer keeps trying in the background.
    """
    from dfws.layer_config import to_dict, to_json

    settings = django_settings()
    layers = getattr(settings, "CHANNEL_LAYERS", None) if settings else None
    config = (layers or {}).get("default") or {"BACKEND": "df_websockets.layers.EmbeddedChannelLayer"}
    kind = to_dict(config)["kind"]
    wants = kind == "memory" or (
        settings is not None and "df_websockets" in getattr(settings, "INSTALLED_APPS", ())
    )
    if kind == "unsupported":
        logger.warning(
            "channel layer %s is not one the C server speaks; native WebSockets are off",
            config.get("BACKEND"),
        )
        return False
    if not wants:
        return False
    server.start_layer(to_json(config))
    name = _LAYER_NAMES[kind]
    if kind == "memory":
        logger.info("channel layer: %s", name)
        return True
    logger.info("channel layer: %s (%s)", name, config.get("BACKEND"))
    task = loop.create_task(_report_first_connection(name))
    _pending.add(task)
    task.add_done_callback(_pending.discard)
    return True


def start_native(server, loop):
    """Serve df_websockets' WEBSOCKET_URL in C when the project uses it."""
    settings = django_settings()
    if settings is None or "df_websockets" not in getattr(settings, "INSTALLED_APPS", ()):
        return False
    from dfws import native

    native.setup(server, loop, settings)
    return True


def start_django_fast_path(server, app, opts):
    """Serve plain HTTP requests to Django's ASGIHandler in one thread hop
    (dfws.django_fast), unless --no-django-fast-path."""
    if django_settings() is None:
        return False
    if not opts["django_fast_path"]:
        logger.info("Django fast path: off (--no-django-fast-path)")
        return False
    try:
        from dfws.django_fast import FastPath

        fast, why = FastPath.create(app)
    except Exception as exc:  # a Django this module does not know: serve it all as ASGI
        logger.warning("Django fast path: off (%s: %s)", type(exc).__name__, exc)
        return False
    if fast is None:
        logger.info("Django fast path: off (%s)", why)
        return False
    server.enable_django_fast_path(fast.run, opts["django_threads"])
    logger.info("Django fast path: on (%d threads)", opts["django_threads"])
    return True


def _version():
    from dfws import __version__

    return __version__
