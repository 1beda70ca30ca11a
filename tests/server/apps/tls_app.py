"""HTTP and WebSocket over TLS (tests/server/test_tls.py).

GET /scope          the scope's scheme, http_version and path as text
GET /big?n=N        N bytes in 64 KiB messages (pattern i % 251)
POST /upload        the sha256 and length of the body
WebSocket /echo     "scheme=<scheme>" first, then every message echoed
"""
import hashlib

from _util import lifespan, query, respond


PERIOD = bytes(range(251))
BLOCK = PERIOD * (65536 // 251 + 2)  # any 64 KiB slice from an offset < 251


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "scheme=" + scope["scheme"]})
        while True:
            msg = await receive()
            if msg["type"] == "websocket.disconnect":
                return
            if msg.get("text") is not None:
                await send({"type": "websocket.send", "text": msg["text"]})
            else:
                await send({"type": "websocket.send", "bytes": msg["bytes"]})
    path = scope["path"]
    if path == "/upload":
        h = hashlib.sha256()
        n = 0
        while True:
            msg = await receive()
            body = msg.get("body", b"")
            h.update(body)
            n += len(body)
            if not msg.get("more_body"):
                break
        return await respond(send, 200, "%d %s" % (n, h.hexdigest()))
    while True:  # drain the (empty) request body
        msg = await receive()
        if not msg.get("more_body"):
            break
    if path == "/big":
        n = int(query(scope).get("n", "0"))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(n).encode())]})
        sent = 0
        while sent < n:
            k = min(64 * 1024, n - sent)
            off = sent % 251
            await send({"type": "http.response.body", "body": BLOCK[off:off + k],
                        "more_body": sent + k < n})
            sent += k
        return
    await respond(send, 200, "scheme=%s version=%s path=%s" % (
        scope["scheme"], scope["http_version"], path))
