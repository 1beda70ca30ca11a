"""Topic histories in Redis shared by channels_redis writers (df_websockets'
history.py through the layer's own connections) and dfws' C layer
(layer_tool serve: history-send / history-read), over two shards: both
pick the group's shard by the same consistent hash and the same keys, and
continue one history (docs/recovery.md)."""
import asyncio
import json

import pytest
from channels_redis.utils import _consistent_hash

from df_websockets import history

SIZE, TTL = 10, 60


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def c_config(kind, servers):
    backend = {"redis": "channels_redis.core.RedisChannelLayer",
               "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer"}[kind]
    return {"kind": kind, "backend": backend, "hosts": [s.url for s in servers]}


def py_layer(kind, servers):
    if kind == "redis":
        from channels_redis.core import RedisChannelLayer as klass
    else:
        from channels_redis.pubsub import RedisPubSubChannelLayer as klass
    return klass(hosts=[s.url for s in servers])


@pytest.mark.parametrize("kind", ["redis", "pubsub"])
def test_python_and_c_share_one_history_per_group_across_shards(kind, redis_factory, serve):
    servers = [redis_factory(), redis_factory()]
    groups = ["g%02d" % i for i in range(12)]
    layer = py_layer(kind, servers)

    async def write():
        finals = {}
        for group in groups:
            finals[group] = [await history.append(layer, kind, group, json.dumps({"n": i, "signal_id": group + str(i)}),
                                                  SIZE, TTL) for i in range(3)]
        return finals

    finals = run(write())
    # each group's history is on its shard only
    for group in groups:
        shard = _consistent_hash(group, 2)  # what both channels_redis layers use
        assert servers[shard].cli("EXISTS", "asgi:hist:%s" % group).strip() == "1"
        assert servers[1 - shard].cli("EXISTS", "asgi:hist:%s" % group).strip() == "0"
    assert {s.cli("DBSIZE").strip() for s in servers} != {"0"}  # both shards used

    c = serve(c_config(kind, servers))
    assert c.cmd("history-configure", SIZE, TTL, history.script("append"), history.script("read"))["code"] == 0
    for group in groups:
        epoch = json.loads(finals[group][0])["pos"].split("-")[0]
        reply = c.cmd("history-read", group, epoch, 1)
        assert reply["code"] == 0, reply
        assert (reply["epoch"], reply["seq"], reply["items"]) == (epoch, 3, finals[group][1:])
        # another epoch: the meta only
        other = c.cmd("history-read", group, "ffffffff" if epoch != "ffffffff" else "00000000", 0)
        assert (other["epoch"], other["seq"], other["items"]) == (epoch, 3, [])
        # C appends: the same history goes on
        assert c.cmd("history-send", group, json.dumps({"n": 3, "signal_id": group + "c"}), "0badc0de")["code"] == 0
    missing = c.cmd("history-read", "nothere", "0011aabb", 0)
    assert (missing["epoch"], missing["seq"], missing["items"]) == (None, None, [])

    async def read_back():
        out = {}
        for group in groups:
            epoch = json.loads(finals[group][0])["pos"].split("-")[0]
            reply = await history._eval(layer, kind, group, "read", [epoch, 3, SIZE, history._now_ms(), TTL])
            out[group] = [m.decode() if isinstance(m, bytes) else m for m in reply]
        return out

    for group, reply in run(read_back()).items():
        epoch = json.loads(finals[group][0])["pos"].split("-")[0]
        assert reply[0] == epoch and int(reply[1]) == 4 and len(reply) == 3
        final = json.loads(reply[2].split("|", 1)[1])
        assert final == {"n": 3, "signal_id": group + "c", "topic": group, "pos": "%s-4" % epoch}


def test_c_history_without_scripts_is_refused(redis_server, serve):
    c = serve(c_config("redis", [redis_server]))
    assert c.cmd("history-configure", SIZE, TTL)["code"] == -1  # EINVAL: the scripts are needed
    assert c.cmd("history-read", "g", "0011aabb", 0)["code"] == -8  # history off: EUNSUPPORTED
    # size 0: off, a send goes without a position
    assert c.cmd("history-configure", 0, TTL)["code"] == 0
