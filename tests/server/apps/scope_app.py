"""Echoes the scope (as a Python literal), the received messages and the body.

Lifespan startup stores {"token": "abc123"} in the lifespan state; a request to
/mutate then writes into its own copy of the state.
"""
import types

from _util import read_body, respond

LITERALS = (str, bytes, int, float, bool, type(None))


def clean(v):
    if isinstance(v, LITERALS):
        return v
    if isinstance(v, tuple):
        return tuple(clean(x) for x in v)
    if isinstance(v, list):
        return [clean(x) for x in v]
    if isinstance(v, dict):
        return {clean(k): clean(x) for k, x in v.items()}
    return "<%s>" % type(v).__name__


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                if "state" in scope:
                    scope["state"]["token"] = "abc123"
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body, msgs = await read_body(receive)
    snapshot = clean(dict(scope))
    snapshot["_types"] = {k: type(v).__name__ for k, v in scope.items()}
    if scope["path"] == "/mutate" and "state" in scope:
        scope["state"]["mut"] = 1
    result = {"scope": snapshot, "messages": msgs, "body": body}
    await respond(send, 200, repr(result).encode())


# dotted attribute lookup: scope_app:holder.inner.app
holder = types.SimpleNamespace(inner=types.SimpleNamespace(app=app))
