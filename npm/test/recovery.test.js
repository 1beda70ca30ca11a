// Recovery of missed signals (docs/recovery.md): positions per topic group
// from the deliveries' "topic"/"pos", the dfws_recover query parameter on
// reconnects, and df_websockets.recovery_failed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RECOVERY_FAILED_SIGNAL } from '../src/client.js';
import {
  Positions, parsePosition, parameterBudget, withQueryParameter, RECOVER_PARAM, MAX_PARAM_BYTES,
  MAX_REQUEST_LINE,
} from '../src/positions.js';
import { clientSetup as setup } from './helpers.js';

const G1 = 'a'.repeat(64);
const G2 = 'b'.repeat(64);

function delivery(signal, opts, id, topic, pos) {
  return JSON.stringify({
    signal, opts, signal_id: id, topic, pos,
  });
}

/** The JSON object of a socket URL's dfws_recover parameter, or null. */
function recoverOf(url) {
  const query = url.includes('?') ? url.slice(url.indexOf('?') + 1) : '';
  const params = new URLSearchParams(query);
  const value = params.get(RECOVER_PARAM);
  return value === null ? null : JSON.parse(value);
}

test('parsePosition accepts "<epoch>-<offset>" only', () => {
  assert.deepEqual(parsePosition('0a1b2c3d-1'), { epoch: '0a1b2c3d', offset: 1 });
  assert.deepEqual(parsePosition('deadbeef-123456'), { epoch: 'deadbeef', offset: 123456 });
  for (const bad of ['', 'deadbeef', 'deadbeef-', '-5', 'deadbeef-0', 'deadbeef-01', 'DEADBEEF-1',
    'dead beef-1', 'deadbeef-1-2', 'deadbeef-1e3', 'deadbeef-9999999999999999', 5, null, undefined, {}]) {
    assert.equal(parsePosition(bad), null, JSON.stringify(bad));
  }
});

test('positions: a new epoch replaces, the higher offset wins in one epoch', () => {
  const p = new Positions();
  assert.equal(p.update(G1, 'aaaaaaaa-5'), true);
  assert.equal(p.update(G1, 'aaaaaaaa-3'), false, 'a late, older message');
  assert.equal(p.get(G1), 'aaaaaaaa-5');
  assert.equal(p.update(G1, 'aaaaaaaa-5'), false);
  assert.equal(p.update(G1, 'aaaaaaaa-6'), true);
  assert.equal(p.update(G1, 'bbbbbbbb-1'), true, 'a new epoch, lower offset');
  assert.equal(p.get(G1), 'bbbbbbbb-1');
  assert.equal(p.update(G1, 'bbbbbbbb-10'), true, 'numeric, not string, order');
  assert.equal(p.update(G1, 'bbbbbbbb-9'), false);
  assert.equal(p.get(G1), 'bbbbbbbb-10');
  // malformed input is ignored
  assert.equal(p.update(G1, 'garbage'), false);
  assert.equal(p.update('', 'aaaaaaaa-1'), false);
  assert.equal(p.update('x'.repeat(101), 'aaaaaaaa-1'), false);
  assert.equal(p.update({}, 'aaaaaaaa-1'), false);
  assert.equal(p.update('bad group"', 'aaaaaaaa-1'), false);
  assert.deepEqual(p.toObject(), { [G1]: 'bbbbbbbb-10' });
});

test('positions are bounded: the oldest-updated group goes first', () => {
  const p = new Positions({ maxGroups: 3 });
  p.update('g1', 'aaaaaaaa-1');
  p.update('g2', 'aaaaaaaa-1');
  p.update('g3', 'aaaaaaaa-1');
  p.update('g1', 'aaaaaaaa-2'); // g1 is now the most recently updated
  p.update('g4', 'aaaaaaaa-1');
  assert.deepEqual(Object.keys(p.toObject()), ['g3', 'g1', 'g4']);
  assert.equal(p.drop(['g3', 'nope', 'g4']), 2);
  assert.deepEqual(p.toObject(), { g1: 'aaaaaaaa-2' });
  assert.equal(p.drop('g1'), 0, 'not an array: nothing');
  assert.equal(p.drop(undefined), 0);
});

test('the dfws_recover parameter is URL-encoded JSON, capped at 8 KiB by leaving out the oldest', () => {
  const p = new Positions();
  assert.equal(p.queryParameter(), '');
  p.update(G1, 'aaaaaaaa-5');
  p.update('g&=?#', 'aaaaaaaa-1'); // rejected: not a group name
  const param = p.queryParameter();
  assert.equal(param, `${RECOVER_PARAM}=${encodeURIComponent(`{"${G1}":"aaaaaaaa-5"}`)}`);
  assert.doesNotMatch(param.slice(RECOVER_PARAM.length + 1), /[{}":,]/);

  const many = new Positions({ maxGroups: 1000 });
  const groups = [];
  for (let i = 0; i < 200; i += 1) {
    const group = i.toString(16).padStart(64, '0');
    groups.push(group);
    many.update(group, `0123abcd-${1000000 + i}`);
  }
  many.update(groups[0], '0123abcd-2000000'); // the first becomes the newest
  const capped = many.queryParameter();
  assert.ok(capped.length <= MAX_PARAM_BYTES, String(capped.length));
  assert.ok(capped.length > MAX_PARAM_BYTES - 300, 'not far below the cap');
  const sent = JSON.parse(decodeURIComponent(capped.slice(RECOVER_PARAM.length + 1)));
  const names = Object.keys(sent);
  assert.ok(names.length > 50 && names.length < 200, String(names.length));
  assert.equal(sent[groups[0]], '0123abcd-2000000', 'the newest is kept');
  assert.equal(sent[groups[1]], undefined, 'the oldest-updated are left out');
  assert.equal(sent[groups[199]], '0123abcd-1000199');
  assert.equal(names.at(-2), groups[199]);
  assert.equal(many.size, 200, 'left out of the request, not forgotten');
});

test('withQueryParameter keeps an existing query string and fragment', () => {
  const q = 'dfws_recover=%7B%7D';
  assert.equal(withQueryParameter('ws://h/ws/', q), `ws://h/ws/?${q}`);
  assert.equal(withQueryParameter('ws://h/ws/?a=1', q), `ws://h/ws/?a=1&${q}`);
  assert.equal(withQueryParameter('ws://h/ws/?', q), `ws://h/ws/?${q}`);
  assert.equal(withQueryParameter('ws://h/ws/?a=1&dfws_recover=old&b=2', q), `ws://h/ws/?a=1&b=2&${q}`);
  assert.equal(withQueryParameter('ws://h/ws/?dfws_recoverx=1', q), `ws://h/ws/?dfws_recoverx=1&${q}`);
  assert.equal(withQueryParameter('ws://h/ws/?a=1#frag', q), `ws://h/ws/?a=1&${q}#frag`);
  assert.equal(withQueryParameter('ws://h/ws/', ''), 'ws://h/ws/');
});

test('the first connection has no dfws_recover; a reconnect carries every position', () => {
  const { client, WS, clock } = setup();
  const seen = [];
  client.connect('app.tick', (opts) => seen.push(opts.n));
  client.start();
  assert.equal(recoverOf(WS.last.url), null);
  WS.last.serverOpen();
  WS.last.serverSend(delivery('app.tick', { n: 1 }, 'id-1', G1, 'aaaaaaaa-1'));
  WS.last.serverSend(delivery('app.tick', { n: 2 }, 'id-2', G2, 'cccccccc-7'));
  WS.last.serverSend(delivery('app.tick', { n: 3 }, 'id-3', G1, 'aaaaaaaa-2'));
  WS.last.serverClose(1006);
  clock.tick(500);
  assert.equal(WS.instances.length, 2);
  assert.equal(WS.last.url.split('?')[0], 'ws://example.com:8000/ws/');
  assert.deepEqual(recoverOf(WS.last.url), { [G1]: 'aaaaaaaa-2', [G2]: 'cccccccc-7' });
  // the server replays what was missed, then live deliveries follow
  WS.last.serverOpen();
  WS.last.serverSend(delivery('app.tick', { n: 4 }, 'id-4', G1, 'aaaaaaaa-3'));
  WS.last.serverSend(delivery('app.tick', { n: 5 }, 'id-5', G1, 'aaaaaaaa-4'));
  assert.deepEqual(seen, [1, 2, 3, 4, 5]);
  WS.last.serverClose(1012);
  clock.tick(100);
  assert.deepEqual(recoverOf(WS.last.url), { [G1]: 'aaaaaaaa-4', [G2]: 'cccccccc-7' });
});

test('a replayed message already processed is de-duplicated by signal_id, its position still taken', () => {
  const { client, WS, clock } = setup();
  const seen = [];
  client.connect('app.tick', (opts) => seen.push(opts.n));
  client.start();
  WS.last.serverOpen();
  // one signal sent to two topics: one copy per group, same signal_id
  WS.last.serverSend(delivery('app.tick', { n: 1 }, 'id-1', G1, 'aaaaaaaa-1'));
  WS.last.serverSend(delivery('app.tick', { n: 1 }, 'id-1', G2, 'cccccccc-1'));
  // racing triggers: offset 3 before 2
  WS.last.serverSend(delivery('app.tick', { n: 3 }, 'id-3', G1, 'aaaaaaaa-3'));
  WS.last.serverSend(delivery('app.tick', { n: 2 }, 'id-2', G1, 'aaaaaaaa-2'));
  assert.deepEqual(seen, [1, 3, 2]);
  assert.deepEqual(client.positions.toObject(), { [G1]: 'aaaaaaaa-3', [G2]: 'cccccccc-1' });
  WS.last.serverClose(1006);
  clock.tick(500);
  WS.last.serverOpen();
  WS.last.serverSend(delivery('app.tick', { n: 3 }, 'id-3', G1, 'aaaaaaaa-3')); // replayed again
  assert.deepEqual(seen, [1, 3, 2]);
});

test('recovery_failed drops the listed positions before the page handlers run', () => {
  const { client, WS, clock, logger } = setup();
  const failed = [];
  client.connect(RECOVERY_FAILED_SIGNAL, (opts, id) => {
    failed.push([opts.topics, id, { ...client.positions.toObject() }]);
  });
  client.start();
  WS.last.serverOpen();
  WS.last.serverSend(delivery('app.tick', {}, 'id-1', G1, 'aaaaaaaa-1'));
  WS.last.serverSend(delivery('app.tick', {}, 'id-2', G2, 'cccccccc-1'));
  WS.last.serverClose(1006);
  clock.tick(500);
  WS.last.serverOpen();
  WS.last.serverSend(JSON.stringify({
    signal: RECOVERY_FAILED_SIGNAL, opts: { topics: [G1] }, signal_id: 'rf-1',
  }));
  assert.deepEqual(failed, [[[G1], 'rf-1', { [G2]: 'cccccccc-1' }]]);
  assert.equal(logger.matching('warn', /could not be recovered for 1 topic/).length, 1);
  // the same notice twice (one copy per topic) runs the handlers once
  WS.last.serverSend(JSON.stringify({
    signal: RECOVERY_FAILED_SIGNAL, opts: { topics: [G1] }, signal_id: 'rf-1',
  }));
  assert.equal(failed.length, 1);
  // a new epoch's message starts the group again
  WS.last.serverSend(delivery('app.tick', {}, 'id-3', G1, 'dddddddd-1'));
  WS.last.serverClose(1006);
  clock.tick(500);
  assert.deepEqual(recoverOf(WS.last.url), { [G2]: 'cccccccc-1', [G1]: 'dddddddd-1' });
  // malformed opts: handlers run, nothing dropped, nothing thrown
  WS.last.serverOpen();
  WS.last.serverSend(JSON.stringify({ signal: RECOVERY_FAILED_SIGNAL, signal_id: 'rf-2' }));
  WS.last.serverSend(JSON.stringify({ signal: RECOVERY_FAILED_SIGNAL, opts: { topics: 'x' }, signal_id: 'rf-3' }));
  assert.equal(failed.length, 3);
  assert.equal(client.positions.size, 2);
});

test('every position dropped: the next reconnect has no parameter', () => {
  const { client, WS, clock } = setup();
  client.start();
  WS.last.serverOpen();
  WS.last.serverSend(delivery('app.tick', {}, 'id-1', G1, 'aaaaaaaa-1'));
  WS.last.serverSend(JSON.stringify({
    signal: RECOVERY_FAILED_SIGNAL, opts: { topics: [G1] }, signal_id: 'rf-1',
  }));
  WS.last.serverClose(1006);
  clock.tick(500);
  assert.equal(WS.last.url, 'ws://example.com:8000/ws/');
});

test('messages without topic/pos (upstream servers) change no position and are dispatched', () => {
  const { client, WS, clock } = setup();
  let count = 0;
  client.connect('s', () => { count += 1; });
  client.start();
  WS.last.serverOpen();
  WS.last.serverSend('{"signal": "s", "opts": {}, "signal_id": "1"}');
  WS.last.serverSend(delivery('s', {}, '2', G1, 'not a position'));
  WS.last.serverSend(delivery('s', {}, '3', 42, 'aaaaaaaa-1'));
  assert.equal(count, 3);
  assert.equal(client.positions.size, 0);
  WS.last.serverClose(1006);
  clock.tick(500);
  assert.equal(WS.last.url, 'ws://example.com:8000/ws/');
});

test('an existing query string in dfwsurl is kept', () => {
  const { client, WS, clock } = setup({ preset: { wsurl: 'ws://example.com:8000/ws/?tenant=a%20b' } });
  client.start();
  assert.equal(WS.last.url, 'ws://example.com:8000/ws/?tenant=a%20b');
  WS.last.serverOpen();
  WS.last.serverSend(delivery('s', {}, '1', G1, 'aaaaaaaa-9'));
  WS.last.serverClose(1006);
  clock.tick(500);
  assert.match(WS.last.url, /^ws:\/\/example\.com:8000\/ws\/\?tenant=a%20b&dfws_recover=/);
  assert.deepEqual(recoverOf(WS.last.url), { [G1]: 'aaaaaaaa-9' });
  assert.equal(client.wsurl, 'ws://example.com:8000/ws/?tenant=a%20b', 'wsurl itself unchanged');
});

test('recover: false never sends the parameter; a page restored from the back/forward cache sends it', async () => {
  let { client, WS, clock } = setup({ config: { recover: false } });
  client.start();
  WS.last.serverOpen();
  WS.last.serverSend(delivery('s', {}, '1', G1, 'aaaaaaaa-1'));
  WS.last.serverClose(1006);
  clock.tick(500);
  assert.equal(WS.last.url, 'ws://example.com:8000/ws/');

  ({ client, WS } = setup());
  client.start();
  WS.last.serverOpen();
  WS.last.serverSend(delivery('s', {}, '1', G1, 'aaaaaaaa-1'));
  client.stop(); // page hidden (back/forward cache) ...
  client.resume(); // ... and shown again: a reconnect
  assert.deepEqual(recoverOf(WS.last.url), { [G1]: 'aaaaaaaa-1' });
});

test('the request line of a reconnect stays within 8190 bytes, whatever the wsurl', () => {
  assert.equal(parameterBudget('ws://h:1/ws/'), MAX_REQUEST_LINE - 'GET /ws/ HTTP/1.1'.length - 1);
  assert.equal(parameterBudget('wss://h/a/b?x=1#f'), MAX_REQUEST_LINE - 'GET /a/b?x=1 HTTP/1.1'.length - 1);
  const longPath = `/ws/${'p'.repeat(3000)}/?tenant=${'t'.repeat(1000)}`;
  const { client, WS, clock } = setup({
    preset: { wsurl: `ws://example.com:8000${longPath}` }, config: { recoverMaxTopics: 500 },
  });
  client.start();
  WS.last.serverOpen();
  for (let i = 0; i < 200; i += 1) {
    WS.last.serverSend(delivery('s', {}, `id-${i}`, i.toString(16).padStart(64, '0'), `abcdef01-${i + 1}`));
  }
  WS.last.serverClose(1006);
  clock.tick(500);
  const { url } = WS.last;
  const target = url.slice('ws://example.com:8000'.length);
  assert.ok(`GET ${target} HTTP/1.1`.length <= MAX_REQUEST_LINE, String(target.length));
  assert.ok(target.startsWith(`${longPath}&dfws_recover=`));
  const sent = recoverOf(url);
  assert.ok(Object.keys(sent).length > 20, 'as many as fit');
  assert.equal(sent[(199).toString(16).padStart(64, '0')], 'abcdef01-200', 'the newest kept');
});
