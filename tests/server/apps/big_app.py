"""Backpressure: /upload?stall=S&pause_every=N&pause=P counts the body bytes,
stalling S seconds before the first receive() and pausing P seconds every N
bytes; /download?size=N streams N bytes in 64 KiB parts."""
import asyncio
import zlib

from _util import lifespan, query, respond


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    q = query(scope)
    if scope["path"] == "/upload":
        await asyncio.sleep(float(q.get("stall", 0)))
        pause_every = int(q.get("pause_every", 0))
        pause = float(q.get("pause", 0))
        total, crc, next_pause, msgs = 0, 0, pause_every, 0
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                return
            body = msg.get("body", b"")
            msgs += 1
            total += len(body)
            crc = zlib.crc32(body, crc)
            if pause_every and total >= next_pause:
                next_pause += pause_every
                await asyncio.sleep(pause)
            if not msg.get("more_body", False):
                break
        await respond(send, 200, b"%d %d %d" % (total, crc, msgs))
    elif scope["path"] == "/download":
        size = int(q["size"])
        part = b"x" * 65536
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(size).encode())]})
        sent = 0
        while sent < size:
            n = min(len(part), size - sent)
            sent += n
            await send({"type": "http.response.body", "body": part[:n],
                        "more_body": sent < size})
    else:
        await respond(send, 404, b"not found")
