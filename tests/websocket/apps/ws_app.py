"""One ASGI application for the WebSocket tests, dispatching on the path.

Every WebSocket connection appends its ASGI events (JSON, one per line) to
the side file "events-<tag>" in $DFWS_TEST_OUT, where <tag> is the query
parameter ``tag`` (default "default"), so a test can see what the app saw.

Paths:
  /echo         accept (subprotocol = query ``sub`` if given), echo text as
                text and bytes as bytes until disconnect
  /scope        accept, send the scope as JSON text, then echo
  /accept       accept with the subprotocol ``sub`` and the extra headers
                ``h`` ("name:value", repeatable), send "ok", then echo
  /reject       websocket.close before accept (-> HTTP 403)
  /deny         websocket.http.response.start 401 + body in two parts
  /close        accept, then websocket.close with ``code`` and ``reason``
  /never        never accept; keep receiving (records every event)
  /return       accept, send "bye", return without closing
  /raise        accept, send "boom", raise
  /raise_early  raise before accept (-> HTTP 500)
  /flood        accept, wait for a message "go", then send ``mb`` MiB in
                1 MiB binary messages; progress in "flood-<tag>"
  /sink         sleep ``sleep`` s without receiving, then count received
                bytes; answer the text "end" with the count
  /stubborn     ignore the disconnect: sleep 60 s; a cancellation is
                written to "stubborn-<tag>" with the delay
HTTP requests get 200 "http ok"; lifespan stores state {"answer": 42}.
"""
import asyncio
import json
import os
import time
import urllib.parse

OUT = os.environ.get("DFWS_TEST_OUT", "/tmp")


def write_out(name, text):
    with open(os.path.join(OUT, name), "a") as f:
        f.write(text + "\n")


def qs(scope):
    return urllib.parse.parse_qs(scope["query_string"].decode("latin-1"))


def jsonable(obj):
    if isinstance(obj, bytes):
        return {"__bytes__": obj.decode("latin-1")}
    if isinstance(obj, (list, tuple)):
        return [jsonable(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return repr(obj)


async def lifespan(scope, receive, send):
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            if "state" in scope:
                scope["state"]["answer"] = 42
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def http(scope, receive, send):
    body = b"http ok"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class Recorder:
    def __init__(self, scope, receive):
        self.tag = qs(scope).get("tag", ["default"])[0]
        self._receive = receive

    def note(self, ev):
        write_out("events-" + self.tag, json.dumps(jsonable(ev)))

    async def receive(self):
        ev = await self._receive()
        self.note(ev)
        return ev


async def echo_loop(rec, send):
    while True:
        ev = await rec.receive()
        if ev["type"] == "websocket.disconnect":
            return
        if ev["type"] != "websocket.receive":
            raise RuntimeError("unexpected event %r" % ev)
        if ev.get("bytes") is not None:
            await send({"type": "websocket.send", "bytes": ev["bytes"]})
        else:
            await send({"type": "websocket.send", "text": ev["text"]})


async def websocket(scope, receive, send):
    rec = Recorder(scope, receive)
    q = qs(scope)
    path = scope["path"]
    first = await rec.receive()
    assert first["type"] == "websocket.connect", first

    if path == "/never":
        while True:
            ev = await rec.receive()
            if ev["type"] == "websocket.disconnect":
                return
    if path == "/raise_early":
        raise RuntimeError("deliberate failure before accept")
    if path == "/reject":
        await send({"type": "websocket.close"})
        return
    if path == "/deny":
        await send({"type": "websocket.http.response.start", "status": 401,
                    "headers": [(b"content-type", b"text/plain"),
                                (b"x-deny", b"yes")]})
        await send({"type": "websocket.http.response.body", "body": b"go ",
                    "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"away"})
        return

    accept = {"type": "websocket.accept"}
    if "sub" in q:
        accept["subprotocol"] = q["sub"][0]
    if path == "/accept":
        accept["headers"] = [(h.split(":", 1)[0].encode(), h.split(":", 1)[1].encode())
                             for h in q.get("h", [])]
    await send(accept)

    if path.startswith("/scope"):
        await send({"type": "websocket.send", "text": json.dumps(jsonable(scope))})
    elif path == "/accept":
        await send({"type": "websocket.send", "text": "ok"})
    elif path == "/close":
        msg = {"type": "websocket.close", "code": int(q.get("code", ["1000"])[0])}
        if "reason" in q:
            msg["reason"] = q["reason"][0]
        await send(msg)
        # the client answers the close: the app sees the disconnect
        while (await rec.receive())["type"] != "websocket.disconnect":
            pass
        return
    elif path == "/return":
        await send({"type": "websocket.send", "text": "bye"})
        return
    elif path == "/raise":
        await send({"type": "websocket.send", "text": "boom"})
        raise RuntimeError("deliberate failure after accept")
    elif path == "/flood":
        return await flood(scope, rec, send, q)
    elif path == "/sink":
        return await sink(rec, send, q)
    elif path == "/stubborn":
        while (await rec.receive())["type"] != "websocket.disconnect":
            pass
        t0 = time.monotonic()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            write_out("stubborn-" + rec.tag, "cancelled %.2f" % (time.monotonic() - t0))
            raise
    await echo_loop(rec, send)


async def flood(scope, rec, send, q):
    tag = rec.tag
    mib = int(q.get("mb", ["200"])[0])
    ev = await rec.receive()
    assert ev.get("text") == "go", ev
    chunk = b"x" * (1 << 20)
    sent = 0
    t0 = time.monotonic()
    for i in range(mib):
        await send({"type": "websocket.send", "bytes": chunk})
        sent += 1
        # progress: number of send() calls that returned, and when
        with open(os.path.join(OUT, "flood-" + tag), "w") as f:
            f.write("%d %.3f\n" % (sent, time.monotonic() - t0))
    write_out("flood-done-" + tag, "done %d" % sent)
    while (await rec.receive())["type"] != "websocket.disconnect":
        pass


async def sink(rec, send, q):
    """Does not receive for ``sleep`` seconds, then counts the bytes of
    binary messages until the text "end", answers with the count."""
    await asyncio.sleep(float(q.get("sleep", ["3"])[0]))
    total = 0
    while True:
        ev = await rec._receive()  # not recorded: too many events
        if ev["type"] == "websocket.disconnect":
            return
        if ev.get("bytes") is not None:
            total += len(ev["bytes"])
        elif ev.get("text") == "end":
            await send({"type": "websocket.send", "text": str(total)})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(scope, receive, send)
    if scope["type"] == "http":
        return await http(scope, receive, send)
    if scope["type"] == "websocket":
        return await websocket(scope, receive, send)
    raise RuntimeError("unknown scope type %r" % scope["type"])
