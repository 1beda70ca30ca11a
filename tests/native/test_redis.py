"""Native socket with the Redis channel layer (wire-compatible with
channels_redis) and ``--workers 2``: triggers from a separate
``manage.py shell`` process reach exactly the right windows, windows on both
worker processes get a BROADCAST, and a Redis restart keeps windows connected
and delivering."""
import asyncio
import hashlib
import json

import pytest

from conftest import (
    Project, Server, Window, assert_unknown_window_notice, connect_ws, drain_all, login_window, open_window, page_cookies, run,
    signal_values, socket_owner, stop_clean, wait_until,
)

BROADCAST_GROUP = "asgi:group:" + hashlib.sha256(b"-broadcast").hexdigest()


@pytest.fixture(scope="module")
def server(tmp_path_factory, native_db, redis_server):
    redis_server.command("FLUSHALL")
    project = Project(tmp_path_factory.mktemp("redis"), native_db,
                      redis_url=redis_server.url, workers="thread")
    srv = Server(project, "--workers", "2").start()
    wait_until(lambda: srv.log().count("served natively") == 2, 20, what="both workers")
    assert "channel layer: Redis" in srv.log()
    srv.redis = redis_server
    yield srv
    stop_clean(srv)


async def windows_on_both_workers(server, per_worker=2, rounds=5, burst=8):
    """Open windows until each worker process serves ``per_worker`` of them.
    Which worker accepts is the kernel's choice: connect in concurrent bursts
    (several connections pending at once) so that both get some."""
    workers = server.children()
    assert len(workers) == 2, workers
    owned = {pid: [] for pid in workers}
    windows = []
    for _ in range(rounds):
        if min(len(v) for v in owned.values()) >= per_worker:
            break
        jars = [page_cookies(server, "/page/") for _ in range(burst)]
        sockets = await asyncio.gather(*(connect_ws(server, jar) for _, jar in jars))
        for (key, jar), ws in zip(jars, sockets):
            window = Window(key, jar, ws)
            windows.append(window)
            owner = socket_owner(server.port, window.local_port, workers)
            assert owner in owned, "connection not held by a worker (%s)" % owner
            owned[owner].append(window)
    counts = {k: len(v) for k, v in owned.items()}
    assert min(counts.values()) >= per_worker, "windows per worker: %s" % counts
    return windows, owned


def test_shell_triggers_reach_exactly_the_right_windows(server):
    async def scenario():
        a = await login_window(server, "alice", room=11)
        b = await open_window(server, "/page/?room=12", cookies=a.cookies)
        c = await login_window(server, "bob", room=11)
        d = await open_window(server, "/page/?room=12")
        e = await open_window(server, "/page/")
        windows = {"a": a, "b": b, "c": c, "d": d, "e": e}
        server.project.shell_fire([
            {"to": "window", "key": a.key, "value": "win-a"},
            {"to": "window", "key": d.key, "value": "win-d"},
            {"to": "user", "user": "alice", "value": "user-alice"},
            {"to": "user", "user": "bob", "value": "user-bob"},
            {"to": "broadcast", "value": "all"},
            {"to": "room", "room": 11, "value": "room-11"},
            {"to": "room", "room": 12, "value": "room-12"},
            {"to": "room", "room": 13, "value": "room-13"},
        ])
        expected = {
            "a": ["all", "room-11", "user-alice", "win-a"],
            "b": ["all", "room-12", "user-alice"],
            "c": ["all", "room-11", "user-bob"],
            "d": ["all", "room-12", "win-d"],
            "e": ["all"],
        }
        frames = await drain_all(list(windows.values()), [len(v) for v in expected.values()])
        got = {name: signal_values(f) for name, f in zip(windows, frames)}
        assert got == expected
        for window in windows.values():
            await window.heartbeat()
            await window.close()

    run(scenario())


def test_broadcast_reaches_windows_on_both_workers(server):
    async def scenario():
        windows, owned = await windows_on_both_workers(server)
        server.project.shell_fire([{"to": "broadcast", "value": "from-shell"}])
        # a view runs in one worker; its broadcast must reach the other one too
        server.fire([{"to": "broadcast", "value": "from-view"}])
        for frames in await drain_all(windows, 2):
            assert signal_values(frames) == ["from-shell", "from-view"]
        # WINDOW of a window on each worker, from the shell
        targets = [owned[pid][0] for pid in owned]
        server.project.shell_fire([{"to": "window", "key": w.key, "value": "w-" + w.key}
                                   for w in targets])
        expect = [1 if w in targets else 0 for w in windows]
        for window, frames in zip(windows, await drain_all(windows, expect)):
            expected = ["w-" + window.key] if window in targets else []
            assert signal_values(frames) == expected
        for window in windows:
            await window.close()

    run(scenario())


def test_a_group_holds_one_member_per_worker(server):
    """Each worker joins a group once, with one channel, and fans its
    messages out to its own windows: a group_send names two channels here,
    whatever the window count; the last window of a worker takes its member
    out of the group."""
    async def scenario():
        windows, _ = await windows_on_both_workers(server, per_worker=3)
        assert server.redis.command("ZCARD", BROADCAST_GROUP).strip() == "2"
        server.project.shell_fire([{"to": "broadcast", "value": "once"}])
        for frames in await drain_all(windows, 1):
            assert signal_values(frames) == ["once"]
        for window in windows:
            await window.close()
        wait_until(lambda: server.redis.command("ZCARD", BROADCAST_GROUP).strip() == "0",
                   what="the broadcast group empty")

    run(scenario())


def test_redis_restart_keeps_windows_and_delivers(server):
    redis = server.redis
    # one member per worker process, however many windows it holds
    restart_keeps_windows(server, lambda windows: redis.command("ZCARD", BROADCAST_GROUP).strip()
                          == "2", "each worker's member in the broadcast group")
    log = server.log()
    assert "reconnecting" in log and "reconnected" in log


def restart_keeps_windows(server, registered, what):
    """Windows on both workers, Redis restarted empty under them: they stay
    connected and get what the shell and their own handlers send, once
    ``registered(windows)`` (Redis knows the windows again) is true."""
    redis = server.redis

    async def scenario():
        windows, _ = await windows_on_both_workers(server, per_worker=2)
        wait_until(lambda: registered(windows), what=what)
        server.project.shell_fire([{"to": "broadcast", "value": "before"}])
        for frames in await drain_all(windows, 1):
            assert signal_values(frames) == ["before"]

        redis.stop()
        await asyncio.sleep(0.5)
        for window in windows:  # heartbeats never need Redis
            await window.heartbeat()
        redis.start()  # same port, empty: the layer must register its windows again
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: wait_until(lambda: registered(windows), 15, what=what + ", again"))
        server.project.shell_fire([{"to": "broadcast", "value": "after"}])
        for frames in await drain_all(windows, 1):
            assert signal_values(frames) == ["after"]
        for window in windows:
            await window.heartbeat()
        # and the browser -> handler -> WINDOW path works again too
        window = windows[-1]
        await window.send(json.dumps({"signal": "native.echo", "opts": {"value": "again"}}))
        assert (await window.recv_json(timeout=10))["opts"]["value"] == "again"
        for window in windows:
            await window.close()

    run(scenario(), timeout=90)


def test_unknown_window_told_through_the_redis_layer(server):
    """The notice goes through a group of the window's own, on Redis."""
    async def scenario():
        for _ in range(4):  # whichever worker accepts it
            ws = await connect_ws(server, {"dfwskey": "expiredkey0123456789abcdefghijkl"})
            assert_unknown_window_notice(await asyncio.wait_for(ws.recv(), 5))
            await ws.close()

    run(scenario())
    assert "has no topics in CACHES['default'] (RedisCache)" in server.log()
