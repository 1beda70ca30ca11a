// End-to-end: the df_websockets client (df_websockets/static/js/
// df_websockets.min.js) in Debian's chromium, against the demo project served
// by the server under test ($DFWS_SERVER_CMD, default dfws-asgi).
//
//   cd tests/browser && npm ci && npm test
//   DFWS_SERVER_CMD=daphne npm test      # the same checks against daphne
//
// Screenshots of every page and the server log of a failed test are saved in
// tests/artifacts/.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, runScenario, startDemoServer } from './harness.js';

const WAIT = 15000;
let server;
let browser;

before(async () => {
  server = await startDemoServer();
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

/**
 * Run `body(watch)` with screenshots of the watched pages and the server log
 * saved when it throws (harness.js runScenario).
 */
const scenario = (t, body) => runScenario(t, () => [server], body);

async function openDemoPage(page, pathname) {
  const response = await page.goto(`${server.url}${pathname}`, { waitUntil: 'domcontentloaded' });
  assert.equal(response.status(), 200, `GET ${pathname}`);
  await page.waitForFunction(
    () => window.DFSignals && window.DFSignals.connection && window.DFSignals.connection.readyState === 1,
    null,
    { timeout: WAIT },
  );
}

const textOf = (page, selector) => page.locator(selector).textContent();

async function waitTextChange(page, selector, previous) {
  await page.waitForFunction(
    ([sel, prev]) => document.querySelector(sel).textContent !== prev,
    [selector, previous],
    { timeout: WAIT },
  );
  return textOf(page, selector);
}

describe('demo project in chromium', () => {
  test('a click in one browser updates the DOM of both (broadcast)', async (t) => {
    await scenario(t, async (watch) => {
      // two contexts = two browsers: separate cookies, separate window keys
      const first = watch('first', await (await browser.newContext()).newPage());
      const second = watch('second', await (await browser.newContext()).newPage());
      await openDemoPage(first, '/broadcast/');
      await openDemoPage(second, '/broadcast/');
      const keys = await Promise.all([first, second].map((p) => p.evaluate(() => window.DFSignals.windowKey)));
      assert.notEqual(keys[0], keys[1]);

      const before1 = await textOf(first, '#broadcast-target');
      await first.click('#broadcast-btn');
      const seenFirst = await waitTextChange(first, '#broadcast-target', before1);
      const seenSecond = await waitTextChange(second, '#broadcast-target', before1);
      assert.match(seenFirst, /^click \d+$/);
      assert.equal(seenSecond, seenFirst);

      // and the other way round
      await second.click('#broadcast-btn');
      const again = await waitTextChange(first, '#broadcast-target', seenFirst);
      assert.notEqual(again, seenFirst);
      await second.waitForFunction((text) => document.querySelector('#broadcast-target').textContent === text, again, { timeout: WAIT });
    });
  });

  test('two tabs of one browser keep their own window after a reconnection', async (t) => {
    await scenario(t, async (watch) => {
      const context = await browser.newContext(); // tabs share the cookies
      const tabA = watch('tabA', await context.newPage());
      await openDemoPage(tabA, '/');
      const keyA = await tabA.evaluate(() => window.DFSignals.windowKey);
      const tabB = watch('tabB', await context.newPage());
      await openDemoPage(tabB, '/');
      const keyB = await tabB.evaluate(() => window.DFSignals.windowKey);
      assert.ok(keyA && keyB, `window keys: ${keyA} ${keyB}`);
      assert.notEqual(keyA, keyB, 'both tabs got the same window key: the WebsocketMiddleware must give '
        + 'every (non-XHR) page load a new key, as upstream does, else WINDOW targets every tab');
      const cookie = (await context.cookies()).find((c) => c.name === 'dfwskey');
      assert.equal(cookie.value, keyB, 'the newest tab owns the shared cookie');

      // tab A loses its connection and reconnects
      await tabA.evaluate(() => {
        window.oldSocket = window.DFSignals.connection;
        window.oldSocket.close();
      });
      await tabA.waitForFunction(
        () => window.DFSignals.connection && window.DFSignals.connection !== window.oldSocket
          && window.DFSignals.connection.readyState === 1,
        null,
        { timeout: WAIT },
      );

      // its WINDOW answer must reach tab A only (upstream: tab B's window)
      const initialB = await textOf(tabB, '#hello-target');
      const initialA = await textOf(tabA, '#hello-target');
      await tabA.click('#hello-btn');
      const answer = await waitTextChange(tabA, '#hello-target', initialA);
      assert.match(answer, /answered through the websocket/);
      await tabB.waitForTimeout(1000);
      assert.equal(await textOf(tabB, '#hello-target'), initialB);

      // and tab B still receives its own answers
      await tabB.click('#hello-btn');
      await waitTextChange(tabB, '#hello-target', initialB);
    });
  });

  test('heartbeats are echoed: the connection stays up', async (t) => {
    await scenario(t, async (watch) => {
      const context = await browser.newContext();
      await context.addInitScript(() => {
        window.DFSignals = { config: { heartbeatInterval: 300, heartbeatTimeout: 1500 } };
        window.socketCount = 0;
        window.echoes = 0;
        const Native = window.WebSocket;
        window.WebSocket = class CountingWebSocket extends Native {
          constructor(...args) {
            super(...args);
            window.socketCount += 1;
            this.addEventListener('message', (event) => {
              if (event.data === '--heartbeat--') window.echoes += 1;
            });
          }
        };
      });
      const page = watch('page', await context.newPage());
      await openDemoPage(page, '/');
      await page.waitForFunction(() => window.echoes >= 5, null, { timeout: WAIT });
      assert.equal(await page.evaluate(() => window.socketCount), 1);
      assert.equal(await page.evaluate(() => window.DFSignals.connection.readyState), 1);
      // and signals still flow on that socket
      const initial = await textOf(page, '#hello-target');
      await page.click('#hello-btn');
      await waitTextChange(page, '#hello-target', initial);
    });
  });

  test('a form bound with data-df-signal is serialised, validated by the server, not submitted', async (t) => {
    await scenario(t, async (watch) => {
      const page = watch('form', await (await browser.newContext()).newPage());
      await openDemoPage(page, '/form/');
      // on="input" with value="name": each keystroke sends the field value
      await page.fill('#id_name', 'Ada');
      await page.waitForFunction(() => document.querySelector('#form-preview').textContent === 'Hello, Ada!', null, { timeout: WAIT });
      // submit: serializeForm(form) -> SerializedForm(DemoForm) on the server
      await page.fill('#id_email', 'not an email');
      await page.check('input[name="color"][value="green"]');
      await page.click('#form-submit');
      await page.waitForSelector('#form-result ul.errors', { timeout: WAIT });
      assert.match(await textOf(page, '#form-result'), /email/);
      await page.waitForSelector('#demo-form.invalid', { timeout: WAIT });
      await page.fill('#id_email', 'ada@example.com');
      await page.check('input[name="newsletter"]');
      await page.click('#form-submit');
      await page.waitForSelector('#form-result p.ok', { timeout: WAIT });
      assert.equal(await textOf(page, '#form-result p.ok'), 'Thank you, Ada! Favourite color: green; newsletter: yes.');
      await page.waitForFunction(() => !document.querySelector('#demo-form').classList.contains('invalid'), null, { timeout: WAIT });
      // the submit was prevented: still the same page, same connection
      assert.equal(new URL(page.url()).pathname, '/form/');
    });
  });
});
