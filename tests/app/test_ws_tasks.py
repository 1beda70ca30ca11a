"""trigger / process_task / SignalQueue, the four worker modes' dispatch, and
one test per [bug] of the contract."""
import asyncio
import json
import threading

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.models import User
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory

from conftest import wait_for
from df_websockets import tasks
from df_websockets.consumers import get_websocket_topics
from df_websockets.decorators import (
    REGISTERED_SIGNALS, RandomDynamicQueueName, SignalConnection, everyone, signal,
)
from df_websockets.tasks import (
    BROADCAST, SERVER, SYNC, WINDOW, set_websocket_topics, trigger, trigger_signal,
)
from df_websockets.testing import SignalQueue
from df_websockets.utils import valid_topic_name
from df_websockets.window_info import WindowInfo


def window(key="7f8d28ba4820"):
    wi = WindowInfo()
    wi.window_key = key
    return wi


def request_with_key(key, user=None):
    request = RequestFactory().get("/")
    request.window_key = key
    if user is not None:
        request.user = user
    return request


# ---- set_websocket_topics ----------------------------------------------------------
def test_set_websocket_topics_contract_example():
    request = request_with_key("test_key")
    set_websocket_topics(request, "test", 100)
    assert request.has_websocket_topics is True
    expected = {valid_topic_name(t) for t in (
        "-str.90a3ed9e32b2aaf4c61c410eb925426119e1a9dc53d4286ade99a809",
        "-int.100", "-window.test_key", "-broadcast")}
    names = get_websocket_topics(request)
    assert len(names) == 4 and set(names) == expected
    stored = caches["default"].get("df_wstest_key")
    assert json.loads(stored) == [
        "-str.90a3ed9e32b2aaf4c61c410eb925426119e1a9dc53d4286ade99a809",
        "-int.100", "-window.test_key", "-broadcast"]
    assert caches["default"].make_key("df_wstest_key") == ":1:df_wstest_key"


def test_set_websocket_topics_list_form_expiry_and_errors(settings, monkeypatch):
    settings.WEBSOCKET_CACHE_EXPIRE = 77
    settings.WEBSOCKET_CACHE_PREFIX = "pfx:"
    calls = []
    cache = caches["default"]
    monkeypatch.setattr(cache, "set", lambda *a, **k: calls.append((a, k)))
    set_websocket_topics(request_with_key("k2"), ["test", 100], SERVER)  # README's list form
    (key, value, timeout), _ = calls[0]
    assert (key, timeout) == ("pfx:k2", 77)
    assert len(json.loads(value)) == 4
    with pytest.raises(ImproperlyConfigured, match="WebsocketMiddleware middleware is required."):
        set_websocket_topics(RequestFactory().get("/"), "x")
    assert get_websocket_topics(object()) == []


@pytest.mark.django_db
def test_set_websocket_topics_adds_user_when_authenticated():
    user = User.objects.create_user("erin")
    set_websocket_topics(request_with_key("k3", user))
    stored = json.loads(caches["default"].get("df_wsk3"))
    assert stored == ["-auth.user.%d" % user.pk, "-window.k3", "-broadcast"]


# ---- SignalQueue --------------------------------------------------------------------
def test_signal_queue_contract_example():
    @signal(path="test.signal", queue="test-queue")
    def handler(window_info, arg_1=None):
        pass

    wi = window()
    with SignalQueue() as fd:
        trigger(wi, "test.signal", to=[SERVER, WINDOW], arg_1="test")
    assert fd.ws_signals == {"-window.7f8d28ba4820": [("test.signal", {"arg_1": "test"})]}
    assert fd.python_signals == {"test-queue": [
        ["test.signal", wi.to_dict(), {"arg_1": "test"}, False, [], True, "test-queue"]]}


def test_signal_queue_readme_example_and_restore():
    @signal(path="test.signal1", queue="demo-queue")
    def s1(window_info, value=None):
        pass

    original = (tasks.call_task, tasks._call_ws_signal)
    with SignalQueue() as outer:
        with SignalQueue() as inner:  # stackable
            trigger(WindowInfo(), "test.signal1", to=[SERVER, 1], value="value1")
        trigger(WindowInfo(), "test.signal1", to=[SERVER, 1], value="value2")
    assert (tasks.call_task, tasks._call_ws_signal) == original
    assert inner.ws_signals == {"-int.1": [("test.signal1", {"value": "value1"})]}
    assert outer.ws_signals == {"-int.1": [("test.signal1", {"value": "value2"})]}
    assert [x[2] for x in inner.python_signals["demo-queue"]] == [{"value": "value1"}]


def test_signal_queue_rejects_non_json():
    with SignalQueue():
        with pytest.raises(TypeError):
            trigger(window(), "x.y", to=[WINDOW], value=object())


@pytest.mark.parametrize("mode", ["thread", "celery", "channels", "process"])
def test_execute_delayed_signals_fifo_any_mode(settings, mode):
    """[bug] upstream ran them LIFO and needed Celery."""
    settings.WEBSOCKET_WORKERS = mode
    seen = []

    @signal(path="fifo.signal", queue="q")
    def handler(window_info, n):
        seen.append(n)
        if n == 0:
            trigger(window_info, "fifo.signal", to=[SERVER], n=99)  # queued behind 1..4

    with SignalQueue() as fd:
        for n in range(5):
            trigger(window(), "fifo.signal", to=[SERVER], n=n)
        assert seen == []
        fd.execute_delayed_signals()
    assert seen == [0, 1, 2, 3, 4, 99]
    assert fd.python_signals == {"q": []}


def test_signal_queue_immediate_execution():
    seen = []

    @signal(path="imm.signal", queue="q")
    def handler(window_info, n):
        seen.append((threading.get_ident(), n))

    with SignalQueue(immediate_execution=True) as fd:
        trigger(window(), "imm.signal", to=[SERVER], n=1)
    assert seen == [(threading.get_ident(), 1)]
    assert fd.python_signals == {}


# ---- trigger semantics ------------------------------------------------------------------
def test_to_none_means_user(django_db_blocker):
    with SignalQueue() as fd:
        trigger(window(), "x.y")  # anonymous: USER is no topic
    assert fd.ws_signals == {}
    wi = window()
    wi.user_pk = 3
    with SignalQueue() as fd:
        trigger(wi, "x.y", a=1)
    assert fd.ws_signals == {"-auth.user.3": [("x.y", {"a": 1})]}


def test_bug_bare_string_topic_is_one_target():
    """[bug] a bare string was iterated character by character."""
    with SignalQueue() as fd:
        trigger(window(), "x.y", to="room-1", a=1)
        trigger(window(), "x.y", to=BROADCAST, a=2)
    assert fd.ws_signals == {
        "-str.%s" % __import__("hashlib").sha224(b"room-1").hexdigest(): [("x.y", {"a": 1})],
        "-broadcast": [("x.y", {"a": 2})],
    }


@pytest.mark.django_db
def test_bug_bare_sync_runs_inline_in_callers_sync_context():
    """[bug] bare SYNC raised TypeError; SYNC ran the handler inside an event
    loop (SynchronousOnlyOperation with the ORM)."""
    seen = []

    @signal(path="sync.signal", queue="q")
    def handler(window_info, n):
        seen.append((threading.get_ident(), n, User.objects.count()))

    with SignalQueue() as fd:
        trigger(window(), "sync.signal", to=SYNC, n=1)
        trigger(window(), "sync.signal", to=[SYNC, WINDOW], n=2)
    assert seen == [(threading.get_ident(), 1, 0), (threading.get_ident(), 2, 0)]
    assert fd.python_signals == {}
    assert fd.ws_signals == {"-window.7f8d28ba4820": [("sync.signal", {"n": 2})]}


def test_bug_celery_options_do_not_force_server_and_deliver_to_browser(settings):
    """[bug] eta/countdown/expires with client topics forced to_server and the
    deferred browser delivery was never sent."""
    settings.WEBSOCKET_WORKERS = "celery"
    seen = []

    @signal(path="later.signal", queue="celery")
    def handler(window_info, a):
        seen.append(a)

    wi = window()
    with SignalQueue() as fd:
        trigger_signal(wi, "later.signal", to=[WINDOW], kwargs={"a": 1}, countdown=10)
        assert fd.ws_signals == {}  # deferred
        assert fd.python_signals == {"celery": [
            ["later.signal", wi.to_dict(), {"a": 1}, False, ["-window.7f8d28ba4820"], False, "celery"]]}
        fd.execute_delayed_signals()
        assert fd.ws_signals == {"-window.7f8d28ba4820": [("later.signal", {"a": 1})]}
        assert seen == []  # SERVER was not asked
        trigger_signal(wi, "later.signal", to=[WINDOW, SERVER], kwargs={"a": 2}, eta=5)
        assert fd.python_signals["celery"][0][4:6] == [["-window.7f8d28ba4820"], True]
        fd.execute_delayed_signals()
    assert seen == [2]


def test_celery_options_outside_celery_raise():
    with pytest.raises(ValueError, match="Unable to use eta, countdown or expires in signals when not using Celery."):
        trigger_signal(window(), "x.y", to=[SERVER], countdown=3)


def test_bug_check_copies_kwargs_per_handler():
    """[bug] the first handler's conversions leaked into the second one's kwargs."""
    seen = []

    @signal(path="conv.signal", queue="q")
    def first(window_info, value: int):
        seen.append(("first", value))

    @signal(path="conv.signal", queue="q")
    def second(window_info, value):
        seen.append(("second", value))

    kwargs = {"value": "12"}
    with SignalQueue(immediate_execution=True):
        trigger_signal(window(), "conv.signal", to=[SERVER], kwargs=kwargs)
    assert seen == [("first", 12), ("second", "12")]
    assert kwargs == {"value": "12"}


def test_bug_one_raising_handler_does_not_stop_the_others(caplog):
    seen = []

    @signal(path="boom.signal", queue="q")
    def first(window_info):
        raise RuntimeError("boom")

    @signal(path="boom.signal", queue="q")
    def second(window_info):
        seen.append("second")

    with SignalQueue(immediate_execution=True):
        trigger(window(), "boom.signal", to=[SERVER])
    assert seen == ["second"]
    assert "boom" in caplog.text


def test_bug_random_dynamic_queue_picked_once():
    """[bug] the queue was picked again in the worker; the handler was skipped
    whenever the two random picks differed."""
    seen = []

    @signal(path="rnd.signal", queue=RandomDynamicQueueName("rq-", 20))
    def handler(window_info, n):
        seen.append(n)

    with SignalQueue() as fd:
        for n in range(40):
            trigger(window(), "rnd.signal", to=[SERVER], n=n)
        assert set(fd.python_signals) <= {"rq-%d" % i for i in range(20)}
        assert len(fd.python_signals) > 1
        fd.execute_delayed_signals()
    assert sorted(seen) == list(range(40))
    assert {"rq-0", "rq-19", "dfws-q1", "dfws-q2"} <= tasks.get_expected_queues()


def test_process_task_queue_permission_and_invalid_args():
    seen = []

    @signal(path="perm.signal", queue="q1")
    def private(window_info, a: int):
        seen.append(("private", a))

    @signal(path="perm.signal", queue="q1", is_allowed_to=everyone)
    def public(window_info, a: int):
        seen.append(("public", a))

    @signal(path="perm.signal", queue="q2", is_allowed_to=everyone)
    def other_queue(window_info, a):
        seen.append(("other", a))

    wi = window().to_dict()
    tasks.process_task("perm.signal", wi, {"a": "1"}, True, [], True, "q1")
    assert seen == [("public", 1)]
    seen.clear()
    tasks.process_task("perm.signal", wi, {"a": "2"}, False, [], True, "q1")
    assert seen == [("private", 2), ("public", 2)]
    seen.clear()
    tasks.process_task("perm.signal", wi, {"a": "x"}, False, [], True, "q1")  # bad int
    tasks.process_task("perm.signal", wi, {"a": "2"}, False, [], False, "q1")  # not to_server
    assert seen == []


def test_signal_connection_call():
    @signal(path="call.signal", queue="q")
    def handler(window_info, a):
        pass

    with SignalQueue() as fd:
        REGISTERED_SIGNALS["call.signal"][0].call(window(), a=1)
    assert [x[2] for x in fd.python_signals["q"]] == [{"a": 1}]
    assert isinstance(REGISTERED_SIGNALS["call.signal"][0], SignalConnection)


# ---- browser message format (real layer) ------------------------------------------------
def test_browser_message_format_and_groups():
    layer = get_channel_layer()

    async def scenario():
        channel = await layer.new_channel()
        await layer.group_add(valid_topic_name("-window.7f8d28ba4820"), channel)
        await layer.group_add(valid_topic_name("-broadcast"), channel)
        # trigger from inside the running loop (no AsyncToSync error)
        trigger(window(), "fmt.signal", to=[WINDOW, BROADCAST], b=[1, 2], a="é")
        first = await asyncio.wait_for(layer.receive(channel), 2)
        second = await asyncio.wait_for(layer.receive(channel), 2)
        return first, second

    first, second = async_to_sync(scenario)()
    assert first["type"] == "ws_message" and list(first) == ["type", "message"]
    assert first["message"] == second["message"]  # same signal_id for every topic
    payload = json.loads(first["message"])
    assert list(payload) == ["signal", "opts", "signal_id"]
    assert first["message"] == json.dumps(
        {"signal": "fmt.signal", "opts": {"b": [1, 2], "a": "é"}, "signal_id": payload["signal_id"]})
    import uuid

    assert str(uuid.UUID(payload["signal_id"], version=4)) == payload["signal_id"]


# ---- worker modes: dispatch ------------------------------------------------------------
def test_call_task_unknown_mode():
    with pytest.raises(ImproperlyConfigured):
        tasks.call_task("gevent", "q", ["s", {}, {}, False, [], True, "q"])


def test_channels_mode_from_sync_code(settings):
    """channels mode: process.signal message on the queue channel."""
    settings.WEBSOCKET_WORKERS = "channels"
    layer = get_channel_layer()
    wi = window()
    trigger(wi, "dfws_testapp.record", to=[SERVER], path="/nonexistent", value="v")
    messages = {}

    async def receive_both():
        for queue in ("dfws-q1", "dfws-q2"):
            messages[queue] = await asyncio.wait_for(layer.receive(queue), 2)

    async_to_sync(receive_both)()
    for queue in ("dfws-q1", "dfws-q2"):
        assert messages[queue] == {"type": "process.signal", "args": [
            "dfws_testapp.record", wi.to_dict(), {"path": "/nonexistent", "value": "v"},
            False, [], True, queue]}


def test_bug_channels_mode_inside_running_event_loop(settings):
    """[bug] upstream raised 'You cannot use AsyncToSync in the same thread as
    an async event loop' for every server-side trigger in channels mode."""
    settings.WEBSOCKET_WORKERS = "channels"
    layer = get_channel_layer()

    async def scenario():
        trigger(window(), "dfws_testapp.record", to=[SERVER], path="/x", value="in-loop")
        message = await asyncio.wait_for(layer.receive("dfws-q1"), 2)
        await asyncio.wait_for(layer.receive("dfws-q2"), 2)
        return message

    message = asyncio.run(scenario())
    assert message["type"] == "process.signal"
    assert message["args"][2] == {"path": "/x", "value": "in-loop"}


@pytest.mark.django_db(transaction=True)
def test_background_consumer_runs_process_signal(tmp_path):
    """What `manage.py worker` runs for each message, driven in-process."""
    from channels.testing import ApplicationCommunicator

    from df_websockets.consumers import DFChannelNameRouter

    out = tmp_path / "out.txt"
    args = ["dfws_testapp.record", window().to_dict(), {"path": str(out), "value": "bg"},
            True, [], True, "dfws-q1"]

    async def scenario():
        comm = ApplicationCommunicator(DFChannelNameRouter(), {"type": "channel", "channel": "dfws-q1"})
        await comm.send_input({"type": "process.signal", "args": args})
        await comm.send_input({"type": "process.signal", "args": ["broken"]})  # logged
        for _ in range(100):
            if out.exists():
                break
            await asyncio.sleep(0.02)
        comm.stop()

    async_to_sync(scenario)()
    assert out.read_text() == "bg\n"


@pytest.mark.django_db(transaction=True)
def test_thread_mode_runs_in_pool(tmp_path):
    out = tmp_path / "thread.txt"
    trigger(window(), "dfws_testapp.record", to=[SERVER], path=str(out), value="t1")
    assert wait_for(lambda: out.exists() and sorted(out.read_text().splitlines()) == ["again t1", "t1"])
    from dfws_testapp.signals import CALLS

    # the handler appends to CALLS after writing the file: wait for both
    assert wait_for(lambda: ("7f8d28ba4820", "t1") in CALLS)


@pytest.mark.django_db(transaction=True)
def test_process_mode_runs_in_child_process(settings, tmp_path):
    settings.WEBSOCKET_WORKERS = "process"
    settings.WEBSOCKET_POOL_SIZES = {None: 1}
    out = tmp_path / "process.txt"
    try:
        trigger(window(), "dfws_testapp.record", to=[SERVER], path=str(out), value="p1")
        assert wait_for(lambda: out.exists() and len(out.read_text().splitlines()) == 2, timeout=20)
        from dfws_testapp.signals import CALLS

        assert ("7f8d28ba4820", "p1") not in CALLS  # ran in another process
    finally:
        tasks.shutdown_pools()


def test_celery_mode_uses_apply_async(settings, monkeypatch):
    settings.WEBSOCKET_WORKERS = "celery"
    from df_websockets.load import load_celery

    assert load_celery() is not None
    calls = []
    monkeypatch.setattr(tasks._server_signal_call, "apply_async",
                        lambda **kw: calls.append(kw))
    wi = window()
    trigger(wi, "dfws_testapp.record", to=[SERVER], path="p", value="c")
    assert tasks._server_signal_call.name == "df_websockets.tasks._server_signal_call"
    assert sorted((c["queue"], c["args"][6]) for c in calls) == [
        ("dfws-q1", "dfws-q1"), ("dfws-q2", "dfws-q2")]
    assert calls[0]["args"][:6] == ["dfws_testapp.record", wi.to_dict(), {"path": "p", "value": "c"},
                                     False, [], True]
