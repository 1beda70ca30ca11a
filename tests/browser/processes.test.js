// End-to-end, beyond one server process: signals triggered by another
// process through a shared Redis channel layer, and a server killed and
// started again under an open page. Each scenario starts its own server (and
// redis-server) so that it can be configured and killed; the browser is
// Debian's chromium, as in demo.test.js.
//
//   cd tests/browser && npm ci && npm test
//   DFWS_SERVER_CMD=daphne npm test      # the same checks against daphne
//
// Screenshots, the server log (every run of it), the redis-server log and
// the output of the manage.py commands are saved in tests/artifacts/ when a
// scenario fails.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  launchBrowser, runManage, runScenario, startDemoServer, startRedis,
} from './harness.js';

const WAIT = 15000;
// the client backs off 0.5 s, 1 s, 2 s, 4 s... (jitter, capped at 30 s)
const RECONNECT_WAIT = 35000;
const OPEN = '#ws-status[data-state="open"]';
const TARGET = '#broadcast-target';
let browser;

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
});

async function openBroadcastPage(page, server) {
  const response = await page.goto(`${server.url}/broadcast/`, { waitUntil: 'domcontentloaded' });
  assert.equal(response.status(), 200, 'GET /broadcast/');
  // demo.js sets data-state="open" when DFSignals.connection.readyState === 1
  await page.waitForSelector(OPEN, { timeout: WAIT });
}

const waitText = (page, text, timeout = WAIT) => page.waitForFunction(
  ([sel, expected]) => document.querySelector(sel).textContent === expected,
  [TARGET, text],
  { timeout },
);

describe('demo project in chromium, several processes', () => {
  test('a server-side trigger from a separate manage.py shell process (Redis layer) updates the page', async (t) => {
    const redis = await startRedis();
    let server = null;
    const commands = [];
    try {
      server = await startDemoServer({ env: { DFWS_DEMO_REDIS_URL: redis.url } });
      await runScenario(t, () => [server, redis, ...commands], async (watch) => {
        // two contexts = two browsers, two windows in the BROADCAST group
        const first = watch('first', await (await browser.newContext()).newPage());
        const second = watch('second', await (await browser.newContext()).newPage());
        await openBroadcastPage(first, server);
        await openBroadcastPage(second, server);
        const initial = await first.locator(TARGET).textContent();
        assert.notEqual(initial, 'from shell');

        // another process: it reaches the windows only through Redis
        const shell = await runManage(server, [
          'shell', '-c', "from demo.broadcast import broadcast; broadcast('from shell')",
        ]);
        commands.push(shell);
        assert.equal(shell.status, 0, `manage.py shell failed:\n${shell.log()}`);
        await waitText(first, 'from shell');
        await waitText(second, 'from shell');

        // and the management command, with the same environment
        const command = await runManage(server, ['demo_broadcast', 'from demo_broadcast']);
        commands.push(command);
        assert.equal(command.status, 0, `manage.py demo_broadcast failed:\n${command.log()}`);
        assert.match(command.stdout, /broadcast sent: from demo_broadcast/);
        assert.doesNotMatch(command.stderr, /no shared channel layer/);
        await waitText(first, 'from demo_broadcast');
        await waitText(second, 'from demo_broadcast');

        // the sockets that received the broadcasts are still up
        for (const page of [first, second]) {
          assert.equal(await page.evaluate(() => window.DFSignals.connection.readyState), 1);
        }
      });
    } finally {
      if (server) await server.stop();
      await redis.stop();
    }
  });

  test('killing and restarting the server reconnects the page and signals flow again', async (t) => {
    // embedded channel layer (no Redis), the demo's own settings: the
    // windows' topics are in its file cache, which the restarted process
    // finds again (a private folder, removed afterwards)
    const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dfws-browser-cache-'));
    t.after(() => fs.rmSync(cacheDir, { recursive: true, force: true }));
    const server = await startDemoServer({ env: { DFWS_DEMO_CACHE_DIR: cacheDir } });
    try {
      await runScenario(t, () => [server], async (watch) => {
        const page = watch('page', await (await browser.newContext()).newPage());
        await openBroadcastPage(page, server);
        await page.evaluate(() => {
          window.socketBeforeKill = window.DFSignals.connection;
          window.sameDocument = true; // gone if the page were reloaded
        });

        const exited = await server.kill('SIGKILL');
        assert.equal(exited.signal, 'SIGKILL');
        await assert.rejects(
          fetch(`${server.url}/static/demo/demo.js`, { signal: AbortSignal.timeout(5000) }),
          `${server.url} still answers after SIGKILL of the server process (a worker left behind?)`,
        );
        // the client notices: its socket is closed, it is reconnecting
        await page.waitForSelector(`#ws-status:not([data-state="open"])`, { timeout: WAIT });
        assert.equal(await page.evaluate(() => window.DFSignals.connection), null);

        await server.restart(); // same port
        const restarted = Date.now();
        await page.waitForSelector(OPEN, { timeout: RECONNECT_WAIT });
        t.diagnostic(`reconnected ${Date.now() - restarted} ms after the server answered again`);
        assert.equal(await page.evaluate(() => window.sameDocument), true, 'the page was reloaded');
        assert.equal(
          await page.evaluate(() => window.DFSignals.connection !== window.socketBeforeKill),
          true,
          'expected a new socket after the restart',
        );

        // server -> browser: an HTTP trigger of the new process
        const res = await fetch(`${server.url}/ping/?content=after-restart`);
        assert.equal(res.status, 200, 'GET /ping/?content=after-restart');
        assert.equal((await res.json()).content, 'after-restart');
        await waitText(page, 'after-restart');

        // browser -> server -> browser on the new socket
        await page.click('#broadcast-btn');
        await page.waitForFunction(
          ([sel, prev]) => document.querySelector(sel).textContent !== prev,
          [TARGET, 'after-restart'],
          { timeout: WAIT },
        );
        assert.match(await page.locator(TARGET).textContent(), /^click \d+$/);
      });
    } finally {
      await server.stop();
    }
  });

  test('a restart that lost the topics (LocMemCache): the page is told, gets a new key, signals flow again', async (t) => {
    const server = await startDemoServer({ env: { DFWS_DEMO_LOCMEM_CACHE: '1' } });
    try {
      await runScenario(t, () => [server], async (watch) => {
        const page = watch('page', await (await browser.newContext()).newPage());
        await openBroadcastPage(page, server);
        const before = await page.evaluate(() => {
          window.sameDocument = true;
          return window.DFSignals.windowKey;
        });

        await server.kill('SIGKILL');
        await server.restart(); // an empty cache: the page's key means nothing now
        await page.waitForFunction((key) => window.DFSignals.windowKey !== key, before, { timeout: RECONNECT_WAIT });
        await page.waitForSelector(OPEN, { timeout: WAIT });
        assert.equal(await page.evaluate(() => window.sameDocument), true, 'the page was reloaded');
        const log = server.log().split('--- harness: restart')[1];
        assert.match(log, /websocket window with key \w{6}\.\.\. has no topics in CACHES\['default'\] \(LocMemCache\): told to get a new window key/);
        assert.match(log, /"GET \/broadcast\/" 200/, 'the client fetched its page for a new key');

        // the new key has the page's topics: its own BROADCAST, its WINDOW
        await page.click('#broadcast-btn');
        await page.waitForFunction((sel) => /^click \d+$/.test(document.querySelector(sel).textContent), TARGET, { timeout: WAIT });
      });
    } finally {
      await server.stop();
    }
  });
});
