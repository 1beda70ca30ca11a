"""``--no-native-websockets``: WEBSOCKET_URL is served by df_websockets'
Python consumer (the daphne path) through the ASGI app; connect, heartbeat,
browser calls and broadcasts keep working, with the embedded layer (trigger
from a view) and with the Redis layer (trigger from ``manage.py shell``)."""
import json

import pytest
import websockets

from conftest import (
    Project, Server, assert_unknown_window_notice, connect_ws, drain_all, open_window, run,
    signal_values, stop_clean,
)


@pytest.fixture(scope="module", params=["embedded", "redis"])
def server(request, tmp_path_factory, native_db):
    redis = None
    redis_url = None
    if request.param == "redis":
        redis = request.getfixturevalue("redis_server")
        redis.command("FLUSHALL")
        redis_url = redis.url
    project = Project(tmp_path_factory.mktemp("nonative-" + request.param), native_db,
                      redis_url=redis_url, workers="thread")
    srv = Server(project, "--no-native-websockets").start()
    assert "served natively" not in srv.log()
    srv.kind = request.param
    yield srv
    stop_clean(srv)


def fire(server, specs):
    if server.kind == "redis":
        server.project.shell_fire(specs)
    else:
        server.fire(specs)


def test_connect_heartbeat_and_broadcast_through_python_consumer(server):
    async def scenario():
        first = await open_window(server, "/page/?room=5")
        second = await open_window(server, "/page/")
        for window in (first, second):
            await window.heartbeat()
        fire(server, [{"to": "broadcast", "value": "all"},
                      {"to": "window", "key": second.key, "value": "second"},
                      {"to": "room", "room": 5, "value": "room-5"}])
        got = [signal_values(frames) for frames in await drain_all([first, second], 2)]
        assert got == [["all", "room-5"], ["all", "second"]]
        # a browser call through the consumer, answered to its window
        await first.send(json.dumps({"signal": "native.echo", "opts": {"value": "py"}}))
        assert (await first.recv_json())["opts"]["value"] == "py"
        server.project.proof("native.echo", first.key, "py")
        await first.send("not json")
        await first.heartbeat()
        for window in (first, second):
            await window.close()

    run(scenario())


def test_origin_checked_by_python_consumer(server):
    async def scenario():
        window = await open_window(server, "/page/")
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as info:
            await connect_ws(server, window.cookies, origin="http://evil.example")
        assert info.value.status_code == 403
        await window.heartbeat()
        await window.close()

    run(scenario())


def test_unknown_window_told_then_closed_by_python_consumer(server):
    async def scenario():
        ws = await connect_ws(server, cookies={"dfwskey": "unknownkey0123456789abcdefghijkl"})
        assert_unknown_window_notice(await ws.recv())
        with pytest.raises(websockets.exceptions.ConnectionClosed) as info:
            await ws.recv()
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (4004, "unknown window key")

    run(scenario())
    assert "websocket window with key unknow... has no topics" in server.log()
