"""The ASGI lifespan answer every raw bench app gives: accept start-up and
shut-down, so that servers which run lifespan (dfws, uvicorn, granian,
hypercorn) start and stop cleanly."""


async def lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
