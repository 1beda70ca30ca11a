"""Native df_websockets socket, one process, embedded (in-process C) channel
layer, LocMemCache, ``thread`` workers: connect, heartbeat, browser calls,
server triggers to WINDOW / USER / BROADCAST / a model instance (from a view),
Origin check, malformed input, message size and rate limits."""
import asyncio
import json
import os
import re
import socket

import pytest
import websockets

from conftest import (
    TIMEOUT, Project, Server, assert_unknown_window_notice, connect_ws, drain_all, login_window,
    open_window, page_cookies, run, signal_values, stop_clean, wait_until,
)

MAX_MESSAGE = 65536
RATE_LIMIT = 50  # messages/s per window, burst 2x


@pytest.fixture(scope="module")
def server(tmp_path_factory, native_db):
    project = Project(tmp_path_factory.mktemp("embedded"), native_db, workers="thread",
                      log_level="DEBUG")
    srv = Server(project, "-v", "2", "--websocket-max-message-size", str(MAX_MESSAGE),
                 "--websocket-rate-limit", str(RATE_LIMIT)).start()
    assert "served natively (thread workers" in srv.log()
    assert "channel layer: in-process" in srv.log()
    yield srv
    stop_clean(srv)


def test_connect_and_heartbeat_echoed_verbatim(server):
    async def scenario():
        window = await open_window(server, "/page/")
        for _ in range(3):
            await window.heartbeat()
        await window.close()
        # the query string is tolerated on WEBSOCKET_URL
        ws = await connect_ws(server, window.cookies, path="/ws/?v=1")
        await ws.send("--heartbeat--")
        assert await asyncio.wait_for(ws.recv(), 5) == "--heartbeat--"
        await ws.close()

    run(scenario())


@pytest.mark.parametrize("key", [None, "neverrenderedkey0123456789abcdef"])
def test_window_without_topics_is_told_and_logged(server, key):
    """No dfwskey cookie, or a key whose topics the cache does not hold (a
    restart emptied a LocMemCache): connected but deaf, so it is told."""
    async def scenario():
        before = server.log().count("has no topics in CACHES['default'] (LocMemCache)")
        ws = await connect_ws(server, cookies={"dfwskey": key} if key else None)
        assert_unknown_window_notice(await asyncio.wait_for(ws.recv(), 5))
        wait_until(lambda: server.log().count(
            "has no topics in CACHES['default'] (LocMemCache)") == before + 1,
            what="the warning")
        # nothing else reaches it
        listener = await open_window(server, "/page/")
        server.fire([{"to": "broadcast", "value": "deaf"}])
        assert signal_values(await listener.drain(expect=1)) == ["deaf"]
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.5)
        await ws.close()
        await listener.close()

    run(scenario())
    line = [x for x in server.log().splitlines() if "has no topics" in x][-1]
    assert ("with key neverr..." if key else "without a dfwskey cookie") in line
    assert key is None or key not in line  # never the whole key


def test_browser_call_runs_everyone_handler_in_thread_mode(server):
    project = server.project

    async def scenario():
        window = await open_window(server, "/page/")
        other = await open_window(server, "/page/")
        await window.send(json.dumps({"signal": "native.echo", "opts": {"value": "t1"}}))
        reply = await window.recv_json()
        assert reply["signal"] == "native.echoed"
        assert reply["opts"] == {"value": "t1", "pid": server.proc.pid}
        proof = project.proof("native.echo", window.key, "t1")
        assert proof["window_key"] == window.key
        assert proof["kwargs"] == {"value": "t1", "reply": True}
        assert proof["pid"] == server.proc.pid  # thread mode: inside the server
        # the reply went to the caller's window only
        assert await other.drain(0.4) == []
        await window.heartbeat()
        await window.close()
        await other.close()

    run(scenario())


def test_browser_call_to_server_side_signal_does_not_run(server):
    project = server.project

    async def scenario():
        window = await open_window(server, "/page/")
        await window.send(json.dumps({"signal": "native.secret", "opts": {"value": "s1"}}))
        await window.send(json.dumps({"signal": "native.echo", "opts": {"value": "after"}}))
        project.proof("native.echo", window.key, "after")
        frames = await window.drain(0.8, expect=1)
        assert [json.loads(f)["opts"]["value"] for f in frames] == ["after"]
        assert project.proofs("native.secret") == []
        await window.close()

    run(scenario())


def test_missing_or_null_opts_is_refused(server):
    """As upstream's consumer: a call without "opts" (or with null) runs
    nothing, even for a handler without arguments (tests/signal_calls.json
    has the whole rule set)."""
    project = server.project

    async def scenario():
        window = await open_window(server, "/page/")
        await window.send(json.dumps({"signal": "native.noopts"}))
        await window.send(json.dumps({"signal": "native.echo", "opts": None}))
        await window.heartbeat()
        await window.send(json.dumps({"signal": "native.noopts", "opts": {}}))
        reply = await window.recv_json()
        assert (reply["signal"], reply["opts"]["value"]) == ("native.echoed", "noopts")
        assert project.proof("native.noopts", window.key, "none")["kwargs"] == {}
        assert await window.drain(0.5) == []
        assert project.proofs("native.echo--%s" % window.key) == []
        await window.close()

    run(scenario())


def test_triggers_reach_exactly_the_right_windows(server):
    async def scenario():
        a = await login_window(server, "alice", room=1)
        b = await open_window(server, "/page/?room=2", cookies=a.cookies)  # alice, 2nd window
        c = await login_window(server, "bob", room=1)
        d = await open_window(server, "/page/?room=2")  # anonymous
        e = await open_window(server, "/page/")  # anonymous, no room
        windows = {"a": a, "b": b, "c": c, "d": d, "e": e}
        assert len({w.key for w in windows.values()}) == 5
        server.fire([
            {"to": "window", "key": a.key, "value": "win-a"},
            {"to": "window", "key": d.key, "value": "win-d"},
            {"to": "user", "user": "alice", "value": "user-alice"},
            {"to": "user", "user": "bob", "value": "user-bob"},
            {"to": "broadcast", "value": "all"},
            {"to": "room", "room": 1, "value": "room-1"},
            {"to": "room", "room": 2, "value": "room-2"},
            {"to": "room", "room": 3, "value": "room-3"},
        ])
        expected = {
            "a": ["all", "room-1", "user-alice", "win-a"],
            "b": ["all", "room-2", "user-alice"],
            "c": ["all", "room-1", "user-bob"],
            "d": ["all", "room-2", "win-d"],
            "e": ["all"],
        }
        frames = await drain_all(list(windows.values()), [len(v) for v in expected.values()])
        got = {name: signal_values(f) for name, f in zip(windows, frames)}
        assert got == expected
        for window in windows.values():
            await window.heartbeat()
            await window.close()

    run(scenario())


def test_message_frame_is_what_trigger_encoded(server):
    async def scenario():
        window = await open_window(server, "/page/")
        server.fire([{"to": "window", "key": window.key, "value": "é \"quoted\" <tag>"}])
        frame = await window.recv()
        message = json.loads(frame)
        assert list(message) == ["signal", "opts", "signal_id"]
        assert message["opts"] == {"value": "é \"quoted\" <tag>"}
        assert len(message["signal_id"]) == 36
        await window.close()

    run(scenario())


def test_closed_window_leaves_its_groups(server):
    async def scenario():
        gone = await open_window(server, "/page/?room=7")
        stays = await open_window(server, "/page/?room=7")
        await gone.close()
        await asyncio.sleep(0.2)
        server.fire([{"to": "room", "room": 7, "value": "r7"},
                     {"to": "window", "key": gone.key, "value": "ghost"}])
        assert signal_values(await stays.drain(expect=1)) == ["r7"]
        await stays.close()

    run(scenario())
    assert "dropped a message" not in server.log()


def test_foreign_origin_refused_with_403(server):
    async def scenario():
        window = await open_window(server, "/page/")
        for origin in ("http://evil.example", "http://127.0.0.1.evil.example:%d" % server.port,
                       "null"):
            with pytest.raises(websockets.exceptions.InvalidStatusCode) as info:
                await connect_ws(server, window.cookies, origin=origin)
            assert info.value.status_code == 403, origin
        for origin in (server.origin, "http://localhost:%d" % server.port, None):
            ws = await connect_ws(server, window.cookies, origin=origin)
            await ws.send("--heartbeat--")
            assert await asyncio.wait_for(ws.recv(), 5) == "--heartbeat--"
            await ws.close()
        await window.close()

    run(scenario())
    assert "Origin not in ALLOWED_HOSTS" in server.log()


# (frame, what the log line says about it)
BAD_FRAMES = [
    ("not json", "invalid JSON"),
    ('{"signal": "native.echo", "opts": {"value": "x"}', "invalid JSON"),
    ('["native.echo", {}]', "without signal"),
    ('"native.echo"', "without signal"),  # JSON, but not a call
    ('{"opts": {"value": "nosignal"}}', "without signal"),
    ('{"signal": "native.echo", "opts": ["bad-array"]}', "invalid signal call"),
    ('{"signal": "native.echo", "opts": "bad-string"}', "invalid signal call"),
    ('{"signal": 42, "opts": {}}', "invalid signal call"),
    ('{"signal": "native.echo", "opts": {"value": "ü"}, "eta": "soon"}', "invalid signal call"),
    ('{"signal": "no.such.signal", "opts": {"value": "unknown"}}', "no.such.signal"),
    ('{"signal": "native.echo", "opts": {"nosuchargument": 1}}', "nosuchargument"),
]
# frames whose text the C endpoint quotes in its warning
QUOTED = [frame for frame, what in BAD_FRAMES if what in ("invalid JSON", "invalid signal call")]


def test_malformed_input_is_dropped_and_connection_stays(server):
    project = server.project

    async def scenario():
        window = await open_window(server, "/page/")
        for frame, _ in BAD_FRAMES:
            await window.send(frame)
            await window.heartbeat()  # next frame back is the heartbeat: nothing else
        await window.send(b"\x00\x01binary")
        await window.heartbeat()
        await window.send(b'{"signal": "native.echo", "opts": {"value": "bin"}}')
        await window.heartbeat()
        assert await window.drain(0.6) == []
        # still fully working
        await window.send(json.dumps({"signal": "native.echo", "opts": {"value": "ok"}}))
        assert (await window.recv_json())["opts"]["value"] == "ok"
        assert project.proofs("native.echo--%s" % window.key) == [
            "native.echo--%s--ok.json" % window.key]
        await window.close()

    run(scenario())
    log = server.log()
    for frame, expected in BAD_FRAMES:
        assert expected in log, (frame, expected)
    assert "binary frame ignored" in log


def test_long_bad_frame_logged_as_a_normal_warning(server):
    """A quoted bad frame is cut to a prefix; cutting inside a multi-byte
    UTF-8 character must not cost the line its level and timestamp."""
    frame = "x" * 199 + "é" * 50 + " not json"

    async def scenario():
        window = await open_window(server, "/page/")
        await window.send(frame)
        await window.heartbeat()
        await window.close()

    run(scenario())
    with open(server.proc.log_path, "rb") as f:
        lines = f.read().decode("utf8", "replace").splitlines()
    mine = [line for line in lines if "x" * 199 in line]
    assert mine, "the bad frame was not logged"
    pattern = r"^\d{4}-\d\d-\d\d [\d:,]+ WARNING +native window: invalid JSON frame ignored"
    assert all(re.match(pattern, line) for line in mine), mine


def test_malformed_frame_logged_exactly_once_per_line(server):
    """The warning quoting a bad frame quotes that frame and nothing after it
    (a WebSocket payload is not NUL-terminated), in a normal log line."""
    async def scenario():
        window = await open_window(server, "/page/")
        for _ in range(3):
            for frame in QUOTED:
                # a longer (ignored) frame first, so that the memory after the
                # next, shorter payload is likely to hold its leftovers
                await window.send(json.dumps({"pad": "P" * 300}))
                await window.send(frame)
                await window.heartbeat()
        await window.close()

    run(scenario())
    with open(server.proc.log_path, "rb") as f:
        raw = f.read()
    lines = raw.decode("utf8", "replace").splitlines()
    for frame in QUOTED:
        mine = [line for line in lines if "): " + frame in line or "ignored: " + frame in line]
        assert mine, frame
        pattern = r"^\d{4}-\d\d-\d\d [\d:,]+ WARNING .*: %s$" % re.escape(frame)
        bad = [line for line in mine if not re.match(pattern, line)]
        assert not bad, "log lines about %r carry bytes after the frame or lost their " \
            "level/timestamp: %r" % (frame, bad)


def test_frame_over_max_message_size_closes_1009(server):
    async def scenario():
        window = await open_window(server, "/page/")
        # just under the limit: dropped as a bad call, connection kept
        await window.send("x" * (MAX_MESSAGE - 10))
        await window.heartbeat()
        await window.send(json.dumps({"signal": "native.echo",
                                      "opts": {"value": "y" * MAX_MESSAGE}}))
        with pytest.raises(websockets.exceptions.ConnectionClosed) as info:
            await window.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009
        other = await open_window(server, "/page/")
        await other.heartbeat()
        await other.close()

    run(scenario())


def test_flood_above_rate_limit_closes_1008(server):
    async def scenario():
        calm = await open_window(server, "/page/")
        window = await open_window(server, "/page/")
        # within the burst: fine
        for _ in range(RATE_LIMIT):
            await window.send("--heartbeat--")
        for _ in range(RATE_LIMIT):
            assert await window.recv() == "--heartbeat--"
        await asyncio.sleep(2.1)  # bucket refilled
        with pytest.raises(websockets.exceptions.ConnectionClosed) as info:
            for _ in range(RATE_LIMIT * 10):
                await window.send("--heartbeat--")
            while True:
                await window.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1008
        await calm.heartbeat()
        await calm.close()

    run(scenario())
    assert "messages/s; closing it" in server.log()


def _masked(opcode, payload=b""):
    """One masked client frame (payload < 126 bytes)."""
    key = b"\x11\x22\x33\x44"
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + key + body


def _frames_until_eof(sock):
    """(opcode, payload) of every frame the server sends until it closes."""
    data = b""
    sock.settimeout(TIMEOUT)
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    frames = []
    while len(rest) >= 2:
        n = rest[1] & 0x7F
        frames.append((rest[0] & 0x0F, rest[2:2 + n]))
        rest = rest[2 + n:]
    return head, frames


@pytest.mark.parametrize("early,code", [
    (_masked(8, b"\x03\xe8bye"), 1000),        # a close frame
    (b"\x81\x02hi", 1002),                      # an unmasked frame: protocol error
])
def test_frames_in_the_upgrade_packet_close_the_window_safely(server, early, code):
    """The upgrade request and a frame that ends the WebSocket, in one packet:
    the window is accepted (101), then the frame is handled on the next loop
    turn (before the fix the window was freed inside the accept and the
    server wrote into freed memory: the ASan run aborts on it)."""
    key, jar = page_cookies(server, "/page/")
    request = (
        "GET /ws/ HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\nOrigin: %s\r\nCookie: %s\r\n\r\n" % (
            server.port, server.origin, "; ".join("%s=%s" % kv for kv in jar.items()))
    ).encode()
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
            sock.sendall(request + early)
            head, frames = _frames_until_eof(sock)
        assert head.startswith(b"HTTP/1.1 101 "), head
        assert frames and frames[-1][0] == 8, frames
        assert int.from_bytes(frames[-1][1][:2], "big") == code, frames

    async def scenario():
        window = await open_window(server, "/page/")
        await window.heartbeat()
        await window.close()

    run(scenario())
    assert server.proc.poll() is None


def test_pings_count_in_the_rate_limit(server):
    """Control frames cost the server as much as messages: a window that
    pings faster than the rate limit is closed with 1008 like one that
    sends too many messages."""
    async def scenario():
        calm = await open_window(server, "/page/")
        window = await open_window(server, "/page/")
        with pytest.raises(websockets.exceptions.ConnectionClosed) as info:
            for _ in range(RATE_LIMIT * 10):
                await window.ws.ping()
            while True:
                await window.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1008
        await calm.heartbeat()
        await calm.close()

    run(scenario())
