// A small run of `npm run chaos` (bench/chaos/): bad frames from a fixed seed, a chat load
// under DynamoDB and post faults, and one under killed frames invocations. Nothing is lost,
// no copy carries another stanza-id, and no bad frame crashes or hangs the server. Waits are
// for answers, with generous limits: the machine may be slow; no assertion is about time.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { LoadCounts } from '../../bench/chaos/load.ts';
import { faultLoadScenario, fuzzScenario } from '../../bench/chaos/scenarios.ts';
import '../helpers.ts';

function assertNothingLost(counts: LoadCounts): void {
  assert.equal(counts.stored, counts.sent, 'every message gets its server receipt');
  assert.equal(counts.delivered, counts.sent, 'every message reaches its recipient');
  assert.equal(counts.lost, 0);
  assert.equal(counts.mismatchedIds, 0, 'a second copy carries the first copy’s stanza-id');
  assert.equal(counts.ackMismatches, 0, 'a second server receipt carries the same stanza-id');
}

describe('chaos (small run)', () => {
  test('fuzz: 300 bad frames from a fixed seed; no crash, no hang, right stream errors; then a message and its receipt', async () => {
    const { result, failures, loginAfterwards } = await fuzzScenario({
      frames: 300,
      seed: 11,
      workers: 4,
      // A hang is a frame never answered; how fast answers come is the full run's business.
      hangMs: 30_000,
    });
    assert.equal(result.frames, 300);
    assert.equal(result.hangs, 0);
    assert.deepEqual(result.wrongEnds, []);
    assert.equal(result.internalErrors, 0);
    assert.equal(result.unparsable, 0);
    assert.deepEqual(failures, { framesFailed: 0, deadLetters: 0, errorsLogged: [] });
    assert.ok(loginAfterwards, 'a fresh login sends a message and gets its receipts');
    // Every category was tried, and those with one right answer got it.
    assert.equal(Object.keys(result.categories).length, 11);
    assert.deepEqual(Object.keys(result.categories['doctype-entities']?.streamErrors ?? {}), [
      'restricted-xml',
    ]);
    assert.deepEqual(Object.keys(result.categories.binary?.streamErrors ?? {}), ['unsupported-encoding']);
  });

  test('DynamoDB calls and posts failing 5 % each: 200 messages, nothing lost', async () => {
    const { counts, failures, faults } = await faultLoadScenario(
      { ddb: 0.05, post: 0.05, kill: 0, seed: 11 },
      { pairs: 2, messagesPerUser: 50, timeoutMs: 240_000 },
    );
    assert.equal(counts.sent, 200);
    assertNothingLost(counts);
    assert.equal(failures.deadLetters, 0);
    assert.ok(faults.ddbThrottled > 0 && faults.ddbServerErrors > 0 && faults.postsFailed > 0);
  });

  test('frames invocations killed mid-batch: replays show only as copies with the same stanza-id', async () => {
    const { counts, failures, faults } = await faultLoadScenario(
      { ddb: 0, post: 0, kill: 0.5, seed: 11 },
      { pairs: 2, messagesPerUser: 30, timeoutMs: 240_000 },
    );
    assert.equal(counts.sent, 120);
    assertNothingLost(counts);
    assert.equal(failures.deadLetters, 0);
    assert.ok(faults.invocationsKilled > 0, 'at least one invocation was killed');
  });
});
