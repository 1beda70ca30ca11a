"""Slow apps: /sleep?s=N answers after N s (async), /ignore never reads and
records its cancellation; /pid answers os.getpid()."""
import asyncio
import os
import time

from _util import lifespan, query, respond, write_out


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    q = query(scope)
    path = scope["path"]
    if path == "/sleep":
        await asyncio.sleep(float(q.get("s", 1)))
        await respond(send, 200, b"slept")
    elif path == "/ignore":
        write_out("ignore", "started %f" % time.time())
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            write_out("ignore", "CancelledError %f" % time.time())
            raise
        write_out("ignore", "not cancelled")
    elif path == "/pid":
        await respond(send, 200, str(os.getpid()).encode())
    elif path == "/block":
        time.sleep(float(q.get("s", 0.3)))  # blocks this worker's loop
        await respond(send, 200, str(os.getpid()).encode())
    else:
        await respond(send, 200, b"ok")
