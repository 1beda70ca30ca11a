"""Upstream df_websockets 1.2.5's entry points and module-level names, as
projects use them (issue 14, item 6); the differences left on purpose are the
table "Differences from upstream" of docs/df_websockets.md."""
import asyncio
import importlib
import json
import logging
import os
import subprocess
import sys
import warnings

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.apps import AppConfig, apps
from django.contrib.auth.models import User
from django.test import RequestFactory, override_settings

from conftest import HERE, wait_for
from df_websockets import constants, tasks
from df_websockets.decorators import signal
from df_websockets.tasks import SYNC, WINDOW
from df_websockets.testing import SignalQueue
from df_websockets.utils import valid_topic_name
from df_websockets.window_info import WindowInfo

REPO = os.path.dirname(os.path.dirname(HERE))
DOC = os.path.join(REPO, "docs", "df_websockets.md")

# Every module-level name that upstream's modules define (not those they
# import from Django, Channels, Celery or the standard library).
UPSTREAM_NAMES = {
    "": ["__version__"],
    "apps": ["DfWebsocketsApp"],
    "celery": ["app", "get_celery_settings", "get_project_module_name", "setup_celery_logging"],
    "checks": ["effective_cache_check"],
    "constants": ["RemovedInDfWebsockets2Warning", "WEBSOCKET_KEY_COOKIE_NAME",
                  "WEBSOCKET_URL_COOKIE_NAME", "WORKER_CELERY", "WORKER_CHANNEL",
                  "WORKER_PROCESS", "WORKER_THREAD"],
    "consumers": ["BackgroundConsumer", "DFChannelNameRouter", "DFConsumer", "HEARTBEAT_MESSAGE",
                  "WebsocketHandler", "_signal_encoder", "get_handler", "get_websocket_topics",
                  "logger", "signal_decoder", "topic_serializer"],
    "decorators": ["Connection", "DynamicQueueName", "REGISTERED_SIGNALS", "RandomDynamicQueueName",
                   "SignalConnection", "everyone", "has_perm", "is_anonymous", "is_authenticated",
                   "is_staff", "is_superuser", "logger", "server_side", "signal"],
    "load": ["load_celery"],
    "management.commands.celery": ["Command"],
    "management.commands.worker": ["Command", "logger"],
    "middleware": ["WebsocketMiddleware", "logger"],
    "routing": ["ASGIHandler", "application", "mapping", "websocket_urlpatterns"],
    "tasks": ["BROADCAST", "Constant", "SERVER", "SESSION", "SYNC", "USER", "WINDOW",
              "_PROCESS_POOLS", "_call_ws_signal", "_server_signal_call", "_signal_encoder",
              "_topic_serializer", "_trigger_signal", "_trigger_signal_async", "call_task",
              "celery_shared_task", "get_expected_queues", "import_signals_and_functions",
              "logger", "process_task", "set_websocket_topics", "trigger", "trigger_signal"],
    "templatetags.websockets": ["JSCall", "js_call", "js_calls", "register"],
    "testing": ["SignalQueue", "__author__"],
    "topics": ["serialize_topic"],
    "utils": ["Choice", "RE", "SerializedForm", "valid_topic_name"],
    "window_info": ["Session", "WindowInfo", "__author__", "get_window_context", "logger",
                    "middlewares", "render_to_string"],
    "ws_middleware": ["BrowserMiddleware", "DjangoAuthMiddleware", "Djangoi18nMiddleware",
                      "WindowInfoMiddleware", "WindowKeyMiddleware", "logger"],
    "ws_settings": ["ASGI_APPLICATION", "CELERY_APP", "WEBSOCKET_CACHE_BACKEND",
                    "WEBSOCKET_CACHE_EXPIRE", "WEBSOCKET_CACHE_PREFIX", "WEBSOCKET_DEFAULT_QUEUE",
                    "WEBSOCKET_POOL_SIZES", "WEBSOCKET_SIGNAL_DECODER", "WEBSOCKET_SIGNAL_ENCODER",
                    "WEBSOCKET_TOPIC_SERIALIZER", "WEBSOCKET_URL", "WEBSOCKET_WORKERS",
                    "WINDOW_INFO_MIDDLEWARES", "compatibility_setting", "settings"],
}
# left out on purpose, each named in the docs' table
NOT_PROVIDED = {("tasks", "_PROCESS_POOLS"), ("testing", "__author__"), ("window_info", "__author__")}


@pytest.mark.parametrize("module", sorted(UPSTREAM_NAMES))
def test_every_upstream_name_exists(module):
    mod = importlib.import_module("df_websockets" + ("." + module if module else ""))
    missing = [name for name in UPSTREAM_NAMES[module]
               if (module, name) not in NOT_PROVIDED and not hasattr(mod, name)]
    assert missing == []


def test_names_left_out_are_documented():
    with open(DOC) as fd:
        doc = fd.read()
    for module, name in sorted(NOT_PROVIDED):
        assert "`%s.%s`" % (module, name) in doc


# ---- df_websockets.routing:application as the server's first import ------------------
def _fresh_python(code, settings_module="settings"):
    env = dict(os.environ, PYTHONPATH=HERE)  # dfws and df_websockets: the installed ones
    env.pop("DJANGO_SETTINGS_MODULE", None)
    if settings_module:
        env["DJANGO_SETTINGS_MODULE"] = settings_module
    return subprocess.run([sys.executable, "-c", code], cwd=HERE, env=env,
                          capture_output=True, text=True, timeout=60)


# what dfws-asgi does with "df_websockets.routing:application" (dfws.runner.load_app),
# then one HTTP request (a page that sets its window's topics) and one websocket
# heartbeat of that window through the application
SERVE_ROUTING = r"""
from dfws.runner import load_app
app = load_app("df_websockets.routing:application")
from django.apps import apps
from django.conf import settings
assert apps.ready and settings.ASGI_APPLICATION == "df_websockets.routing.application"
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from channels.testing import WebsocketCommunicator
from http.cookies import SimpleCookie

async def scenario():
    http = ApplicationCommunicator(app, {
        "type": "http", "method": "GET", "path": "/topics/", "query_string": b"",
        "headers": [(b"host", b"testserver")], "server": ("testserver", 80)})
    await http.send_input({"type": "http.request", "body": b""})
    start = await http.receive_output(5)
    body = await http.receive_output(5)
    jar = SimpleCookie()
    for name, value in start["headers"]:
        if name.lower() == b"set-cookie":
            jar.load(value.decode())
    cookie = ("dfwskey=%s" % jar["dfwskey"].value).encode()
    ws = WebsocketCommunicator(app, "/ws/", headers=[(b"host", b"testserver"), (b"cookie", cookie)])
    connected, _ = await ws.connect(5)
    await ws.send_to(text_data="--heartbeat--")
    echo = await ws.receive_from(5)
    await ws.disconnect()
    return start["status"], body["body"], connected, echo

print(async_to_sync(scenario)())
print(sorted(app.application_mapping))
"""


def test_routing_application_is_a_server_entry_point():
    """[issue 14] dfws-asgi df_websockets.routing:application died with
    AppRegistryNotReady: the module sets Django up, as upstream's does."""
    result = _fresh_python(SERVE_ROUTING)
    assert result.returncode == 0, result.stderr
    outcome, mapping = result.stdout.splitlines()[-2:]
    assert outcome == "(200, b'ok', True, '--heartbeat--')"
    assert mapping == "['celery', 'channel', 'http', 'websocket']"  # upstream's keys


def test_routing_without_settings_says_what_to_set():
    result = _fresh_python("import df_websockets.routing", settings_module=None)
    assert result.returncode != 0
    assert "ImproperlyConfigured: df_websockets needs the project's settings: set " \
           "DJANGO_SETTINGS_MODULE" in result.stderr


def test_routing_import_from_an_app_being_loaded_does_not_set_up_again(monkeypatch):
    import django

    from df_websockets.load import setup_django

    calls = []
    monkeypatch.setattr(django, "setup", lambda **kw: calls.append(kw))
    setup_django()  # ready: nothing to do
    monkeypatch.setattr(apps, "ready", False)
    monkeypatch.setattr(apps, "loading", True)
    setup_django()  # populate() is running (an app's ready() imports routing)
    monkeypatch.setattr(apps, "loading", False)
    setup_django()
    assert calls == [{"set_prefix": False}]  # as get_asgi_application()


def test_devserver_is_an_entry_point_too():
    result = _fresh_python("import df_websockets.devserver as d, df_websockets.routing as r; "
                           "print(d.application is r.application)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


# ---- apps -------------------------------------------------------------------------
def test_upstream_app_config_name():
    from df_websockets.apps import DfWebsocketsApp, DFWebsocketsConfig

    config = AppConfig.create("df_websockets.apps.DfWebsocketsApp")
    assert isinstance(config, DFWebsocketsConfig) and type(config) is DfWebsocketsApp
    assert type(AppConfig.create("df_websockets")) is DFWebsocketsConfig
    assert (config.name, config.verbose_name) == ("df_websockets", "Websockets for Django")


def test_project_listing_upstream_app_config(tmp_path):
    (tmp_path / "upstream_settings.py").write_text(
        "from settings import *\n"
        "INSTALLED_APPS = [a if a != 'df_websockets' else 'df_websockets.apps.DfWebsocketsApp'\n"
        "                  for a in INSTALLED_APPS]\n")
    code = ("import django; django.setup(); from django.apps import apps; "
            "from django.conf import settings; "
            "print(type(apps.get_app_config('df_websockets')).__name__, "
            "settings.CHANNEL_LAYERS['default']['BACKEND'])")
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="upstream_settings",
               PYTHONPATH=os.pathsep.join([str(tmp_path), HERE, REPO]))
    result = subprocess.run([sys.executable, "-c", code], cwd=HERE, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["DfWebsocketsApp", "df_websockets.layers.EmbeddedChannelLayer"]


# ---- tasks: the async helpers ----------------------------------------------------
def _receive_on(groups, action):
    """Join ``groups`` on a new channel, run ``action()`` (a coroutine
    function), return the first message of each group."""
    layer = get_channel_layer()

    async def scenario():
        channel = await layer.new_channel()
        for group in groups:
            await layer.group_add(valid_topic_name(group), channel)
        await action()
        return [await asyncio.wait_for(layer.receive(channel), 2) for _ in groups]

    return async_to_sync(scenario)()


def window(key="k1"):
    wi = WindowInfo()
    wi.window_key = key
    return wi


def test_trigger_signal_async_sends_before_returning():
    async def action():
        await tasks._trigger_signal_async(window(), "up.async", to=[WINDOW], kwargs={"a": 1})

    (message,) = _receive_on(["-window.k1"], action)
    payload = json.loads(message["message"])
    assert (payload["signal"], payload["opts"]) == ("up.async", {"a": 1})


@pytest.mark.django_db(transaction=True)
def test_trigger_signal_async_runs_sync_handlers_where_the_orm_works():
    seen = []

    @signal(path="up.sync", queue="q")
    def handler(window_info, n):
        seen.append((n, User.objects.count()))

    async def scenario():
        await tasks._trigger_signal_async(window(), "up.sync", to=SYNC, kwargs={"n": 1})

    async_to_sync(scenario)()
    assert seen == [(1, 0)]


@pytest.mark.parametrize("topics", ["-window.k1", ["-window.k1", "-broadcast"]])
def test_call_ws_signal_is_awaitable_with_one_topic_or_a_list(topics):
    groups = [topics] if isinstance(topics, str) else topics

    async def action():
        await tasks._call_ws_signal("up.direct", "id-1", topics, {"x": [1]})

    messages = _receive_on(groups, action)
    for message in messages:
        assert message == {"type": "ws_message", "message": json.dumps(
            {"signal": "up.direct", "opts": {"x": [1]}, "signal_id": "id-1"})}


def test_trigger_inside_a_loop_raises_for_arguments_json_cannot_encode():
    async def scenario():
        with pytest.raises(TypeError):
            tasks.trigger(window(), "up.bad", to=[WINDOW], v=object())

    async_to_sync(scenario)()


def test_call_ws_signal_replaced_by_an_async_recorder(monkeypatch):
    """What upstream's SignalQueue (and tests written after it) install."""
    recorded = []

    async def recorder(signal_name, signal_id, serialized_topics, kwargs):
        recorded.append((signal_name, serialized_topics, kwargs))

    monkeypatch.setattr(tasks, "_call_ws_signal", recorder)
    tasks.trigger(window(), "up.rec", to=[WINDOW, 7], v=1)
    assert recorded == [("up.rec", ["-window.k1", "-int.7"], {"v": 1})]


def test_signal_queue_records_async_triggers():
    async def scenario():
        with SignalQueue() as fd:
            await tasks._trigger_signal_async(window(), "up.queued", to=[WINDOW], kwargs={"b": 2})
        return fd.ws_signals

    assert async_to_sync(scenario)() == {"-window.k1": [("up.queued", {"b": 2})]}


def test_module_level_settings_objects(settings):
    from df_websockets import consumers
    from df_websockets.topics import serialize_topic

    assert tasks._signal_encoder.__name__ == "DjangoJSONEncoder"
    assert consumers._signal_encoder is tasks._signal_encoder
    assert consumers.signal_decoder is json.JSONDecoder
    assert consumers.topic_serializer is serialize_topic
    settings.WEBSOCKET_SIGNAL_ENCODER = "json.JSONEncoder"  # read at each access
    assert tasks._signal_encoder is json.JSONEncoder
    assert "topic_serializer" in dir(consumers)
    with pytest.raises(AttributeError):
        consumers.no_such_name


def test_call_task_keywords_and_celery_alias():
    seen = []

    @signal(path="up.kw", queue="q")
    def handler(window_info):
        seen.append(1)

    args = ["up.kw", window().to_dict(), {}, False, [], True, "q"]
    tasks.call_task(worker_mode="thread", queue="q", signal_args=args, celery_options={})
    assert wait_for(lambda: seen == [1])
    import celery

    assert tasks.celery_shared_task is celery.shared_task
    from df_websockets.decorators import SignalConnection

    assert tasks.SignalConnection is SignalConnection


# ---- WindowInfo ---------------------------------------------------------------------
@override_settings(LANGUAGE_CODE="fr")
def test_blank_window_info_language_comes_from_settings():
    """Deliberate difference: upstream leaves None, so handlers of a blank
    WindowInfo ran in whatever language the worker thread had last."""
    assert WindowInfo().language_code == "fr"
    assert WindowInfo.from_dict({}).language_code == "fr"
    assert WindowInfo.from_request(None).to_dict()["language_code"] == "fr"


@pytest.mark.django_db
def test_from_dict_with_only_a_user_pk_reads_the_user():
    user = User.objects.create_user("frank", is_staff=True)
    wi = WindowInfo.from_dict({"user_pk": user.pk})
    assert (wi.username, wi.is_staff, wi.is_active, wi.is_authenticated) == ("frank", True, True, True)
    assert WindowInfo.from_dict({"user_pk": user.pk + 100}).username is None  # no such user
    data = wi.to_dict()
    data.update(username="kept", is_staff=False)
    again = WindowInfo.from_dict(dict(data, user_set=True))  # written from a request: kept
    assert (again.username, again.is_staff) == ("kept", False)


def test_anonymous_request_sets_no_user():
    from django.contrib.auth.models import AnonymousUser

    request = RequestFactory().get("/")
    request.window_key = "k"
    request.user = AnonymousUser()
    assert WindowInfo.from_request(request).to_dict()["user_set"] is False


def test_session_key_defaults_to_none():
    from df_websockets.topics import Session as TopicsSession
    from df_websockets.window_info import Session

    assert Session().key is None and TopicsSession is Session


# ---- middleware, template tags, settings, checks ----------------------------------------
def test_middleware_header_name_attribute(client):
    from df_websockets.middleware import WebsocketMiddleware

    assert (WebsocketMiddleware.ws_windowkey_get_parameter,
            WebsocketMiddleware.ws_windowkey_header_name) == ("dfwskey", "DFWSKEY")

    class Renamed(WebsocketMiddleware):
        ws_windowkey_header_name = "X-WINDOW"

    request = RequestFactory().get("/", HTTP_X_REQUESTED_WITH="XMLHttpRequest", HTTP_X_WINDOW="abc")
    Renamed(lambda r: None).process_request(request)
    assert request.window_key == "abc"


def test_jscall_upstream_methods():
    from df_websockets.templatetags.websockets import JSCall

    call = JSCall("a.b", on="click", opts={"x": 1})
    assert call.get_json_dict() == call.to_dict()
    assert json.loads(str(call)) == {"name": "a.b", "prevent": None, "on": "click", "opts": {"x": 1}}


def test_compatibility_setting(settings):
    from df_websockets.ws_settings import compatibility_setting

    assert compatibility_setting("NO_SUCH_NEW", "NO_SUCH_OLD", 3) == 3
    settings.OLD_NAME_X = 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert compatibility_setting("NEW_NAME_X", "OLD_NAME_X", 3) == 1
    assert [w.category for w in caught] == [constants.RemovedInDfWebsockets2Warning]
    assert caught[0].filename == __file__
    settings.NEW_NAME_X = 2
    assert compatibility_setting("NEW_NAME_X", "OLD_NAME_X", 3) == 2


def test_checks_upstream_name():
    from df_websockets.checks import check_websockets, effective_cache_check

    assert effective_cache_check is check_websockets


# ---- celery -------------------------------------------------------------------------
def test_celery_module_names(settings):
    from df_websockets import celery as dfws_celery

    assert dfws_celery.get_project_module_name() == "df_websockets"
    settings.DF_MODULE_NAME = "myproject"
    assert dfws_celery.get_project_module_name() == "myproject"
    # tests/app/settings.py spells CELERY_BROKER_URL (Celery's Django guide)
    assert dfws_celery.app.conf.broker_url == settings.CELERY_BROKER_URL


def test_celery_settings_under_both_spellings(settings):
    from df_websockets.celery import get_celery_settings

    del settings.CELERY_BROKER_URL
    settings.BROKER_URL = "redis://old-name/0"  # Celery's old name, what upstream reads
    settings.CELERY_ALWAYS_EAGER = True
    config = get_celery_settings()
    assert (config.broker_url, config.task_always_eager) == ("redis://old-name/0", True)
    settings.CELERY_BROKER_URL = "redis://new-name/0"  # the prefixed new name wins
    assert get_celery_settings().broker_url == "redis://new-name/0"
    assert all(name == name.lower() for name in vars(get_celery_settings()))


def test_setup_celery_logging_applies_django_logging(settings):
    from df_websockets.celery import setup_celery_logging

    logger = logging.getLogger("dfws.test.celery_logging")
    settings.LOGGING = {}
    setup_celery_logging()  # nothing to apply
    settings.LOGGING = {"version": 1, "disable_existing_loggers": False,
                        "loggers": {"dfws.test.celery_logging": {"level": "ERROR"}}}
    setup_celery_logging(loglevel=None)
    assert logger.level == logging.ERROR
