"""Answers 200 with one more response header, chosen by the path: the
header is refused (/crlf, /str-name, /str-value, /cl-conflict) or sent
once (/cl-same). ?retry=1: after a refused start, start again cleanly."""
from _util import lifespan, query

EXTRA = {
    "/crlf": (b"x-evil", b"a\r\nSet-Cookie: injected=1"),
    "/str-name": ("x-str", b"v"),
    "/str-value": (b"x-str", "v"),
    "/cl-conflict": (b"content-length", b"5"),
    "/cl-same": (b"content-length", b"2"),
}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    headers = [(b"content-length", b"2"), EXTRA[scope["path"]]]
    try:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
    except (ValueError, TypeError):
        if not query(scope).get("retry"):
            raise
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"7")]})
        await send({"type": "http.response.body", "body": b"retried"})
        return
    await send({"type": "http.response.body", "body": b"ok"})
