"""Attaches a handler to the "dfws.access" logger at import time, writing
each record's logger name and message to the side file "access-py"."""
import logging

from _util import lifespan, out_path, respond


class SideFileHandler(logging.Handler):
    def emit(self, record):
        with open(out_path("access-py"), "a") as f:
            f.write("%s|%s\n" % (record.name, record.getMessage()))


logging.getLogger("dfws.access").addHandler(SideFileHandler())


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    await respond(send, 200, b"logged")
