"""Helpers shared by the tiny test apps (not an app itself)."""
import os
import urllib.parse

OUT = os.environ.get("DFWS_TEST_OUT", "/tmp")


def out_path(name):
    return os.path.join(OUT, name)


def write_out(name, text):
    """Append text to a side file the test reads (one line per event)."""
    with open(out_path(name), "a") as f:
        f.write(text + "\n")


def query(scope):
    return dict(urllib.parse.parse_qsl(scope["query_string"].decode("latin-1")))


async def lifespan(receive, send):
    """A well-behaved lifespan handler."""
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def respond(send, status=200, body=b"", headers=None, content_type=b"text/plain"):
    if isinstance(body, str):
        body = body.encode()
    hdrs = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    hdrs += headers or []
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


async def read_body(receive):
    """Read the whole request body; returns (body, [(len, more_body), ...])."""
    chunks, msgs = [], []
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            msgs.append(("disconnect", 0, False))
            break
        body = msg.get("body", b"")
        more = msg.get("more_body", False)
        chunks.append(body)
        msgs.append((msg["type"], len(body), more))
        if not more:
            break
    return b"".join(chunks), msgs
