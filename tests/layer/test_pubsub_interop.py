"""The C pub/sub channel layer (driven through tests/c/layer_tool) against
Python's channels_redis.pubsub.RedisPubSubChannelLayer (4.3) on real
redis-servers.

Pub/sub delivers at most once, to whoever is subscribed at that moment, so
each Python side runs inside one event loop for the whole exchange (its
receive task and subscriptions live only while the loop runs; closing the
loop flushes the layer) and every "A sends, B receives" waits until B's
subscription shows in Redis (PUBSUB NUMSUB) or the C side confirmed it
(layer_tool serve answers group-add/listen-new after a sync barrier).
"""

import asyncio
import random
import string
import time

import msgpack
import pytest
import redis as redis_py
from channels_redis.pubsub import RedisPubSubChannelLayer
from channels_redis.utils import _consistent_hash

from conftest import free_port

MSG = {"type": "ws_message", "message": '{"signal": "x", "opts": {"a": 1}}'}


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def cfg(*servers, **extra):
    c = {"kind": "pubsub", "backend": "channels_redis.pubsub.RedisPubSubChannelLayer",
         "hosts": [s.url for s in servers]}
    c.update(extra)
    return c


def py_layer(*servers, **extra):
    return RedisPubSubChannelLayer(hosts=[s.url for s in servers], **extra)


def numsub(server, name):
    return int(server.cli("PUBSUB", "NUMSUB", name).split()[1])


def channels(server):
    return set(server.cli("PUBSUB", "CHANNELS").split())


def wait_for(predicate, timeout=10, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


async def until_subscribed(server, name, count=1):
    await asyncio.to_thread(wait_for, lambda: numsub(server, name) >= count, 10, name)


async def receive(layer, channel, timeout=5):
    return await asyncio.wait_for(layer.receive(channel), timeout)


# ---- Python -> C ---------------------------------------------------------------

def test_python_group_send_and_send_reach_c(redis_server, serve):
    c = serve(cfg(redis_server))
    r = c.cmd("listen-new", ["broadcast", "other"])
    assert r["ok"] and r["synced"] == 0, r
    ch = r["channel"]
    # channels_redis.pubsub's names: prefix + "specific." + uuid4 hex, no "!"
    assert ch.startswith("asgispecific.") and len(ch) == len("asgispecific.") + 32 and "!" not in ch
    assert channels(redis_server) == {ch, "asgi__group__broadcast", "asgi__group__other"}

    async def go():
        py = py_layer(redis_server)
        await py.group_send("broadcast", MSG)
        await py.send(ch, {"type": "direct", "n": 3, "f": 1.5, "b": b"\x00\x01"})
    run(go())
    assert c.message() == {"event": "message", "channel": ch, "message": MSG}
    m2 = c.message()
    assert m2["channel"] == ch
    assert m2["message"] == {"type": "direct", "n": 3, "f": 1.5, "b": {"$bin": "0001"}}
    # the payload is plain msgpack: what a raw PUBLISH carries arrives too
    r = redis_py.Redis(port=redis_server.port)
    assert r.publish(ch, msgpack.packb({"type": "raw", "x": [1, "2"]})) == 1
    assert c.message()["message"] == {"type": "raw", "x": [1, "2"]}
    # not a msgpack map: dropped and counted
    assert r.publish(ch, b"\xc1garbage") == 1
    c.no_message(0.5)
    assert c.cmd("stats")["undeliverable"] == 1


def test_one_subscription_per_group_for_the_process(redis_server, serve):
    c = serve(cfg(redis_server))
    chans = [c.cmd("listen-new", ["room"])["channel"] for _ in range(3)]
    assert numsub(redis_server, "asgi__group__room") == 1
    run(py_layer(redis_server).group_send("room", {"type": "hello"}))
    got = sorted(c.message()["channel"] for _ in range(3))
    assert got == sorted(chans)
    st = c.cmd("stats")
    assert st["received"] == 3 and st["undeliverable"] == 0
    # leaving: the group channel stays subscribed until its last member goes
    assert c.cmd("group-discard", "room", chans[0])["synced"] == 0
    assert numsub(redis_server, "asgi__group__room") == 1
    run(py_layer(redis_server).group_send("room", {"type": "two.left"}))
    assert sorted(c.message()["channel"] for _ in range(2)) == sorted(chans[1:])
    c.no_message(0.3)
    for ch in chans[1:]:
        assert c.cmd("group-discard", "room", ch)["synced"] == 0
    assert numsub(redis_server, "asgi__group__room") == 0
    # unlisten unsubscribes the channel itself
    assert c.cmd("unlisten", chans[0])["ok"]
    wait_for(lambda: chans[0] not in channels(redis_server), what="UNSUBSCRIBE")
    assert channels(redis_server) == set(chans[1:])


def test_plain_channels_both_ways(redis_server, serve):
    c = serve(cfg(redis_server))
    assert c.cmd("listen", "celery")["ok"]

    async def go():
        py = py_layer(redis_server)
        await until_subscribed(redis_server, "celery")
        await py.send("celery", {"type": "task", "id": 7})
        got = asyncio.ensure_future(receive(py, "plain.worker"))
        await until_subscribed(redis_server, "plain.worker")
        assert (await asyncio.to_thread(c.cmd, "send", "plain.worker", {"type": "job"}))["ok"]
        return await got
    assert run(go()) == {"type": "job"}
    assert c.message() == {"event": "message", "channel": "celery", "message": {"type": "task", "id": 7}}


# ---- C -> Python ------------------------------------------------------------------

def test_c_send_and_group_send_reach_python(redis_server, tool):
    async def go():
        py = py_layer(redis_server)
        ch = await py.new_channel()
        await py.group_add("watchers", ch)
        await until_subscribed(redis_server, ch)
        await until_subscribed(redis_server, "asgi__group__watchers")
        # one-shot processes: connect, PUBLISH, exit
        res, lines = await asyncio.to_thread(tool.lines, cfg(redis_server), "send", ch,
                                             {"type": "one", "x": [1, "2"]})
        assert res.returncode == 0 and lines == [{"ok": True, "code": 0}], res.stderr
        res = await asyncio.to_thread(tool.run, cfg(redis_server), "group-send", "watchers", MSG)
        assert res.returncode == 0, res.stderr
        return await receive(py, ch), await receive(py, ch)
    a, b = run(go())
    assert a == {"type": "one", "x": [1, "2"]}
    assert b == MSG


def test_custom_prefix(redis_server, serve):
    c = serve(cfg(redis_server, prefix="myapp."))
    ch = c.cmd("listen-new", ["g"])["channel"]
    assert ch.startswith("myapp.specific.")
    assert channels(redis_server) == {ch, "myapp.__group__g"}

    async def go():
        py = py_layer(redis_server, prefix="myapp.")
        await py.group_send("g", {"type": "prefixed"})
        pch = await py.new_channel()
        await py.group_add("h", pch)
        await until_subscribed(redis_server, "myapp.__group__h")
        assert (await asyncio.to_thread(c.cmd, "group-send", "h", {"type": "back"}))["ok"]
        return await receive(py, pch)
    assert run(go()) == {"type": "back"}
    assert c.message()["message"] == {"type": "prefixed"}


def test_flush_forgets_groups_not_listeners(redis_server, serve):
    c = serve(cfg(redis_server))
    ch = c.cmd("listen-new", ["a", "b"])["channel"]
    assert c.cmd("flush")["ok"]
    wait_for(lambda: channels(redis_server) == {ch}, what="group channels unsubscribed")
    run(py_layer(redis_server).group_send("a", {"type": "gone"}))
    c.no_message(0.5)


# ---- sharding ------------------------------------------------------------------------

def test_hash_matches_python(layer_tool):
    import subprocess
    rng = random.Random(7)
    names = ["asgi__group__" + "".join(rng.choice(string.ascii_letters + "-_.") for _ in range(rng.randint(1, 40)))
             for _ in range(300)] + ["asgispecific." + "%032x" % rng.getrandbits(128) for _ in range(300)]
    for n in (1, 2, 3, 5, 6, 7, 12):
        out = subprocess.run([layer_tool, "hash", str(n), *names], capture_output=True, text=True, check=True)
        assert [int(x) for x in out.stdout.split()] == [_consistent_hash(v, n) for v in names], n


@pytest.mark.parametrize("nhosts", [2, 3])
def test_sharding_matches_python(redis_factory, serve, nhosts):
    servers = [redis_factory() for _ in range(nhosts)]
    c = serve(cfg(*servers))
    groups = [f"group-{i}" for i in range(12)]
    r = c.cmd("listen-new", groups)
    assert r["synced"] == 0, r
    ch = r["channel"]
    # each pub/sub channel is subscribed on the shard of its exact name
    for name in [ch] + ["asgi__group__" + g for g in groups]:
        idx = _consistent_hash(name, nhosts)
        for i, s in enumerate(servers):
            assert numsub(s, name) == (1 if i == idx else 0), (name, i)
    assert len({_consistent_hash("asgi__group__" + g, nhosts) for g in groups}) == nhosts

    async def go():
        py = py_layer(*servers)
        for g in groups:
            await py.group_send(g, {"type": "g", "group": g})
        await py.send(ch, {"type": "direct"})
        # C -> Python, on every shard
        pch = await py.new_channel()
        for g in groups:
            await py.group_add(g, pch)
        for g in groups:
            await until_subscribed(servers[_consistent_hash("asgi__group__" + g, nhosts)], "asgi__group__" + g)
        for g in groups:
            assert (await asyncio.to_thread(c.cmd, "group-send", g, {"type": "gc", "g": g}))["ok"]
        return [await receive(py, pch) for _ in groups]
    from_c = run(go())
    assert sorted(m["g"] for m in from_c) == sorted(groups)
    # Python's sends, and the C process's own group sends (it is a member)
    got = [c.message()["message"] for _ in range(2 * len(groups) + 1)]
    assert sorted(m.get("group", "") for m in got if m["type"] != "gc") == sorted(groups + [""])
    assert sorted(m["g"] for m in got if m["type"] == "gc") == sorted(groups)


# ---- encryption ------------------------------------------------------------------------

def test_encryption_both_ways(redis_server, serve):
    keys = ["first-secret", "rotated-secret"]
    c = serve(cfg(redis_server, symmetric_encryption_keys=keys))
    ch = c.cmd("listen-new", ["sec"])["channel"]
    r = redis_py.Redis(port=redis_server.port)
    spy = r.pubsub()
    spy.subscribe("asgi__group__sec")
    spy.get_message(timeout=2)  # the subscribe confirmation

    async def go():
        py = py_layer(redis_server, symmetric_encryption_keys=keys[::-1])  # C must try every key
        await py.group_send("sec", {"type": "secret", "v": "hush"})
        py2 = py_layer(redis_server, symmetric_encryption_keys=keys)
        pch = await py2.new_channel()
        await until_subscribed(redis_server, pch)
        assert (await asyncio.to_thread(c.cmd, "send", pch, {"type": "enc", "v": "hush"}))["ok"]
        return await receive(py2, pch)
    assert run(go()) == {"type": "enc", "v": "hush"}
    assert c.message()["message"] == {"type": "secret", "v": "hush"}
    seen = spy.get_message(timeout=2)
    assert seen["data"].startswith(b"gAAAAA") and b"hush" not in seen["data"]  # no random prefix
    # a wrong key: dropped and counted, not crashed
    run(py_layer(redis_server, symmetric_encryption_keys=["nope"]).send(ch, {"type": "x"}))
    c.no_message(0.5)
    assert c.cmd("stats")["undeliverable"] == 1


# ---- connections -----------------------------------------------------------------------

def test_unix_socket_password_and_db(redis_factory, tmp_dir, serve):
    sock = f"{tmp_dir}/redis.sock"
    srv = redis_factory(extra=["--unixsocket", sock, "--requirepass", "s3cret"])
    c = serve({"kind": "pubsub", "hosts": [f"unix://{sock}?db=3&password=s3cret"]})
    ch = c.cmd("listen-new", ["g"])["channel"]
    # pub/sub channels are not per database: a Python peer on db 0 reaches it
    run(RedisPubSubChannelLayer(hosts=[f"redis://:s3cret@127.0.0.1:{srv.port}/0"]).group_send(
        "g", {"type": "over.unix"}))
    assert c.message()["channel"] == ch
    assert c.cmd("state")["state"] == "up"


def test_wrong_password_is_named(redis_factory, serve):
    srv = redis_factory(extra=["--requirepass", "s3cret"])
    for kind in ("pubsub", "redis"):
        c = serve({"kind": kind, "hosts": [f"redis://:wrong@127.0.0.1:{srv.port}"]})
        states = []
        wait_for(lambda: states.append(c.cmd("state")) or states[-1]["state"] == "down", what="state down")
        st = states[-1]
        assert "AUTH failed: WRONGPASS" in st["why"] and f"127.0.0.1:{srv.port}" in st["why"], st
        c.close()
        logs = "".join(c.stderr)
        assert "AUTH failed: WRONGPASS" in logs and "NOAUTH" not in logs, logs


@pytest.mark.parametrize("kind", ["pubsub", "redis"])
def test_redis_down_at_start_says_refused(kind, tool):
    conf = {"kind": kind, "hosts": [f"redis://127.0.0.1:{free_port()}"]}
    t0 = time.time()
    res = tool.run(conf, "send", "x", {"type": "t"})
    assert res.returncode == 3
    assert time.time() - t0 < 3  # told at once, not after the 5 s connect timeout
    assert "Connection refused; reconnecting" in res.stderr, res.stderr
    assert "timed out" not in res.stderr


def test_unresolvable_host_is_named(serve):
    c = serve({"kind": "pubsub", "hosts": ["redis://nosuch.invalid:6379"]})
    states = []
    wait_for(lambda: states.append(c.cmd("state")) or states[-1]["state"] == "down", what="state down")
    assert "resolving nosuch.invalid" in states[-1]["why"], states[-1]


def test_redis_restart_survived(redis_server, serve):
    c = serve(cfg(redis_server))
    ch = c.cmd("listen-new", ["survivors"])["channel"]
    run(py_layer(redis_server).group_send("survivors", {"type": "before"}))
    assert c.message()["message"] == {"type": "before"}
    redis_server.stop()
    wait_for(lambda: c.cmd("state")["state"] == "down", what="state down")
    st = c.cmd("state")
    assert f"127.0.0.1:{redis_server.port}" in st["why"], st
    r = c.cmd("send", "x.y", {"type": "lost"})
    assert r["code"] == -3
    # joined while Redis is away: subscribed once it is back
    late = c.cmd("listen-new", ["late"])
    assert late["ok"] and late["synced"] == -3
    redis_server.start()  # empty: the subscriptions must come back by themselves
    wait_for(lambda: channels(redis_server) == {ch, late["channel"], "asgi__group__survivors",
                                                 "asgi__group__late"}, what="subscribed again")
    assert c.cmd("state")["state"] == "up"

    async def after():
        py = py_layer(redis_server)
        await py.group_send("survivors", {"type": "after"})
        await py.group_send("late", {"type": "late"})
    run(after())
    assert {c.message(timeout=10)["message"]["type"] for _ in range(2)} == {"after", "late"}
    st = c.cmd("stats")
    assert st["reconnects"] >= 2 and st["undeliverable"] >= 1
    logs = "".join(c.stderr)
    assert logs.count("reconnecting") <= 2  # once per connection per outage
    assert logs.count("reconnected") == 2


def test_python_layer_survives_a_restart_too(redis_server, serve):
    """What channels_redis 4.3 does (redis-py re-subscribes its PubSub after
    a reconnect): a C sender reaches a Python receiver across an outage."""
    c = serve(cfg(redis_server))

    async def go():
        py = py_layer(redis_server)
        ch = await py.new_channel()
        await until_subscribed(redis_server, ch)
        redis_server.stop()
        await asyncio.sleep(0.5)
        redis_server.start()
        await until_subscribed(redis_server, ch)
        await asyncio.to_thread(wait_for, lambda: c.cmd("state")["state"] == "up", 10, "C up")
        assert (await asyncio.to_thread(c.cmd, "send", ch, {"type": "across"}))["ok"]
        return await receive(py, ch, timeout=10)
    assert run(go(), timeout=60) == {"type": "across"}
