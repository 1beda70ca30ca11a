import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay } from '../src/backoff.js';
import { BoundedIdSet } from '../src/idcache.js';

test('backoff doubles from 0.5 s and is capped at 30 s', () => {
  const noJitter = () => 0;
  const delays = [];
  for (let attempt = 0; attempt < 10; attempt += 1) {
    delays.push(backoffDelay(attempt, { random: noJitter }));
  }
  assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
  assert.equal(backoffDelay(1000, { random: noJitter }), 30000);
});

test('jitter only shortens the delay, by at most the jitter fraction', () => {
  for (let attempt = 0; attempt < 12; attempt += 1) {
    const full = Math.min(30000, 500 * 2 ** attempt);
    assert.equal(backoffDelay(attempt, { random: () => 0.999999 }), Math.round(full * (1 - 0.5 * 0.999999)));
    for (let i = 0; i < 50; i += 1) {
      const d = backoffDelay(attempt);
      assert.ok(d >= full / 2 && d <= full, `attempt ${attempt}: ${d}`);
    }
  }
  assert.equal(backoffDelay(3, { random: () => 0.5, jitter: 0 }), 4000);
  assert.equal(backoffDelay(0, { base: 100, max: 150, random: () => 0 }), 100);
  assert.equal(backoffDelay(5, { base: 100, max: 150, random: () => 0 }), 150);
});

test('BoundedIdSet remembers at most its capacity, least recent evicted', () => {
  const ids = new BoundedIdSet(3);
  assert.equal(ids.add('a'), true);
  assert.equal(ids.add('b'), true);
  assert.equal(ids.add('c'), true);
  assert.equal(ids.add('a'), false); // seen; refreshed
  assert.equal(ids.add('d'), true); // evicts b
  assert.equal(ids.size, 3);
  assert.equal(ids.has('b'), false);
  assert.equal(ids.has('a'), true);
  for (let i = 0; i < 10000; i += 1) {
    ids.add(`id-${i}`);
  }
  assert.equal(ids.size, 3);
});
