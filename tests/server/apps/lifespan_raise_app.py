"""An app that does not support lifespan: it raises on any non-http scope."""
from _util import respond, write_out


async def app(scope, receive, send):
    if scope["type"] != "http":
        write_out("lifespan", "raised")
        raise ValueError("no-lifespan-here-17")
    await respond(send, 200, b"served")
