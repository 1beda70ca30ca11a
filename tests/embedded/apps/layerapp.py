"""Runs Channels in-memory-layer behaviours against EmbeddedChannelLayer
*inside* dfws-asgi, where it is the server's C layer. GET /run/<case>
answers {"ok": true} or {"ok": false, "error": "..."}; WebSocket /chat/ is a
Channels chat room on the same layer."""
import asyncio
import json
import threading
import traceback

import django
from django.conf import settings

settings.configure(
    INSTALLED_APPS=["channels"],
    SECRET_KEY="embedded-layer-tests",
    CHANNEL_LAYERS={
        "default": {
            "BACKEND": "df_websockets.layers.EmbeddedChannelLayer",
            "CONFIG": {"expiry": 1, "capacity": 5},
        }
    },
)
django.setup()

from asgiref.sync import async_to_sync  # noqa: E402
from channels.exceptions import ChannelFull  # noqa: E402
from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from dfws import _dfws  # noqa: E402  (loaded by dfws-asgi before the app)


async def nothing_within(layer, channel, seconds=0.3):
    try:
        msg = await asyncio.wait_for(layer.receive(channel), seconds)
    except asyncio.TimeoutError:
        return
    raise AssertionError(f"unexpected message on {channel}: {msg!r}")


async def case_native(layer):
    assert _dfws.layer_available(), "the C layer is not running"


async def case_send_receive(layer):
    ch = await layer.new_channel()
    await layer.send(ch, {"type": "test.message", "text": "Ahoy-hoy!", "n": 1, "b": b"\x00\x01"})
    msg = await asyncio.wait_for(layer.receive(ch), 2)
    assert msg == {"type": "test.message", "text": "Ahoy-hoy!", "n": 1, "b": b"\x00\x01"}, msg


async def case_new_channel(layer):
    a, b = await layer.new_channel(), await layer.new_channel("custom")
    assert a.startswith("specific.") and "!" in a, a
    assert b.startswith("custom.") and "!" in b, b
    assert a != b and a.split("!")[0] == "specific." + b.split("!")[0].split(".", 1)[1]


async def case_groups(layer):
    c1, c2, c3 = [await layer.new_channel() for _ in range(3)]
    await layer.group_add("test-group", c1)
    await layer.group_add("test-group", c2)
    await layer.group_add("test-group", c3)
    await layer.group_discard("test-group", c2)
    await layer.group_send("test-group", {"type": "message.1"})
    assert (await asyncio.wait_for(layer.receive(c1), 2)) == {"type": "message.1"}
    assert (await asyncio.wait_for(layer.receive(c3), 2)) == {"type": "message.1"}
    await nothing_within(layer, c2)


async def case_capacity(layer):
    ch = await layer.new_channel()
    for i in range(5):
        await layer.send(ch, {"type": "fill", "i": i})
    try:
        await layer.send(ch, {"type": "fill", "i": 5})
    except ChannelFull:
        pass
    else:
        raise AssertionError("the sixth send did not raise ChannelFull (capacity 5)")
    got = [(await asyncio.wait_for(layer.receive(ch), 2))["i"] for _ in range(5)]
    assert got == [0, 1, 2, 3, 4], got


async def case_group_send_skips_full(layer):
    full, ok = await layer.new_channel(), await layer.new_channel()
    for i in range(5):
        await layer.send(full, {"type": "fill"})
    await layer.group_add("g-full", full)
    await layer.group_add("g-full", ok)
    await layer.group_send("g-full", {"type": "hello"})  # must not raise
    assert (await asyncio.wait_for(layer.receive(ok), 2)) == {"type": "hello"}


async def case_expiry(layer):
    ch = await layer.new_channel()
    await layer.send(ch, {"type": "old"})
    await asyncio.sleep(1.6)
    await layer.send(ch, {"type": "new"})
    assert (await asyncio.wait_for(layer.receive(ch), 2)) == {"type": "new"}


async def case_flush(layer):
    ch = await layer.new_channel()
    await layer.group_add("g-flush", ch)
    await layer.send(ch, {"type": "before"})
    await layer.flush()
    await nothing_within(layer, ch)
    await layer.group_send("g-flush", {"type": "after"})
    await nothing_within(layer, ch)


async def case_from_thread(layer):
    """A worker thread (a Django sync view, a thread-mode signal handler)
    sends with async_to_sync: it reaches a receiver on the server's loop."""
    ch = await layer.new_channel()
    await layer.group_add("g-thread", ch)
    t = threading.Thread(target=async_to_sync(layer.group_send), args=("g-thread", {"type": "from.thread"}))
    t.start()
    msg = await asyncio.wait_for(layer.receive(ch), 2)
    t.join()
    assert msg == {"type": "from.thread"}, msg


async def case_receive_in_thread(layer):
    """A receiver awaiting in another thread's event loop gets messages sent
    on the server's loop."""
    ch = await layer.new_channel()
    result = {}

    def worker():
        result["msg"] = async_to_sync(layer.receive)(ch)

    t = threading.Thread(target=worker)
    t.start()
    await asyncio.sleep(0.2)
    await layer.send(ch, {"type": "to.thread"})
    for _ in range(40):
        if "msg" in result:
            break
        await asyncio.sleep(0.05)
    t.join(2)
    assert result.get("msg") == {"type": "to.thread"}, result


async def case_send_from_thread(layer):
    """send() from a worker thread: delivered, and ChannelFull raised there
    once the channel is full."""
    ch = await layer.new_channel()
    outcome = {}

    def worker():
        try:
            for i in range(6):
                async_to_sync(layer.send)(ch, {"type": "t", "i": i})
        except ChannelFull:
            outcome["full_at"] = i

    t = threading.Thread(target=worker)
    t.start()
    while t.is_alive():
        await asyncio.sleep(0.02)
    assert outcome.get("full_at") == 5, outcome
    got = [(await asyncio.wait_for(layer.receive(ch), 2))["i"] for _ in range(5)]
    assert got == [0, 1, 2, 3, 4], got


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


async def http_app(scope, receive, send):
    name = scope["path"].rsplit("/", 1)[-1]
    layer = get_channel_layer()
    try:
        await CASES[name](layer)
        body = {"ok": True}
    except Exception as exc:
        body = {"ok": False, "error": repr(exc), "traceback": traceback.format_exc()}
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


class AsyncChat(AsyncWebsocketConsumer):
    async def connect(self):
        await self.channel_layer.group_add("room", self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard("room", self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        await self.channel_layer.group_send("room", {"type": "chat.message", "text": text_data})

    async def chat_message(self, event):
        await self.send(text_data="async:" + event["text"])


class SyncChat(WebsocketConsumer):
    def connect(self):
        async_to_sync(self.channel_layer.group_add)("room", self.channel_name)
        self.accept()

    def disconnect(self, code):
        async_to_sync(self.channel_layer.group_discard)("room", self.channel_name)

    def receive(self, text_data=None, bytes_data=None):
        async_to_sync(self.channel_layer.group_send)("room", {"type": "chat.message", "text": text_data})

    def chat_message(self, event):
        self.send(text_data="sync:" + event["text"])


app = ProtocolTypeRouter({
    "http": http_app,
    "websocket": URLRouter([path("chat/async/", AsyncChat.as_asgi()), path("chat/sync/", SyncChat.as_asgi())]),
})
