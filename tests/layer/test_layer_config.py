"""dfws.layer_config: Django CHANNEL_LAYERS -> JSON for the C layer."""

import json
import re

import pytest

from dfws.layer_config import regex_to_posix, to_dict, to_json

REDIS = "channels_redis.core.RedisChannelLayer"
PUBSUB = "channels_redis.pubsub.RedisPubSubChannelLayer"


def test_no_layer_is_memory():
    assert to_dict(None) == {"backend": "channels.layers.InMemoryChannelLayer", "kind": "memory",
                             "channel_capacity": []}
    d = to_dict({"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 5, "expiry": 9}})
    assert d["kind"] == "memory" and d["capacity"] == 5 and d["expiry"] == 9


def test_unsupported_backends_are_named():
    d = to_dict({"BACKEND": "myproj.layers.KafkaChannelLayer", "CONFIG": {"hosts": ["redis://x"]}})
    assert d == {"backend": "myproj.layers.KafkaChannelLayer", "kind": "unsupported"}


def test_pubsub_reads_what_channels_redis_43_reads():
    # hosts, prefix, keys, serializer_format; every other keyword (expiry,
    # capacity, on_disconnect, ...) is accepted and unused, as in 4.3
    d = to_dict({"BACKEND": PUBSUB, "CONFIG": {
        "hosts": [("127.0.0.1", 7000), {"address": "redis://h:1/2"}], "prefix": "app.",
        "symmetric_encryption_keys": ["k"], "capacity": 5, "expiry": 1,
        "channel_capacity": {re.compile(r"(?=lookahead)"): 1},
        "on_disconnect": lambda: None, "on_reconnect": "x", "serializer_format": "msgpack"}})
    assert d == {"backend": PUBSUB, "kind": "pubsub", "hosts": ["redis://127.0.0.1:7000", "redis://h:1/2"],
                 "prefix": "app.", "symmetric_encryption_keys": ["k"]}
    assert to_dict({"BACKEND": PUBSUB})["hosts"] == ["redis://localhost:6379"]
    with pytest.raises(ValueError, match="serializer_format"):
        to_dict({"BACKEND": PUBSUB, "CONFIG": {"serializer_format": "json"}})
    with pytest.raises(ValueError, match="list of Redis hosts"):
        to_dict({"BACKEND": PUBSUB, "CONFIG": {"hosts": "redis://x"}})
    # the prefix becomes part of channel names the C server must listen on
    for bad in ("app:", "x" * 59, "é"):
        with pytest.raises(ValueError, match="prefix"):
            to_dict({"BACKEND": PUBSUB, "CONFIG": {"prefix": bad}})


def test_redis_defaults():
    d = to_dict({"BACKEND": REDIS})
    assert d["kind"] == "redis"
    assert d["hosts"] == ["redis://localhost:6379"]
    assert d["prefix"] == "asgi"
    assert d["symmetric_encryption_keys"] == []


def test_host_forms():
    d = to_dict({"BACKEND": REDIS, "CONFIG": {"hosts": [
        "redis://:pw@h1:6380/2",
        b"redis://h2",
        ("h3", 7000),
        ["::1", 7001],
        {"address": "unix:///run/r.sock?db=4"},
        {"host": "h4", "port": 7002, "db": 3, "password": "p@ss/w"},
        {"host": "h5", "username": "u", "password": "p"},
        {"path": "/tmp/r.sock", "db": 1},
    ]}})
    assert d["hosts"] == [
        "redis://:pw@h1:6380/2",
        "redis://h2",
        "redis://h3:7000",
        "redis://[::1]:7001",
        "unix:///run/r.sock?db=4",
        "redis://:p%40ss%2Fw@h4:7002/3",
        "redis://u:p@h5:6379",
        "unix:///tmp/r.sock?db=1",
    ]


def test_hosts_must_be_a_list():
    with pytest.raises(ValueError, match="list of Redis hosts"):
        to_dict({"BACKEND": REDIS, "CONFIG": {"hosts": "redis://x"}})
    with pytest.raises(ValueError, match="hosts\\[0\\]"):
        to_dict({"BACKEND": REDIS, "CONFIG": {"hosts": [("a", 1, 2)]}})


def test_sentinel_entry_as_channels_redis_takes_it():
    d = to_dict({"BACKEND": REDIS, "CONFIG": {"hosts": [
        {"master_name": "m", "sentinels": [("s", 1), ["t", "2"]],
         "sentinel_kwargs": {"password": "sp", "socket_timeout": 1}, "password": "mp", "db": 3},
        ("plain", 6379)]}})
    assert d["hosts"] == [
        {"master_name": "m", "sentinels": [["s", 1], ["t", 2]], "sentinel_kwargs": {"password": "sp"},
         "password": "mp", "db": 3},
        "redis://plain:6379"]


@pytest.mark.parametrize("entry,message", [
    ({"master_name": "m", "sentinels": []}, "non-empty list"),
    ({"sentinels": [("s", 1)]}, "master_name"),
    ({"master_name": "m", "sentinels": [("s", 1, 2)]}, "pair"),
    ({"master_name": "m", "sentinels": [("s", 1)], "sentinel_kwargs": {"ssl": True}}, "TLS"),
])
def test_sentinel_entry_refused_with_a_reason(entry, message):
    with pytest.raises(ValueError, match=message):
        to_dict({"BACKEND": REDIS, "CONFIG": {"hosts": [entry]}})


def test_channel_capacity_rules_keep_order():
    d = to_dict({"BACKEND": REDIS, "CONFIG": {"channel_capacity": {
        "http.request": 200, re.compile(r"^websocket\.send\d+(?:x|y)$"): 20, "*": 7}}})
    assert d["channel_capacity"] == [
        {"glob": "http.request", "capacity": 200},
        {"regex": "^websocket\\.send[0-9]+(x|y)$", "capacity": 20},
        {"glob": "*", "capacity": 7},
    ]


@pytest.mark.parametrize("src,posix", [
    (r"a\d+", "a[0-9]+"),
    (r"[\d_]x", "[0-9_]x"),
    (r"\w\.\-", "[A-Za-z0-9_]\\.\\-"),
    (r"[]a]", "[]a]"),
    (r"[^]a]", "[^]a]"),
    (r"(?:ab)*", "(ab)*"),
])
def test_regex_translation(src, posix):
    assert regex_to_posix(src) == posix


@pytest.mark.parametrize("src", [r"(?=a)", r"(?P<n>a)", r"a*?", r"\bword", r"(a)\1", "[abc", "a\\"])
def test_regex_translation_refuses(src):
    with pytest.raises(ValueError):
        regex_to_posix(src)


def test_regex_flags_refused():
    with pytest.raises(ValueError, match="flags"):
        to_dict({"BACKEND": REDIS, "CONFIG": {"channel_capacity": {re.compile("a", re.I): 1}}})


def test_keys():
    d = to_dict({"BACKEND": REDIS, "CONFIG": {"symmetric_encryption_keys": ["s1", b"\x00\xff"]}})
    assert d["symmetric_encryption_keys"] == ["s1", {"base64": "AP8="}]
    with pytest.raises(ValueError, match="list of possible keys"):
        to_dict({"BACKEND": REDIS, "CONFIG": {"symmetric_encryption_keys": "s1"}})


def test_newer_channels_redis_options():
    with pytest.raises(ValueError, match="serializer_format"):
        to_dict({"BACKEND": REDIS, "CONFIG": {"serializer_format": "json"}})
    assert to_dict({"BACKEND": REDIS, "CONFIG": {"serializer_format": "msgpack", "random_prefix_length": 12}})


def test_to_json_is_json():
    s = to_json({"BACKEND": REDIS, "CONFIG": {"hosts": [("127.0.0.1", 1)], "prefix": "p"}})
    assert json.loads(s)["hosts"] == ["redis://127.0.0.1:1"]


def test_c_side_parses_the_json(tool):
    settings = {"BACKEND": REDIS, "CONFIG": {
        "hosts": [("127.0.0.1", 1), {"host": "localhost", "port": 2, "password": "x:y@z"}],
        "channel_capacity": {"a.*": 1, re.compile(r"b\d"): 2},
        "symmetric_encryption_keys": ["k", b"\x01"], "expiry": 30, "group_expiry": 100, "capacity": 3}}
    res = tool.run(json.loads(to_json(settings)), "new-channel")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("specific.")
    res = tool.run(to_dict({"BACKEND": PUBSUB, "CONFIG": {"prefix": "p.", "hosts": [("127.0.0.1", 1)]}}),
                   "new-channel")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("p.specific.") and "!" not in res.stdout
    res = tool.run(to_dict({"BACKEND": "myproj.layers.KafkaChannelLayer"}), "new-channel")
    assert res.returncode == 1 and "KafkaChannelLayer is not supported" in res.stderr
    res = tool.run(to_dict({"BACKEND": REDIS, "CONFIG": {"hosts": [
        {"master_name": "m", "sentinels": [("127.0.0.1", 1)]}]}}), "new-channel")
    assert res.returncode == 0, res.stderr
    res = tool.run({"kind": "redis", "hosts": [{"master_name": "m", "sentinels": []}]}, "new-channel")
    assert res.returncode == 1 and "sentinels" in res.stderr
