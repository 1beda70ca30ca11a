"""df_websockets.history: the writer of topic histories (docs/recovery.md) on
each kind of channel layer, the two Lua scripts against a real Redis
through channels_redis' own connections (core and pub/sub layers), and the
Python consumer's validation of the recovery request."""
import json
import logging
import re
import sys
import types

import pytest
from asgiref.sync import async_to_sync
from django.test import override_settings

from df_websockets import history
from df_websockets.layers import EmbeddedChannelLayer
from df_websockets.tasks import BROADCAST, WINDOW, trigger
from df_websockets.utils import valid_topic_name
from df_websockets.window_info import WindowInfo

POS = re.compile(r"^[0-9a-f]{8}-[1-9][0-9]*$")


# ---- the request ------------------------------------------------------------------

@pytest.mark.parametrize("query, expected", [
    (b"", None),
    (b"a=1", None),
    (b"dfws_recoverx=1", None),
    (b"dfws_recover=%7B%22g%22%3A%22a%22%7D", '{"g":"a"}'),
    (b"a=1&dfws_recover=x+y&dfws_recover=2", "x y"),
    (b"dfws_recover=%7", False),
    (b"dfws_recover=%zz", False),
    (b"dfws_recover=a%00b", False),
    (b"dfws_recover=%ff", False),  # not UTF-8
    (b"dfws_recover=" + b"a" * 8192, "a" * 8192),
    (b"dfws_recover=" + b"a" * 8193, False),
    (b"dfws_recover=" + b"%41" * 8193, False),
])
def test_request_param(query, expected):
    assert history.request_param(query) == expected


HELD = ["g1", "g2", "g3"]


def test_parse_request_keeps_held_groups_only():
    wants, failed, ignored = history.parse_request(
        '{"g1": "0011aabb-5", "g2": "0011aabb-0", "other": "0011aabb-1"}', HELD)
    assert wants == [("g1", "0011aabb", 5), ("g2", "0011aabb", 0)]
    assert failed == [] and ignored == 1


@pytest.mark.parametrize("value", [
    "0011AABB-5", "0011aab-5", "0011aabbc-5", "0011aabb5", "0011aabb-", "0011aabb-05",
    "0011aabb--5", "0011aabb-5x", "0011aabb-9007199254740993", "0011aabb-99999999999999999999",
    5, None, True, [], "", "0011aabb-+5", " 0011aabb-5", "0011aabb-5\n",
])
def test_parse_request_malformed_positions_fail(value):
    raw = json.dumps({"g2": value, "g3": "0011aabb-9007199254740992"})
    wants, failed, _ = history.parse_request(raw, HELD)
    assert wants == [("g3", "0011aabb", 2 ** 53)] and failed == ["g2"]


@pytest.mark.parametrize("raw", [
    False, "", "[]", '"g1"', "{", '{"g1": {"x": [1]}}', '{"g1": "0011aabb-1", "g1": "0011aabb-2"}',
    "null",
])
def test_parse_request_unreadable_fails_every_held_group(raw):
    assert history.parse_request(raw, HELD) == ([], HELD, 0)


def test_parse_request_reads_at_most_64_groups():
    names = ["t%d" % i for i in range(66)]
    raw = json.dumps({name: "0011aabb-%d" % (i + 1) for i, name in enumerate(names)})
    wants, failed, _ = history.parse_request(raw, names)
    assert len(wants) == 64 and failed == ["t64", "t65"]
    wants, failed, ignored = history.parse_request(raw, names[-3:])
    assert len(wants) == 3 and not failed and ignored == 63


# ---- the writer ----------------------------------------------------------------------

def window(key="7f8d28ba4820"):
    wi = WindowInfo()
    wi.window_key = key
    return wi


def test_layer_without_history_sends_as_before_and_says_so_once(caplog):
    """tests/app's layer is EmbeddedChannelLayer outside dfws-asgi: no history."""
    from channels.layers import get_channel_layer

    history._told.clear()
    layer = get_channel_layer()

    async def scenario():
        channel = await layer.new_channel()
        await layer.group_add(valid_topic_name("-broadcast"), channel)
        trigger(window(), "a.signal", to=[BROADCAST], x=1)
        trigger(window(), "a.signal", to=[BROADCAST], x=2)
        return [await layer.receive(channel), await layer.receive(channel)]

    with caplog.at_level(logging.INFO, logger="df_websockets.history"):
        events = async_to_sync(scenario)()
    for event in events:
        assert list(json.loads(event["message"])) == ["signal", "opts", "signal_id"]
    told = [r for r in caplog.records if r.name == "df_websockets.history"]
    assert len(told) == 1 and "keeps no history" in told[0].getMessage()


@pytest.fixture
def fake_dfws(monkeypatch):
    module = types.ModuleType("dfws._dfws")
    module.calls = []
    module.layer_available = lambda: True
    module.layer_history_configure = lambda *a: module.calls.append(("configure",) + a)
    module.layer_history_send = lambda *a: module.calls.append(("history_send",) + a)
    module.layer_group_send = lambda *a: module.calls.append(("group_send",) + a)
    monkeypatch.setitem(sys.modules, "dfws._dfws", module)
    history._configured.clear()
    return module


@override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "df_websockets.layers.EmbeddedChannelLayer"}})
def test_embedded_layer_in_dfws_asgi_appends_in_c(fake_dfws):
    trigger(window(), "a.signal", to=[WINDOW, BROADCAST], x=1)
    kinds = [c[0] for c in fake_dfws.calls]
    assert kinds == ["configure", "history_send", "history_send"]
    _, size, ttl, append_lua, read_lua = fake_dfws.calls[0]
    assert (size, ttl) == (100, 120)
    assert append_lua == history.script("append") and "ZADD" in append_lua
    assert read_lua == history.script("read") and "ZRANGEBYSCORE" in read_lua
    (_, g1, m1, e1), (_, g2, m2, e2) = fake_dfws.calls[1:]
    assert {g1, g2} == {valid_topic_name("-window.7f8d28ba4820"), valid_topic_name("-broadcast")}
    assert m1 == m2 and list(json.loads(m1)) == ["signal", "opts", "signal_id"]
    assert re.match(r"^[0-9a-f]{8}$", e1) and re.match(r"^[0-9a-f]{8}$", e2)


@override_settings(WEBSOCKET_HISTORY_SIZE=0,
                   CHANNEL_LAYERS={"default": {"BACKEND": "df_websockets.layers.EmbeddedChannelLayer"}})
def test_history_size_zero_turns_it_off(fake_dfws):
    trigger(window(), "a.signal", to=[BROADCAST], x=1)
    assert [c[0] for c in fake_dfws.calls] == ["group_send"]


@pytest.mark.parametrize("name, value", [
    ("WEBSOCKET_HISTORY_SIZE", -1), ("WEBSOCKET_HISTORY_SIZE", "100"), ("WEBSOCKET_HISTORY_TTL", 0),
    ("WEBSOCKET_RECOVERY_MAX_BYTES", 1.5), ("WEBSOCKET_HISTORY_SIZE", True),
])
def test_bad_settings_are_refused(name, value):
    from django.core.exceptions import ImproperlyConfigured

    with override_settings(**{name: value}), pytest.raises(ImproperlyConfigured):
        history.settings()


def test_signal_queue_still_intercepts():
    from df_websockets.testing import SignalQueue

    with SignalQueue() as queue:
        trigger(window(), "a.signal", to=[BROADCAST], x=1)
    assert queue.ws_signals == {"-broadcast": [("a.signal", {"x": 1})]}


# ---- Redis: the scripts through channels_redis' connections --------------------------------

@pytest.fixture(params=["core", "pubsub"])
def redis_layer(request, redis_server):
    if request.param == "core":
        from channels_redis.core import RedisChannelLayer as klass
    else:
        from channels_redis.pubsub import RedisPubSubChannelLayer as klass
    return klass(hosts=[redis_server + "/5"], prefix="hist%s" % request.param)


def test_append_and_read_in_redis(redis_layer):
    kind = history._kind(redis_layer)
    group = valid_topic_name("-broadcast-%s" % kind)

    async def scenario():
        finals = [await history.append(redis_layer, kind, group, json.dumps({"n": i, "signal_id": "s%d" % i}),
                                       3, 60) for i in range(5)]
        epoch = json.loads(finals[0])["pos"].split("-")[0]
        everything = await history.read(redis_layer, group, epoch, 0)
        after3 = await history.read(redis_layer, group, epoch, 3)
        other = await history.read(redis_layer, group, "ffffffff" if epoch != "ffffffff" else "0", 0)
        missing = await history.read(redis_layer, valid_topic_name("-nothing"), epoch, 0)
        # the TTL: the read script compares the times it is given
        expired = await history._eval(redis_layer, kind, group, "read",
                                      [epoch, 0, 10, history._now_ms() + 61000, 60])
        await redis_layer.flush()
        return finals, epoch, everything, after3, other, missing, expired

    finals, epoch, everything, after3, other, missing, expired = async_to_sync(scenario)()
    for i, final in enumerate(finals):
        message = json.loads(final)
        assert message == {"n": i, "signal_id": "s%d" % i, "topic": group, "pos": "%s-%d" % (epoch, i + 1)}
        assert final.startswith(json.dumps({"n": i, "signal_id": "s%d" % i})[:-1] + ',"topic"')
    assert everything == (epoch, 5, finals[2:])  # the last 3 (size)
    assert after3 == (epoch, 5, finals[3:])
    assert other == (epoch, 5, [])
    assert missing == (None, None, [])
    assert len(expired) == 2


def test_recover_in_python_from_redis(redis_layer, settings):
    settings.WEBSOCKET_HISTORY_SIZE = 5
    settings.WEBSOCKET_RECOVERY_MAX_BYTES = 600  # two groups of two fit, five padded do not
    kind = history._kind(redis_layer)
    g1, g2 = valid_topic_name("-r1-%s" % kind), valid_topic_name("-r2-%s" % kind)

    async def scenario():
        m = [await history.append(redis_layer, kind, g, json.dumps({"signal_id": sid}), 5, 60)
             for g, sid in ((g1, "a"), (g1, "b"), (g2, "b"), (g2, "c"))]
        epoch1 = json.loads(m[0])["pos"].split("-")[0]
        epoch2 = json.loads(m[2])["pos"].split("-")[0]
        ok = await history.recover(redis_layer, json.dumps({g1: epoch1 + "-0", g2: epoch2 + "-0"}),
                                   [g1, g2])
        bad = await history.recover(redis_layer, json.dumps({g1: epoch1 + "-9", g2: "ffffffff-1"}),
                                    [g1, g2])
        for i in range(5):
            await history.append(redis_layer, kind, g1, json.dumps({"signal_id": "x%d" % i, "pad": "p" * 60}),
                                 5, 60)
        gap = await history.recover(redis_layer, json.dumps({g1: epoch1 + "-1"}), [g1])
        budget = await history.recover(redis_layer, json.dumps({g1: epoch1 + "-2"}), [g1])
        await redis_layer.flush()
        return m, ok, bad, gap, budget

    m, ok, bad, gap, budget = async_to_sync(scenario)()
    assert ok.messages == [m[0], m[1], m[3]] and ok.failed == []  # "b" once
    assert ok.skip(m[2]) and ok.skip(m[1]) and not ok.skip('{"signal_id": "new"}')
    assert bad.messages == [] and sorted(bad.failed) == sorted([g1, g2])
    assert gap.failed == [g1]
    assert budget.messages == [] and budget.failed == [g1]
    assert json.loads(history.failed_message([g1]))["signal"] == "df_websockets.recovery_failed"


def test_append_survives_a_lost_pooled_connection(redis_layer, redis_server, caplog):
    """After a Redis restart the layer's pool still holds connections to the
    old process: the append is tried once more on a new connection, and
    the message keeps its position (without it, a window away at that
    moment could never recover the message)."""
    import redis as redis_sync

    kind = history._kind(redis_layer)
    group = valid_topic_name("-lost-connection-%s" % kind)
    sent = []

    async def fake_group_send(name, message):
        sent.append(message["message"])

    redis_layer.group_send = fake_group_send

    async def scenario():
        await history.group_send(redis_layer, group, json.dumps({"signal_id": "a"}))
        killer = redis_sync.Redis.from_url(redis_server + "/5")
        killed = killer.client_kill_filter(_type="normal", skipme=True)
        killer.close()
        await history.group_send(redis_layer, group, json.dumps({"signal_id": "b"}))
        await redis_layer.flush()
        return killed

    with caplog.at_level(logging.INFO, logger="df_websockets.history"):
        killed = async_to_sync(scenario)()
    assert killed >= 1
    first, second = (json.loads(m) for m in sent)
    epoch = first["pos"].split("-")[0]
    assert second["pos"] == epoch + "-2"
    assert not [r for r in caplog.records if "sent without a position" in r.getMessage()]


def test_history_written_by_another_server_is_not_trusted(redis_layer, redis_server):
    """A shard restarted, or a replica promoted by a Sentinel failover, may
    lack the last messages its predecessor acknowledged. The history records
    the replication ID of the server that wrote it: on another server a read
    trusts no position (recovery_failed, never a replay with a silent gap),
    and the next append starts a new epoch at offset 1."""
    import redis as redis_sync

    kind = history._kind(redis_layer)
    group = valid_topic_name("-promoted-%s" % kind)
    async def append(sid):
        return json.loads(await history.append(redis_layer, kind, group,
                                               json.dumps({"signal_id": sid}), 10, 60))

    async def scenario():
        prefix = redis_layer.prefix if kind == "redis" else redis_layer._get_layer().prefix
        meta = history.keys(prefix, group)[1]
        first = [await append("a"), await append("b")]
        epoch = first[0]["pos"].split("-")[0]
        before = await history.read(redis_layer, group, epoch, 0)
        # what a promoted replica holds: the history as its old master wrote it
        direct = redis_sync.Redis.from_url(redis_server + "/5")
        direct.hset(meta, "replid", "0" * 40)
        direct.close()
        after = await history.read(redis_layer, group, epoch, 0)
        again = await append("c")
        fresh = await history.read(redis_layer, group, again["pos"].split("-")[0], 0)
        await redis_layer.flush()
        return epoch, before, after, again, fresh

    epoch, before, after, again, fresh = async_to_sync(scenario)()
    assert before[0] == epoch and before[1] == 2 and len(before[2]) == 2
    assert after == (None, None, [])
    new_epoch, offset = again["pos"].split("-")
    assert new_epoch != epoch and offset == "1"
    assert fresh == (new_epoch, 1, [json.dumps({"signal_id": "c"})[:-1] + ',"topic":"%s","pos":"%s"}' % (group, again["pos"])])
