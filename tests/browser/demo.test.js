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

  test('the native socket is compressed: permessage-deflate agreed with chromium', {
    skip: /daphne/.test(process.env.DFWS_SERVER_CMD || '') && 'daphne does not offer it',
  }, async (t) => {
    await scenario(t, async (watch) => {
      const page = watch('page', await (await browser.newContext()).newPage());
      const cdp = await page.context().newCDPSession(page);
      await cdp.send('Network.enable');
      const handshakes = [];
      cdp.on('Network.webSocketHandshakeResponseReceived', (e) => handshakes.push(e.response));
      await openDemoPage(page, '/');
      assert.equal(handshakes.length, 1);
      const headers = Object.fromEntries(
        Object.entries(handshakes[0].headers).map(([k, v]) => [k.toLowerCase(), v]));
      assert.match(headers['sec-websocket-extensions'] || '',
        /^permessage-deflate; server_no_context_takeover; client_no_context_takeover/);
      // a large message from the browser (chromium compresses it): the
      // server inflates it, drops the unknown signal, the socket stays
      await page.evaluate(() => window.DFSignals.connection.send(JSON.stringify(
        { signal: 'no.such.signal', opts: { pad: 'x'.repeat(5000) } })));
      const initial = await textOf(page, '#hello-target');
      await page.click('#hello-btn');
      await waitTextChange(page, '#hello-target', initial);
      assert.equal(await page.evaluate(() => window.DFSignals.connection.readyState), 1);
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

let serial = 0;
// each test gets sheets and rooms of its own: the tests of this file share one database
const unique = (prefix) => `${prefix}-${process.pid}-${Date.now()}-${serial += 1}`;

/** A new browser (context: cookies of its own) on `pathname`, connected. */
async function openIn(watch, label, pathname) {
  const page = watch(label, await (await browser.newContext()).newPage());
  await openDemoPage(page, pathname);
  return page;
}

const cell = (row, col) => `#sheet-form input[name="c-${row}-${col}"]`;

async function editCell(page, row, col, value) {
  await page.fill(cell(row, col), value);
  await page.press(cell(row, col), 'Tab'); // commits: the change event
}

const waitValue = (page, selector, value) => page.waitForFunction(
  ([sel, expected]) => document.querySelector(sel).value === expected,
  [selector, value],
  { timeout: WAIT },
);

async function post(page, author, text) {
  await page.fill('#chat-author', author);
  await page.fill('#chat-text', text);
  await page.click('#chat-send');
}

const logOf = (page) => page.locator('#chat-log li').evaluateAll(
  (items) => items.map((li) => `${li.querySelector('.author').textContent}: ${li.querySelector('.text').textContent}`),
);

async function waitLog(page, expected) {
  await page.waitForFunction(
    (n) => document.querySelectorAll('#chat-log li').length >= n,
    expected.length,
    { timeout: WAIT },
  );
  assert.deepEqual(await logOf(page), expected);
}

// The live pages, two browsers at a time: the shared sheet (an edit in one
// appears in the other, through bind_model) and the chat rooms (history from
// the database, new messages live, rooms apart).
describe('demo live pages in chromium', () => {
  test('shared sheet: an edit in one browser appears in the other, and is stored', async (t) => {
    await scenario(t, async (watch) => {
      const path = `/sheet/${unique('sheet')}/`;
      const first = await openIn(watch, 'first', path);
      const second = await openIn(watch, 'second', path);

      await editCell(first, 2, 3, 'hello from first');
      await waitValue(second, cell(2, 3), 'hello from first');
      await second.waitForFunction(() => document.querySelector('#sheet-status').textContent === 'D3 = hello from first', null, { timeout: WAIT });

      await editCell(second, 0, 0, '<b>42</b>');
      await waitValue(first, cell(0, 0), '<b>42</b>');
      // the status line is written by the same signal, after the cell
      await first.waitForFunction(() => document.querySelector('#sheet-status').textContent === 'A1 = <b>42</b>', null, { timeout: WAIT });

      // clearing a cell clears it everywhere
      await editCell(first, 2, 3, '');
      await waitValue(second, cell(2, 3), '');

      // a third browser opening the sheet later gets it from the database
      const third = await openIn(watch, 'third', path);
      assert.equal(await third.inputValue(cell(0, 0)), '<b>42</b>');
      assert.equal(await third.inputValue(cell(2, 3)), '');

      // another sheet is not touched
      const other = await openIn(watch, 'other', `/sheet/${unique('other')}/`);
      await editCell(first, 5, 5, 'only on the first sheet');
      await waitValue(third, cell(5, 5), 'only on the first sheet');
      assert.equal(await other.inputValue(cell(5, 5)), '');
    });
  });

  test('chat: messages are stored, shown live to the room and only to it', async (t) => {
    await scenario(t, async (watch) => {
      const room = unique('room');
      const ada = await openIn(watch, 'ada', `/chat/${room}/`);
      const bob = await openIn(watch, 'bob', `/chat/${room}/`);
      const elsewhere = await openIn(watch, 'elsewhere', `/chat/${unique('room')}/`);

      await post(ada, 'Ada', 'hello <everyone>');
      await waitLog(ada, ['Ada: hello <everyone>']);
      await waitLog(bob, ['Ada: hello <everyone>']);
      // the sender's text field is emptied, its name kept
      await waitValue(ada, '#chat-text', '');
      assert.equal(await ada.inputValue('#chat-author'), 'Ada');

      await post(bob, 'Bob', 'hi Ada');
      await waitLog(ada, ['Ada: hello <everyone>', 'Bob: hi Ada']);
      await waitLog(bob, ['Ada: hello <everyone>', 'Bob: hi Ada']);

      // an invalid message is refused with the form's errors, and not stored
      await bob.fill('#chat-author', 'Bob');
      await bob.fill('#chat-text', '');
      await bob.evaluate(() => document.querySelector('#chat-text').removeAttribute('required'));
      await bob.click('#chat-send');
      await bob.waitForFunction(() => /text/.test(document.querySelector('#chat-error').textContent), null, { timeout: WAIT });

      // the other room saw nothing
      await elsewhere.waitForTimeout(500);
      assert.deepEqual(await logOf(elsewhere), []);

      // the history: a newcomer gets the stored messages from the view
      const carol = await openIn(watch, 'carol', `/chat/${room}/`);
      assert.deepEqual(await logOf(carol), ['Ada: hello <everyone>', 'Bob: hi Ada']);
      await post(carol, 'Carol', 'joined late');
      await waitLog(ada, ['Ada: hello <everyone>', 'Bob: hi Ada', 'Carol: joined late']);
    });
  });
});
