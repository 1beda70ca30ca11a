"""Answers every request with 12 bytes, never reads the body."""
from _util import lifespan, respond


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    await respond(send, 200, b"hello world!")
