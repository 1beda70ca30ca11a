"""Tiny raw ASGI 3 app of bench/peers.py's WebSocket cases, served by every server alike.

WebSocket on any path:
- a text message starting with "b:" is a broadcast trigger: the same text is
  sent to every connection currently open in this process, the sender
  included (one ``await send`` per connection, in order);
- anything else (text or bytes) is echoed back to the sender.
HTTP: 200 "ws_echo" (lets a driver check the server is up). Lifespan accepted.
"""

from lifespan import lifespan

CONNECTIONS = {}   # id -> send callable of every open WebSocket


async def app(scope, receive, send):
    kind = scope["type"]
    if kind == "lifespan":
        await lifespan(receive, send)
    elif kind == "http":
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"7")]})
        await send({"type": "http.response.body", "body": b"ws_echo"})
    elif kind == "websocket":
        key = id(send)
        try:
            while True:
                message = await receive()
                mtype = message["type"]
                if mtype == "websocket.connect":
                    await send({"type": "websocket.accept"})
                    CONNECTIONS[key] = send
                elif mtype == "websocket.receive":
                    text = message.get("text")
                    if text is not None and text.startswith("b:"):
                        out = {"type": "websocket.send", "text": text}
                        for peer in list(CONNECTIONS.values()):
                            try:
                                await peer(out)
                            except Exception:  # noqa: BLE001 - a peer that just left
                                pass
                    elif text is not None:
                        await send({"type": "websocket.send", "text": text})
                    else:
                        await send({"type": "websocket.send", "bytes": message.get("bytes")})
                elif mtype == "websocket.disconnect":
                    return
        finally:
            CONNECTIONS.pop(key, None)
