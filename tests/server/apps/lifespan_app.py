"""Lifespan: records every lifespan event in the side file "lifespan",
stores {"token": "abc123"} into the state; requests return the state."""
from _util import respond, write_out


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        write_out("lifespan", "called")
        while True:
            msg = await receive()
            write_out("lifespan", msg["type"])
            if msg["type"] == "lifespan.startup":
                if "state" in scope:
                    scope["state"]["token"] = "abc123"
                    scope["state"]["list"] = [1, 2]
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                write_out("lifespan", "shutdown-done")
                return
    state = scope.get("state")
    if state is None:
        return await respond(send, 200, b"no-state")
    seen = repr(sorted(state.items())).encode()
    if scope["path"] == "/mutate":
        state["mut"] = 1
    await respond(send, 200, seen)
