// functions/frames.ts handleBatch: each connection's frames in order, different connections
// concurrently, and a failed frame holding back only its own connection's later frames.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { handleBatch, RECORD_START_MARGIN_MS } from '../../functions/frames.ts';
import type { Context } from '../../lib/ports.ts';

const silent = { debug() {}, info() {}, warn() {}, error() {} };

function context(remainingMs?: () => number): Context {
  return { logger: silent, remainingMs } as unknown as Context;
}

const record = (group: string, id: string): SQSRecord =>
  ({
    messageId: id,
    body: id,
    attributes: { MessageGroupId: group },
    messageAttributes: {},
  }) as unknown as SQSRecord;

const batch = (...records: SQSRecord[]): SQSEvent => ({ Records: records });

describe('frames batch', () => {
  test('frames of different connections run concurrently, each connection’s in order', {
    timeout: 10_000,
  }, async () => {
    const log: string[] = [];
    let bDone: () => void = () => {};
    const bHandled = new Promise<void>((resolve) => {
      bDone = resolve;
    });
    const failures = await handleBatch(
      context(),
      batch(record('a', 'a1'), record('a', 'a2'), record('b', 'b1')),
      async (_ctx, r) => {
        log.push(`start ${r.messageId}`);
        // a1 can only finish once b1 was handled: one after another, this would never end.
        if (r.messageId === 'a1') await bHandled;
        if (r.messageId === 'b1') bDone();
        log.push(`end ${r.messageId}`);
      },
    );
    assert.deepEqual(failures, []);
    assert.ok(log.indexOf('end b1') < log.indexOf('end a1'));
    assert.ok(log.indexOf('end a1') < log.indexOf('start a2'), 'a2 starts after a1 ended');
  });

  test('a failed frame holds back its connection’s later frames, not the others’', async () => {
    const handled: string[] = [];
    const failures = await handleBatch(
      context(),
      batch(record('a', 'a1'), record('b', 'b1'), record('a', 'a2'), record('b', 'b2')),
      async (_ctx, r) => {
        if (r.messageId === 'a1') throw new Error('boom');
        handled.push(r.messageId);
      },
    );
    assert.deepEqual(failures, [{ itemIdentifier: 'a1' }, { itemIdentifier: 'a2' }]);
    assert.deepEqual(handled, ['b1', 'b2']);
  });

  test('short of time, no record starts: all go back to the queue', async () => {
    const handled: string[] = [];
    const failures = await handleBatch(
      context(() => RECORD_START_MARGIN_MS - 1),
      batch(record('a', 'a1'), record('b', 'b1')),
      async (_ctx, r) => {
        handled.push(r.messageId);
      },
    );
    assert.deepEqual(handled, []);
    assert.deepEqual(failures, [{ itemIdentifier: 'a1' }, { itemIdentifier: 'b1' }]);
  });
});
