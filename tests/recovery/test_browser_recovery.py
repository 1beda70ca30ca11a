"""Recovery of missed signals in Chromium (issue 15, docs/recovery.md).

A page served by dfws-asgi (native socket) applies each ``rec.item``
signal by appending ``opts.n`` to a list in its DOM. The test loses the
page's socket, triggers signals while it is down, restores it, and checks
what the page shows:

- a short outage, through a TCP proxy the test cuts (as a network drop or
  a dead load balancer would; the server keeps running, embedded layer):
  every signal is applied once, in order, the missed ones replayed on the
  reconnect that carried ``dfws_recover``;
- an outage longer than the history (``WEBSOCKET_HISTORY_SIZE`` 5, 8
  signals missed): the page's ``df_websockets.recovery_failed`` handler runs
  with the topic's group, and later signals are applied again;
- the server killed (SIGKILL) and started again on the same port, with
  channels_redis (history and the windows' topics in Redis), the signals
  triggered meanwhile by another process: replayed after the restart.
"""
import asyncio
import json

from cdp import close_page, open_page, run
from conftest import trigger_from_another_process

CONNECTED = "window.DFSignals && DFSignals.connection !== null"


def items_js():
    return "Array.from(document.querySelectorAll('#items li')).map(li => Number(li.textContent))"


async def open_window(browser, base_url, topic):
    page = await open_page(browser)
    await page.goto("%s/page/?topic=%s" % (base_url, topic), ready=CONNECTED)
    return page


async def wait_items(page, expected, what):
    as_js = json.dumps(expected, separators=(",", ":"))   # what JSON.stringify gives
    await page.wait_js("JSON.stringify(%s) === %s" % (items_js(), json.dumps(as_js)),
                       what, timeout=20)


async def settle_and_check(page, expected):
    """Nothing more arrives: no duplicate, no late copy."""
    await page.js("new Promise(r => setTimeout(r, 700))")
    assert await page.js(items_js()) == expected
    assert await page.js("window.received") == expected


def recover_params(urls):
    """The decoded dfws_recover parameter of each socket URL (None: none)."""
    from urllib.parse import parse_qs, urlsplit

    out = []
    for url in urls:
        values = parse_qs(urlsplit(url).query).get("dfws_recover")
        out.append(json.loads(values[0]) if values else None)
    return out


def test_short_outage_replayed_in_order(browser, server_factory, proxy_factory):
    server = server_factory(REC_HISTORY_SIZE=5)
    proxy = proxy_factory(server.port)
    base = "http://127.0.0.1:%d" % proxy.port
    topic = "short"

    async def scenario():
        page = await open_window(browser, base, topic)
        try:
            server.get("/trigger/?topic=%s&n=1&n=2" % topic)
            await wait_items(page, [1, 2], "the live signals 1, 2")
            group, position = next(iter((await page.js("DFSignals.positions.toObject()")).items()))

            proxy.cut()
            await page.wait_js("DFSignals.connection === null", "the page noticing the cut")
            server.get("/trigger/?topic=%s&n=3&n=4&n=5&n=6" % topic)
            # down for a while: the client's reconnections fail meanwhile
            accepted = proxy.accepted
            await asyncio.sleep(1.5)
            assert proxy.accepted > accepted, "the client did not try to reconnect while cut"
            assert await page.js(items_js()) == [1, 2], "nothing can arrive while cut"

            proxy.restore()
            await page.wait_js(CONNECTED, "the reconnection")
            await wait_items(page, [1, 2, 3, 4, 5, 6], "the missed signals, replayed")
            server.get("/trigger/?topic=%s&n=7" % topic)
            await wait_items(page, [1, 2, 3, 4, 5, 6, 7], "a live signal after the replay")
            await settle_and_check(page, [1, 2, 3, 4, 5, 6, 7])
            assert await page.js("window.failed") == []

            urls = await page.js("window.socketUrls")
            params = recover_params(urls)
            assert params[0] is None, "the first connection of the page asks for nothing"
            assert params[-1] is not None, urls
            assert params[-1][group] == position, (params[-1], group, position)
            assert position.endswith("-2"), position
        finally:
            await close_page(browser, page)

    try:
        run(scenario())
    except AssertionError as e:
        raise AssertionError("%s\nserver output:\n%s" % (e, server.output()[-3000:]))


def test_gap_older_than_history_runs_recovery_failed(browser, server_factory, proxy_factory):
    server = server_factory(REC_HISTORY_SIZE=5)
    proxy = proxy_factory(server.port)
    base = "http://127.0.0.1:%d" % proxy.port
    topic = "long"

    async def scenario():
        page = await open_window(browser, base, topic)
        try:
            server.get("/trigger/?topic=%s&n=1&n=2" % topic)
            await wait_items(page, [1, 2], "the live signals 1, 2")
            group = next(iter(await page.js("DFSignals.positions.toObject()")))

            proxy.cut()
            await page.wait_js("DFSignals.connection === null", "the page noticing the cut")
            # 8 missed, 5 kept: the next one the window needs (3) is gone
            missed = "&".join("n=%d" % n for n in range(3, 11))
            server.get("/trigger/?topic=%s&%s" % (topic, missed))
            proxy.restore()
            await page.wait_js(CONNECTED, "the reconnection")
            await page.wait_js("window.failed.length === 1", "the recovery_failed handler")
            assert await page.js("window.failed") == [[group]]
            assert await page.js("DFSignals.positions.get(%s)" % json.dumps(group)) is None
            server.get("/trigger/?topic=%s&n=11" % topic)
            await wait_items(page, [1, 2, 11], "a live signal after recovery_failed")
            await settle_and_check(page, [1, 2, 11])
            assert await page.js("window.failed.length") == 1
        finally:
            await close_page(browser, page)

    try:
        run(scenario())
    except AssertionError as e:
        raise AssertionError("%s\nserver output:\n%s" % (e, server.output()[-3000:]))


def test_server_restart_with_redis_replays_what_another_process_sent(
        browser, server_factory, redis_url):
    server = server_factory(REC_HISTORY_SIZE=50, REC_REDIS_URL=redis_url)
    topic = "restart"

    async def scenario():
        page = await open_window(browser, server.url, topic)
        try:
            trigger_from_another_process(redis_url, topic, [1, 2])
            await wait_items(page, [1, 2], "signals 1, 2 from another process")

            server.kill()
            await page.wait_js("DFSignals.connection === null", "the page noticing the kill")
            trigger_from_another_process(redis_url, topic, [3, 4, 5])
            server.start()
            await page.wait_js(CONNECTED, "the reconnection to the restarted server")
            await wait_items(page, [1, 2, 3, 4, 5], "the signals sent while the server was down")
            trigger_from_another_process(redis_url, topic, [6])
            await wait_items(page, [1, 2, 3, 4, 5, 6], "a live signal after the replay")
            await settle_and_check(page, [1, 2, 3, 4, 5, 6])
            assert await page.js("window.failed") == []
        finally:
            await close_page(browser, page)

    try:
        run(scenario())
    except AssertionError as e:
        raise AssertionError("%s\nserver output:\n%s" % (e, server.output()[-3000:]))


def test_history_off_no_position_no_parameter(browser, server_factory, proxy_factory):
    """WEBSOCKET_HISTORY_SIZE = 0: deliveries carry no position, the client
    never adds dfws_recover, and signals missed while cut stay missed (as
    with upstream)."""
    server = server_factory(REC_HISTORY_SIZE=0)
    proxy = proxy_factory(server.port)
    base = "http://127.0.0.1:%d" % proxy.port
    topic = "off"

    async def scenario():
        page = await open_window(browser, base, topic)
        try:
            server.get("/trigger/?topic=%s&n=1" % topic)
            await wait_items(page, [1], "a live signal")
            assert await page.js("DFSignals.positions.size") == 0
            proxy.cut()
            await page.wait_js("DFSignals.connection === null", "the page noticing the cut")
            server.get("/trigger/?topic=%s&n=2" % topic)
            proxy.restore()
            await page.wait_js(CONNECTED, "the reconnection")
            server.get("/trigger/?topic=%s&n=3" % topic)
            await wait_items(page, [1, 3], "the live signal after the reconnection")
            assert all(p is None for p in recover_params(await page.js("window.socketUrls")))
        finally:
            await close_page(browser, page)

    run(scenario())
