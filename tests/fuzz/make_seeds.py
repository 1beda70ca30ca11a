#!/usr/bin/env python3
"""Writes the hand-made seed inputs of the libFuzzer drivers into
tests/fuzz/corpus/<driver>/seed-*. scripts/fuzz.sh starts from that folder;
the committed corpus is these seeds merged (-merge=1) with what the long
runs found. Needs no third-party module (msgpack is written by hand).
    python3 tests/fuzz/make_seeds.py"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
PREFIX = "0123456789abcdef0123456789abcdef"  # fuzz_redis.c's client prefix


def mp(v):
    """A minimal msgpack encoder (str, bytes, int, float, bool, None, list, dict)."""
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        if len(b) < 32:
            return bytes([0xA0 | len(b)]) + b
        if len(b) < 256:
            return b"\xd9" + bytes([len(b)]) + b
        return b"\xda" + struct.pack(">H", len(b)) + b
    if isinstance(v, bytes):
        return b"\xc4" + bytes([len(v)]) + v
    if isinstance(v, list):
        h = bytes([0x90 | len(v)]) if len(v) < 16 else b"\xdc" + struct.pack(">H", len(v))
        return h + b"".join(mp(x) for x in v)
    if isinstance(v, dict):
        h = bytes([0x80 | len(v)]) if len(v) < 16 else b"\xde" + struct.pack(">H", len(v))
        return h + b"".join(mp(k) + mp(x) for k, x in v.items())
    raise TypeError(v)


def bulk(b):
    if isinstance(b, str):
        b = b.encode()
    return b"$%d\r\n%s\r\n" % (len(b), b)


def arr(*items):
    return b"*%d\r\n" % len(items) + b"".join(items)


def seeds():
    msg = {"type": "ws_message", "message": "hello"}
    wire_one = mp({**msg, "__asgi_channel__": f"specific.{PREFIX}!w"})
    wire_list = mp({"type": "chat", "n": [1, 2.5, None, True, {"a": b"\x00"}],
                    "__asgi_channel__": [f"specific.{PREFIX}!w", f"specific.{PREFIX}!zz"]})
    member_one = b"r" * 12 + wire_one
    member_list = b"r" * 12 + wire_list
    member_plain = b"r" * 12 + mp(msg)
    key = f"asgispecific.{PREFIX}!"
    yield "fuzz_layer_msg", "map", mp(msg)
    yield "fuzz_layer_msg", "wire-one", wire_one
    yield "fuzz_layer_msg", "wire-list", wire_list
    yield "fuzz_layer_msg", "nested", mp({"type": "x", "d": {"e": [[[{"f": -5}]]]}, "big": 2**40, "s": "x" * 40})
    yield "fuzz_layer_msg", "map16", b"\xde\x00\x01" + mp("type") + mp("t")
    yield "fuzz_layer_msg", "str32", b"\x81" + mp("type") + b"\xdb\x00\x00\x00\x03abc"
    yield "fuzz_layer_msg", "ext", b"\x82" + mp("type") + mp("t") + mp("e") + b"\xd4\x01\x02"

    yield "fuzz_redis", "bzpop-one", b"\x00" + arr(bulk(key), bulk(member_one), bulk("1.5"))
    yield "fuzz_redis", "bzpop-list", b"\x00" + arr(bulk(key), bulk(member_list), bulk("1.5"))
    yield "fuzz_redis", "bzpop-plainq", b"\x00" + arr(bulk("asgiplainq"), bulk(member_plain), bulk("2"))
    yield "fuzz_redis", "bzpop-other", b"\x00" + arr(bulk("asgiother"), bulk(member_one), b":1\r\n")
    yield "fuzz_redis", "bzpop-nil", b"\x00*-1\r\n-ERR unknown\r\n"
    yield "fuzz_redis", "bzpop-keyed", b"\x04" + arr(bulk(key), bulk(wire_one), bulk("1"))
    yield "fuzz_redis", "zpop", b"\x01" + arr(bulk(member_one), bulk("1"), bulk(member_list), bulk("2"))
    yield "fuzz_redis", "zpop-keyed", b"\x05" + arr(bulk(wire_list), bulk("1"))
    yield "fuzz_redis", "members", b"\x02" + arr(bulk(f"specific.{PREFIX}!a"), bulk("plain.x"), bulk("bad name"),
                                                  bulk(f"specific.{PREFIX}!b"), b"$-1\r\n")
    yield "fuzz_redis", "members-err", b"\x02-NOSCRIPT x\r\n:5\r\n+OK\r\n"
    yield "fuzz_redis", "pubsub", b"\x03" + arr(bulk("message"), bulk("asgi__group__g"), bulk(mp(msg))) + \
        arr(bulk("subscribe"), bulk("x"), b":1\r\n")
    # keyed: the driver encrypts the payload, as a keyed sender would
    yield "fuzz_redis", "pubsub-keyed", b"\x07" + arr(bulk("message"), bulk("asgi__group__g"), bulk(mp(msg)))
    yield "fuzz_redis", "pubsub-channel", b"\x03" + arr(bulk("message"), bulk("c"), bulk(mp(msg))) + \
        arr(bulk("message"), bulk(f"specific.{PREFIX}!w"), bulk(mp({**msg, "__asgi_channel__": "c"})))

    yield "fuzz_native", "a", b'\x00{"signal": "sig.a", "opts": {"a": 1, "b": [1, 2.5, true, false, null, "x"]}}'
    yield "fuzz_native", "b", b'\x00{"signal": "sig.b", "opts": null, "eta": null, "expires": null}'
    yield "fuzz_native", "dyn", b'\x00{"signal": "sig.dyn", "opts": {"k": {"n": {"d": [{}]}}}}'
    yield "fuzz_native", "unknown", b'\x00{"signal": "nope"}'
    yield "fuzz_native", "countdown", b'\x00{"signal": "sig.a", "countdown": 3}'
    yield "fuzz_native", "app", b'\x01{"signal": "x", "opts": {"\\u00e9": "\\ud83d\\ude00"}}'
    yield "fuzz_native", "bad", b'\x00{"signal": 5, "opts": []}'
    yield "fuzz_native", "dup", b'\x00{"signal": "sig.a", "signal": "sig.b"}'
    yield "fuzz_native", "big", b'\x00{"signal": "sig.a", "opts": {"i": -9223372036854775808, "f": 1e308}}'

    yield "fuzz_layer_config", "url", b"\x00redis://user:p%40ss@example.com:6380/2?db=3&password=x"
    yield "fuzz_layer_config", "url6", b"\x00redis://[::1]:6379/0"
    yield "fuzz_layer_config", "unix", b"\x00unix:///run/redis.sock?db=1&username=u"
    yield "fuzz_layer_config", "json", (
        b'\x01{"backend": "channels_redis.core.RedisChannelLayer", "kind": "redis", '
        b'"hosts": ["redis://localhost:6379", ["h", 1], {"address": "redis://a/1"}, '
        b'{"host": "b", "port": 2, "db": 3, "password": "p", "username": "u"}], '
        b'"prefix": "p", "expiry": 5, "group_expiry": 10, "capacity": 7, '
        b'"channel_capacity": [{"glob": "http.*", "capacity": 2}, {"regex": "^ws", "capacity": 3}], '
        b'"symmetric_encryption_keys": ["secret", {"base64": "c2VjcmV0"}]}')
    yield "fuzz_layer_config", "pubsub", b'\x01{"kind": "pubsub", "hosts": ["unix:///s"]}'

    yield "fuzz_http1", "get", b"\x10GET /a?b=c HTTP/1.1\r\nHost: x\r\nCookie: a=b\r\n\r\n"
    yield "fuzz_http1", "post", b"\x20POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n"
    yield "fuzz_http1", "chunked", (b"\x30POST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    b"5;x=y\r\nhello\r\n0\r\nT: v\r\n\r\n")
    yield "fuzz_http1", "upgrade", (b"\x08GET /ws/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                                    b"\x81\x85\x00\x00\x00\x00hello")
    yield "fuzz_http1", "http10", b"\x05GET / HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\n\r\n"

    def frame(op, payload, fin=True, mask=b"\x01\x02\x03\x04"):
        n = len(payload)
        h = bytes([(0x80 if fin else 0) | op])
        if n < 126:
            h += bytes([0x80 | n])
        else:
            h += bytes([0x80 | 126]) + struct.pack(">H", n)
        return h + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    yield "fuzz_websocket", "text", b"\x03" + frame(1, b"hello")
    yield "fuzz_websocket", "frag", b"\x07" + frame(1, b"hel", fin=False) + frame(9, b"p") + frame(0, b"lo")
    yield "fuzz_websocket", "bin126", b"\x40" + frame(2, b"x" * 200)
    yield "fuzz_websocket", "close", b"\x01" + frame(8, struct.pack(">H", 1000) + b"bye")
    yield "fuzz_websocket", "utf8", b"\x02" + frame(1, "\u00e9\U0001F600".encode())


def main():
    for driver, name, data in seeds():
        d = os.path.join(HERE, "corpus", driver)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
