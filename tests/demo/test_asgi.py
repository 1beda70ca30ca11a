"""The demo's ASGI application (demo.asgi.application) driven in-process with
Channels' test communicators: static files, pages, and the df_websockets
endpoint on the daphne-compatible path, with the embedded channel layer.

Run from the repository root: python3 -m pytest tests/demo -q
"""
import asyncio
import json
from http.cookies import SimpleCookie

import pytest
from channels.layers import channel_layers
from asgiref.testing import ApplicationCommunicator
from channels.testing import WebsocketCommunicator
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

import demo.asgi
from df_websockets import routing as df_routing

HOST = [(b"host", b"localhost:8000")]
TIMEOUT = 5


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """Each test runs its own event loop: give it a new in-memory layer."""
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def http_get(path, headers=HOST):
    """GET through the demo app. (Channels' HttpCommunicator insists on a
    ``body`` key in every body message, which ASGI makes optional and Django
    omits at the end of file responses.)"""
    path, _, query = path.partition("?")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
        "query_string": query.encode(), "root_path": "", "headers": list(headers),
        "client": ("127.0.0.1", 40000), "server": ("localhost", 8000),
    }
    communicator = ApplicationCommunicator(demo.asgi.application, scope)
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await communicator.receive_output(TIMEOUT)
    assert start["type"] == "http.response.start"
    response = {"status": start["status"], "headers": start.get("headers", []), "body": b""}
    while True:
        chunk = await communicator.receive_output(TIMEOUT)
        assert chunk["type"] == "http.response.body"
        response["body"] += chunk.get("body", b"")
        if not chunk.get("more_body", False):
            break
    await communicator.wait(TIMEOUT)
    return response


def header(response, name):
    values = [v.decode() for k, v in response["headers"] if k.decode().lower() == name]
    return values


def test_application_reuses_df_websockets_protocols():
    mapping = demo.asgi.application.application_mapping
    assert isinstance(mapping["http"], ASGIStaticFilesHandler)
    for protocol, app in df_routing.application.application_mapping.items():
        if protocol != "http":
            assert mapping[protocol] is app


@pytest.mark.parametrize("path, content_type", [
    ("/static/js/df_websockets.min.js", "javascript"),
    ("/static/demo/demo.js", "javascript"),
    ("/static/demo/demo.css", "text/css"),
])
def test_static_files_served_without_nginx(path, content_type):
    response = run(http_get(path))
    assert response["status"] == 200
    assert content_type in header(response, "content-type")[0]
    assert len(response["body"]) > 100


def test_missing_static_file_is_404():
    assert run(http_get("/static/js/nothing-here.js"))["status"] == 404


async def open_window(page="/broadcast/", origin=b"http://localhost:8000"):
    """GET a page through the ASGI app, then open its websocket with the
    cookies the page set, like the browser client does."""
    response = await http_get(page)
    assert response["status"] == 200
    cookies = SimpleCookie()
    for value in header(response, "set-cookie"):
        cookies.load(value)
    key = cookies["dfwskey"].value
    cookie_header = "dfwskey=%s; dfwsurl=%s" % (key, cookies["dfwsurl"].value)
    headers = HOST + [(b"cookie", cookie_header.encode())]
    if origin is not None:
        headers.append((b"origin", origin))
    communicator = WebsocketCommunicator(demo.asgi.application, "/ws/", headers=headers)
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    return communicator, connected, key


def test_websocket_round_trip_through_demo_signal():
    async def scenario():
        window, connected, _ = await open_window("/signals/html.focus/")
        assert connected
        await window.send_to(text_data="--heartbeat--")
        assert await window.receive_from(TIMEOUT) == "--heartbeat--"
        # a button click: the browser calls the server signal, whose handler
        # (run in the thread pool) answers the same window
        await window.send_to(text_data=json.dumps({"signal": "demo.html.focus", "opts": {}}))
        message = json.loads(await window.receive_from(TIMEOUT))
        assert set(message) == {"signal", "opts", "signal_id"}
        assert message["signal"] == "html.focus"
        assert message["opts"] == {"selector": "#focus-target"}
        await window.disconnect()

    run(scenario())


def test_broadcast_reaches_every_window_and_only_its_window_gets_window_signals():
    async def scenario():
        first, ok1, key1 = await open_window()
        second, ok2, key2 = await open_window()
        assert ok1 and ok2 and key1 != key2
        # click in the first window: both windows get the broadcast
        await first.send_to(text_data=json.dumps({"signal": "demo.broadcast", "opts": {}}))
        for window in (first, second):
            message = json.loads(await window.receive_from(TIMEOUT))
            assert (message["signal"], message["opts"]) == (
                "html.text", {"selector": "#broadcast-target", "content": "click 1"})
        # /ping/ (a plain HTTP request) broadcasts too
        response = await http_get("/ping/?content=pong")
        assert response["status"] == 200
        for window in (first, second):
            message = json.loads(await window.receive_from(TIMEOUT))
            assert message["opts"]["content"] == "pong"
        # a WINDOW signal of the second window does not reach the first one
        await second.send_to(text_data=json.dumps({"signal": "demo.html.empty", "opts": {}}))
        message = json.loads(await second.receive_from(TIMEOUT))
        assert message["signal"] == "html.empty"
        assert await first.receive_nothing(timeout=0.3)
        await first.disconnect()
        await second.disconnect()

    run(scenario())


def test_websocket_with_foreign_origin_is_refused():
    async def scenario():
        window, connected, _ = await open_window(origin=b"http://evil.example")
        assert not connected
        await window.send_input({"type": "websocket.disconnect", "code": 1006})
        await window.wait(timeout=TIMEOUT)

    run(scenario())
