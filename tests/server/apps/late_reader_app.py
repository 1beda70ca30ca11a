"""Waits ?wait= seconds (default 2) before it reads the body, then answers
with the body's length."""
import asyncio

from _util import lifespan, query, read_body, respond


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    await asyncio.sleep(float(query(scope).get("wait", "2")))
    body, _ = await read_body(receive)
    await respond(send, 200, b"%d" % len(body))
