"""The daphne-compatible path: DFConsumer behind df_websockets.routing.application,
driven by channels.testing.WebsocketCommunicator (contract §2, §5)."""
import asyncio
import decimal
import json
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import Client

from df_websockets import tasks
from df_websockets.routing import application
from df_websockets.tasks import SERVER, WINDOW, trigger
from df_websockets.window_info import WindowInfo

pytestmark = pytest.mark.django_db(transaction=True)


class DecimalDecoder(json.JSONDecoder):
    def __init__(self, *args, **kwargs):
        kwargs["parse_float"] = decimal.Decimal
        super().__init__(*args, **kwargs)


def open_page():
    """GET a view that calls set_websocket_topics; returns the cookie header."""
    response = Client().get("/topics/", HTTP_HOST="example.com:8000")
    key = response.cookies["dfwskey"].value
    url = response.cookies["dfwsurl"].value
    return key, ("dfwskey=%s; dfwsurl=%s" % (key, url)).encode()


def communicator(cookie=None, origin=b"http://example.com:8000", path="/ws/"):
    headers = [(b"host", b"example.com:8000")]
    if origin:
        headers.append((b"origin", origin))
    if cookie:
        headers.append((b"cookie", cookie))
    comm = WebsocketCommunicator(application, path, headers=headers)
    comm.scope["server"] = ("example.com", 8000)
    comm.scope["client"] = ("127.0.0.1", 54321)
    return comm


def run(coro_fn):
    return async_to_sync(coro_fn)()


def test_connect_receive_window_signal_and_browser_call():
    key, cookie = open_page()

    async def scenario():
        comm = communicator(cookie)
        connected, _ = await comm.connect()
        assert connected
        wi = WindowInfo()
        wi.window_key = key
        trigger(wi, "test.to_window", to=WINDOW, a=1)  # from inside the running loop
        message = await comm.receive_json_from(2)
        assert list(message) == ["signal", "opts", "signal_id"]
        assert (message["signal"], message["opts"]) == ("test.to_window", {"a": 1})
        with mock.patch.object(tasks, "_trigger_signal") as patched:
            await comm.send_to(text_data='{"signal":"test.test_server","opts":{}}')
            await comm.send_to(text_data="--heartbeat--")
            assert await comm.receive_from(2) == "--heartbeat--"
        call = patched.call_args
        assert call.args[1] == "test.test_server"
        assert call.args[0].window_key == key
        assert call.kwargs == {"to": [SERVER], "kwargs": {}, "from_client": True,
                               "eta": None, "expires": None, "countdown": None}
        await comm.disconnect()

    run(scenario)


def test_consumer_joins_the_cached_topics_and_leaves_them():
    key, cookie = open_page()
    layer = get_channel_layer()
    from df_websockets.consumers import get_websocket_topics

    class R:
        window_key = key

    groups = get_websocket_topics(R)
    assert len(groups) == 4

    async def scenario():
        comm = communicator(cookie)
        assert (await comm.connect())[0]
        members = [g for g in groups if layer.groups.get(g)]
        assert members == groups
        await comm.disconnect()
        assert not any(layer.groups.get(g) for g in groups)

    run(scenario)


def test_heartbeat_and_bad_frames_keep_the_connection(caplog):
    key, cookie = open_page()

    async def scenario():
        comm = communicator(cookie)
        assert (await comm.connect())[0]
        with mock.patch.object(tasks, "_trigger_signal") as patched:
            for frame in ("not json", '{"opts": {}}', '{"signal": "x.y"}',
                          '{"signal": "x.y", "opts": [1]}', "[1, 2]",
                          '{"signal": "x.y", "opts": {}, "eta": "soon"}'):
                await comm.send_to(text_data=frame)
            await comm.send_to(bytes_data=b"\x00\x01")
            await comm.send_to(text_data="--heartbeat--")
            assert await comm.receive_from(2) == "--heartbeat--"
            assert await comm.receive_nothing(0.1)
        assert patched.call_count == 0
        await comm.disconnect()

    run(scenario)
    assert "invalid JSON frame" in caplog.text
    assert "binary websocket frame" in caplog.text


def test_celery_options_from_browser_are_ints():
    """JSON integers, 0 meaning none; a numeric string, which upstream's
    int() took, is refused as the C endpoint refuses it
    (tests/signal_calls.json has the whole rule set)."""
    key, cookie = open_page()

    async def scenario():
        comm = communicator(cookie)
        assert (await comm.connect())[0]
        with mock.patch.object(tasks, "_trigger_signal") as patched:
            await comm.send_to(text_data='{"signal": "a.b", "opts": {"x": 1}, "countdown": 5, "eta": 0}')
            await comm.send_to(text_data='{"signal": "a.b", "opts": {"x": 2}, "countdown": "5"}')
            await comm.send_to(text_data="--heartbeat--")
            await comm.receive_from(2)
        assert patched.call_count == 1
        assert patched.call_args.kwargs["kwargs"] == {"x": 1}
        assert patched.call_args.kwargs["countdown"] == 5
        assert patched.call_args.kwargs["eta"] is None
        await comm.disconnect()

    run(scenario)


def test_bug_signal_decoder_setting_is_used(settings):
    """[bug] WEBSOCKET_SIGNAL_DECODER was never used."""
    settings.WEBSOCKET_SIGNAL_DECODER = "test_ws_consumer.DecimalDecoder"
    key, cookie = open_page()

    async def scenario():
        comm = communicator(cookie)
        assert (await comm.connect())[0]
        with mock.patch.object(tasks, "_trigger_signal") as patched:
            await comm.send_to(text_data='{"signal": "a.b", "opts": {"price": 1.10}}')
            await comm.send_to(text_data="--heartbeat--")
            await comm.receive_from(2)
        price = patched.call_args.kwargs["kwargs"]["price"]
        assert isinstance(price, decimal.Decimal) and str(price) == "1.10"
        await comm.disconnect()

    run(scenario)


@pytest.mark.parametrize("cookie", [None, b"dfwskey=neverrendered0123456789abcdef"])
def test_window_without_topics_is_told_and_closed(cookie, caplog):
    """[issue 16] no cookie, or a key whose topics the cache lost (a restart
    with a LocMemCache): upstream accepted it deaf. It is accepted, told
    (the signal the browser client turns into a new key), then closed with
    code 4004."""
    async def scenario():
        comm = communicator(cookie)
        connected, _ = await comm.connect()
        assert connected
        notice = json.loads(await comm.receive_from(2))
        assert notice["signal"] == "df_websockets.unknown_window"
        assert notice["opts"] == {"code": 4004, "reason": "unknown window key"}
        assert set(notice) == {"signal", "opts", "signal_id"}
        closed = await comm.receive_output(2)
        assert closed == {"type": "websocket.close", "code": 4004, "reason": "unknown window key"}

    run(scenario)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "has no topics in CACHES['default'] (LocMemCache)" in warnings[0]
    assert ("with key neverr..." if cookie else "without a dfwskey cookie") in warnings[0]


@pytest.mark.parametrize("origin,accepted", [
    (b"http://example.com:8000", True),
    (b"https://example.com", True),
    (None, True),
    (b"http://evil.example.org", False),
])
def test_bug_origin_is_checked_against_allowed_hosts(origin, accepted):
    """[bug] upstream had no origin validator (cross-site websocket hijacking)."""
    async def scenario():
        comm = communicator(None, origin=origin)
        connected, _ = await comm.connect()
        assert connected is accepted
        if connected:
            await comm.disconnect()

    run(scenario)


def test_wrong_path_is_not_routed():
    async def scenario():
        comm = communicator(None, path="/other/")
        with pytest.raises(ValueError):
            await comm.connect()

    run(scenario)


def test_thread_mode_end_to_end(tmp_path):
    """A browser-side call runs the handler in the thread pool, whose
    trigger(to=WINDOW) comes back on the same websocket."""
    key, cookie = open_page()
    out = tmp_path / "e2e-thread.txt"

    async def scenario():
        comm = communicator(cookie)
        assert (await comm.connect())[0]
        await comm.send_json_to({"signal": "dfws_testapp.record",
                                 "opts": {"path": str(out), "value": "from-browser"}})
        message = await comm.receive_json_from(5)
        assert (message["signal"], message["opts"]) == ("dfws_testapp.recorded", {"value": "from-browser"})
        await comm.disconnect()

    run(scenario)
    assert "from-browser" in out.read_text().splitlines()


def test_browser_cannot_call_server_side_signals(tmp_path):
    from df_websockets.decorators import signal

    seen = []

    @signal(path="private.signal", queue="celery")
    def private(window_info):
        seen.append(1)

    key, cookie = open_page()

    async def scenario():
        comm = communicator(cookie)
        assert (await comm.connect())[0]
        await comm.send_json_to({"signal": "private.signal", "opts": {}})
        await comm.send_to(text_data="--heartbeat--")
        await comm.receive_from(2)
        await asyncio.sleep(0.3)
        await comm.disconnect()

    run(scenario)
    assert seen == []
