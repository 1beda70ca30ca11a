// A window whose key the server does not know (no topics in its cache):
// told by the signal df_websockets.unknown_window (dfws-asgi's native socket)
// or by close code 4004 (the Python consumer), the client fetches the page
// again, takes the new dfwskey cookie of that response and reconnects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UNKNOWN_WINDOW_CODE, UNKNOWN_WINDOW_SIGNAL } from '../src/client.js';
import { getCookie } from '../src/cookies.js';
import { URL_COOKIE, clientSetup } from './helpers.js';

const NOTICE = JSON.stringify({
  signal: UNKNOWN_WINDOW_SIGNAL,
  opts: { code: UNKNOWN_WINDOW_CODE, reason: 'unknown window key' },
  signal_id: 'notice-1',
});

/** Resolve pending promises (the fake fetch answers on a microtask). */
const settle = () => new Promise((resolve) => { setImmediate(resolve); });

/**
 * A connected client whose page answers `fetch` like Django would: the
 * response sets `dfwskey` to each key of `newKeys` in turn (none left: no
 * cookie, as a page whose view sets no topics).
 */
function connectedClient({ newKeys = ['key-new'], config = {} } = {}) {
  const fetched = [];
  const keys = [...newKeys];
  let page = null;
  const fetch = async (url, init) => {
    fetched.push({ url, init });
    const key = keys.shift();
    if (key) {
      page.document.cookie = `dfwskey=${key}; path=/`;
    }
    return { status: 200 };
  };
  const setup = clientSetup({ cookies: [URL_COOKIE, 'dfwskey=key-old; Path=/'], config, fetch });
  page = setup.window;
  setup.client.start();
  setup.WS.last.serverOpen();
  return { ...setup, fetched };
}

test('the unknown_window signal makes the client fetch the page and reconnect with the new key', async () => {
  const { client, WS, logger, fetched } = connectedClient();
  const seen = [];
  client.connect(UNKNOWN_WINDOW_SIGNAL, (opts) => seen.push(opts.reason));
  const first = WS.last;
  client.call('app.ping', { n: 1 }); // sent on the first socket
  first.serverSend(NOTICE);
  assert.deepEqual(first.closeCalls, [{ code: 1000, reason: 'new window key' }]);
  assert.equal(client.connection, null);
  assert.deepEqual(seen, ['unknown window key']); // page handlers run too
  client.call('app.ping', { n: 2 }); // buffered until the new socket opens
  await settle();
  assert.deepEqual(fetched.map((f) => [f.url, f.init.credentials, f.init.cache]),
    [['http://example.com:8000/page/', 'same-origin', 'no-store']]);
  assert.equal(client.windowKey, 'key-new');
  assert.equal(WS.instances.length, 2, 'reconnected at once, without backoff');
  assert.equal(getCookie(WS.last.handshakeCookie, 'dfwskey'), 'key-new');
  WS.last.serverOpen();
  assert.deepEqual(WS.last.sent.map((s) => JSON.parse(s).opts.n), [2]);
  assert.equal(logger.matching('warn', /does not know this window/).length, 1);
  // a late close of the abandoned socket changes nothing
  first.serverClose(1000);
  assert.equal(client.connection, WS.last);
});

test('close code 4004 (the Python consumer) renews the key the same way', async () => {
  const { client, WS } = connectedClient();
  const seen = [];
  client.connect(UNKNOWN_WINDOW_SIGNAL, (opts) => seen.push(opts));
  WS.last.serverClose(UNKNOWN_WINDOW_CODE, 'unknown window key');
  assert.deepEqual(seen, [{ code: UNKNOWN_WINDOW_CODE, reason: 'unknown window key' }]);
  await settle();
  assert.equal(client.windowKey, 'key-new');
  assert.equal(WS.instances.length, 2);
});

test('the signal followed by the close code renews once', async () => {
  const { client, WS, fetched } = connectedClient();
  WS.last.serverSend(NOTICE);
  WS.last.serverClose(UNKNOWN_WINDOW_CODE, 'unknown window key');
  await settle();
  assert.equal(fetched.length, 1);
  assert.equal(WS.instances.length, 2);
  assert.equal(client.windowKey, 'key-new');
});

test('a page that gives no new key: logged, no reconnection loop', async () => {
  const { client, WS, clock, logger } = connectedClient({ newKeys: [] });
  WS.last.serverSend(NOTICE);
  await settle();
  clock.tick(120000);
  assert.equal(WS.instances.length, 1);
  assert.equal(client.windowKey, 'key-old');
  assert.equal(logger.matching('error', /gave no new window key: reload the page/).length, 1);
});

test('renewals are bounded: a server that never knows the window is not hammered', async () => {
  const { client, WS, clock, logger, fetched } = connectedClient({ newKeys: ['k1', 'k2', 'k3', 'k4', 'k5'] });
  const notice = async (i) => {
    WS.last.serverSend(NOTICE.replace('notice-1', `notice-${i}`));
    await settle();
    WS.last.serverOpen();
  };
  await notice(1);
  // a signal received with a renewed key proves it: the count starts again
  WS.last.serverSend(JSON.stringify({ signal: 'app.hello', opts: {}, signal_id: 'hello-1' }));
  for (let i = 2; i <= 5; i += 1) {
    await notice(i); // eslint-disable-line no-await-in-loop
  }
  assert.deepEqual(fetched.length, 4);
  assert.equal(client.windowKey, 'k4');
  assert.equal(WS.instances.length, 5);
  assert.equal(logger.matching('error', /no new key can be had/).length, 1);
  clock.tick(120000);
  assert.equal(WS.instances.length, 5, 'no reconnection loop');
});

test('renewKey: false leaves it to the page handlers', async () => {
  const { client, WS, fetched } = connectedClient({ config: { renewKey: false } });
  let reloads = 0;
  client.connect(UNKNOWN_WINDOW_SIGNAL, () => { reloads += 1; });
  WS.last.serverSend(NOTICE);
  await settle();
  assert.equal(reloads, 1);
  assert.equal(fetched.length, 0);
  assert.equal(WS.instances.length, 1);
});

test('a failed fetch falls back to the ordinary reconnection', async () => {
  const { client, clock, WS, logger } = clientSetup({
    cookies: [URL_COOKIE, 'dfwskey=key-old; Path=/'],
    fetch: async () => { throw new Error('offline'); },
    config: { renewKeyUrl: '/renew/' },
  });
  client.start();
  WS.last.serverOpen();
  WS.last.serverSend(NOTICE);
  await settle();
  assert.equal(logger.matching('error', /cannot fetch \/renew\/ for a new window key/).length, 1);
  clock.tick(500);
  assert.equal(WS.instances.length, 2);
});
