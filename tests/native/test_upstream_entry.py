"""Upstream's README entry point: ``ASGI_APPLICATION =
"df_websockets.routing.application"`` and the server pointed at
``df_websockets.routing:application`` with nothing but DJANGO_SETTINGS_MODULE
(no project asgi.py calling django.setup()). HTTP, the native socket and a
browser call all work, with and without native websockets."""
import json

import pytest

from conftest import Project, Server, open_window, run, signal_values, stop_clean


@pytest.fixture(scope="module", params=["native", "python-consumer"])
def server(request, tmp_path_factory, native_db):
    project = Project(tmp_path_factory.mktemp("upstream-" + request.param), native_db,
                      workers="thread")
    args = ["--no-native-websockets"] if request.param == "python-consumer" else []
    srv = Server(project, *args, app="df_websockets.routing:application").start()
    assert ("served natively" in srv.log()) is (request.param == "native")
    yield srv
    stop_clean(srv)


def test_http_socket_and_browser_call(server):
    async def scenario():
        window = await open_window(server, "/page/")
        await window.heartbeat()
        await window.send(json.dumps({"signal": "native.echo", "opts": {"value": "up"}}))
        reply = await window.recv_json()
        assert (reply["signal"], reply["opts"]["value"]) == ("native.echoed", "up")
        server.fire([{"to": "broadcast", "value": "to-all"}])
        assert signal_values(await window.drain(expect=1)) == ["to-all"]
        await window.close()
        return window.key

    key = run(scenario())
    assert server.project.proof("native.echo", key, "up")["window_key"] == key
