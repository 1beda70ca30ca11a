"""Tests of the demo project (demo/): pages, server-side signal handlers,
/ping/, the demo_broadcast command, the ASGI application and the settings.

Run from the repository root: python3 -m pytest tests/demo -q
"""
import html
import json
import os
import re
import subprocess
import sys
from urllib.parse import unquote_plus

import pytest
import sys
from django.core.cache import cache
from django.core.management import call_command

from df_websockets import ws_settings
from df_websockets.decorators import REGISTERED_SIGNALS, everyone
from df_websockets.tasks import SERVER, process_task, trigger

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_DIR = os.path.join(REPO_ROOT, "demo")
PYTHON = sys.executable  # the stack under test: the Python running pytest
SCRIPT_TAG = '<script src="/static/js/df_websockets.min.js"></script>'
WINDOW_KEY = "demotestwindowkey0123456789abcde"
WINDOW_TOPIC = "-window." + WINDOW_KEY
DATA_DF_SIGNAL = re.compile(r' data-df-signal="([^"]*)" ')

# contract §4: every built-in browser signal has its own page
BUILTIN_SIGNALS = [
    "html.after", "html.append", "html.prepend", "html.before", "html.content",
    "html.replace_with", "html.empty", "html.remove", "html.add_class",
    "html.remove_class", "html.remove_attr", "html.add_attribute",
    "html.boolean_attribute", "html.text", "html.download_file", "html.focus",
    "html.forms.set",
]


def _calls(name, **extra):
    call = {"name": name, "prevent": None, "opts": {}}
    call.update(extra)
    return call


# page URL -> the data-df-signal bindings it must contain, in page order
PAGE_BINDINGS = {
    "/signals/%s/" % name: [_calls("demo." + name)]
    for name in BUILTIN_SIGNALS
    if name not in ("html.boolean_attribute", "html.forms.set")
}
PAGE_BINDINGS["/signals/html.boolean_attribute/"] = [
    _calls("demo.html.boolean_attribute", opts={"state": True}),
    _calls("demo.html.boolean_attribute", opts={"state": False}),
]
PAGE_BINDINGS["/signals/html.forms.set/"] = [
    _calls("demo.html.forms.set", opts={"preset": "filled"}),
    _calls("demo.html.forms.set", opts={"preset": "cleared"}),
]
PAGE_BINDINGS["/"] = [_calls("demo.hello")]
PAGE_BINDINGS["/broadcast/"] = [_calls("demo.broadcast")]
PAGE_BINDINGS["/form/"] = [
    _calls("demo.form.submit", form="form_data"),
    _calls("demo.form.preview", on="input", value="name"),
]


def bindings(content):
    return [
        binding
        for attr in DATA_DF_SIGNAL.findall(content)
        for binding in json.loads(html.unescape(attr))
    ]


# ---------------------------------------------------------------------------
# pages
def test_index_lists_every_builtin_signal(client):
    response = client.get("/")
    assert response.status_code == 200
    content = response.content.decode()
    assert SCRIPT_TAG in content
    table = content[content.index('id="signal-index"'):]
    for name in BUILTIN_SIGNALS:
        assert 'href="/signals/%s/"><code>%s</code>' % (name, name) in table
    assert 'href="/broadcast/"' in content and 'href="/form/"' in content
    assert response.cookies["dfwskey"].value


@pytest.mark.parametrize("url", sorted(PAGE_BINDINGS))
def test_page_renders_with_script_and_signal_bindings(client, url):
    response = client.get(url)
    assert response.status_code == 200
    content = response.content.decode()
    assert content.count(SCRIPT_TAG) == 1
    assert bindings(content) == PAGE_BINDINGS[url]
    # every signal a page calls is registered and callable from browsers
    for binding in bindings(content):
        connections = REGISTERED_SIGNALS[binding["name"]]
        assert [c.is_allowed_to for c in connections] == [everyone]


@pytest.mark.parametrize("url", sorted(PAGE_BINDINGS))
def test_page_sets_websocket_topics(client, url):
    response = client.get(url, SERVER_NAME="localhost", SERVER_PORT="8000")
    assert response.status_code == 200
    key = response.cookies["dfwskey"].value
    assert re.fullmatch(r"[a-z0-9]{32}", key)
    assert unquote_plus(response.cookies["dfwsurl"].value) == "ws://localhost:8000/ws/"
    stored = cache.get(ws_settings.WEBSOCKET_CACHE_PREFIX + key)
    assert sorted(json.loads(stored)) == sorted(["-window." + key, "-broadcast"])


def test_signal_page_names_its_builtin_signal(client):
    content = client.get("/signals/html.forms.set/").content.decode()
    assert "<code>html.forms.set</code>" in content
    assert 'id="forms-set-target"' in content
    content = client.get("/broadcast/").content.decode()
    assert 'id="broadcast-btn"' in content and 'id="broadcast-target"' in content
    content = client.get("/form/").content.decode()
    assert "window.DFSignals.serializeForm(document.getElementById(\"demo-form\"))" in content


def test_unknown_signal_page_is_404(client):
    assert client.get("/signals/html.nothing/").status_code == 404
    assert client.get("/signals/<script>/").status_code == 404


def test_pages_refuse_post(client):
    assert client.post("/").status_code == 405
    assert client.post("/ping/").status_code == 405


def test_download_sample(client):
    response = client.get("/download/sample.txt")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="dfws-demo.txt"'
    assert b"html.download_file" in response.content


# ---------------------------------------------------------------------------
# server-side signal handlers: signal name, browser opts -> expected browser signals
HANDLER_CASES = [
    ("demo.html.after", {}, [("html.after", {
        "selector": "#after-anchor",
        "content": '<div class="box inserted">inserted after the anchor (1)</div>'})]),
    ("demo.html.append", {}, [("html.append", {
        "selector": "#append-list", "content": '<li class="inserted">appended item 1</li>'})]),
    ("demo.html.prepend", {}, [("html.prepend", {
        "selector": "#prepend-list", "content": '<li class="inserted">prepended item 1</li>'})]),
    ("demo.html.before", {}, [("html.before", {
        "selector": "#before-anchor",
        "content": '<div class="box inserted">inserted before the anchor (1)</div>'})]),
    ("demo.html.content", {}, [("html.content", {
        "selector": "#content-target", "content": "<strong>new content</strong>, version 1"})]),
    ("demo.html.replace_with", {}, [("html.replace_with", {
        "selector": "#replace-target",
        "content": '<p id="replace-target" class="box replaced">replacement element 1</p>'})]),
    ("demo.html.empty", {}, [("html.empty", {"selector": "#empty-list"})]),
    ("demo.html.remove", {}, [("html.remove", {"selector": "#remove-list li:last-child"})]),
    ("demo.html.add_class", {}, [("html.add_class", {
        "selector": "#add-class-target", "class_name": "highlight"})]),
    ("demo.html.remove_class", {}, [("html.remove_class", {
        "selector": "#remove-class-target", "class_name": "highlight"})]),
    ("demo.html.remove_attr", {}, [("html.remove_attr", {
        "selector": "#remove-attr-target", "attr_name": "disabled"})]),
    ("demo.html.add_attribute", {}, [("html.add_attribute", {
        "selector": "#add-attribute-target", "attr_name": "placeholder",
        "attr_value": "placeholder set by the server (1)"})]),
    ("demo.html.boolean_attribute", {"state": True}, [("html.boolean_attribute", {
        "selector": "#boolean-attribute-target", "name": "disabled", "value": True})]),
    ("demo.html.boolean_attribute", {"state": False}, [("html.boolean_attribute", {
        "selector": "#boolean-attribute-target", "name": "disabled", "value": False})]),
    ("demo.html.text", {}, [("html.text", {
        "selector": "#text-target", "content": "<b>this is text, not bold</b> (1)"})]),
    ("demo.html.download_file", {}, [("html.download_file", {
        "url": "/download/sample.txt", "filename": "dfws-demo.txt"})]),
    ("demo.html.focus", {}, [("html.focus", {"selector": "#focus-target"})]),
    ("demo.html.forms.set", {"preset": "filled"}, [("html.forms.set", {
        "selector": "#forms-set-target",
        "values": [
            {"name": "title", "value": "set by the server"},
            {"name": "agree", "value": True},
            {"name": "color", "value": "green"},
            {"name": "tags", "value": ["python", "c"]},
            {"name": "size", "value": "large"},
            {"name": "notes", "value": "These values come from demo.signals."},
        ]})]),
    ("demo.html.forms.set", {"preset": "cleared"}, [("html.forms.set", {
        "selector": "#forms-set-target",
        "values": [
            {"name": "title", "value": ""},
            {"name": "agree", "value": False},
            {"name": "color", "value": []},
            {"name": "tags", "value": []},
            {"name": "size", "value": "small"},
            {"name": "notes", "value": ""},
        ]})]),
    ("demo.hello", {}, [("html.text", {
        "selector": "#hello-target",
        "content": "The server answered through the websocket (1)."})]),
    ("demo.form.preview", {"name": "Ada"}, [("html.text", {
        "selector": "#form-preview", "content": "Hello, Ada!"})]),
    ("demo.form.preview", {"name": "   "}, [("html.text", {
        "selector": "#form-preview", "content": "Type your name above."})]),
]


def _case_id(case):
    return "%s%s" % (case[0], json.dumps(case[1], sort_keys=True) if case[1] else "")


def test_every_builtin_signal_has_a_handler_case():
    shown = {expected[0][0] for _, _, expected in HANDLER_CASES}
    assert set(BUILTIN_SIGNALS) <= shown


@pytest.mark.parametrize("case", HANDLER_CASES, ids=_case_id)
def test_handler_through_server_queue(signal_queue, window_info, case):
    """trigger(..., to=[SERVER]) queues the task; running it queues exactly the
    expected browser signal for the calling window."""
    name, opts, expected = case
    trigger(window_info, name, to=[SERVER], **opts)
    assert signal_queue.ws_signals == {}
    queued = signal_queue.python_signals
    assert list(queued) == [ws_settings.WEBSOCKET_DEFAULT_QUEUE]
    assert [args[:4] for args in queued[ws_settings.WEBSOCKET_DEFAULT_QUEUE]] == [
        [name, window_info.to_dict(), opts, False]
    ]
    signal_queue.execute_delayed_signals()
    assert signal_queue.ws_signals == {WINDOW_TOPIC: expected}


@pytest.mark.parametrize("case", HANDLER_CASES, ids=_case_id)
def test_handler_called_from_browser(signal_queue, window_info, case):
    """What the websocket endpoint does for a browser call: from_client=True,
    so the handler must allow everyone."""
    name, opts, expected = case
    process_task(name, window_info.to_dict(), opts, True, [], True,
                 ws_settings.WEBSOCKET_DEFAULT_QUEUE)
    assert signal_queue.ws_signals == {WINDOW_TOPIC: expected}
    assert signal_queue.python_signals == {}


def test_click_counters_are_per_window(signal_queue, window_info):
    from df_websockets.window_info import WindowInfo

    other = WindowInfo()
    other.window_key = "otherwindow"
    for info in (window_info, window_info, other):
        process_task("demo.html.append", info.to_dict(), {}, True, [], True, "celery")
    contents = {
        topic: [opts["content"] for _, opts in calls]
        for topic, calls in signal_queue.ws_signals.items()
    }
    assert contents == {
        WINDOW_TOPIC: ['<li class="inserted">appended item 1</li>',
                       '<li class="inserted">appended item 2</li>'],
        "-window.otherwindow": ['<li class="inserted">appended item 1</li>'],
    }


@pytest.mark.parametrize("name, opts", [
    ("demo.html.boolean_attribute", {"state": "yes"}),
    ("demo.html.boolean_attribute", {"state": 2}),
    ("demo.html.forms.set", {"preset": "everything"}),
    ("demo.html.after", {"unexpected": 1}),
])
def test_handler_rejects_bad_browser_input(signal_queue, window_info, caplog, name, opts):
    process_task(name, window_info.to_dict(), opts, True, [], True, "celery")
    assert signal_queue.ws_signals == {}
    assert any(record.levelname == "WARNING" for record in caplog.records)


def test_preview_truncates_long_names(signal_queue, window_info):
    process_task("demo.form.preview", window_info.to_dict(), {"name": "x" * 500},
                 True, [], True, "celery")
    [(signal, opts)] = signal_queue.ws_signals[WINDOW_TOPIC]
    assert opts["content"] == "Hello, %s!" % ("x" * 80)


# ---------------------------------------------------------------------------
# form page: serializeForm data -> SerializedForm
def _serialized(**fields):
    return [{"name": name, "value": value} for name, value in fields.items()]


def test_form_submit_valid(signal_queue, window_info):
    form_data = _serialized(name="<b>Ada</b>", email="ada@example.com", age="36",
                            color="green", newsletter="on")
    process_task("demo.form.submit", window_info.to_dict(), {"form_data": form_data},
                 True, [], True, "celery")
    assert signal_queue.ws_signals == {WINDOW_TOPIC: [
        ("html.content", {
            "selector": "#form-result",
            # the name typed by the user is escaped, never injected as HTML
            "content": '<p class="ok">Thank you, &lt;b&gt;Ada&lt;/b&gt;! '
                       "Favourite color: green; newsletter: yes.</p>"}),
        ("html.remove_class", {"selector": "#demo-form", "class_name": "invalid"}),
    ]}


def test_form_submit_invalid(signal_queue, window_info):
    form_data = _serialized(name="Ada", email="not-an-email", age="-1", color="purple")
    process_task("demo.form.submit", window_info.to_dict(), {"form_data": form_data},
                 True, [], True, "celery")
    [(first, opts), second] = signal_queue.ws_signals[WINDOW_TOPIC]
    assert first == "html.content" and opts["selector"] == "#form-result"
    assert opts["content"].startswith('<ul class="errors"><li>age: ')
    for field in ("age", "color", "email"):
        assert "<li>%s: " % field in opts["content"]
    assert "<li>name: " not in opts["content"]
    assert "purple" in opts["content"]
    assert second == ("html.add_class", {"selector": "#demo-form", "class_name": "invalid"})


def test_form_submit_without_data(signal_queue, window_info):
    process_task("demo.form.submit", window_info.to_dict(), {}, True, [], True, "celery")
    assert signal_queue.ws_signals == {WINDOW_TOPIC: [
        ("html.text", {"selector": "#form-result", "content": "No form data."})]}


# ---------------------------------------------------------------------------
# broadcast: click, /ping/, management command
def test_broadcast_click_updates_every_window(signal_queue, window_info):
    for _ in range(2):
        process_task("demo.broadcast", window_info.to_dict(), {}, True, [], True, "celery")
    assert signal_queue.ws_signals == {"-broadcast": [
        ("html.text", {"selector": "#broadcast-target", "content": "click 1"}),
        ("html.text", {"selector": "#broadcast-target", "content": "click 2"}),
    ]}


def test_ping_broadcasts(client, signal_queue):
    response = client.get("/ping/", {"content": "hello <there>"})
    assert response.status_code == 200
    assert response.json() == {
        "signal": "html.text", "selector": "#broadcast-target", "content": "hello <there>"}
    response = client.get("/ping/")
    assert response.json()["content"] == "ping 1"
    assert signal_queue.ws_signals == {"-broadcast": [
        ("html.text", {"selector": "#broadcast-target", "content": "hello <there>"}),
        ("html.text", {"selector": "#broadcast-target", "content": "ping 1"}),
    ]}
    assert signal_queue.python_signals == {}


def test_ping_truncates_content(client, signal_queue):
    response = client.get("/ping/", {"content": "y" * 1000})
    assert response.json()["content"] == "y" * 200


def test_demo_broadcast_command(signal_queue, capsys):
    call_command("demo_broadcast", "from the shell")
    call_command("demo_broadcast")
    out, err = capsys.readouterr()
    assert "broadcast sent: from the shell" in out
    assert "broadcast sent: shell 1" in out
    assert "DFWS_DEMO_REDIS_URL is not set" in err
    assert signal_queue.ws_signals == {"-broadcast": [
        ("html.text", {"selector": "#broadcast-target", "content": "from the shell"}),
        ("html.text", {"selector": "#broadcast-target", "content": "shell 1"}),
    ]}


# ---------------------------------------------------------------------------
# settings and start-up
def _run(args, env_extra, cwd=DEMO_DIR, timeout=60):
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("DFWS_DEMO_REDIS_URL", None)
    env.update(env_extra)
    return subprocess.run(
        [PYTHON] + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_settings_without_redis():
    from django.conf import settings

    import demo.settings as demo_settings

    assert not hasattr(demo_settings, "CHANNEL_LAYERS")
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == (
        "df_websockets.layers.EmbeddedChannelLayer")
    assert settings.CACHES["default"]["BACKEND"] == (
        "django.core.cache.backends.filebased.FileBasedCache")
    assert settings.WEBSOCKET_WORKERS == "thread"
    assert demo_settings.ALLOWED_HOSTS == ["localhost", "127.0.0.1", "[::1]"]
    assert settings.ASGI_APPLICATION == "demo.asgi.application"
    assert settings.MIDDLEWARE[-1] == "df_websockets.middleware.WebsocketMiddleware"


def test_settings_with_redis_url():
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.CHANNEL_LAYERS, s.CACHES['default']['BACKEND'], "
        "s.CACHES['default']['LOCATION']]))"
    )
    result = _run(["-c", code], {"DJANGO_SETTINGS_MODULE": "demo.settings",
                                 "DFWS_DEMO_REDIS_URL": "redis://127.0.0.1:6399/2"})
    assert result.returncode == 0, result.stderr
    layers, cache_backend, location = json.loads(result.stdout)
    assert layers == {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                  "CONFIG": {"hosts": ["redis://127.0.0.1:6399/2"]}}}
    assert cache_backend == "django.core.cache.backends.redis.RedisCache"
    assert location == "redis://127.0.0.1:6399/2"


def test_migrate_and_check_from_manage_py(tmp_path):
    db = tmp_path / "demo.sqlite3"
    env = {"DFWS_DEMO_DB": str(db)}
    result = _run(["manage.py", "migrate", "--noinput"], env)
    assert result.returncode == 0, result.stderr
    assert db.exists()
    result = _run(["manage.py", "check", "--fail-level", "WARNING"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_run_script_migrates_then_starts_server(tmp_path):
    """run.sh creates the tables, then execs $DFWS_SERVER demo.asgi:application."""
    fake_server = tmp_path / "fake-server"
    fake_server.write_text('#!/bin/sh\necho "server args: $*"\n')
    fake_server.chmod(0o755)
    db = tmp_path / "demo.sqlite3"
    env = dict(os.environ, DFWS_DEMO_DB=str(db), DFWS_SERVER=str(fake_server), PYTHON=PYTHON)
    env.pop("DFWS_DEMO_REDIS_URL", None)
    result = subprocess.run(
        [os.path.join(DEMO_DIR, "run.sh"), "--port", "8123"],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert db.exists()
    assert "server args: demo.asgi:application --port 8123" in result.stdout


def test_run_script_reports_missing_server(tmp_path):
    env = dict(os.environ, DFWS_DEMO_DB=str(tmp_path / "db.sqlite3"),
               DFWS_SERVER="dfws-asgi-does-not-exist", PYTHON=PYTHON)
    result = subprocess.run([os.path.join(DEMO_DIR, "run.sh")], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 127
    assert "dfws-asgi-does-not-exist' not found" in result.stderr
