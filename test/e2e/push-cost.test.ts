// Issue #16's cost budget for XEP-0357, counted by the bench (bench/push-cost.ts) on a real
// system: a push registration adds no DynamoDB request to the online message path and at most
// 0.5 read units to the offline one; the frames function queues one job and moves on.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { measurePushCost } from '../../bench/push-cost.ts';

test('push costs the message path nothing online and at most 0.5 read units offline', async () => {
  const cost = await measurePushCost();
  assert.equal(cost.online.dynamoRequests, cost.onlineWithout.dynamoRequests);
  assert.equal(cost.online.readUnits, cost.onlineWithout.readUnits);
  assert.equal(cost.online.writeUnits, cost.onlineWithout.writeUnits);
  assert.equal(cost.online.posts, cost.onlineWithout.posts);
  assert.ok(
    cost.offlineStored.readUnits <= cost.offlineStoredWithout.readUnits + 0.5,
    `offline: ${cost.offlineStored.readUnits} RU with push, ${cost.offlineStoredWithout.readUnits} without`,
  );
  assert.equal(cost.offlineStored.dynamoRequests, cost.offlineStoredWithout.dynamoRequests);
  assert.equal(cost.offlineStored.writeUnits, cost.offlineStoredWithout.writeUnits);
  assert.equal(cost.queuedJobs, 1);
  assert.equal(cost.notifications, 1);
  // The push function: the pending state (1 WU), a consistent read and the sent mark.
  assert.deepEqual(
    { requests: cost.pushFunction.requests, writeUnits: cost.pushFunction.writeUnits },
    { requests: 3, writeUnits: 2 },
  );
});
