"""Native socket hardening (issue #10, items 8 and 9): deeply nested calls,
client bytes in log lines, a separate and bounded capacity for connects, and
window keys bound to the session their page was served with."""
import asyncio
import json
import re
import time

import pytest
import websockets

from conftest import (
    TIMEOUT, Project, Server, assert_unknown_window_notice, connect_ws, login_window, open_window,
    page_cookies, run, signal_values, stop_clean, wait_until,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory, native_db):
    project = Project(tmp_path_factory.mktemp("hardening"), native_db, workers="thread")
    srv = Server(project, "--websocket-rate-limit", "0").start()
    yield srv
    stop_clean(srv)


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory, native_db):
    """One native thread per pool, a decoder that takes 0.5 s on "slowcall"
    frames (so that calls go through Python) and room for 2 connects."""
    project = Project(tmp_path_factory.mktemp("slow"), native_db, workers="thread")
    project.env["NATIVE_DECODER"] = "nativeapp.slow.SlowDecoder"
    project.env["DFWS_NATIVE_THREADS"] = "1"
    srv = Server(project, "--websocket-connect-capacity", "2",
                 "--websocket-rate-limit", "0").start()
    yield srv
    stop_clean(srv)


def nested(depth):
    return '{"signal": "native.echo", "opts": {"value": %s1%s}}' % ("[" * depth, "]" * depth)


@pytest.mark.parametrize("which", ["server", "slow_server"])
@pytest.mark.parametrize("depth", [900, 1500, 5000])
def test_deeply_nested_call_is_refused_with_a_log_line(request, which, depth):
    """Deeper than Python's recursion limit (jansson would pass 1500, Python
    raised RecursionError in a thread where nothing logged it): refused in C
    like any invalid call, with a warning, and the window keeps working."""
    srv = request.getfixturevalue(which)

    async def scenario():
        window = await open_window(srv, "/page/")
        await window.send(nested(depth))
        await window.heartbeat()
        await window.send(nested(3))  # a few levels are fine
        assert (await window.recv_json())["opts"]["value"] == [[[1]]]
        await window.close()

    before = srv.log().count("nested deeper than 64 levels")
    run(scenario())
    wait_until(lambda: srv.log().count("nested deeper than 64 levels") == before + 1,
               what="the warning")
    assert "RecursionError" not in srv.log()
    assert "Traceback" not in srv.log()


FORGED = "2026-01-01 00:00:00,000 ERROR    [1] forged admin login"


@pytest.mark.parametrize("frame", [
    "not json\n" + FORGED,
    '{"signal": "native.echo", "opts": "x\r\n' + FORGED + '"}',
    '{"signal": "native.echo", "opts": "x\x1b[2J\u2028' + FORGED + '"}',
])
def test_client_bytes_in_log_lines_are_escaped(server, frame):
    """A frame quoted in a warning cannot start a log line of its own nor
    carry terminal escapes."""
    async def scenario():
        window = await open_window(server, "/page/")
        await window.send(frame)
        await window.heartbeat()
        await window.close()

    run(scenario())
    wait_until(lambda: "forged admin login" in server.log(), what="the warning")
    with open(server.proc.log_path, "rb") as f:
        raw = f.read().decode("utf8")
    for line in re.split("\r\n|\r|\n|\u2028|\u2029|\x85", raw):
        if "forged admin login" in line:
            assert not line.startswith(FORGED), line
            assert re.match(r"^\d{4}-\d\d-\d\d [\d:,]+ WARNING +native window: invalid", line), line
            assert "\x1b" not in line, line
    assert "\\n" + FORGED in raw or "\\r\\n" + FORGED in raw or "\\u2028" + FORGED in raw


def test_connects_beyond_the_capacity_are_answered_503(slow_server):
    """Two windows spend 2 s in the middleware chain: a third connect is
    refused at once with 503 (not queued behind them), then works."""
    srv = slow_server

    async def scenario():
        jars = [page_cookies(srv, "/page/")[1] for _ in range(3)]
        slow = [asyncio.ensure_future(connect_ws(srv, jar, path="/ws/?slowconnect=2"))
                for jar in jars[:2]]
        await asyncio.sleep(0.5)
        start = time.monotonic()
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as info:
            await connect_ws(srv, jars[2])
        assert info.value.status_code == 503
        assert time.monotonic() - start < 1.0
        for ws in await asyncio.gather(*slow):
            await ws.send("--heartbeat--")
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "--heartbeat--"
            await ws.close()
        ws = await connect_ws(srv, jars[2])  # capacity back
        await ws.send("--heartbeat--")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "--heartbeat--"
        await ws.close()

    run(scenario())
    assert "native window refused (503): 2 windows are already connecting" in srv.log()


def test_a_flood_of_calls_does_not_delay_connects(slow_server):
    """Calls queued in Python (6 x 0.5 s on one thread) do not stand in front
    of a new window's connect."""
    srv = slow_server
    project = srv.project

    async def scenario():
        caller = await open_window(srv, "/page/")
        for i in range(6):
            await caller.send(json.dumps({"signal": "native.echo",
                                          "opts": {"value": "slowcall-%d" % i, "reply": False}}))
        await caller.heartbeat()
        await asyncio.sleep(0.2)
        start = time.monotonic()
        window = await open_window(srv, "/page/")
        await window.heartbeat()
        elapsed = time.monotonic() - start
        assert elapsed < 1.5, "connect took %.1f s behind the calls" % elapsed
        project.proof("native.echo", caller.key, "slowcall-5", timeout=10)
        await window.close()
        await caller.close()

    run(scenario())


def test_window_key_without_its_session_gets_no_topics(server):
    """The key of alice's window presented without alice's session cookie
    (or with another user's) receives nothing of hers."""
    async def scenario():
        alice = await login_window(server, "alice")
        bob = await login_window(server, "bob")
        thief = await connect_ws(server, {"dfwskey": alice.key})
        assert_unknown_window_notice(await asyncio.wait_for(thief.recv(), TIMEOUT))
        other = dict(bob.cookies, dfwskey=alice.key)
        thief2 = await connect_ws(server, other)
        assert_unknown_window_notice(await asyncio.wait_for(thief2.recv(), TIMEOUT))
        server.fire([{"to": "user", "user": "alice", "value": "for-alice"},
                     {"to": "window", "key": alice.key, "value": "for-alice-window"}])
        assert signal_values(await alice.drain(expect=2)) == ["for-alice", "for-alice-window"]
        for ws in (thief, thief2):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.5)
            await ws.close()
        # alice's own cookies still work (a reconnect)
        again = await connect_ws(server, alice.cookies)
        server.fire([{"to": "window", "key": alice.key, "value": "again"}])
        assert json.loads(await asyncio.wait_for(again.recv(), TIMEOUT))["opts"]["value"] == "again"
        for w in (alice, bob):
            await w.close()
        await again.close()

    run(scenario())
    assert "the handshake presents no session, its page was served with a user" in server.log()
    assert "the handshake presents another user, its page was served with another user" \
        in server.log()


def test_anonymous_window_keeps_working_and_is_bound_too(server):
    """A page served without a session: its key works without one (a
    reconnect), not with someone's session."""
    async def scenario():
        anon = await open_window(server, "/page/")
        again = await connect_ws(server, {"dfwskey": anon.key})
        bob = await login_window(server, "bob")
        thief = await connect_ws(server, dict(bob.cookies, dfwskey=anon.key))
        assert_unknown_window_notice(await asyncio.wait_for(thief.recv(), TIMEOUT))
        server.fire([{"to": "window", "key": anon.key, "value": "anon"}])
        assert signal_values(await anon.drain(expect=1)) == ["anon"]
        assert json.loads(await asyncio.wait_for(again.recv(), TIMEOUT))["opts"]["value"] == "anon"
        for ws in (again, thief, anon.ws, bob.ws):
            await ws.close()

    run(scenario())


# ------------------------------------------------------------------ deliveries
# Messages put on a window's channel by hand, the way channels_redis.core
# does (12 random bytes + msgpack in the process's sorted set), with what a
# faulty or hostile sender could put there.

@pytest.fixture(scope="module")
def redis_server_native(tmp_path_factory, native_db, redis_server):
    redis_server.command("FLUSHALL")
    project = Project(tmp_path_factory.mktemp("hardening-redis"), native_db,
                      redis_url=redis_server.url, workers="thread")
    srv = Server(project).start()
    srv.redis = redis_server
    yield srv
    stop_clean(srv)


def _mp(value):
    import msgpack

    return msgpack.packb(value, use_bin_type=True)


def put_raw(srv, window_key, message_str_bytes, copies=1):
    """A ws_message whose ``message`` is the msgpack str of these bytes (not
    checked), addressed to the window's channel ``copies`` times."""
    import hashlib
    import os

    import redis

    conn = redis.Redis.from_url(srv.redis.url + "/0")
    group = "asgi:group:" + hashlib.sha256(("-window." + window_key).encode()).hexdigest()
    channel = wait_until(lambda: [c.decode() for c in conn.zrange(group, 0, -1)],
                         what="the window's channel in its group")[0]
    assert len(message_str_bytes) < 32
    body = (b"\x83" + _mp("type") + _mp("ws_message") + _mp("message")
            + bytes([0xa0 | len(message_str_bytes)]) + message_str_bytes
            + _mp("__asgi_channel__") + _mp([channel] * copies))
    conn.zadd("asgi" + channel[:channel.index("!") + 1], {os.urandom(12) + body: time.time()})
    conn.close()


def test_delivery_that_is_not_utf8_is_dropped_with_a_log_line(redis_server_native):
    srv = redis_server_native

    async def scenario():
        window = await open_window(srv, "/page/")
        put_raw(srv, window.key, b'{"bad": "\xff\xfe"}')
        put_raw(srv, window.key, b'{"good": "\xc3\xa9"}')
        assert await window.drain(expect=1) == ['{"good": "\u00e9"}']
        await window.heartbeat()  # not closed (a browser closes with 1007)
        await window.close()

    run(scenario())
    assert "dropped a ws_message whose text is not valid UTF-8" in srv.log()


def test_channel_listed_twice_in_a_message_gets_it_once(redis_server_native):
    srv = redis_server_native

    async def scenario():
        window = await open_window(srv, "/page/")
        put_raw(srv, window.key, b'{"once": 1}', copies=3)
        assert await window.drain(expect=1) == ['{"once": 1}']
        await window.close()

    run(scenario())
