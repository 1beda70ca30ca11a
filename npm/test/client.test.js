import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DFSignalsClient, HEARTBEAT_MESSAGE } from '../src/client.js';
import {
  URL_COOKIE, clientSetup as setup, makeWindow, FakeClock, recordingLogger, sentFrames,
} from './helpers.js';

test('connects to the URL read from the dfwsurl cookie', () => {
  const { client, WS } = setup();
  client.start();
  assert.equal(WS.instances.length, 1);
  assert.equal(WS.last.url, 'ws://example.com:8000/ws/');
  assert.equal(client.wsurl, 'ws://example.com:8000/ws/');
  assert.equal(client.connection, null); // only set once open
  WS.last.serverOpen();
  assert.equal(client.connection, WS.last);
});

test('a preset wsurl is honoured; a relative one uses the page host', () => {
  let { client, WS } = setup({ preset: { wsurl: 'ws://other.example/custom/' } });
  client.start();
  assert.equal(WS.last.url, 'ws://other.example/custom/');

  ({ client, WS } = setup({ cookies: [] }));
  client.wsurl = '/ws/';
  client.start();
  assert.equal(WS.last.url, 'ws://example.com:8000/ws/');
});

test('an empty preset wsurl disables the connection', () => {
  const { client, WS, clock } = setup({ preset: { wsurl: '' } });
  client.start();
  clock.tick(60000);
  assert.equal(WS.instances.length, 0);
  assert.equal(clock.pendingCount, 0);
});

test('calls made before open are buffered and sent FIFO on open, with opts {} by default', () => {
  const { client, WS } = setup();
  assert.equal(client.call('a.first', { x: 1 }), false);
  client.call('a.second');
  client.call('a.third', null);
  client.start();
  client.call('a.fourth', { y: [1, 2] }); // socket connecting: still buffered
  assert.equal(client.buffer.length, 4);
  assert.equal(WS.last.sent.length, 0);
  WS.last.serverOpen();
  assert.deepEqual(sentFrames(WS.last), [
    { signal: 'a.first', opts: { x: 1 } },
    { signal: 'a.second', opts: {} },
    { signal: 'a.third', opts: {} },
    { signal: 'a.fourth', opts: { y: [1, 2] } },
  ]);
  assert.equal(client.buffer.length, 0);
  client.call('a.fifth', { z: 'direct' });
  assert.deepEqual(sentFrames(WS.last).at(-1), { signal: 'a.fifth', opts: { z: 'direct' } });
  // the raw frame has exactly the keys the server expects
  assert.equal(WS.last.sent.at(-1), '{"signal":"a.fifth","opts":{"z":"direct"}}');
});

test('the buffer is bounded: the oldest calls are dropped with a warning', () => {
  const { client, logger } = setup({ config: { maxBuffer: 3 } });
  for (let i = 0; i < 5; i += 1) client.call('s', { i });
  assert.deepEqual(client.buffer.map((m) => JSON.parse(m).opts.i), [2, 3, 4]);
  assert.equal(logger.matching('warn', /buffer full/).length, 2);
});

test('local handlers run for local and server calls; server calls are not echoed back', () => {
  const { client, WS } = setup();
  const seen = [];
  client.connect('demo.sig', (opts, id) => seen.push(['first', opts, id]));
  client.connect('demo.sig', (opts, id) => seen.push(['second', opts, id]));
  client.start();
  WS.last.serverOpen();
  client.call('demo.sig', { a: 1 });
  WS.last.serverSend(JSON.stringify({ signal: 'demo.sig', opts: { b: 2 }, signal_id: 'id-1' }));
  assert.deepEqual(seen, [
    ['first', { a: 1 }, undefined],
    ['second', { a: 1 }, undefined],
    ['first', { b: 2 }, 'id-1'],
    ['second', { b: 2 }, 'id-1'],
  ]);
  assert.equal(WS.last.sent.length, 1); // only the local call
});

test('a server signal without opts gives {} to the handlers', () => {
  const { client, WS } = setup();
  let got;
  client.connect('x', (opts) => { got = opts; });
  client.start();
  WS.last.serverOpen();
  WS.last.serverSend('{"signal": "x", "signal_id": "1"}');
  assert.deepEqual(got, {});
});

test('the same signal_id is dispatched once (one copy per topic)', () => {
  const { client, WS } = setup();
  let count = 0;
  client.connect('dup', () => { count += 1; });
  client.start();
  WS.last.serverOpen();
  const msg = JSON.stringify({ signal: 'dup', opts: {}, signal_id: 'same' });
  WS.last.serverSend(msg);
  WS.last.serverSend(msg);
  assert.equal(count, 1);
  assert.equal(client.call('dup', {}, 'same'), false);
  assert.equal(count, 1);
});

test('de-duplication memory is bounded', () => {
  const { client } = setup({ config: { dedupSize: 5 } });
  let count = 0;
  client.connect('s', () => { count += 1; });
  for (let i = 0; i < 100; i += 1) client.call('s', {}, `id-${i}`);
  assert.equal(count, 100);
  assert.equal(client._seen.size, 5);
  client.call('s', {}, 'id-99'); // recent: dropped
  assert.equal(count, 100);
  client.call('s', {}, 'id-0'); // forgotten long ago: dispatched again
  assert.equal(count, 101);
});

test('a throwing handler is logged and does not stop the others', () => {
  const { client, logger } = setup();
  const calls = [];
  client.connect('s', () => { throw new Error('boom'); });
  client.connect('s', () => calls.push('second'));
  client.call('s', {});
  assert.deepEqual(calls, ['second']);
  assert.equal(logger.matching('error', /handler of "s" failed boom/).length, 1);
});

test('disconnect removes one handler or all handlers of a signal', () => {
  const { client } = setup();
  const calls = [];
  const a = () => calls.push('a');
  const b = () => calls.push('b');
  client.connect('s', a);
  client.connect('s', b);
  client.connect('s', a);
  assert.equal(client.disconnect('s', a), true);
  client.call('s');
  assert.deepEqual(calls, ['b']);
  assert.equal(client.disconnect('s', a), false);
  assert.equal(client.disconnect('s'), true);
  assert.equal(client.registry.s, undefined);
  client.call('s');
  assert.deepEqual(calls, ['b']);
  assert.equal(client.disconnect('never'), false);
  client.connect('s', 'not a function');
  assert.equal(client.registry.s, undefined);
});

test('invalid JSON, binary frames and messages without signal_id are logged and the connection kept', () => {
  const { client, WS, logger } = setup();
  let count = 0;
  client.connect('s', () => { count += 1; });
  client.start();
  const ws = WS.last;
  ws.serverOpen();
  ws.serverSend('{not json');
  ws.serverSend(new ArrayBuffer(3));
  ws.serverSend('{"signal": "s", "opts": {}}');
  ws.serverSend('[1, 2]');
  ws.serverSend('null');
  ws.serverSend(HEARTBEAT_MESSAGE);
  assert.equal(count, 0);
  assert.equal(logger.matching('error', /invalid JSON from the server/).length, 1);
  assert.equal(logger.matching('warn', /binary frame/).length, 1);
  assert.equal(logger.matching('warn', /without signal or signal_id/).length, 3);
  assert.equal(client.connection, ws);
  assert.equal(WS.instances.length, 1);
  ws.serverSend('{"signal": "s", "opts": {}, "signal_id": "ok"}');
  assert.equal(count, 1);
});

test('reconnects with exponential backoff, reset after a successful open', () => {
  const { client, WS, clock } = setup();
  client.start();
  const delays = [];
  for (let i = 0; i < 9; i += 1) {
    WS.last.serverClose(1006);
    delays.push(...clock.pendingDelays());
    const before = WS.instances.length;
    clock.tick(clock.pendingDelays()[0] - 1);
    assert.equal(WS.instances.length, before, 'not before the delay');
    clock.tick(1);
    assert.equal(WS.instances.length, before + 1, 'right at the delay');
  }
  assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  WS.last.serverOpen();
  assert.equal(client.attempts, 0);
  WS.last.serverClose(1001);
  assert.deepEqual(clock.pendingDelays(), [500]);
});

test('a 1012 close (service restart) reconnects at once, then backs off if that fails', () => {
  const { client, WS, clock } = setup({ random: () => 0.5 });
  client.start();
  WS.last.serverOpen();
  WS.last.serverClose(1012);
  assert.deepEqual(clock.pendingDelays(), [50]); // within restartJitter (100 ms)
  clock.tick(50);
  WS.last.serverClose(1012); // the new connection failed before it opened
  assert.deepEqual(clock.pendingDelays(), [750], 'the usual backoff, second attempt');
});

test('backoff delays carry jitter', () => {
  const { client, WS, clock } = setup({ random: () => 0.5 });
  client.start();
  WS.last.serverClose();
  assert.deepEqual(clock.pendingDelays(), [375]);
  clock.tick(375);
  WS.last.serverClose();
  assert.deepEqual(clock.pendingDelays(), [750]);
});

test('a WebSocket constructor that throws is retried with backoff', () => {
  const { window } = makeWindow(undefined, { cookies: [URL_COOKIE] });
  const clock = new FakeClock();
  const logger = recordingLogger();
  let tries = 0;
  class Throwing { constructor() { tries += 1; throw new Error('SecurityError'); } }
  const client = new DFSignalsClient(window, { WebSocket: Throwing, timers: clock, logger, random: () => 0 });
  client.start();
  clock.tick(500 + 1000 + 2000);
  assert.equal(tries, 4);
  assert.equal(logger.matching('error', /cannot open/).length, 4);
});

test('heartbeat every interval; a server that answers keeps the socket', () => {
  const { client, WS, clock } = setup({ config: { heartbeatInterval: 60000, heartbeatTimeout: 20000 } });
  client.start();
  const ws = WS.last;
  ws.serverOpen();
  clock.tick(59999);
  assert.deepEqual(ws.sent, []);
  clock.tick(1);
  assert.deepEqual(ws.sent, [HEARTBEAT_MESSAGE]);
  clock.tick(100);
  ws.serverSend(HEARTBEAT_MESSAGE); // echoed
  clock.tick(60000);
  assert.deepEqual(ws.sent, [HEARTBEAT_MESSAGE, HEARTBEAT_MESSAGE]);
  ws.serverSend(HEARTBEAT_MESSAGE);
  for (let i = 0; i < 10; i += 1) {
    clock.tick(60000);
    ws.serverSend(HEARTBEAT_MESSAGE);
  }
  assert.equal(ws.sent.length, 12);
  assert.equal(WS.instances.length, 1);
  assert.equal(ws.closeCalls.length, 0);
});

test('heartbeat timeout: a silent server makes the client reconnect', () => {
  const { client, WS, clock, logger } = setup({ config: { heartbeatInterval: 60000, heartbeatTimeout: 20000 } });
  client.start();
  const ws = WS.last;
  ws.serverOpen();
  clock.tick(60000); // heartbeat sent
  clock.tick(19999);
  assert.equal(WS.instances.length, 1);
  clock.tick(1); // no answer within 20 s
  assert.equal(ws.closeCalls.length, 1);
  assert.equal(client.connection, null);
  assert.equal(logger.matching('warn', /no answer within 20000 ms/).length, 1);
  clock.tick(500); // first backoff delay
  assert.equal(WS.instances.length, 2);
  // late events of the abandoned socket change nothing
  ws.serverSend('{"signal": "s", "signal_id": "late"}');
  ws.serverClose();
  assert.equal(clock.pendingCount, 0);
  WS.last.serverOpen();
  assert.equal(client.connection, WS.last);
});

test('calls during an outage are buffered and sent on the next connection', () => {
  const { client, WS, clock } = setup();
  client.start();
  WS.last.serverOpen();
  WS.last.serverClose();
  client.call('later', { n: 1 });
  clock.tick(500);
  WS.last.serverOpen();
  assert.deepEqual(sentFrames(WS.last), [{ signal: 'later', opts: { n: 1 } }]);
});

test('the dfwsurl cookie appearing later starts the connection', () => {
  const { client, WS, clock, window } = setup({ cookies: [], config: { cookiePollInterval: 2000 } });
  client.start();
  assert.equal(WS.instances.length, 0);
  clock.tick(10000);
  assert.equal(WS.instances.length, 0);
  window.document.cookie = 'dfwsurl=ws%3A%2F%2Fexample.com%3A8000%2Fws%2F; path=/';
  clock.tick(2000);
  assert.equal(WS.instances.length, 1);
  assert.equal(WS.last.url, 'ws://example.com:8000/ws/');
});

test('stop() closes without reconnecting; resume() reconnects', () => {
  const { client, WS, clock } = setup();
  client.start();
  WS.last.serverOpen();
  client.stop();
  assert.equal(WS.last.closeCalls.length, 1);
  WS.last.serverClose(1000);
  clock.tick(120000);
  assert.equal(WS.instances.length, 1);
  client.resume();
  assert.equal(WS.instances.length, 2);
});

test('start() twice opens a single socket', () => {
  const { client, WS } = setup();
  client.start();
  client.start();
  assert.equal(WS.instances.length, 1);
});

test('preset registry handlers and buffer are taken over', () => {
  const calls = [];
  const { client, WS } = setup({
    preset: { registry: { p: [(o) => calls.push(o)] }, buffer: ['{"signal":"early","opts":{}}'] },
  });
  client.call('p', { v: 1 });
  client.start();
  WS.last.serverOpen();
  assert.deepEqual(calls, [{ v: 1 }]);
  assert.deepEqual(sentFrames(WS.last), [{ signal: 'early', opts: {} }, { signal: 'p', opts: { v: 1 } }]);
});
