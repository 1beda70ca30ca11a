"""Responses: streaming (chunked), whole body without length, HEAD, status."""
import asyncio
import os

from _util import lifespan, out_path, query, write_out


async def start(send, status=200, headers=()):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain")] + list(headers)})


async def body(send, data, more=False):
    await send({"type": "http.response.body", "body": data, "more_body": more})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    path = scope["path"]
    if path == "/gate":
        # first part, then wait until the test created the "gate" side file
        await start(send)
        await body(send, b"one", True)
        for _ in range(400):
            if os.path.exists(out_path("gate")):
                break
            await asyncio.sleep(0.025)
        await body(send, b"two", True)
        await body(send, b"three", True)
        await body(send, b"", False)
    elif path == "/empty-middle":
        await start(send)
        await body(send, b"a", True)
        await body(send, b"", True)
        await body(send, b"b", True)
        await body(send, b"", False)
    elif path == "/whole":
        await start(send)
        await body(send, b"hello whole body")
    elif path == "/length":
        await start(send, 200, [(b"content-length", b"5")])
        await body(send, b"hel", True)
        await body(send, b"lo", False)
    elif path == "/status":
        q = query(scope)
        await start(send, int(q["code"]), [(b"x-custom", b"Value-1"), (b"x-custom", b"v2")])
        await body(send, b"status body")
    elif path == "/nocontent":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await body(send, b"")
    elif path == "/server":
        await start(send, 200, [(b"server", b"my-app-server")])
        await body(send, b"x")
    elif path == "/head":
        await start(send, 200, [(b"content-length", b"5")])
        await body(send, b"hello")
    else:
        await start(send, 404)
        await body(send, b"")
