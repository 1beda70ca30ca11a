"""Answers with the status given as ?s=N (any integer: 103, 4294967496...)."""
from _util import lifespan, query, respond


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    await respond(send, int(query(scope)["s"]), b"status sent")
