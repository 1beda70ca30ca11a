"""Redis unreachable, seen from outside (issue 16, item 5), on both Redis
layers: start-up warns with the real error, a new window is answered 503
(not 403, which means "refused by the project") with a log line naming the
cause, windows already open stay, and everything works again once Redis is
back. The real dfws-asgi binary; Redis on loopback ports of our own."""
import asyncio

import pytest
import websockets

from conftest import (
    Project, RedisServer, Server, connect_ws, free_port, open_window, run, signal_values,
    stop_clean, wait_until,
)


def handshake_status(server, cookies=None, origin="default"):
    """The HTTP status a new WebSocket on /ws/ gets (101 when accepted)."""
    async def attempt():
        try:
            ws = await connect_ws(server, cookies, origin=origin)
        except websockets.exceptions.InvalidStatusCode as exc:
            return exc.status_code
        await ws.close()
        return 101
    return run(attempt())


def start(tmp_path_factory, native_db, layer, redis_url, cache_url=None):
    project = Project(tmp_path_factory.mktemp("down-" + layer), native_db, redis_url=redis_url,
                      redis_layer=layer, cache_url=cache_url)
    return Server(project).start()


def layer_name(layer):
    return "Redis pub/sub" if layer == "pubsub" else "Redis"


@pytest.mark.parametrize("layer", ["core", "pubsub"])
def test_nothing_listens_then_redis_comes(tmp_path_factory, native_db, layer):
    port = free_port()
    srv = start(tmp_path_factory, native_db, layer, "redis://127.0.0.1:%d" % port)
    redis = RedisServer()
    redis.port = port
    try:
        # said right after start-up, with the real error, from the first attempt
        wait_until(lambda: "unreachable" in srv.log(), 3, what="the start-up warning")
        log = srv.log()
        where = "redis 127.0.0.1:%d (shard 0, " % port
        assert "WARNING  channel layer: %s unreachable: %s" % (layer_name(layer), where) in log, log
        assert "Connection refused; retrying in the background" in log, log
        assert "timed out" not in log

        assert handshake_status(srv) == 503
        log = srv.log()
        assert "native window refused (503): channel layer unavailable: " + where in log, log
        assert "Connection refused" in log.split("native window refused (503)")[1]

        redis.start()
        wait_until(lambda: handshake_status(srv) == 101, 20, interval=0.3, what="the layer reconnected")

        async def scenario():
            window = await open_window(srv)
            srv.fire([{"to": "broadcast", "value": "redis is here"}])
            assert signal_values(await window.drain(expect=1)) == ["redis is here"]
            await window.close()
        run(scenario())
    finally:
        stop_clean(srv)
        redis.stop()


@pytest.mark.parametrize("layer", ["core", "pubsub"])
def test_redis_stopped_and_restarted(tmp_path_factory, native_db, redis_server, layer):
    redis_server.command("FLUSHALL")
    srv = start(tmp_path_factory, native_db, layer, redis_server.url)
    try:
        assert "channel layer: %s (" % layer_name(layer) in srv.log()
        assert "WARNING" not in srv.log()

        async def scenario():
            first = await open_window(srv)
            redis_server.stop()
            await asyncio.to_thread(wait_until, lambda: handshake_status(srv) == 503, 10, 0.2,
                                    "503 once Redis is gone")
            log = srv.log()
            assert ("native window refused (503): channel layer unavailable: redis 127.0.0.1:%d"
                    % redis_server.port) in log, log
            await first.heartbeat()  # an open window stays
            redis_server.start()
            await asyncio.to_thread(wait_until, lambda: handshake_status(srv) == 101, 20, 0.3,
                                    "accepted again")
            second = await open_window(srv)
            srv.fire([{"to": "broadcast", "value": "back"}])
            for window in (first, second):
                assert signal_values(await window.drain(expect=1)) == ["back"]
                await window.close()
        run(scenario(), timeout=90)
        assert "Connection refused" in srv.log() or "Server closed the connection" in srv.log()
    finally:
        stop_clean(srv)


def test_cache_down_is_503_origin_still_403(tmp_path_factory, native_db, redis_server):
    """The layer is up but the cache holding the windows' topics is not: the
    connect in Python fails on the cache; an outage, answered 503 and named
    in one line (no traceback). A foreign Origin is still 403."""
    port = free_port()
    srv = start(tmp_path_factory, native_db, "core", redis_server.url,
                cache_url="redis://127.0.0.1:%d/1" % port)
    try:
        assert handshake_status(srv) == 503
        wait_until(lambda: "window refused (503)" in srv.log(), what="the log line")
        log = srv.log()
        assert ("df_websockets window refused (503): a service it needs is unavailable: "
                "ConnectionError: Error 111 connecting to 127.0.0.1:%d" % port) in log, log
        assert "Traceback" not in log
        assert handshake_status(srv, origin="http://evil.example") == 403
    finally:
        stop_clean(srv)
