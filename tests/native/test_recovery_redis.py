"""Recovery of missed signals with Redis (docs/recovery.md): the history
lives in Redis, written by whoever triggers (a view of dfws-asgi, a separate
``manage.py shell`` process using channels_redis as a Celery worker would),
and the native socket reads it back in C, for channels_redis' core and
pub/sub layers alike; df_websockets' Python consumer reads it through
channels_redis."""

import pytest

from conftest import (FAILED, Project, Server, connect_ws, nothing_more, open_window, receive,
                      recover_path, run, stop_clean)

HISTORY_SIZE = 20


@pytest.fixture(scope="module", params=["core", "pubsub", "core-python"])
def server(request, tmp_path_factory, native_db, redis_server):
    """core, pubsub: the native socket reads Redis in C; core-python: the
    Python consumer (--no-native-websockets) reads it through channels_redis."""
    redis_server.command("FLUSHALL")
    layer = request.param.split("-")[0]
    project = Project(tmp_path_factory.mktemp("recovery-redis"), native_db,
                      redis_url=redis_server.url, workers="thread", redis_layer=layer)
    project.env.update(NATIVE_HISTORY_SIZE=str(HISTORY_SIZE))
    srv = Server(project, *(["--no-native-websockets"] if "python" in request.param else [])).start()
    srv.redis = redis_server
    yield srv
    stop_clean(srv)


def test_missed_signals_from_a_shell_and_a_view_are_replayed_from_redis(server):
    async def scenario():
        window = await open_window(server, "/page/")
        server.fire([{"to": "window", "key": window.key, "value": "view 0"}])
        server.project.shell_fire([{"to": "window", "key": window.key, "value": "shell 0"}])
        got = await receive(window, 2)
        assert [m["opts"]["value"] for m in got] == ["view 0", "shell 0"]
        group = got[0]["topic"]
        epoch, offset = got[1]["pos"].split("-")
        assert got[0]["pos"] == "%s-%d" % (epoch, int(offset) - 1)  # one history for both
        # the history is in Redis, under the layer's prefix
        keys = server.redis.command("KEYS", "asgi:hist:*").split()
        assert "asgi:hist:%s" % group in keys and "asgi:hist:%s:m" % group in keys
        await window.close()
        server.project.shell_fire([{"to": "window", "key": window.key, "value": "shell 1"},
                                   {"to": "window", "key": window.key, "value": "shell 2"}])
        server.fire([{"to": "window", "key": window.key, "value": "view 1"}])
        window.ws = await connect_ws(server, window.cookies,
                                     path=recover_path({group: got[1]["pos"]}))
        replayed = await receive(window, 3)
        assert [m["opts"]["value"] for m in replayed] == ["shell 1", "shell 2", "view 1"]
        assert [m["pos"] for m in replayed] == ["%s-%d" % (epoch, int(offset) + i) for i in (1, 2, 3)]
        await nothing_more(window.ws)
        server.fire([{"to": "window", "key": window.key, "value": "live"}])
        (live,) = await receive(window, 1)
        assert live["opts"]["value"] == "live" and live["pos"] == "%s-%d" % (epoch, int(offset) + 4)
        await window.ws.close()

    run(scenario())


def test_c_layer_appends_to_the_same_history_in_redis(server):
    """dfws' C layer writes the history itself (EVAL of history_append.lua on
    its shard connection) when Python hands it a message: one history with
    what channels_redis writers append."""
    async def scenario():
        window = await open_window(server, "/page/")
        server.project.shell_fire([{"to": "window", "key": window.key, "value": "shell"}])
        (first,) = await receive(window, 1)
        epoch, offset = first["pos"].split("-")
        status, body, _ = server.get("/c-history-send/?key=%s&value=c" % window.key)
        assert status == 200, body
        (second,) = await receive(window, 1)
        assert second["opts"]["value"] == "c" and second["topic"] == first["topic"]
        assert second["pos"] == "%s-%d" % (epoch, int(offset) + 1)
        await window.close()
        server.get("/c-history-send/?key=%s&value=c2" % window.key)
        window.ws = await connect_ws(server, window.cookies,
                                     path=recover_path({first["topic"]: first["pos"]}))
        replayed = await receive(window, 2)
        assert [m["opts"]["value"] for m in replayed] == ["c", "c2"]
        await window.ws.close()

    run(scenario())


def test_other_epoch_and_gap_fail_with_redis(server):
    async def scenario():
        window = await open_window(server, "/page/")
        server.fire([{"to": "window", "key": window.key, "value": "seen"}])
        (seen,) = await receive(window, 1)
        await window.close()
        server.project.shell_fire([{"to": "window", "key": window.key, "value": "x%d" % i}
                                   for i in range(HISTORY_SIZE + 1)])
        window.ws = await connect_ws(server, window.cookies,
                                     path=recover_path({seen["topic"]: seen["pos"]}))
        (failed,) = await receive(window, 1)
        assert failed["signal"] == FAILED and failed["opts"]["topics"] == [seen["topic"]]
        await window.ws.close()
        # the history expired from Redis (its meta too): another epoch
        server.redis.command("DEL", "asgi:hist:%s" % seen["topic"], "asgi:hist:%s:m" % seen["topic"])
        server.fire([{"to": "window", "key": window.key, "value": "new epoch"}])
        window.ws = await connect_ws(server, window.cookies,
                                     path=recover_path({seen["topic"]: seen["pos"]}))
        (failed,) = await receive(window, 1)
        assert failed["signal"] == FAILED
        await window.ws.close()

    run(scenario())


def test_upstream_client_with_redis(server):
    async def scenario():
        window = await open_window(server, "/page/")
        await window.close()
        server.project.shell_fire([{"to": "window", "key": window.key, "value": "away"}])
        window.ws = await connect_ws(server, window.cookies)
        await nothing_more(window.ws)
        server.project.shell_fire([{"to": "broadcast", "value": "live"}])
        (live,) = await receive(window, 1)
        assert live["opts"]["value"] == "live"
        await window.ws.close()

    run(scenario())
