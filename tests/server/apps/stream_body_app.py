"""Body streaming: answers (streamed) as soon as the first body part arrives,
then reads the rest and reports every http.request message it got."""


async def app(scope, receive, send):
    if scope["type"] != "http":
        raise RuntimeError("http only")  # tolerated by --lifespan auto
    first = await receive()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body",
                "body": b"first:%d:%d\n" % (len(first["body"]), first["more_body"]),
                "more_body": True})
    msgs = [first]
    while msgs[-1].get("more_body", False):
        msgs.append(await receive())
    total = sum(len(m["body"]) for m in msgs)
    types_ = ",".join(sorted({m["type"] for m in msgs}))
    await send({"type": "http.response.body",
                "body": b"total:%d messages:%d types:%s" % (total, len(msgs), types_.encode())})
