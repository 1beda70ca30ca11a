"""Headless chromium driven over the DevTools protocol with the websockets
package (no browser-automation package), for the Python browser tests
(tests/demo, tests/live).

    with chromium(profile_dir) as devtools:
        page = await open_page(devtools)
        await page.goto(url)
        await page.js("document.title")
        await close_page(devtools, page)
"""
import asyncio
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import time
import urllib.request

import websockets

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WAIT = 10.0


def wait_for(predicate, what, timeout=20.0, process=None):
    """Poll ``predicate`` until it is truthy (its value); AssertionError
    after ``timeout`` s or when ``process`` exited."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise AssertionError("%s: process exited with %s" % (what, process.returncode))
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def stop(process):
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextlib.contextmanager
def chromium(profile, args=()):
    """Run Debian's chromium with the profile folder ``profile`` and extra
    command-line ``args``; yields the DevTools HTTP endpoint."""
    assert os.path.exists(CHROMIUM), "chromium is required (Debian package chromium)"
    process = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--no-first-run",
         "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
         "--user-data-dir=%s" % profile, *args, "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        # the browser is not under test: no sanitizer runtime preloaded into it
        # (scripts/test.sh preloads libasan into the ASan runs' Python processes)
        env={k: v for k, v in os.environ.items() if k != "LD_PRELOAD"},
    )
    port_file = os.path.join(str(profile), "DevToolsActivePort")
    try:
        wait_for(lambda: os.path.exists(port_file) and open(port_file).read().strip(),
                 "chromium's DevTools port", process=process)
        with open(port_file) as f:
            port = int(f.read().split()[0])
        yield "http://127.0.0.1:%d" % port
    finally:
        stop(process)


class Page:
    """One browser tab, driven with Runtime.evaluate."""

    def __init__(self, ws):
        self.ws = ws
        self.ids = itertools.count(1)

    async def send(self, method, **params):
        msg_id = next(self.ids)
        await self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            reply = json.loads(await asyncio.wait_for(self.ws.recv(), WAIT))
            if reply.get("id") == msg_id:
                assert "error" not in reply, reply
                return reply["result"]

    async def js(self, expression):
        result = await self.send("Runtime.evaluate", expression=expression,
                                 returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    async def check(self, expression):
        """True when the expression is truthy; false when it throws (element
        not there yet)."""
        return await self.js("(() => { try { return !!(%s); } catch (e) { return false; } })()"
                             % expression)

    async def wait_js(self, expression, what=None, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while not await self.check(expression):
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for %s" % (what or expression))
            await asyncio.sleep(0.05)

    async def goto(self, url, ready=None):
        """Load ``url``; then wait for the JS expression ``ready`` if given."""
        await self.send("Page.navigate", url=url)
        await self.wait_js("document.readyState === 'complete' && location.href === %s"
                           % json.dumps(url), "page load")
        if ready:
            await self.wait_js(ready, "%s on %s" % (ready, url))


async def open_page(devtools, downloads=None):
    """A new tab of the browser at ``devtools``."""
    request = urllib.request.Request(devtools + "/json/new?about:blank", method="PUT")
    target = json.loads(urllib.request.urlopen(request, timeout=WAIT).read())
    ws = await websockets.connect(target["webSocketDebuggerUrl"], max_size=None)
    page = Page(ws)
    await page.send("Page.enable")
    if downloads is not None:
        await page.send("Page.setDownloadBehavior", behavior="allow",
                        downloadPath=str(downloads))
    page.target_id = target["id"]
    return page


async def close_page(devtools, page):
    await page.ws.close()
    urllib.request.urlopen(devtools + "/json/close/" + page.target_id, timeout=WAIT).read()


def q(selector):
    """JS for document.querySelector(selector)."""
    return "document.querySelector(%s)" % json.dumps(selector)


def run(coro, timeout=120):
    return asyncio.run(asyncio.wait_for(coro, timeout))
