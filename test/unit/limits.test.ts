// lib/limits.ts: the token bucket per connection and the cache that keeps them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultConfig } from '../../lib/config.ts';
import {
  BURST_SECONDS,
  type Bucket,
  FrameRateLimiter,
  frameRateLimiter,
  takeFrame,
} from '../../lib/limits.ts';
import type { Context } from '../../lib/ports.ts';

const rates = { framesPerSecond: 10, bytesPerSecond: 1000 };

/** Sends `count` frames of `bytes` at the times `at(i)`; returns how many were admitted. */
function send(count: number, at: (index: number) => number, bytes = 1, start?: Bucket) {
  let bucket = start;
  let admitted = 0;
  for (let index = 0; index < count; index++) {
    const result = takeFrame(bucket, rates, at(index), bytes);
    if (!result.admitted) return { admitted, bucket: result.bucket, refusedAt: index };
    admitted++;
    bucket = result.bucket;
  }
  return { admitted, bucket, refusedAt: undefined };
}

test('a new connection may send a burst of BURST_SECONDS of its rate at once, not one frame more', () => {
  const burst = rates.framesPerSecond * BURST_SECONDS;
  const { admitted, refusedAt } = send(burst + 1, () => 1000);
  assert.equal(admitted, burst);
  assert.equal(refusedAt, burst);
});

test('at the rate, a connection is never refused, however long it keeps going', () => {
  const interval = 1000 / rates.framesPerSecond;
  const { admitted, refusedAt } = send(10_000, (index) => index * interval);
  assert.equal(refusedAt, undefined);
  assert.equal(admitted, 10_000);
});

test('over the rate, a connection is refused once the burst is used up', () => {
  // 20 % over the rate: the burst lasts burst / (12 - 10 a second).
  const interval = 1000 / (rates.framesPerSecond * 1.2);
  const expected = (rates.framesPerSecond * BURST_SECONDS) / (rates.framesPerSecond * 0.2);
  const { refusedAt } = send(100_000, (index) => index * interval);
  assert.ok(refusedAt !== undefined);
  const seconds = (refusedAt * interval) / 1000;
  assert.ok(Math.abs(seconds - expected) < 1, `refused after ${seconds} s, expected ${expected} s`);
});

test('bytes are limited as frames are: a few big frames over the byte rate are refused', () => {
  const { admitted } = send(100, () => 0, 600);
  // BURST_SECONDS × 1000 bytes: that many frames of 600 bytes fit, not one more.
  assert.equal(admitted, Math.floor((rates.bytesPerSecond * BURST_SECONDS) / 600));
});

test('an idle connection refills, never beyond the bucket', () => {
  const { bucket } = send(rates.framesPerSecond * BURST_SECONDS, () => 0);
  assert.equal(bucket?.frames, 0);
  const refilled = takeFrame(bucket, rates, 60_000, 1).bucket;
  assert.equal(refilled.frames, rates.framesPerSecond * BURST_SECONDS - 1);
  assert.equal(refilled.bytes, rates.bytesPerSecond * BURST_SECONDS - 1);
});

test('a frame stamped before the last one (clock skew, a retry) refills nothing', () => {
  const first = takeFrame(undefined, rates, 5000, 1).bucket;
  const earlier = takeFrame(first, rates, 1000, 1).bucket;
  assert.equal(earlier.frames, first.frames - 1);
  assert.equal(earlier.at, 5000);
});

test('the limiter: exceeded once, then closed for the frames queued behind; other connections unaffected', () => {
  const limiter = new FrameRateLimiter();
  const burst = rates.framesPerSecond * BURST_SECONDS;
  for (let index = 0; index < burst; index++) assert.equal(limiter.admit('a', rates, 0, 1), 'admitted');
  assert.equal(limiter.admit('a', rates, 0, 1), 'exceeded');
  assert.equal(limiter.admit('a', rates, 0, 1), 'closed');
  // Even much later: the stream is closed.
  assert.equal(limiter.admit('a', rates, 3_600_000, 1), 'closed');
  assert.equal(limiter.admit('b', rates, 0, 1), 'admitted');
  limiter.forget('a');
  assert.equal(limiter.admit('a', rates, 0, 1), 'admitted');
});

test('the limiter remembers a bounded number of connections, the least recently seen go first', () => {
  const limiter = new FrameRateLimiter(3);
  for (const id of ['a', 'b', 'c']) limiter.admit(id, rates, 0, 1);
  limiter.admit('a', rates, 1, 1); // a is now the most recently seen
  limiter.admit('d', rates, 2, 1); // b goes
  assert.equal(limiter.size, 3);
  // b starts again with a full bucket; a kept its count.
  for (let index = 0; index < rates.framesPerSecond * BURST_SECONDS; index++) {
    assert.equal(limiter.admit('b', rates, 2, 1), 'admitted');
  }
  assert.equal(limiter.admit('b', rates, 2, 1), 'exceeded');
});

test('one limiter per container: a context wrapped for one invocation shares it, another system does not', () => {
  const ctx = { config: defaultConfig() } as unknown as Context;
  const wrapped = { ...ctx, gateway: undefined } as unknown as Context;
  assert.equal(frameRateLimiter(wrapped), frameRateLimiter(ctx));
  const other = { config: defaultConfig() } as unknown as Context;
  assert.notEqual(frameRateLimiter(other), frameRateLimiter(ctx));
});
