"""The restart and recycling tests' app.

At import it reads its "code version" from the side file ``version`` (default
"1") and fails when the side file ``broken`` exists: a deploy that does not
start. /pid answers the pid; /version "<version> <pid>"; /grow?mb=N keeps N
MiB more in memory, then answers the pid; /sleep?s=S answers after S s.
"""
import asyncio
import os

from _util import lifespan, out_path, query, respond

if os.path.exists(out_path("broken")):
    raise RuntimeError("this deploy is broken (side file 'broken')")
try:
    with open(out_path("version")) as f:
        VERSION = f.read().strip()
except FileNotFoundError:
    VERSION = "1"

_kept = []


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    path = scope["path"]
    if path == "/version":
        await respond(send, 200, "%s %d" % (VERSION, os.getpid()))
    elif path == "/grow":
        block = bytearray(int(query(scope).get("mb", 1)) << 20)
        for i in range(0, len(block), 4096):  # resident, not just reserved
            block[i] = 1
        _kept.append(block)
        await respond(send, 200, str(os.getpid()))
    elif path == "/sleep":
        await asyncio.sleep(float(query(scope).get("s", 1)))
        await respond(send, 200, str(os.getpid()))
    else:
        await respond(send, 200, str(os.getpid()))
