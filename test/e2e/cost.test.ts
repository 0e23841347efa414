// The cost of one message with its receipt, counted (not timed): capacity units are
// deterministic, so this can fail only when the design changes. It also keeps the
// measurement script from rotting.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatReport, measureMessageCost } from '../../bench/message-cost.ts';

describe('message cost', () => {
  test('one 1 KB message with its receipt: 4 write units, at most 2 read units, 3 posts, 2 invocations', async (t) => {
    const report = await measureMessageCost(1024);
    t.diagnostic(formatReport(report));
    assert.equal(report.online.writeUnits, 4);
    assert.ok(report.online.readUnits <= 2, `read units ${report.online.readUnits}`);
    assert.equal(report.online.posts, 3); // server receipt, push, delivery receipt
    assert.equal(report.online.invocations, 2);
    // Includes the login that drains it: the drain gate's lease is removed with 1 write unit.
    assert.ok(report.offline.writeUnits <= 9, `offline write units ${report.offline.writeUnits}`);
  });
});
