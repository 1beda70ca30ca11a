"""The C Redis channel layer (driven through tests/c/layer_tool) against
Python's channels_redis.core.RedisChannelLayer on real redis-servers."""

import asyncio
import time

import pytest
from channels.exceptions import ChannelFull
from channels_redis.core import RedisChannelLayer
from channels_redis.utils import _consistent_hash


def run(coro):
    return asyncio.run(coro)


async def receive(layer, channel, timeout=5):
    return await asyncio.wait_for(layer.receive(channel), timeout)


def cfg(*servers, **extra):
    c = {"kind": "redis", "backend": "channels_redis.core.RedisChannelLayer",
         "hosts": [s.url for s in servers]}
    c.update(extra)
    return c


def py_layer(*servers, **extra):
    return RedisChannelLayer(hosts=[s.url for s in servers], **extra)


MSG = {"type": "ws_message", "message": '{"signal": "x", "opts": {"a": 1}}'}


# ---- Python -> C --------------------------------------------------------------

def test_python_group_send_and_send_reach_c(redis_server, serve):
    c = serve(cfg(redis_server))
    r = c.cmd("listen-new", ["broadcast", "other"])
    assert r["ok"], r
    ch = r["channel"]
    assert ch.startswith("specific.") and "!" in ch
    py = py_layer(redis_server)

    async def go():
        await py.group_send("broadcast", MSG)           # __asgi_channel__ as a list
        await py.send(ch, {"type": "direct", "n": 3, "f": 1.5, "b": b"\x00\x01"})  # as a string
    run(go())
    m1, m2 = c.message(), c.message()
    assert m1 == {"event": "message", "channel": ch, "message": MSG}
    assert m2["channel"] == ch
    assert m2["message"] == {"type": "direct", "n": 3, "f": 1.5, "b": {"$bin": "0001"}}
    # hand-built member, __asgi_channel__ as a string, through raw ZADD
    import msgpack
    member = b"\x00" * 12 + msgpack.packb({"type": "raw", "__asgi_channel__": ch}, use_bin_type=True)
    key = "asgi" + ch[: ch.index("!") + 1]
    import redis as redis_py
    redis_py.Redis(port=redis_server.port).zadd(key, {member: time.time()})
    assert c.message()["message"] == {"type": "raw"}


def test_python_group_send_several_local_channels_one_member(redis_server, serve):
    c = serve(cfg(redis_server))
    chans = [c.cmd("listen-new", ["room"])["channel"] for _ in range(3)]
    run(py_layer(redis_server).group_send("room", {"type": "hello"}))
    got = sorted(c.message()["channel"] for _ in range(3))
    assert got == sorted(chans)
    # one member in Redis for the three channels (one queue key, a list)
    assert redis_server.cli("ZCARD", "asgispecific." + chans[0].split(".")[1].split("!")[0] + "!") == "0"
    stats = c.cmd("stats")
    assert stats["received"] == 3 and stats["undeliverable"] == 0


def test_plain_channel_python_to_c(redis_server, tool):
    run(py_layer(redis_server).send("celery", {"type": "task", "id": 7}))
    res, lines = tool.lines(cfg(redis_server), "receive", "celery", "--count", "1", "--timeout", "5")
    assert res.returncode == 0, res.stderr
    assert lines == [{"channel": "celery", "message": {"type": "task", "id": 7}}]


# ---- C -> Python ----------------------------------------------------------------

def test_c_send_and_group_send_reach_python(redis_server, tool):
    py = py_layer(redis_server)

    async def setup():
        ch = await py.new_channel()
        await py.group_add("watchers", ch)
        return ch
    ch = run(setup())
    res, lines = tool.lines(cfg(redis_server), "send", ch, {"type": "one", "x": [1, "2"]})
    assert res.returncode == 0 and lines == [{"ok": True, "code": 0}], res.stderr
    res, lines = tool.lines(cfg(redis_server), "group-send", "watchers", MSG)
    assert res.returncode == 0, res.stderr
    res = tool.run(cfg(redis_server), "send", "plain.worker", {"type": "job"})
    assert res.returncode == 0, res.stderr

    async def get():
        return (await receive(py, ch), await receive(py, ch), await receive(py, "plain.worker"))
    a, b, c = run(get())
    assert a == {"type": "one", "x": [1, "2"]}
    assert b == MSG
    assert c == {"type": "job"}


def test_groups_visible_both_sides(redis_server, serve):
    c = serve(cfg(redis_server))
    ch = c.cmd("listen-new", [])["channel"]
    assert c.cmd("group-add", "g1", ch)["ok"]
    time.sleep(0.2)
    assert redis_server.cli("ZRANGE", "asgi:group:g1", "0", "-1") == ch
    assert int(redis_server.cli("TTL", "asgi:group:g1")) > 86000
    py = py_layer(redis_server)
    run(py.group_discard("g1", ch))
    run(py.group_send("g1", {"type": "nobody"}))
    c.no_message(0.5)
    # Python member, C sender
    async def setup():
        pch = await py.new_channel()
        await py.group_add("g2", pch)
        return pch
    pch = run(setup())
    assert c.cmd("group-send", "g2", {"type": "from.c"})["ok"]
    assert run(receive(py, pch)) == {"type": "from.c"}
    # C discard removes the member
    assert c.cmd("group-add", "g3", ch)["ok"]
    assert c.cmd("group-discard", "g3", ch)["ok"]
    time.sleep(0.2)
    assert redis_server.cli("ZCARD", "asgi:group:g3") == "0"


# ---- capacity -----------------------------------------------------------------------

def test_capacity_both_directions(redis_server, tool):
    conf = cfg(redis_server, capacity=3)
    for _ in range(3):
        assert tool.run(conf, "send", "cap.c", {"type": "t"}).returncode == 0
    res, lines = tool.lines(conf, "send", "cap.c", {"type": "t"})
    assert res.returncode == 2 and lines[0]["code"] == -2 and lines[0]["error"] == "channel full"
    py = py_layer(redis_server, capacity=3)
    with pytest.raises(ChannelFull):
        run(py.send("cap.c", {"type": "t"}))

    async def fill():
        for _ in range(3):
            await py.send("cap.py", {"type": "t"})
    run(fill())
    assert tool.run(conf, "send", "cap.py", {"type": "t"}).returncode == 2


def test_channel_capacity_patterns(redis_server, tool):
    from dfws.layer_config import to_dict
    import re
    settings = {"BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [redis_server.url], "capacity": 50,
                           "channel_capacity": {"small.*": 1, re.compile(r"tiny\d"): 2}}}
    conf = to_dict(settings)
    assert tool.run(conf, "send", "small.one", {"type": "t"}).returncode == 0
    assert tool.run(conf, "send", "small.one", {"type": "t"}).returncode == 2
    assert tool.run(conf, "send", "tiny7x", {"type": "t"}).returncode == 0
    assert tool.run(conf, "send", "tiny7x", {"type": "t"}).returncode == 0
    assert tool.run(conf, "send", "tiny7x", {"type": "t"}).returncode == 2
    assert tool.run(conf, "send", "xsmall.one", {"type": "t"}).returncode == 0
    assert tool.run(conf, "send", "xsmall.one", {"type": "t"}).returncode == 0
    py = RedisChannelLayer(**settings["CONFIG"])
    with pytest.raises(ChannelFull):
        run(py.send("tiny7x", {"type": "t"}))


def test_group_send_over_capacity_is_dropped_silently(redis_server, serve, tool):
    conf = cfg(redis_server, capacity=2)
    c = serve(conf)
    ch = c.cmd("new-channel")["channel"]  # not listened: the queue fills up
    assert c.cmd("group-add", "crowd", ch)["ok"]
    for _ in range(3):
        r = c.cmd("group-send", "crowd", {"type": "t"})
        assert r["ok"], r
    assert c.cmd("stats")["group_dropped"] == 1
    key = "asgi" + ch[: ch.index("!") + 1]
    assert redis_server.cli("ZCARD", key) == "2"


# ---- expiry ---------------------------------------------------------------------------

def test_message_and_group_expiry(redis_server, tool, serve):
    conf = cfg(redis_server, expiry=1, group_expiry=2)
    assert tool.run(conf, "send", "exp.chan", {"type": "t"}).returncode == 0
    assert int(redis_server.cli("TTL", "asgiexp.chan")) in (0, 1)
    # a membership made by a process that went away expires
    assert tool.run(conf, "group-add", "short", "specific.dead!x").returncode == 0
    # a live process keeps its membership (refresh every group_expiry / 3)
    c = serve(conf)
    ch = c.cmd("listen-new", ["short"])["channel"]
    time.sleep(3.2)
    assert redis_server.cli("EXISTS", "asgiexp.chan") == "0"
    py = py_layer(redis_server, expiry=1, group_expiry=2)
    run(py.group_send("short", {"type": "still.here"}))
    assert c.message()["message"] == {"type": "still.here"}
    members = redis_server.cli("ZRANGE", "asgi:group:short", "0", "-1").split()
    assert members == [ch]
    assert redis_server.cli("EXISTS", "asgispecific.dead!") == "0"


def test_c_trims_expired_messages_before_counting(redis_server, tool):
    conf = cfg(redis_server, expiry=1, capacity=1)
    import redis as redis_py
    import msgpack
    r = redis_py.Redis(port=redis_server.port)
    old = b"\x00" * 12 + msgpack.packb({"type": "old"})
    r.zadd("asgitrim.me", {old: time.time() - 5})
    assert tool.run(conf, "send", "trim.me", {"type": "new"}).returncode == 0
    res, lines = tool.lines(conf, "receive", "trim.me", "--count", "1", "--timeout", "3")
    assert lines[0]["message"] == {"type": "new"}


# ---- sharding -----------------------------------------------------------------------------

@pytest.mark.parametrize("nhosts", [2, 3])
def test_sharding_matches_python(redis_factory, serve, nhosts):
    servers = [redis_factory() for _ in range(nhosts)]
    c = serve(cfg(*servers))
    groups = [f"group-{i}" for i in range(12)]
    ch = c.cmd("listen-new", groups)["channel"]
    time.sleep(0.3)
    for g in groups:
        idx = _consistent_hash(g, nhosts)
        for i, s in enumerate(servers):
            assert s.cli("EXISTS", f"asgi:group:{g}") == ("1" if i == idx else "0"), (g, i)
    py = py_layer(*servers)

    async def py_side():
        for g in groups:
            await py.group_send(g, {"type": "g", "group": g})
        # channels_redis hashes the FULL name here (its known bug): the C
        # receiver polls every shard, so this still arrives.
        await py.send(ch, {"type": "direct"})
    run(py_side())
    got = [c.message()["message"] for _ in range(len(groups) + 1)]
    assert sorted(m.get("group", "") for m in got) == sorted(groups + [""])

    # C -> Python specific channel: lands on hash(non-local name), where
    # Python's receive() polls.
    pch = run(py.new_channel())
    assert c.cmd("send", pch, {"type": "to.py"})["ok"]
    idx = _consistent_hash(pch[: pch.index("!") + 1], nhosts)
    key = "asgi" + pch[: pch.index("!") + 1]
    assert [s.cli("ZCARD", key) for s in servers] == ["1" if i == idx else "0" for i in range(nhosts)]
    assert run(receive(py, pch)) == {"type": "to.py"}
    # C group_send to a Python member of a group on any shard
    async def join():
        for g in groups:
            await py.group_add(g, pch)
    run(join())
    for g in groups:
        assert c.cmd("group-send", g, {"type": "gc", "g": g})["ok"]

    async def collect():
        return [await receive(py, pch) for _ in groups]
    assert sorted(m["g"] for m in run(collect())) == sorted(groups)


# ---- encryption ------------------------------------------------------------------------------

def test_encryption_both_ways(redis_server, serve):
    keys = ["first-secret", "rotated-secret"]
    c = serve(cfg(redis_server, symmetric_encryption_keys=keys))
    ch = c.cmd("listen-new", ["sec"])["channel"]
    py = py_layer(redis_server, symmetric_encryption_keys=keys[::-1])  # C must try every key
    run(py.group_send("sec", {"type": "secret", "v": "hush"}))
    assert c.message()["message"] == {"type": "secret", "v": "hush"}
    py2 = py_layer(redis_server, symmetric_encryption_keys=keys)
    pch = run(py2.new_channel())
    import redis as redis_py
    r = redis_py.Redis(port=redis_server.port)
    assert c.cmd("send", pch, {"type": "enc", "v": "hush"})["ok"]
    members = r.zrange("asgi" + pch[: pch.index("!") + 1], 0, -1)
    assert len(members) == 1 and members[0][12:].startswith(b"gAAAAA") and b"hush" not in members[0]
    assert run(receive(py2, pch)) == {"type": "enc", "v": "hush"}
    # a wrong key: dropped and counted, not crashed
    bad = py_layer(redis_server, symmetric_encryption_keys=["nope"])
    run(bad.send(ch, {"type": "x"}))
    c.no_message(0.5)
    assert c.cmd("stats")["undeliverable"] == 1


# ---- connection forms --------------------------------------------------------------------------

def test_unix_socket_password_and_db(redis_factory, tmp_dir, tool):
    sock = f"{tmp_dir}/redis.sock"
    srv = redis_factory(extra=["--unixsocket", sock, "--requirepass", "s3cret"])
    conf = {"kind": "redis", "hosts": [f"unix://{sock}?db=3&password=s3cret"]}
    res = tool.run(conf, "send", "in.db3", {"type": "t"})
    assert res.returncode == 0, res.stderr
    assert srv.cli("ZCARD", "asgiin.db3", db=3, password="s3cret") == "1"
    assert srv.cli("EXISTS", "asgiin.db3", db=0, password="s3cret") == "0"
    py = RedisChannelLayer(hosts=[f"redis://:s3cret@127.0.0.1:{srv.port}/3"])
    assert run(receive(py, "in.db3")) == {"type": "t"}
    conf_tcp = {"kind": "redis", "hosts": [[f"127.0.0.1", srv.port]]}
    res = tool.run(conf_tcp, "send", "noauth", {"type": "t"})
    assert res.returncode == 3 and "NOAUTH" in res.stderr


# ---- outages -------------------------------------------------------------------------------------

def test_redis_restart_survived(redis_server, serve, tool):
    c = serve(cfg(redis_server))
    ch = c.cmd("listen-new", ["survivors"])["channel"]
    run(py_layer(redis_server).group_send("survivors", {"type": "before"}))
    assert c.message()["message"] == {"type": "before"}
    redis_server.stop()
    time.sleep(0.5)
    r = c.cmd("send", "x.y", {"type": "lost"})
    assert r["code"] == -3
    redis_server.start()   # empty: memberships must come back by themselves
    deadline = time.time() + 10
    while time.time() < deadline and redis_server.cli("ZRANGE", "asgi:group:survivors", "0", "-1") != ch:
        time.sleep(0.1)
    assert redis_server.cli("ZRANGE", "asgi:group:survivors", "0", "-1") == ch
    time.sleep(0.3)
    run(py_layer(redis_server).group_send("survivors", {"type": "after"}))
    assert c.message(timeout=10)["message"] == {"type": "after"}
    st = c.cmd("stats")
    assert st["reconnects"] >= 2 and st["undeliverable"] >= 1
    logs = "".join(c.stderr)
    assert logs.count("reconnecting") <= 2 * 2  # once per connection per outage


def test_redis_down_at_start(tool):
    from conftest import free_port
    conf = {"kind": "redis", "hosts": [f"redis://127.0.0.1:{free_port()}"]}
    res = tool.run(conf, "send", "x", {"type": "t"})
    assert res.returncode == 3
    assert "reconnecting" in res.stderr


def test_listen_plain_channel_while_blocked_and_unlisten(redis_server, serve):
    c = serve(cfg(redis_server))
    c.cmd("listen-new", [])          # a BZPOPMIN is now blocked on the specific key
    time.sleep(0.3)
    assert c.cmd("listen", "plain.q")["ok"]
    py = py_layer(redis_server)
    t0 = time.time()
    run(py.send("plain.q", {"type": "q", "n": 1}))
    assert c.message(timeout=4)["message"] == {"type": "q", "n": 1}
    assert time.time() - t0 < 2.5    # woken by CLIENT UNBLOCK, not by the 5 s timeout
    assert c.cmd("unlisten", "plain.q")["ok"]
    time.sleep(0.3)
    run(py.send("plain.q", {"type": "q", "n": 2}))
    c.no_message(1.0)
    assert redis_server.cli("ZCARD", "asgiplain.q") == "1"   # left for other consumers
    assert run(receive(py, "plain.q")) == {"type": "q", "n": 2}
