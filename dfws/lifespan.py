"""The ASGI lifespan protocol, run by dfws.runner once per worker."""
import asyncio
import logging

logger = logging.getLogger("dfws.server")


class Lifespan:
    """Drives one lifespan scope.

    mode "off" never calls the app; "auto" tolerates apps that raise on the
    lifespan scope (they are served without lifespan and without `state`),
    and apps that take the scope and do not answer within `timeout` seconds
    (daphne never sends lifespan, so a daphne app may just wait: it is then
    served without lifespan too, with a warning); "on" treats a raise as a
    start-up failure and waits for the answer without bound.
    """

    def __init__(self, app, mode, timeout=None):
        self.app = app
        self.mode = mode
        self.timeout = timeout if mode == "auto" and timeout else None
        self.state = {}
        self.supported = mode != "off"
        self._queue = None
        self._task = None
        self._startup = None
        self._shutdown = None

    async def startup(self):
        if self.mode == "off":
            return True
        loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._startup = loop.create_future()
        self._shutdown = loop.create_future()
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        self._task = loop.create_task(self._run(scope))
        await self._queue.put({"type": "lifespan.startup"})
        done, _ = await asyncio.wait([self._startup, self._task], timeout=self.timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        if not done:
            # The task is left waiting: an answer coming late is ignored, and
            # the task is cancelled with the others at exit.
            self.supported = False
            logger.warning(
                "lifespan startup not answered within %g s (--lifespan-timeout): serving "
                "without lifespan (--lifespan on waits for it, --lifespan off skips it)",
                self.timeout)
            return True
        if self._startup.done():
            ok, message = self._startup.result()
            if not ok:
                logger.error("Application startup failed: %s", message or "(no message)")
                return False
            return True
        # the app returned or raised before answering startup
        self.supported = False
        exc = self._task.exception() if not self._task.cancelled() else None
        if self.mode == "on":
            if exc is not None:
                logger.error("Application startup failed", exc_info=(type(exc), exc, exc.__traceback__))
            else:
                logger.error("Application startup failed: it returned without answering lifespan.startup")
            return False
        # most Django and Channels applications: nothing worth a line at -v 1
        logger.debug("ASGI 'lifespan' protocol appears unsupported.")
        return True

    async def _run(self, scope):
        await self.app(scope, self._receive, self._send)

    async def _receive(self):
        return await self._queue.get()

    async def _send(self, message):
        kind = message.get("type")
        if kind == "lifespan.startup.complete":
            self._startup.done() or self._startup.set_result((True, None))
        elif kind == "lifespan.startup.failed":
            self._startup.done() or self._startup.set_result((False, message.get("message", "")))
        elif kind == "lifespan.shutdown.complete":
            self._shutdown.done() or self._shutdown.set_result((True, None))
        elif kind == "lifespan.shutdown.failed":
            self._shutdown.done() or self._shutdown.set_result((False, message.get("message", "")))
        else:
            raise ValueError(f"unexpected lifespan message type {kind!r}")

    async def shutdown(self):
        if not self.supported or self._task is None or self._task.done():
            return True
        await self._queue.put({"type": "lifespan.shutdown"})
        await asyncio.wait([self._shutdown, self._task], return_when=asyncio.FIRST_COMPLETED)
        if self._shutdown.done():
            ok, message = self._shutdown.result()
            if not ok:
                logger.error("Application shutdown failed: %s", message or "(no message)")
            return ok
        if not self._task.cancelled() and self._task.exception() is not None:
            exc = self._task.exception()
            logger.error("Exception in lifespan shutdown", exc_info=(type(exc), exc, exc.__traceback__))
            return False
        return True
