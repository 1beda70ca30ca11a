"""Live-server tests through dfws-asgi.

Channels' ``ChannelsLiveServerTestCase`` starts its server with the class in
its ``ProtocolServerProcess`` attribute (daphne's ``DaphneProcess``).
``DfwsProcess`` has the same interface and serves with dfws-asgi instead —
HTTP, the project's consumers and df_websockets' native socket::

    from channels.testing import ChannelsLiveServerTestCase
    from dfws.testing import DfwsProcess

    class BrowserTests(ChannelsLiveServerTestCase):
        ProtocolServerProcess = DfwsProcess

The interface (what ``ChannelsLiveServerTestCase`` uses): a process started
with ``DfwsProcess(host, get_application, kwargs=None, setup=None,
teardown=None, port=None)``, with ``ready`` (an Event set once the
application is loaded and the socket accepts), ``port.value``, ``errors``
(a Queue of ``(exception, traceback text)``), ``start()``, ``is_alive()``,
``terminate()``, ``join()``. ``kwargs`` are dfws-asgi's options
(``{"websocket_timeout": 30, "no_native_websockets": True}``: ``--name
value``, or ``--name`` for True), handed to dfws-asgi as a dict (no command
line is made up); ``options`` (a class attribute) the ones under them, by
default ``{"verbosity": 0}`` (warnings and errors only). A subclass that
sets ``args`` (a class attribute, command-line words; ``-v 0`` by default)
is started from ``command_line()`` instead.

The process is forked from the test process, like daphne's: the test's
settings (``override_settings``, the test database name set by ``setup``)
are the server's. It opens its listening socket itself, then runs dfws-asgi
on that socket (``--fd``) in the same process, serving the object that
``get_application()`` returns.
"""
import multiprocessing
import signal
import socket
import sys
import traceback

application = None  # what the forked dfws-asgi serves ("dfws.testing:application")


class ReadyApplication:
    """The application under test, plus a lifespan that sets ``ready`` once
    dfws-asgi has loaded it (forwarded to the application when it speaks
    lifespan, answered here when it does not: Channels and Django apps)."""

    def __init__(self, app, ready):
        self.app = app
        self.ready = ready

    async def __call__(self, scope, receive, send):
        if scope["type"] != "lifespan":
            return await self.app(scope, receive, send)
        received = []
        answered = []

        async def app_receive():
            message = await receive()
            received.append(message["type"])
            return message

        async def app_send(message):
            answered.append(message["type"])
            if message["type"] == "lifespan.startup.complete":
                self.ready.set()
            await send(message)

        try:
            await self.app(scope, app_receive, app_send)
        except Exception:
            if answered:
                raise
        if answered:
            return
        # the application does not speak lifespan
        if "lifespan.startup" not in received:
            await receive()
        self.ready.set()
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        await send({"type": "lifespan.shutdown.complete"})


class DfwsProcess(multiprocessing.Process):
    """A ``ChannelsLiveServerTestCase.ProtocolServerProcess`` serving with
    dfws-asgi (see the module's docstring)."""

    options = {"verbosity": 0}
    args = ["-v", "0"]  # the same as `options`, for command_line()

    def __init__(self, host, get_application, kwargs=None, setup=None, teardown=None,
                 port=None):
        super().__init__()
        self.host = host
        self.get_application = get_application
        self.kwargs = kwargs or {}
        self.setup = setup
        self.teardown = teardown
        self.port = multiprocessing.Value("i", port if port is not None else 0)
        self.ready = multiprocessing.Event()
        self.errors = multiprocessing.Queue()

    def server_options(self, fd):
        """dfws-asgi's options (a dict) for the listening socket ``fd``."""
        return {**self.options, **self.kwargs, "fd": fd, "app": "dfws.testing:application"}

    def command_line(self, fd):
        """dfws-asgi's argv for the listening socket ``fd``."""
        argv = ["dfws-asgi", "--fd", str(fd), *self.args]
        for name, value in self.kwargs.items():
            option = "--" + name.replace("_", "-")
            if value is True:
                argv.append(option)
            elif value is not False and value is not None:
                argv += [option, str(value)]
        return argv + ["dfws.testing:application"]

    def listen(self):
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port.value))
        sock.listen(1024)
        self.port.value = sock.getsockname()[1]
        return sock

    def run(self):
        global application
        from dfws.__main__ import main

        try:
            sock = self.listen()
            application = ReadyApplication(self.get_application(), self.ready)
            if self.setup is not None:
                self.setup()
            # terminate() before dfws-asgi took SIGTERM over: a clean exit
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            try:
                if self.args != DfwsProcess.args:
                    status = main(self.command_line(sock.fileno()))
                else:
                    status = main(options=self.server_options(sock.fileno()))
            finally:
                if self.teardown is not None:
                    self.teardown()
            if status:
                raise RuntimeError("dfws-asgi exited with status %s" % status)
        except BaseException as exc:
            if isinstance(exc, SystemExit) and not exc.code:
                return
            self.errors.put((exc, traceback.format_exc()))
            raise
