// The shipped IIFE bundle, loaded by a page the way upstream's was.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import { bundleOptions, defaultOutdir } from '../build-options.mjs';
import { JSDOM, CookieJar, fakeWebSocketClass, ORIGIN } from './helpers.js';

const built = await build({ ...bundleOptions(), write: false, logLevel: 'silent' });
const bundleText = built.outputFiles.find((f) => f.path.endsWith('.min.js')).text;

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

/** Load a page that includes the bundle; `before`/`after` are inline scripts around it. */
function loadPage({ before = '', after = '', body = '', cookies = [] } = {}) {
  const jar = new CookieJar();
  for (const c of cookies) jar.setCookieSync(c, `${ORIGIN}/`);
  const listenerCounts = {};
  let WS;
  const html = `<!DOCTYPE html><html><head>
    <script>${before}</script>
    <script>${bundleText}</script>
    <script>${after}</script></head><body>${body}</body></html>`;
  const dom = new JSDOM(html, {
    url: `${ORIGIN}/page/`,
    cookieJar: jar,
    runScripts: 'dangerously',
    beforeParse(window) {
      WS = fakeWebSocketClass(window);
      window.WebSocket = WS;
      const original = window.addEventListener.bind(window);
      window.addEventListener = (type, ...rest) => {
        listenerCounts[type] = (listenerCounts[type] || 0) + 1;
        return original(type, ...rest);
      };
    },
  });
  return { dom, window: dom.window, WS, listenerCounts };
}

test('the shipped bundle is the build of the current sources', () => {
  const shipped = readFileSync(path.join(defaultOutdir, 'df_websockets.min.js'), 'utf8');
  assert.ok(shipped === bundleText, 'df_websockets.min.js is stale: run `npm run build`');
  const map = JSON.parse(readFileSync(path.join(defaultOutdir, 'df_websockets.min.js.map'), 'utf8'));
  assert.ok(map.sources.some((s) => s.endsWith('npm/src/client.js')));
  assert.match(shipped, /\/\/# sourceMappingURL=df_websockets\.min\.js\.map\s*$/);
});

test('window.DFSignals has the upstream shape plus disconnect', async () => {
  const { window } = loadPage();
  const api = window.DFSignals;
  assert.equal(api.connection, null);
  assert.ok(Array.isArray(api.buffer));
  assert.equal(typeof api.registry, 'object');
  assert.equal(api.wsurl, null);
  for (const name of ['call', 'connect', 'disconnect', 'serializeForm']) {
    assert.equal(typeof api[name], 'function', name);
  }
  assert.ok(Array.isArray(api.registry['html.content']));
  window.close();
});

test('a page using the upstream API works end to end (with a fake server)', async () => {
  const { window, WS } = loadPage({
    cookies: ['dfwsurl=ws%3A%2F%2Fexample.com%3A8000%2Fws%2F', 'dfwskey=abc123'],
    // like upstream pages: connect and call before DOMContentLoaded
    after: `
      window.received = [];
      window.DFSignals.connect('myproject.first_signal', (opts, id) => window.received.push([opts.content, id]));
      window.DFSignals.call('myproject.first_signal', {content: 'Hello from browser'});`,
    body: `<div id="obj"></div><button id="go" data-df-signal='[{"name": "demo.click", "opts": {"n": 1}}]'>go</button>`,
  });
  await sleep(20);
  assert.equal(WS.instances.length, 1);
  const ws = WS.last;
  assert.equal(ws.url, 'ws://example.com:8000/ws/');
  assert.match(ws.handshakeCookie, /dfwskey=abc123/);
  ws.serverOpen();
  assert.deepEqual(ws.sent, ['{"signal":"myproject.first_signal","opts":{"content":"Hello from browser"}}']);
  ws.serverSend(JSON.stringify({ signal: 'html.content', opts: { selector: '#obj', content: '<span>hi</span>' }, signal_id: 'u1' }));
  ws.serverSend(JSON.stringify({ signal: 'html.content', opts: { selector: '#obj', content: '<span>again</span>' }, signal_id: 'u1' }));
  assert.equal(window.document.getElementById('obj').innerHTML, '<span>hi</span>');
  window.document.getElementById('go').click();
  await sleep(5);
  assert.equal(ws.sent.at(-1), '{"signal":"demo.click","opts":{"n":1}}');
  assert.equal(JSON.stringify(window.received), '[["Hello from browser",null]]');
  window.close();
});

test('wsurl preset by an inline script after the bundle, config preset before it', async () => {
  const { window, WS, listenerCounts } = loadPage({
    before: 'window.DFSignals = {config: {backoffBase: 2, backoffMax: 4}};',
    after: 'window.DFSignals.wsurl = "ws://elsewhere.example/sock/";',
  });
  await sleep(20);
  assert.equal(WS.last.url, 'ws://elsewhere.example/sock/');
  assert.equal(window.DFSignals.config.backoffBase, 2);
  // many reconnections: still one unload-type listener
  for (let i = 0; i < 5; i += 1) {
    WS.last.serverOpen();
    WS.last.serverClose(1006);
    await sleep(15);
  }
  assert.equal(WS.instances.length, 6);
  assert.equal(listenerCounts.pagehide, 1);
  assert.equal(listenerCounts.beforeunload, undefined);
  assert.equal(listenerCounts.unload, undefined);
  // the page going away closes the socket and stops reconnecting
  WS.last.serverOpen();
  window.dispatchEvent(new window.PageTransitionEvent('pagehide', { persisted: false }));
  assert.equal(WS.last.closeCalls.length, 1);
  await sleep(20);
  assert.equal(WS.instances.length, 6);
  window.close();
});

test('including the bundle twice keeps one client', async () => {
  const { window, WS } = loadPage({
    cookies: ['dfwsurl=ws%3A%2F%2Fexample.com%3A8000%2Fws%2F'],
    after: `window.first = window.DFSignals; ${bundleText}; window.same = window.first === window.DFSignals;`,
  });
  await sleep(20);
  assert.equal(window.same, true);
  assert.equal(WS.instances.length, 1);
  window.close();
});

test('recovery through the bundle: positions, dfws_recover on reconnect, a page handler of recovery_failed', async () => {
  const group = 'f'.repeat(64);
  const { window, WS } = loadPage({
    before: 'window.DFSignals = {config: {backoffBase: 2, backoffMax: 4, backoffJitter: 0}};',
    cookies: ['dfwsurl=ws%3A%2F%2Fexample.com%3A8000%2Fws%2F'],
    after: `
      window.failed = [];
      window.DFSignals.connect('df_websockets.recovery_failed', (opts) => window.failed.push(opts.topics));`,
  });
  await sleep(20);
  assert.equal(WS.last.url, 'ws://example.com:8000/ws/');
  WS.last.serverOpen();
  WS.last.serverSend(JSON.stringify({
    signal: 'noop', opts: {}, signal_id: 's1', topic: group, pos: '12345678-42',
  }));
  WS.last.serverClose(1006);
  await sleep(30);
  assert.equal(WS.instances.length, 2);
  const query = new URLSearchParams(WS.last.url.split('?')[1]);
  assert.deepEqual(JSON.parse(query.get('dfws_recover')), { [group]: '12345678-42' });
  WS.last.serverOpen();
  WS.last.serverSend(JSON.stringify({
    signal: 'df_websockets.recovery_failed', opts: { topics: [group] }, signal_id: 'rf',
  }));
  assert.equal(JSON.stringify(window.failed), JSON.stringify([[group]]));
  assert.equal(window.DFSignals.positions.size, 0);
  window.close();
});
