import { WorkQueue } from '@klb/core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('work queue');

test('a key added many times while waiting is handed out once', async () => {
  const q = new WorkQueue();
  for (let i = 0; i < 5; i++) q.add('a');
  q.add('b');
  assert.is(q.length, 2);
  assert.is(await q.get(), 'a');
  assert.is(await q.get(), 'b');
  assert.is(q.length, 0);
});

test('a key is never handed to two workers; added while processing, it comes back after done()', async () => {
  const q = new WorkQueue();
  q.add('k');
  const first = await q.get();
  q.add('k');
  let second: string | undefined;
  void q.get().then((k) => {
    second = k;
  });
  await new Promise((r) => setTimeout(r, 20));
  assert.is(second, undefined, 'not handed out while processing');
  q.done(first as string);
  await new Promise((r) => setTimeout(r, 0));
  assert.is(second, 'k');
});

test('rate-limited adds back off exponentially per key and forget() resets', () => {
  const q = new WorkQueue({ backoff: { baseMs: 100, maxMs: 1000 } });
  const delays = [
    q.addRateLimited('x'),
    q.addRateLimited('x'),
    q.addRateLimited('x'),
    q.addRateLimited('x'),
    q.addRateLimited('x'),
  ];
  assert.equal(delays, [100, 200, 400, 800, 1000]);
  assert.is(q.failures('x'), 5);
  q.forget('x');
  assert.is(q.addRateLimited('x'), 100);
  q.shutDown();
});

test('a global token bucket limits retries across keys', () => {
  const q = new WorkQueue({ backoff: { baseMs: 1, maxMs: 1 }, retriesPerSecond: 10, retryBurst: 3 });
  const delays = ['a', 'b', 'c', 'd', 'e'].map((k) => q.addRateLimited(k));
  assert.equal(delays.slice(0, 3), [1, 1, 1], 'the burst passes');
  assert.ok((delays[3] ?? 0) >= 90 && (delays[4] ?? 0) >= 190, `then 10/s: ${delays.join(', ')}`);
  q.shutDown();
});

test('addAfter keeps the earliest pending delay and delivers the key', async () => {
  const q = new WorkQueue();
  q.addAfter('late', 10_000);
  q.addAfter('late', 10);
  assert.is(await q.get(), 'late');
  q.shutDown();
});

test('shutDown releases waiting workers', async () => {
  const q = new WorkQueue();
  const waiting = q.get();
  q.shutDown();
  assert.is(await waiting, undefined);
  q.add('ignored');
  assert.is(q.length, 0);
});

test.run();
