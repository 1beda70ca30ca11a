"""Takes the lifespan scope and never answers (a daphne app may: daphne
never sends lifespan); requests are served."""
import asyncio

from _util import respond, write_out


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        msg = await receive()
        write_out("lifespan", msg["type"])
        await asyncio.Event().wait()  # never answers
    await respond(send, 200, b"served")
