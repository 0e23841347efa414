// The cost of one message with its receipt, counted (not timed): capacity units are
// deterministic, so this can fail only when the design changes. It also keeps the
// measurement script from rotting.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatReport, measureMessageCost } from '../../bench/message-cost.ts';
import { formatSlotCost, measureSlotCost, requesting } from '../../bench/upload-cost.ts';

describe('message cost', () => {
  test('one 1 KB message with its receipt: 4 write units with the archive (2 without), at most 2 read units, 3 posts; a MAM page is one query', async (t) => {
    const report = await measureMessageCost(1024);
    t.diagnostic(formatReport(report));
    // The message (1 WU, unlisted: no index entry), both archive items (1 WU each), delivered (1 WU).
    assert.equal(report.online.writeUnits, 4);
    assert.ok(report.online.readUnits <= 2, `read units ${report.online.readUnits}`);
    assert.equal(report.online.posts, 3); // server receipt, push, delivery receipt
    assert.equal(report.online.invocations, 2);
    assert.ok(report.onlineArchiveOff);
    assert.ok(
      report.onlineArchiveOff.writeUnits <= 2,
      `archive off: ${report.onlineArchiveOff.writeUnits} WU`,
    );
    assert.ok(report.onlineArchiveOff.readUnits <= 2, `archive off: ${report.onlineArchiveOff.readUnits} RU`);
    assert.equal(report.onlineArchiveOff.posts, 3);
    // The recipient's and the sender's accounts (one request), the message, the mark (which
    // returns the sender's route, so the receipt needs no read); the archive's one batch write
    // more with it on.
    assert.ok(
      report.onlineArchiveOff.dynamoRequests <= 3,
      `archive off: ${report.onlineArchiveOff.dynamoRequests} requests`,
    );
    assert.ok(report.online.dynamoRequests <= 4, `${report.online.dynamoRequests} requests`);
    // Includes the login that drains it: the drain gate's lease is removed with 1 write unit.
    assert.ok(report.offline.writeUnits <= 11, `offline write units ${report.offline.writeUnits}`);
    const page = report.archivePage;
    assert.ok(page);
    assert.equal(page.messages, 50);
    assert.equal(page.query.requests, 1);
    assert.ok(
      page.query.readUnits <= page.bytes / 4096 + 1,
      `${page.query.readUnits} RU for ${page.bytes} B`,
    );
  });

  test('one XEP-0363 upload slot: the quota counter alone, 1 write unit in 1 request, and the answer', async (t) => {
    const { slot, byMethod } = await measureSlotCost();
    t.diagnostic(formatSlotCost({ slot, byMethod }));
    assert.equal(slot.writeUnits, 1);
    assert.equal(slot.readUnits, 0);
    assert.equal(slot.dynamoRequests, 1);
    assert.deepEqual(requesting(byMethod), ['countUpload']);
    assert.equal(slot.posts, 1);
    assert.equal(slot.invocations, 1);
  });
});
