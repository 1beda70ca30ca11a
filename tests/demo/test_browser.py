"""Every demo page in a real browser: headless chromium (driven over the
DevTools protocol with the websockets package) loads the page from a real server,
waits for the websocket, clicks the page's button and waits for the DOM change
that the built-in browser signal makes.

The server is daphne by default; set DFWS_DEMO_TEST_SERVER=dfws-asgi (or a
path to it) to run the same checks against dfws-asgi.

Run from the repository root: python3 -m pytest tests/demo -q
"""
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from cdp import WAIT, chromium, close_page, open_page, q as _q, run as _run, stop as _stop
from cdp import wait_for as _wait_for

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_DIR = os.path.join(REPO_ROOT, "demo")
SERVER = os.environ.get("DFWS_DEMO_TEST_SERVER", "daphne")
WS_OPEN = "document.getElementById('ws-status').dataset.state === 'open'"


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    server = shutil.which(SERVER)
    assert server, "%s not found in PATH" % SERVER
    tmp = tmp_path_factory.mktemp("demo-server")
    env = dict(os.environ, DFWS_DEMO_DB=str(tmp / "demo.sqlite3"))
    for name in ("DJANGO_SETTINGS_MODULE", "DFWS_DEMO_REDIS_URL"):
        env.pop(name, None)
    migrate = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"],
                             cwd=DEMO_DIR, env=env, capture_output=True, text=True, timeout=60)
    assert migrate.returncode == 0, migrate.stderr
    port = _free_port()
    log = open(tmp / "server.log", "w")
    process = subprocess.Popen(
        [server, "-b", "127.0.0.1", "-p", str(port), "demo.asgi:application"],
        cwd=DEMO_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = "http://127.0.0.1:%d" % port

    def ready():
        try:
            return urllib.request.urlopen(url + "/static/demo/demo.js", timeout=1).status == 200
        except OSError:
            return False

    try:
        try:
            _wait_for(ready, "the demo server", process=process)
        except AssertionError as e:
            log.flush()
            raise AssertionError("%s; %s's output:\n%s"
                                 % (e, server, (tmp / "server.log").read_text()[-3000:]))
        yield url
    finally:
        _stop(process)
        log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("chromium")) as devtools:
        yield devtools


async def _open_page(browser, downloads=None):
    page = await open_page(browser, downloads)
    goto = page.goto
    page.goto = lambda url: goto(url, ready=WS_OPEN)  # every demo page connects
    return page


_close_page = close_page


# signal page -> (button id, JS predicate true once the signal acted)
PAGE_CHECKS = {
    "html.after": ("signal-btn",
                   _q("#after-anchor") + ".nextElementSibling.classList.contains('inserted')"),
    "html.append": ("signal-btn", "document.querySelectorAll('#append-list li').length === 2"
                    " && " + _q("#append-list li:last-child") + ".textContent === 'appended item 1'"),
    "html.prepend": ("signal-btn", _q("#prepend-list li:first-child") + ".textContent"
                     " === 'prepended item 1'"),
    "html.before": ("signal-btn",
                    _q("#before-anchor") + ".previousElementSibling.classList.contains('inserted')"),
    "html.content": ("signal-btn",
                     _q("#content-target") + ".innerHTML === '<strong>new content</strong>, version 1'"),
    "html.replace_with": ("signal-btn", _q("#replace-target") + ".tagName === 'P'"
                          " && " + _q("#replace-target") + ".classList.contains('replaced')"),
    "html.empty": ("signal-btn", _q("#empty-list") + ".children.length === 0"),
    "html.remove": ("signal-btn", "document.querySelectorAll('#remove-list li').length === 3"),
    "html.add_class": ("signal-btn", _q("#add-class-target") + ".classList.contains('highlight')"),
    "html.remove_class": ("signal-btn",
                          "!" + _q("#remove-class-target") + ".classList.contains('highlight')"),
    "html.remove_attr": ("signal-btn", "!" + _q("#remove-attr-target") + ".disabled"),
    "html.add_attribute": ("signal-btn", _q("#add-attribute-target") + ".placeholder"
                           " === 'placeholder set by the server (1)'"),
    "html.boolean_attribute": ("signal-btn", _q("#boolean-attribute-target") + ".disabled"),
    "html.text": ("signal-btn", _q("#text-target") + ".textContent"
                  " === '<b>this is text, not bold</b> (1)'"),
    "html.focus": ("signal-btn", "document.activeElement.id === 'focus-target'"),
    "html.forms.set": ("signal-btn", " && ".join([
        "document.forms['forms-set-target'].title.value === 'set by the server'",
        "document.forms['forms-set-target'].agree.checked",
        "document.forms['forms-set-target'].color.value === 'green'",
        "Array.from(document.forms['forms-set-target'].tags.selectedOptions)"
        ".map(o => o.value).join() === 'python,c'",
        "document.forms['forms-set-target'].size.value === 'large'",
    ])),
}


@pytest.mark.parametrize("name", sorted(PAGE_CHECKS))
def test_signal_page_in_browser(base_url, browser, name):
    button, predicate = PAGE_CHECKS[name]

    async def scenario():
        page = await _open_page(browser)
        try:
            await page.goto("%s/signals/%s/" % (base_url, name))
            assert not await page.check(predicate), "the page already shows the result"
            await page.js("document.getElementById(%s).click()" % json.dumps(button))
            await page.wait_js(predicate, "the effect of " + name)
        finally:
            await _close_page(browser, page)

    _run(scenario())


def test_index_hello_in_browser(base_url, browser):
    async def scenario():
        page = await _open_page(browser)
        try:
            await page.goto(base_url + "/")
            await page.js("document.getElementById('hello-btn').click()")
            await page.wait_js(_q("#hello-target") + ".textContent === "
                               "'The server answered through the websocket (1).'")
        finally:
            await _close_page(browser, page)

    _run(scenario())


def test_boolean_attribute_and_forms_set_second_buttons(base_url, browser):
    async def scenario():
        page = await _open_page(browser)
        try:
            await page.goto(base_url + "/signals/html.boolean_attribute/")
            target = _q("#boolean-attribute-target")
            await page.js("document.getElementById('signal-btn').click()")
            await page.wait_js(target + ".disabled")
            await page.js("document.getElementById('signal-btn-off').click()")
            await page.wait_js("!" + target + ".disabled")
            await page.goto(base_url + "/signals/html.forms.set/")
            form = "document.forms['forms-set-target']"
            await page.js("document.getElementById('signal-btn').click()")
            await page.wait_js(form + ".agree.checked")
            await page.js("document.getElementById('signal-btn-clear').click()")
            await page.wait_js("!%s.agree.checked && %s.title.value === '' && "
                               "%s.tags.selectedOptions.length === 0 && %s.color.value === ''"
                               % (form, form, form, form))
        finally:
            await _close_page(browser, page)

    _run(scenario())


def test_download_file_in_browser(base_url, browser, tmp_path):
    async def scenario():
        page = await _open_page(browser, downloads=tmp_path)
        try:
            await page.goto(base_url + "/signals/html.download_file/")
            await page.js("document.getElementById('signal-btn').click()")
            target = tmp_path / "dfws-demo.txt"
            deadline = time.monotonic() + WAIT
            while not (target.exists() and target.stat().st_size):
                assert time.monotonic() < deadline, "no download: %s" % list(tmp_path.iterdir())
                await asyncio.sleep(0.05)
            assert b"html.download_file" in target.read_bytes()
        finally:
            await _close_page(browser, page)

    _run(scenario())


def test_form_page_in_browser(base_url, browser):
    async def scenario():
        page = await _open_page(browser)
        try:
            await page.goto(base_url + "/form/")
            # invalid: empty form submitted with the submit button (data-df-signal form=)
            await page.js("document.getElementById('form-submit').click()")
            await page.wait_js(_q("#demo-form") + ".classList.contains('invalid')")
            assert "name: " in await page.js(_q("#form-result") + ".textContent")
            # the name field's value= binding (on input) previews the name
            await page.js("""(() => { const f = document.getElementById('demo-form');
                f.name.value = 'Ada'; f.name.dispatchEvent(new Event('input', {bubbles: true}));
                f.email.value = 'ada@example.com'; f.color.value = 'blue';
                f.newsletter.checked = true; })()""")
            await page.wait_js(_q("#form-preview") + ".textContent === 'Hello, Ada!'")
            # valid: sent by hand with DFSignals.serializeForm
            await page.js("document.getElementById('form-js-submit').click()")
            await page.wait_js("!" + _q("#demo-form") + ".classList.contains('invalid')")
            assert await page.js(_q("#form-result") + ".textContent") == (
                "Thank you, Ada! Favourite color: blue; newsletter: yes.")
            sent = json.loads(await page.js(_q("#form-serialized") + ".textContent"))
            assert {"name": "name", "value": "Ada"} in sent
            assert {"name": "newsletter", "value": "on"} in sent
        finally:
            await _close_page(browser, page)

    _run(scenario())


def test_broadcast_in_two_windows(base_url, browser):
    async def scenario():
        first = await _open_page(browser)
        second = await _open_page(browser)
        try:
            for page in (first, second):
                await page.goto(base_url + "/broadcast/")
            target = _q("#broadcast-target") + ".textContent"
            await first.js("document.getElementById('broadcast-btn').click()")
            for page in (first, second):
                await page.wait_js(target + ".startsWith('click ')")
            with urllib.request.urlopen(base_url + "/ping/?content=from%20ping") as response:
                assert json.loads(response.read())["content"] == "from ping"
            for page in (first, second):
                await page.wait_js(target + " === 'from ping'")
        finally:
            for page in (first, second):
                await _close_page(browser, page)

    _run(scenario())
