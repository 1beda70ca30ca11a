"""App failures: exception before/after the response started, no response."""
from _util import lifespan, respond


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    path = scope["path"]
    if path == "/before":
        raise RuntimeError("boom-before-start")
    if path == "/after-length":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"100")]})
        await send({"type": "http.response.body", "body": b"0123456789", "more_body": True})
        raise RuntimeError("boom-after-start")
    if path == "/after-chunked":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"0123456789", "more_body": True})
        raise RuntimeError("boom-after-start")
    if path == "/noresponse":
        return
    await respond(send, 200, b"ok")
