"""Public API of every module: names, defaults, formats (contract §1, §3, §5)."""
import importlib
import json
import warnings
from urllib.parse import unquote_plus

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.template import Context, Template
from django.test import RequestFactory, override_settings

from df_websockets import constants, decorators, topics, utils, ws_settings
from df_websockets.tasks import BROADCAST, SERVER, SESSION, SYNC, USER, WINDOW
from df_websockets.window_info import Session, WindowInfo

PUBLIC_NAMES = {
    "constants": ["WORKER_CELERY", "WORKER_CHANNEL", "WORKER_PROCESS", "WORKER_THREAD",
                  "WEBSOCKET_URL_COOKIE_NAME", "WEBSOCKET_KEY_COOKIE_NAME",
                  "RemovedInDfWebsockets2Warning"],
    "decorators": ["REGISTERED_SIGNALS", "signal", "Connection", "SignalConnection",
                   "server_side", "everyone", "is_authenticated", "is_anonymous", "is_staff",
                   "is_superuser", "has_perm", "DynamicQueueName", "RandomDynamicQueueName"],
    "tasks": ["SERVER", "SESSION", "WINDOW", "USER", "BROADCAST", "SYNC",
              "set_websocket_topics", "trigger", "trigger_signal", "_trigger_signal",
              "call_task", "process_task", "get_expected_queues", "_server_signal_call",
              "import_signals_and_functions", "_call_ws_signal"],
    "window_info": ["WindowInfo", "Session", "middlewares", "get_window_context",
                    "render_to_string"],
    "ws_middleware": ["WindowInfoMiddleware", "WindowKeyMiddleware", "DjangoAuthMiddleware",
                      "Djangoi18nMiddleware", "BrowserMiddleware"],
    "topics": ["serialize_topic"],
    "utils": ["valid_topic_name", "RE", "Choice", "SerializedForm"],
    "testing": ["SignalQueue"],
    "middleware": ["WebsocketMiddleware"],
    "consumers": ["HEARTBEAT_MESSAGE", "get_websocket_topics", "DFConsumer",
                  "BackgroundConsumer", "DFChannelNameRouter", "WebsocketHandler", "get_handler"],
    "routing": ["application", "websocket_urlpatterns"],
    "templatetags.websockets": ["register", "js_call", "js_calls", "JSCall"],
    "checks": ["check_websockets"],
    "apps": ["DFWebsocketsConfig"],
    "celery": ["app"],
    "load": ["load_celery"],
    "layers": ["EmbeddedChannelLayer"],
    "binding": ["bind_model", "unbind_model"],
    "management.commands.worker": ["Command"],
    "management.commands.celery": ["Command"],
    "management.commands.runserver": ["Command"],
}


@pytest.mark.parametrize("module", sorted(PUBLIC_NAMES))
def test_public_names(module):
    mod = importlib.import_module("df_websockets." + module)
    missing = [name for name in PUBLIC_NAMES[module] if not hasattr(mod, name)]
    assert missing == []


def test_constants():
    assert (constants.WORKER_CELERY, constants.WORKER_CHANNEL) == ("celery", "channels")
    assert (constants.WORKER_PROCESS, constants.WORKER_THREAD) == ("process", "thread")
    assert constants.WEBSOCKET_URL_COOKIE_NAME == "dfwsurl"
    assert constants.WEBSOCKET_KEY_COOKIE_NAME == "dfwskey"
    assert issubclass(constants.RemovedInDfWebsockets2Warning, PendingDeprecationWarning)


def test_target_constants_print_by_name():
    assert [str(x) for x in (SERVER, SESSION, WINDOW, USER, BROADCAST, SYNC)] == [
        "SERVER", "SESSION", "WINDOW", "USER", "BROADCAST", "SYNC"]
    assert repr(WINDOW) == "WINDOW"


# ---- ws_settings ------------------------------------------------------------
def test_settings_defaults():
    assert ws_settings.CELERY_APP == "df_websockets"
    assert ws_settings.WEBSOCKET_DEFAULT_QUEUE == "celery"
    assert ws_settings.WEBSOCKET_CACHE_EXPIRE == 36000
    assert ws_settings.WEBSOCKET_CACHE_PREFIX == "df_ws"
    assert ws_settings.WEBSOCKET_CACHE_BACKEND == "default"
    assert ws_settings.WEBSOCKET_SIGNAL_DECODER == "json.JSONDecoder"
    assert ws_settings.WEBSOCKET_SIGNAL_ENCODER == "django.core.serializers.json.DjangoJSONEncoder"
    assert ws_settings.WEBSOCKET_TOPIC_SERIALIZER == "df_websockets.topics.serialize_topic"
    assert ws_settings.WEBSOCKET_POOL_SIZES == {None: 10}
    assert ws_settings.WINDOW_INFO_MIDDLEWARES == [
        "df_websockets.ws_middleware.WindowKeyMiddleware",
        "df_websockets.ws_middleware.DjangoAuthMiddleware",
        "df_websockets.ws_middleware.Djangoi18nMiddleware",
        "df_websockets.ws_middleware.BrowserMiddleware",
    ]
    assert ws_settings.WEBSOCKET_URL == "/ws/"
    assert ws_settings.ASGI_APPLICATION == "df_websockets.routing.application"
    assert ws_settings.WEBSOCKET_WORKERS == "thread"  # tests/app/settings.py


def test_settings_workers_default_is_celery_when_importable(settings):
    del settings.WEBSOCKET_WORKERS
    assert ws_settings.WEBSOCKET_WORKERS == "celery"


@pytest.mark.parametrize("old,new,value", [
    ("CELERY_DEFAULT_QUEUE", "WEBSOCKET_DEFAULT_QUEUE", "oldq"),
    ("WEBSOCKET_REDIS_EXPIRE", "WEBSOCKET_CACHE_EXPIRE", 12),
    ("WEBSOCKET_REDIS_PREFIX", "WEBSOCKET_CACHE_PREFIX", "old_"),
])
def test_settings_deprecated_names(settings, old, new, value):
    del settings.WEBSOCKET_DEFAULT_QUEUE
    setattr(settings, old, value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert getattr(ws_settings, new) == value
    assert any(issubclass(w.category, constants.RemovedInDfWebsockets2Warning) for w in caught)
    setattr(settings, new, "new-wins")
    assert getattr(ws_settings, new) == "new-wins"


@pytest.mark.parametrize("value,expected", [
    ("thread", "thread"), ("process", "process"), ("channels", "channels"),
    ("celery", "celery"), ("multithread", "thread"), ("multiprocess", "process"),
])
def test_worker_mode_aliases(settings, value, expected):
    settings.WEBSOCKET_WORKERS = value
    assert ws_settings.get_worker_mode() == expected


def test_worker_mode_invalid(settings):
    settings.WEBSOCKET_WORKERS = "gevent"
    with pytest.raises(ImproperlyConfigured, match="'gevent' is invalid"):
        ws_settings.get_worker_mode()


def test_pool_sizes(settings):
    assert ws_settings.get_pool_size("any") == 10
    settings.WEBSOCKET_POOL_SIZES = {"slow": 2}
    assert ws_settings.get_pool_size("slow") == 2
    assert ws_settings.get_pool_size("other") == 5


# ---- decorators ---------------------------------------------------------------
def _plain(window_info, a: int, b=None, c: str = "x"):
    return a, b, c


def test_connection_defaults():
    conn = decorators.SignalConnection(_plain)
    assert conn.path == "test_ws_api._plain"
    assert conn.is_allowed_to is decorators.server_side
    assert conn.queue == "celery"
    assert conn.argument_types == {"a": int, "c": str}
    assert conn.required_arguments_names == {"a"}
    assert conn.optional_arguments_names == {"b", "c"}
    assert conn.accepted_argument_names == {"a", "b", "c"}
    assert conn.accept_kwargs is False
    assert conn(None, a=1) == (1, None, "x")


def test_connection_signature_errors():
    with pytest.raises(ValueError):
        decorators.SignalConnection(lambda a: None)  # no window_info
    with pytest.raises(ValueError):
        decorators.SignalConnection(lambda window_info, *args: None)
    with pytest.raises(ValueError, match="Invalid identifier"):
        decorators.SignalConnection(_plain, path="not valid!")
    with pytest.raises(ValueError, match="Invalid identifier"):
        decorators.SignalConnection(_plain, path="1abc.d")


def test_connection_window_info_any_position_and_kwargs():
    import typing

    def f(a, window_info, b: typing.List = None, **kw):
        return a

    conn = decorators.SignalConnection(f, path="x.y")
    assert conn.accept_kwargs is True
    assert conn.argument_types == {}  # typing annotations skipped
    assert conn.check({"a": 1, "zzz": 2}) == {"a": 1, "zzz": 2}


def test_connection_check():
    conn = decorators.SignalConnection(_plain)
    original = {"a": "12", "b": "x"}
    assert conn.check(original) == {"a": 12, "b": "x"}
    assert original == {"a": "12", "b": "x"}
    assert conn.check({"a": "nope"}) is None  # ValueError -> None
    assert conn.check({"b": 1}) is None  # missing a
    assert conn.check({"a": 1, "unknown": 2}) is None


def test_signal_decorator_forms():
    @decorators.signal
    def bare(window_info):
        pass

    @decorators.signal(path="custom.path", is_allowed_to=decorators.everyone, queue="q")
    def with_args(window_info):
        pass

    assert callable(bare) and bare.__name__ == "bare"  # function returned unchanged
    assert decorators.REGISTERED_SIGNALS["test_ws_api.bare"][0].function is bare
    conn = decorators.REGISTERED_SIGNALS["custom.path"][0]
    assert (conn.queue, conn.is_allowed_to) == ("q", decorators.everyone)


def test_signal_registered_twice_is_deduplicated():
    def handler(window_info):
        pass

    decorators.signal(handler, path="dedup.path")
    decorators.signal(handler, path="dedup.path")
    assert len(decorators.REGISTERED_SIGNALS["dedup.path"]) == 1

    def other(window_info):
        pass

    decorators.signal(other, path="dedup.path")
    assert len(decorators.REGISTERED_SIGNALS["dedup.path"]) == 2


def test_queues():
    class Q(decorators.DynamicQueueName):
        pass

    with pytest.raises(NotImplementedError):
        Q()(None, None, {})
    assert Q().get_available_queues() == {"celery"}
    rnd = decorators.RandomDynamicQueueName("slow-", 3)
    assert rnd.get_available_queues() == {"slow-0", "slow-1", "slow-2"}
    assert {rnd(None, None, {}) for _ in range(60)} <= {"slow-0", "slow-1", "slow-2"}
    conn = decorators.SignalConnection(_plain, queue=lambda c, w, k: k["a"] * 2)
    assert conn.get_queue(None, {"a": 2}) == "4"


@pytest.mark.django_db
def test_permission_helpers():
    anonymous = WindowInfo()
    user = User.objects.create_user("alice", password="x")
    staff = User.objects.create_user("bob", is_staff=True)
    superuser = User.objects.create_superuser("root", password="x")
    inactive = User.objects.create_superuser("gone", password="x", is_active=False)
    perm = Permission.objects.get(codename="add_group")
    user.user_permissions.add(perm)
    request = RequestFactory().get("/")
    wis = {}
    for name, u in (("user", user), ("staff", staff), ("superuser", superuser), ("inactive", inactive)):
        request.user = u
        request.window_key = name
        wis[name] = WindowInfo.from_request(request)
    d = decorators
    assert not d.server_side(None, wis["superuser"], {})
    assert d.everyone(None, anonymous, {})
    assert d.is_anonymous(None, anonymous, {}) and not d.is_authenticated(None, anonymous, {})
    # [bug] request-built WindowInfo had no is_authenticated: now always present
    assert d.is_authenticated(None, wis["user"], {}) and not d.is_anonymous(None, wis["user"], {})
    assert d.is_staff(None, wis["staff"], {}) and not d.is_staff(None, wis["user"], {})
    assert d.is_superuser(None, wis["superuser"], {})
    assert not d.is_superuser(None, wis["inactive"], {})
    can_add = d.has_perm("auth.add_group")
    assert can_add(None, wis["user"], {})
    assert can_add(None, wis["superuser"], {})
    assert not can_add(None, wis["staff"], {})
    assert not can_add(None, wis["inactive"], {})  # has_perm respects is_active
    assert not can_add(None, anonymous, {})
    # after a round-trip through to_dict/from_dict
    again = WindowInfo.from_dict(wis["user"].to_dict())
    assert d.is_authenticated(None, again, {}) and can_add(None, again, {})
    assert again.user == user


# ---- topics / utils -------------------------------------------------------------
GROUP_VECTORS = {
    "-broadcast": "7e8c980efe5bc654f4eae9b110014bcb3cb1a892a0eb70092abec016072eeb2d",
    "-window.test_key": "fea736b153fc5c81b4d5002610f6c8374a5677cdce3b72245a4c32db5740c8f0",
    "-int.100": "f6728284c836a3ebc25a6dc85847b147961a0934d10e2950c3e8f92936f10865",
}


@pytest.mark.parametrize("topic", sorted(GROUP_VECTORS))
def test_group_name_vectors(topic):
    assert utils.valid_topic_name(topic) == GROUP_VECTORS[topic]


@pytest.mark.django_db
def test_serialize_topic_rules():
    wi = WindowInfo()
    wi.window_key = "test_key"
    st = topics.serialize_topic
    assert st(wi, BROADCAST) == "-broadcast"
    assert st(wi, WINDOW) == "-window.test_key"
    assert st(None, WINDOW) is None
    assert st(wi, Group) == "-<Group>"  # upstream's spelling, brackets included
    assert st(wi, "test") == "-str.90a3ed9e32b2aaf4c61c410eb925426119e1a9dc53d4286ade99a809"
    group = Group.objects.create(name="g")
    assert st(wi, group) == "-auth.group.%d" % group.pk
    assert st(wi, Group(name="unsaved")) == "-auth.group.0"
    assert st(wi, USER) is None  # [bug] anonymous gave "-auth.user.None"
    wi.user_pk = 5
    assert st(wi, USER) == "-auth.user.5"
    assert st(wi, Session("abc")) == "-session.abc"
    assert st(wi, 1) == "-int.1"
    assert st(wi, 100) == "-int.100"


def test_serialize_topic_session_bug():
    """[bug] SESSION had no rule: now the window's session, or None."""
    wi = WindowInfo()
    assert topics.serialize_topic(wi, SESSION) is None
    request = RequestFactory().get("/")
    request.window_key = "k"

    class FakeSession:
        session_key = "sess1"

    request.session = FakeSession()
    wi = WindowInfo.from_request(request)
    assert topics.serialize_topic(wi, SESSION) == "-session.sess1"


def test_re_and_choice():
    assert utils.RE(r"^\d+")("12") == "12"
    assert utils.RE(r"^\d+", caster=int)("12") == 12
    with pytest.raises(ValueError):
        utils.RE(r"^\d+")("dqs")
    assert utils.RE(r"^id-(\d+)", caster=int)("id-42x") == 42
    assert utils.RE(r"^abc", flags=2)("ABCd") == "ABCd"  # re.IGNORECASE
    assert utils.Choice(["1", "2"])("1") == "1"
    assert utils.Choice([1, 2], caster=int)("2") == 2
    with pytest.raises(ValueError):
        utils.Choice([1, 2], caster=int)("3")


def test_serialized_form():
    from dfws_testapp.forms import TitleForm

    converter = utils.SerializedForm(TitleForm)
    form = converter([
        {"name": "title", "value": "df_websockets"},
        {"name": "tags", "value": "a"}, {"name": "tags", "value": "b"},
        {"name": "attachment", "value": "report.pdf"},
    ])
    assert form.is_bound and form.is_valid(), form.errors
    assert form.cleaned_data["title"] == "df_websockets"
    assert form.cleaned_data["tags"] == ["a", "b"]
    assert form.cleaned_data["attachment"].name == "report.pdf"
    assert not converter(None).is_bound
    with pytest.raises(ValueError):
        utils.SerializedForm(TitleForm, allow_none=False)(None)
    with pytest.raises(ValueError):
        converter("not a list")
    assert not converter([{"name": "tags", "value": "a"}]).is_valid()


# ---- window_info ------------------------------------------------------------------
TO_DICT_KEYS = ["window_key", "user_pk", "username", "is_superuser", "is_staff", "is_active",
                "csrf_cookie", "perms", "user_agent", "user_set", "language_code"]


@pytest.mark.django_db
def test_to_dict_key_order_and_round_trip():
    user = User.objects.create_user("carol", is_staff=True)
    request = RequestFactory().get("/", HTTP_USER_AGENT="UA/1", HTTP_ACCEPT_LANGUAGE="fr")
    request.COOKIES["csrftoken"] = "tok"
    request.user = user
    request.window_key = "wk"
    wi = WindowInfo.from_request(request)
    data = wi.to_dict()
    assert list(data) == TO_DICT_KEYS
    assert data == {"window_key": "wk", "user_pk": user.pk, "username": "carol",
                    "is_superuser": False, "is_staff": True, "is_active": True,
                    "csrf_cookie": "tok", "perms": None, "user_agent": "UA/1",
                    "user_set": True, "language_code": "fr"}
    assert list(WindowInfo().to_dict()) == TO_DICT_KEYS
    assert WindowInfo.from_dict(data).to_dict() == data
    assert WindowInfo.from_dict(None) is None
    assert WindowInfo.from_request(wi) is wi
    assert WindowInfo.from_request(None).to_dict()["window_key"] is None
    json.dumps(data)


@pytest.mark.django_db
def test_render_to_string_with_window_context():
    from df_websockets.window_info import get_window_context, render_to_string

    user = User.objects.create_user("dave")
    request = RequestFactory().get("/")
    request.user = user
    request.window_key = "key42"
    wi = WindowInfo.from_request(request)
    context = get_window_context(wi)
    for key in ("df_window_key", "user", "perms", "csrf_token", "LANGUAGES",
                "LANGUAGE_CODE", "LANGUAGE_BIDI", "df_user_agent", "messages",
                "DEFAULT_MESSAGE_LEVELS"):
        assert key in context
    html = render_to_string("dfws_testapp/window.html", {"greeting": "hi"}, window_info=wi)
    assert html.strip() == "key42|dave|en|hi"  # Django: supported variant of en-us


# ---- HTTP middleware -------------------------------------------------------------
def test_middleware_key_and_no_cookies_without_topics(client):
    response = client.get("/plain/")
    assert "dfwskey" not in response.cookies and "dfwsurl" not in response.cookies
    request = response.wsgi_request
    assert len(request.window_key) == 32
    assert set(request.window_key) <= set("abcdefghijklmnopqrstuvwxyz0123456789")
    assert request.has_websocket_topics is False


def test_middleware_cookies_with_topics(client):
    response = client.get("/topics/", HTTP_HOST="example.com:8000")
    key = response.wsgi_request.window_key
    assert response.cookies["dfwskey"].value == key
    assert unquote_plus(response.cookies["dfwsurl"].value) == "ws://example.com:8000/ws/"
    for name in ("dfwskey", "dfwsurl"):
        morsel = response.cookies[name]
        assert morsel["max-age"] == 86400
        assert morsel["path"] == "/"
        assert morsel["domain"] == ""
        assert morsel["secure"] == ""
        assert morsel["httponly"] == ""
        assert morsel["samesite"] == "Lax"


@override_settings(CSRF_COOKIE_DOMAIN=".example.com", CSRF_COOKIE_PATH="/app/",
                   CSRF_COOKIE_SAMESITE="Strict", WEBSOCKET_URL="/ws/")
def test_middleware_cookie_attributes_follow_csrf_settings(client):
    response = client.get("/topics/", HTTP_HOST="example.com", secure=True)
    assert unquote_plus(response.cookies["dfwsurl"].value) == "wss://example.com/ws/"
    for name in ("dfwskey", "dfwsurl"):
        morsel = response.cookies[name]
        assert (morsel["domain"], morsel["path"], morsel["samesite"]) == (".example.com", "/app/", "Strict")
        assert morsel["secure"] is True


def test_middleware_key_from_cookie_and_header(client):
    client.cookies["dfwskey"] = "fromcookie"
    # a page load is a new window, whatever the cookie says (two tabs of one
    # browser must not share WINDOW signals)
    first = client.get("/plain/").wsgi_request.window_key
    second = client.get("/plain/").wsgi_request.window_key
    assert len(first) == 32 and first != "fromcookie" and first != second
    # an XMLHttpRequest belongs to its page's window: header first, then cookie
    response = client.get("/plain/", HTTP_X_REQUESTED_WITH="XMLHttpRequest", HTTP_DFWSKEY="fromheader")
    assert response.wsgi_request.window_key == "fromheader"
    response = client.get("/plain/", HTTP_X_REQUESTED_WITH="XMLHttpRequest")
    assert response.wsgi_request.window_key == "fromcookie"
    del client.cookies["dfwskey"]
    response = client.get("/plain/", HTTP_X_REQUESTED_WITH="XMLHttpRequest")
    assert len(response.wsgi_request.window_key) == 32  # neither: new key


# ---- template tags ---------------------------------------------------------------
def test_js_call_tag():
    html = Template('{% load websockets %}<form{% js_call "signal.name" on="change" form="form_data" id=42 %}>').render(Context())
    expected = json.dumps([{"name": "signal.name", "prevent": None, "on": "change",
                            "opts": {"id": 42}, "form": "form_data"}])
    escaped = expected.replace("&", "&amp;").replace('"', "&quot;")
    assert html == '<form data-df-signal="%s" >' % escaped
    assert html == ('<form data-df-signal="[{&quot;name&quot;: &quot;signal.name&quot;, '
                    '&quot;prevent&quot;: null, &quot;on&quot;: &quot;change&quot;, '
                    '&quot;opts&quot;: {&quot;id&quot;: 42}, &quot;form&quot;: '
                    '&quot;form_data&quot;}]" >')


def test_js_calls_tag():
    from df_websockets.templatetags.websockets import JSCall

    calls = [JSCall("a.b", on="click", opts={"x": "<y>"}), JSCall("c.d", value="title", prevent=False)]
    html = Template("{% load websockets %}{% js_calls c1 c2 %}").render(Context({"c1": calls[0], "c2": calls[1]}))
    assert html.startswith(' data-df-signal="') and html.endswith('" ')
    import html as html_mod

    data = json.loads(html_mod.unescape(html.strip()[len('data-df-signal="'):-1]))
    assert data == [{"name": "a.b", "prevent": None, "on": "click", "opts": {"x": "<y>"}},
                    {"name": "c.d", "prevent": False, "opts": {}, "value": "title"}]
    assert "<y>" not in html


# ---- checks / apps --------------------------------------------------------------
def _ids(**kw):
    return [e.id for e in run_checks() if e.id.startswith("df_websockets")]


def test_checks(settings):
    assert _ids() == []
    settings.WEBSOCKET_CACHE_BACKEND = "websockets"
    errors = [e for e in run_checks() if e.id == "df_websockets.E001"]
    assert errors and "django.core.cache.backends.redis.RedisCache" in errors[0].hint
    assert "'default'" in errors[0].hint
    settings.WEBSOCKET_CACHE_BACKEND = "default"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    errors = [e for e in run_checks() if e.id == "df_websockets.E002"]
    assert errors and "pip install redis" in errors[0].hint
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.WEBSOCKET_WORKERS = "celery"
    errors = [e for e in run_checks() if e.id == "df_websockets.E002"]
    assert errors and "WEBSOCKET_WORKERS = 'thread'" in errors[0].hint
    settings.WEBSOCKET_WORKERS = "channels"
    assert "df_websockets.W001" in _ids()
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer"}}
    assert "df_websockets.W005" in _ids() and "df_websockets.W001" not in _ids()
    settings.WEBSOCKET_WORKERS = "thread"
    assert "df_websockets.W005" not in _ids()


def test_checks_per_process_cache_with_several_processes(settings, monkeypatch):
    """[issue 16] LocMemCache with dfws-asgi --workers N: Error; with a
    Redis channel layer: Warning."""
    from df_websockets import checks

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    monkeypatch.setattr(checks, "server_workers", lambda: 3)
    errors = [e for e in run_checks() if e.id == "df_websockets.E004"]
    assert errors and "while dfws-asgi runs 3 worker processes" in errors[0].msg
    assert errors[0].hint.endswith("or run one worker (--workers 1).")
    monkeypatch.setattr(checks, "server_workers", lambda: 1)
    assert "df_websockets.E004" not in _ids()
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}}
    warnings = [e for e in run_checks() if e.id == "df_websockets.W003"]
    assert warnings and "with the shared channel layer channels_redis" in warnings[0].msg
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/1"}}
    assert _ids() == []


def test_server_workers_outside_and_inside_dfws_asgi(monkeypatch):
    import sys
    import types

    from df_websockets.checks import server_workers

    assert server_workers() == 1  # no dfws._dfws in a test process
    fake = types.SimpleNamespace(options=lambda: {"workers": 4})
    monkeypatch.setitem(sys.modules, "dfws._dfws", fake)
    assert server_workers() == 4

    def not_serving():
        raise RuntimeError("no options outside dfws-asgi")

    fake.options = not_serving
    assert server_workers() == 1


def test_check_celery_default_without_broker(settings):
    """[issue 16] WEBSOCKET_WORKERS left to its default (celery, when it is
    installed) and no broker: a Warning naming both ways out."""
    del settings.WEBSOCKET_WORKERS
    del settings.CELERY_BROKER_URL
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/1"}}
    warnings = [e for e in run_checks() if e.id == "df_websockets.W004"]
    assert warnings and "WEBSOCKET_WORKERS = 'thread'" in warnings[0].hint
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/2"
    assert "df_websockets.W004" not in _ids()
    settings.WEBSOCKET_WORKERS = "celery"  # chosen: its broker is the project's business
    del settings.CELERY_BROKER_URL
    assert "df_websockets.W004" not in _ids()


def test_app_config_and_default_layer(settings):
    from django.apps import apps

    config = apps.get_app_config("df_websockets")
    assert config.verbose_name == "Websockets for Django"
    assert list(config.get_models()) == []
    assert settings.CHANNEL_LAYERS == {"default": {"BACKEND": "df_websockets.layers.EmbeddedChannelLayer"}}
    assert settings.ASGI_APPLICATION == "df_websockets.routing.application"
    from channels.layers import get_channel_layer

    from df_websockets.layers import EmbeddedChannelLayer

    assert isinstance(get_channel_layer(), EmbeddedChannelLayer)


def test_app_ready_keeps_project_layers(settings):
    from django.apps import apps

    layers = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.CHANNEL_LAYERS = layers
    apps.get_app_config("df_websockets").ready()
    assert settings.CHANNEL_LAYERS == layers
