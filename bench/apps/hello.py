"""Raw ASGI 3 "hello world" of bench/peers.py's hello case.

Answers every HTTP request with 200 and the 13-byte body ``Hello, world!``
(explicit Content-Length, so every server takes the same single-write path).
Lifespan is accepted so that servers running it (dfws, uvicorn) start clean.
"""

from lifespan import lifespan

BODY = b"Hello, world!"
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(BODY)).encode("ascii")),
    ],
}
RESPONSE_BODY = {"type": "http.response.body", "body": BODY, "more_body": False}


async def app(scope, receive, send):
    if scope["type"] == "http":
        await send(START)
        await send(RESPONSE_BODY)
    elif scope["type"] == "lifespan":
        await lifespan(receive, send)
