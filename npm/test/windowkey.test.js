import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DFSignalsClient } from '../src/client.js';
import { getCookie } from '../src/cookies.js';
import { makeWindow, FakeClock, fakeWebSocketClass, recordingLogger, CookieJar } from './helpers.js';

const URL_COOKIE = 'dfwsurl=ws%3A%2F%2Fexample.com%3A8000%2Fws%2F; Path=/';

function tab(jar, cookies, WS, clock) {
  const { window } = makeWindow(undefined, { cookieJar: jar, cookies });
  const client = new DFSignalsClient(window, {
    WebSocket: WS, timers: clock, logger: recordingLogger(), random: () => 0,
  });
  return { window, client };
}

test('a second tab does not steal the first tab topics on reconnect', () => {
  const jar = new CookieJar(); // cookies are shared by the tabs of a browser
  const clock = new FakeClock();
  const WS = fakeWebSocketClass(null);
  const handshakeKey = () => {
    WS.last.handshakeCookie = jar.getCookieStringSync('http://example.com:8000/ws/');
    return getCookie(WS.last.handshakeCookie, 'dfwskey');
  };

  // tab A loads: the response sets dfwskey=key-a
  const a = tab(jar, [URL_COOKIE, 'dfwskey=key-a; Path=/'], WS, clock);
  assert.equal(a.client.windowKey, 'key-a');
  a.client.start();
  assert.equal(handshakeKey(), 'key-a');
  WS.last.serverOpen();
  const socketA = WS.last;

  // tab B loads: its response overwrites the shared cookie with key-b
  const b = tab(jar, ['dfwskey=key-b; Path=/'], WS, clock);
  assert.equal(b.client.windowKey, 'key-b');
  b.client.start();
  assert.equal(handshakeKey(), 'key-b');
  WS.last.serverOpen();

  // A loses its connection and reconnects: the handshake carries key-a again
  socketA.serverClose(1006);
  clock.tick(500);
  assert.equal(WS.instances.length, 3);
  assert.equal(handshakeKey(), 'key-a');

  // and B, reconnecting afterwards, gets key-b back
  WS.instances[1].serverClose(1006);
  clock.tick(500);
  assert.equal(handshakeKey(), 'key-b');
});

test('the key is remembered in sessionStorage and used when the cookie is gone', () => {
  const { window } = makeWindow(undefined, { cookies: [URL_COOKIE, 'dfwskey=k-first; Path=/'] });
  const clock = new FakeClock();
  const WS = fakeWebSocketClass(window);
  const first = new DFSignalsClient(window, { WebSocket: WS, timers: clock, logger: recordingLogger() });
  assert.equal(window.sessionStorage.getItem('dfws.windowKey'), 'k-first');
  // the cookie expired (max_age) but this tab still knows its key
  window.document.cookie = 'dfwskey=; path=/; max-age=0';
  assert.equal(getCookie(window.document.cookie, 'dfwskey'), '');
  const again = new DFSignalsClient(window, { WebSocket: WS, timers: clock, logger: recordingLogger() });
  assert.equal(again.windowKey, 'k-first');
  again.start();
  assert.equal(getCookie(WS.last.handshakeCookie, 'dfwskey'), 'k-first');
  assert.equal(first.windowKey, 'k-first');
});

test('a fresh page load takes the key of its own response, not the stored one', () => {
  const { window } = makeWindow(undefined, { cookies: [URL_COOKIE, 'dfwskey=new-key; Path=/'] });
  window.sessionStorage.setItem('dfws.windowKey', 'old-key');
  const client = new DFSignalsClient(window, { timers: new FakeClock(), logger: recordingLogger() });
  assert.equal(client.windowKey, 'new-key');
  assert.equal(window.sessionStorage.getItem('dfws.windowKey'), 'new-key');
});

test('a preset windowKey wins; perTabKey=false leaves the cookie alone', () => {
  const { window } = makeWindow(undefined, { cookies: [URL_COOKIE, 'dfwskey=cookie-key; Path=/'] });
  const clock = new FakeClock();
  const WS = fakeWebSocketClass(window);
  const client = new DFSignalsClient(window, {
    WebSocket: WS, timers: clock, logger: recordingLogger(), preset: { windowKey: 'preset-key' },
  });
  assert.equal(client.windowKey, 'preset-key');
  client.start();
  assert.equal(getCookie(WS.last.handshakeCookie, 'dfwskey'), 'preset-key');

  const other = makeWindow(undefined, { cookies: [URL_COOKIE, 'dfwskey=mine; Path=/'] });
  const WS2 = fakeWebSocketClass(other.window);
  const plain = new DFSignalsClient(other.window, {
    WebSocket: WS2, timers: clock, logger: recordingLogger(), config: { perTabKey: false },
  });
  other.window.document.cookie = 'dfwskey=someone-else; path=/';
  plain.start();
  assert.equal(getCookie(WS2.last.handshakeCookie, 'dfwskey'), 'someone-else');
});

test('no key at all: the connection is made without touching the cookie', () => {
  const { window } = makeWindow(undefined, { cookies: [URL_COOKIE] });
  const WS = fakeWebSocketClass(window);
  const client = new DFSignalsClient(window, { WebSocket: WS, timers: new FakeClock(), logger: recordingLogger() });
  assert.equal(client.windowKey, '');
  client.start();
  assert.equal(WS.instances.length, 1);
  assert.equal(getCookie(window.document.cookie, 'dfwskey'), '');
});
