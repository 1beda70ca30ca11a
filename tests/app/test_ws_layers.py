"""EmbeddedChannelLayer: InMemoryChannelLayer behaviour outside dfws-asgi,
thread-safe wake-ups, forwarding to the _dfws built-in module inside it."""
import asyncio
import sys
import threading
import types

import pytest
from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

from df_websockets import layers
from df_websockets.layers import EmbeddedChannelLayer


async def _scenario(layer):
    """A run through the channel-layer API; returns what was observed."""
    seen = []
    assert layer.extensions == ["groups", "flush"]
    c1 = await layer.new_channel()
    c2 = await layer.new_channel("custom.")
    seen.append((c1.startswith("specific."), c2.startswith("custom."), "!" in c1, c1 != c2))
    await layer.send("plain", {"type": "a", "n": 1})
    await layer.send("plain", {"type": "a", "n": 2})
    seen.append(await layer.receive("plain"))
    seen.append(await layer.receive("plain"))
    await layer.group_add("g1", c1)
    await layer.group_add("g1", c2)
    await layer.group_send("g1", {"type": "g", "v": [1]})
    seen.append((await layer.receive(c1), await layer.receive(c2)))
    await layer.group_discard("g1", c2)
    await layer.group_send("g1", {"type": "g", "v": 2})
    seen.append(await layer.receive(c1))
    try:
        await asyncio.wait_for(layer.receive(c2), 0.05)
        seen.append("c2 got a message")
    except asyncio.TimeoutError:
        seen.append("c2 empty")
    for n in range(layer.capacity):
        await layer.send("full", {"type": "x", "n": n})
    try:
        await layer.send("full", {"type": "x"})
        seen.append("no ChannelFull")
    except ChannelFull:
        seen.append("ChannelFull")
    await layer.group_send("g1", {"type": "dropped-when-full"})  # no exception
    await layer.flush()
    seen.append((layer.channels, layer.groups))
    message = {"type": "copy", "data": [1]}
    await layer.send("copy", message)
    message["data"].append(2)
    seen.append(await layer.receive("copy"))  # deep-copied at send
    with pytest.raises((AssertionError, TypeError)):
        await layer.send("bad name!", {"type": "x"})
    with pytest.raises((AssertionError, TypeError)):
        await layer.group_add("bad group!", c1)
    return seen


@pytest.mark.parametrize("options", [{}, {"capacity": 3, "expiry": 30, "group_expiry": 60}])
def test_same_behaviour_as_in_memory_layer(options):
    expected = async_to_sync(_scenario)(InMemoryChannelLayer(**options))
    got = async_to_sync(_scenario)(EmbeddedChannelLayer(**options))
    assert got == expected
    assert got[-1] == {"type": "copy", "data": [1]}


def test_expiry_like_in_memory_layer():
    async def scenario(layer):
        await layer.send("exp", {"type": "old"})
        await asyncio.sleep(0.05)
        await layer.send("exp", {"type": "new"})
        return (await layer.receive("exp"))["type"]

    # messages older than expiry are dropped before a receive
    for cls in (InMemoryChannelLayer, EmbeddedChannelLayer):
        layer = cls(expiry=0.02)
        result = async_to_sync(scenario)(layer)
        assert result == "new", cls


def test_group_expiry():
    async def scenario(layer):
        await layer.group_add("g", "c.x!1")
        await asyncio.sleep(1.05)  # Channels compares whole seconds
        await layer.group_send("g", {"type": "x"})
        return {g: set(chs) for g, chs in layer.groups.items()}

    assert async_to_sync(scenario)(EmbeddedChannelLayer(group_expiry=0)) == \
        async_to_sync(scenario)(InMemoryChannelLayer(group_expiry=0)) == {"g": set()}


def test_send_from_another_thread_wakes_the_receiver():
    """A thread-mode handler (its own event loop) sends while the consumer's
    loop waits: the receiver is woken through its own loop."""
    layer = EmbeddedChannelLayer()
    results = []

    async def receiver():
        channel = await layer.new_channel()
        await layer.group_add("room", channel)
        started.set()
        results.append(await asyncio.wait_for(layer.receive(channel), 3))

    started = threading.Event()
    thread = threading.Thread(target=lambda: asyncio.run(receiver()))
    thread.start()
    assert started.wait(3)
    async_to_sync(layer.group_send)("room", {"type": "ws_message", "message": "hi"})
    thread.join(5)
    assert results == [{"type": "ws_message", "message": "hi"}]


@pytest.fixture
def fake_dfws(monkeypatch):
    """A stand-in for the dfws-asgi server's module (recording calls)."""
    module = types.ModuleType("dfws._dfws")
    module.available = True
    module.sent = []
    module.LAYER_EFULL = -2
    module.layer_available = lambda: module.available

    def layer_send(channel, message, done):
        module.sent.append(("send", channel, message))
        done(0)

    module.layer_send = layer_send
    module.layer_group_send = lambda group, message: module.sent.append(("group", group, message))
    module.layer_group_add = lambda group, channel: module.sent.append(("add", group, channel))
    module.layer_group_discard = lambda group, channel: module.sent.append(("discard", group, channel))
    module.layer_new_channel = lambda prefix: "%s.native!1" % prefix
    monkeypatch.setitem(sys.modules, "dfws._dfws", module)
    return module


def test_forwards_to_dfws_when_available(fake_dfws):
    layer = EmbeddedChannelLayer()

    async def scenario():
        await layer.group_add("grp", "specific.a!b")
        await layer.group_send("grp", {"type": "ws_message", "message": "m"})
        await layer.send("queue1", {"type": "process.signal", "args": []})
        await layer.group_discard("grp", "specific.a!b")

    async_to_sync(scenario)()
    assert fake_dfws.sent == [
        ("add", "grp", "specific.a!b"),
        ("group", "grp", {"type": "ws_message", "message": "m"}),
        ("send", "queue1", {"type": "process.signal", "args": []}),
        ("discard", "grp", "specific.a!b"),
    ]
    assert layer.channels == {} and layer.groups == {}  # nothing kept in memory
    assert layers.get_native_layer() is fake_dfws


def test_in_memory_when_dfws_says_unavailable(fake_dfws):
    fake_dfws.available = False
    layer = EmbeddedChannelLayer()
    async_to_sync(layer.send)("queue1", {"type": "x"})
    assert fake_dfws.sent == []
    assert async_to_sync(layer.receive)("queue1") == {"type": "x"}


def test_no_dfws_module_means_in_memory(monkeypatch):
    monkeypatch.delitem(sys.modules, "dfws._dfws", raising=False)  # not serving here
    assert layers.get_native_layer() is None


def test_group_send_in_a_process_that_serves_nobody_says_so(caplog):
    """[issue 16] a trigger from manage.py shell on the embedded layer reached
    nothing, silently: it is said once per layer."""
    async def scenario(layer):
        await layer.group_send("g1", {"type": "g"})
        await layer.group_send("g2", {"type": "g"})

    async_to_sync(scenario)(EmbeddedChannelLayer())
    lines = [r.getMessage() for r in caplog.records if r.name == "df_websockets.layers"]
    assert len(lines) == 1, lines
    assert "which serves no window or consumer (a manage.py shell, a worker, a script): it " \
        "reaches none" in lines[0]
    assert "channels_redis.core.RedisChannelLayer" in lines[0]


def test_group_send_after_a_consumer_joined_says_nothing(caplog):
    async def scenario(layer):
        channel = await layer.new_channel()
        await layer.group_add("g1", channel)
        await layer.group_discard("g1", channel)
        await layer.group_send("g1", {"type": "g"})  # a window that closed: nothing to say

    async_to_sync(scenario)(EmbeddedChannelLayer())
    assert [r for r in caplog.records if r.name == "df_websockets.layers"] == []
