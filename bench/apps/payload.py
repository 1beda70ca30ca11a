"""Raw ASGI 3 app of bench/peers.py's 10 KiB cases, served by every ASGI server.

- GET (any path but /echo): 200 with a fixed 10,240-byte body;
- POST /echo: 200 with the request body sent back (read whole, then one send).
Both with an explicit Content-Length. Lifespan is accepted.
"""

from lifespan import lifespan

BIG = (b"0123456789abcdef" * 640)   # 10 KiB
assert len(BIG) == 10240


def start(length):
    return {"type": "http.response.start", "status": 200,
            "headers": [(b"content-type", b"application/octet-stream"),
                        (b"content-length", str(length).encode("ascii"))]}


async def app(scope, receive, send):
    if scope["type"] == "http":
        if scope["method"] == "POST" and scope["path"] == "/echo":
            parts = []
            while True:
                message = await receive()
                parts.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            body = b"".join(parts)
        else:
            body = BIG
        await send(start(len(body)))
        await send({"type": "http.response.body", "body": body})
    elif scope["type"] == "lifespan":
        await lifespan(receive, send)
