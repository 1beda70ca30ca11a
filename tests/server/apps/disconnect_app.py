"""http.disconnect: /wait never answers and records what receive() returns
after the body; /after answers, then records the next receive()."""
from _util import lifespan, read_body, respond, write_out


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    await read_body(receive)
    if scope["path"] == "/wait":
        write_out("wait", "waiting")
        msg = await receive()
        write_out("wait", msg["type"])
    elif scope["path"] == "/after":
        await respond(send, 200, b"done")
        msg = await receive()
        write_out("after", msg["type"])
    else:
        await respond(send, 404, b"")
