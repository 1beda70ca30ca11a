"""Answers lifespan startup, then never answers lifespan.shutdown."""
import asyncio

from _util import respond, write_out


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.complete"})
        msg = await receive()
        write_out("lifespan", msg["type"])
        await asyncio.Event().wait()  # never answers
    await respond(send, 200, b"served")
