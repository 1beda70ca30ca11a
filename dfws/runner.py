"""What a dfws-asgi worker does.

C parsed the command line and opened the listening socket (dfws.__main__);
this module loads the application, creates the uvloop event loop whose
libuv loop the C server shares, runs lifespan, serves until SIGTERM/SIGINT
and shuts down gracefully. Everything here runs once per worker, never per
request.
"""
import asyncio
import importlib
import logging
import os
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
    if dest:
        handler = (
            logging.StreamHandler(sys.stdout)
            if dest == "-"
            else logging.FileHandler(dest, encoding="utf-8")
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
        access_logger.addHandler(handler)
    else:
        access_logger.disabled = True


def describe_listener(opts):
    if opts["fd"] >= 0:
        return f"file descriptor {opts['fd']}"
    if opts["unix_socket"]:
        return f"unix:{opts['unix_socket']}"
    host = opts["bind"]
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{opts['port']}"


async def _wait_for_requests(server, timeout):
    deadline = time.monotonic() + timeout
    while (server.active_requests() or server.websockets()) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    left = server.active_requests() + server.websockets()
    if left:
        logger.warning("shutdown timeout: closing %d unfinished requests and WebSockets", left)


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
    for problem in problems:
        print(f"dfws-asgi: error: {problem}", file=sys.stderr)
    if problems:
        return 1

    import uvloop

    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    lifespan = Lifespan(app, _dfws.lifespan_mode())
    if not loop.run_until_complete(lifespan.startup()):
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
        if start_channel_layer(server) and opts["native_websockets"]:
            start_native(server, loop)
    except Exception as exc:
        print(f"dfws-asgi: error: {exc}", file=sys.stderr)
        server.close()
        loop.run_until_complete(lifespan.shutdown())
        return 1
    stop = loop.create_future()

    def on_signal(signum):
        if not stop.done():
            stop.set_result(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    early = _dfws.take_pending_signal()
    if early:
        on_signal(early)
    logger.info("dfws-asgi %s serving %s on %s (pid %d)", _version(), opts["app"],
                describe_listener(opts), os.getpid())
    signum = loop.run_until_complete(stop)
    logger.info("received %s, shutting down", signal.Signals(signum).name)
    server.shutdown()
    loop.run_until_complete(_wait_for_requests(server, opts["shutdown_timeout"]))
    server.close()
    loop.run_until_complete(asyncio.sleep(0))
    loop.run_until_complete(lifespan.shutdown())
    _cancel_remaining(loop)
    loop.run_until_complete(loop.shutdown_asyncgens())
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(signum)
        # shutdown is under way: a second signal must not kill the process
        # with the default action before it exits 0
        signal.signal(signum, signal.SIG_IGN)
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()
    exit_watchdog(0, 5.0)
    return 0


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


def start_channel_layer(server):
    """Start the C channel layer from CHANNEL_LAYERS["default"].

    A project without CHANNEL_LAYERS gets the embedded in-process layer (what
    df_websockets.layers.EmbeddedChannelLayer talks to). A Redis layer is
    started only when df_websockets is installed: its windows are what the
    C layer serves. Anything else is left to the project's own Python layer.
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
    logger.info("channel layer: %s", "in-process" if kind == "memory" else "Redis")
    return True


def start_native(server, loop):
    """Serve df_websockets' WEBSOCKET_URL in C when the project uses it."""
    settings = django_settings()
    if settings is None or "df_websockets" not in getattr(settings, "INSTALLED_APPS", ()):
        return False
    from dfws import native

    native.setup(server, loop, settings)
    return True


def _version():
    from dfws import __version__

    return __version__
