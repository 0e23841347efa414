// A small run of `npm run bench` (bench/run.ts), so that the benchmark cannot rot: every
// section runs, and the counts hold — every message, server receipt and delivery receipt
// exactly once, every drained message once with its delay, the CPU harness on the intended
// paths. Timings are never asserted: a slow machine must not fail this.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { functionEntries } from '../../bench/bundles.ts';
import { FRAMES_TIMEOUT_MS, type InvocationTimes } from '../../bench/harness.ts';
import { type BenchResults, DEFAULT_OPTIONS, runBench, writeResults } from '../../bench/run.ts';

/** Counted against the deployed timeout, and none outlasted it (the time itself is not asserted). */
function assertWithinTimeout(times: InvocationTimes | undefined, work: string): void {
  assert.ok(times, `${work}: no invocation figures`);
  assert.equal(times.functionTimeoutMs, FRAMES_TIMEOUT_MS, work);
  assert.ok(times.invocations > 0, `${work}: no frames invocations counted`);
  assert.ok(Number.isFinite(times.longestMs) && times.longestMs >= 0, `${work}: longest ${times.longestMs}`);
  assert.equal(times.overTimeout, 0, `${work}: ${JSON.stringify(times)}`);
}

describe('benchmark smoke run', () => {
  test('K=2, M=3, W=2, a backlog of 5: everything exactly once, every section reported', async (t) => {
    const results: BenchResults = await runBench({
      ...DEFAULT_OPTIONS,
      load: { pairs: 2, messages: 3, window: 2, bodyBytes: 1024 },
      backlogs: [5],
      roster: null, // its own system; test/e2e/presence-cost.test.ts runs it
      roomSizes: [2], // its own system too; test/e2e/muc-cost.test.ts compares sizes
      cpuIterations: 200,
      importRuns: 0, // sizes only: import timings take fresh processes and say nothing here
    });
    assert.deepEqual(results.errors, []);

    const load = results.load;
    assert.ok(load);
    assert.equal(load.messages, 12);
    assert.equal(load.exactlyOnce.ok, true, JSON.stringify(load.exactlyOnce));
    assert.equal(load.exactlyOnce.deliveredOnce, 12);
    assert.equal(load.exactlyOnce.receiptsOnce, 12);
    assert.equal(load.deliveryMs.count, 12);
    assert.equal(load.cost.posts, 36); // per message: server receipt, push, delivery receipt

    const cost = results.messageCost;
    assert.ok(cost);
    assert.equal(cost.online.posts, 3);
    assert.ok(results.sessions && results.sessions.ping.posts === 1);

    const [drain] = results.drain ?? [];
    assert.ok(drain);
    assert.equal(drain.backlog, 5);
    assert.equal(drain.exactlyOnce.ok, true, JSON.stringify(drain.exactlyOnce));
    // One page read them all; nothing was held for the drain, so the gate opened at once, with
    // no read after it (lib/offline.ts).
    assert.equal(drain.drainReads.requests, 1);
    assert.ok(drain.storedBytes > 0);
    assertWithinTimeout(drain.framesInvocations, 'drain of 5');

    // Every function the stack deploys, found in functions/ (a new one is measured unlisted).
    const entries = functionEntries();
    for (const entry of ['functions/connect.ts', 'functions/frames.ts', 'functions/expired.ts'])
      assert.ok(entries.includes(entry), entry);
    assert.deepEqual(
      results.bundles?.bundles.map((bundle) => bundle.entry),
      entries,
    );
    for (const bundle of results.bundles?.bundles ?? []) assert.ok(bundle.bytes > 0);
    // The server ran in a process of its own: its CPU was measured, apart from the clients'.
    assert.ok(load.cpuPerMessageMs.server > 0, JSON.stringify(load.cpuPerMessageMs));
    assert.deepEqual(
      results.cpu?.cases.map((entry) => entry.postsPerStanza),
      [2, 1], // the message: server receipt and push; the receipt: routed to the sender
    );
    assert.ok(results.money && results.money.perMillionMessages.total > 0);
    const [room] = results.rooms ?? [];
    assert.ok(room);
    assert.equal(room.posts, 2);
    assert.ok(room.occupantListBytes > 0);
    assertWithinTimeout(room.framesInvocations, 'room message to 2');
    assert.equal(results.targets.length, 17);
    // The push budget (issue 16), measured on a system of its own.
    for (const name of ['XEP-0357: DynamoDB requests', 'XEP-0357: read units']) {
      const target = results.targets.find((entry) => entry.name.startsWith(name));
      assert.equal(target?.reached, true, JSON.stringify(target));
    }
    const withinTimeout = results.targets.find((target) => target.name.startsWith('every invocation within'));
    assert.equal(withinTimeout?.reached, true, JSON.stringify(withinTimeout));

    const directory = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
    try {
      writeResults(results, directory);
      for (const name of ['latest.json', 'latest.md', 'latency.svg', 'room-cost.svg'])
        assert.ok(existsSync(join(directory, name)));
      for (const chart of ['latency.svg', 'room-cost.svg'])
        assert.match(readFileSync(join(directory, chart), 'utf8'), /^<svg [^>]*>[\s\S]*<\/svg>\n$/);
      const markdown = readFileSync(join(directory, 'latest.md'), 'utf8');
      assert.match(markdown, /## 1\. One-to-one load/);
      assert.match(markdown, /### Frames invocations against the function timeout/);
      const json = JSON.parse(readFileSync(join(directory, 'latest.json'), 'utf8')) as BenchResults;
      assertWithinTimeout(json.drain?.[0]?.framesInvocations, 'drain of 5, in latest.json');
      assertWithinTimeout(json.rooms?.[0]?.framesInvocations, 'room message to 2, in latest.json');
      t.diagnostic(markdown.split('\n').slice(0, 14).join('\n'));
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});
