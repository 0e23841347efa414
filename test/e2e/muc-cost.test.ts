// The room-cost benchmark in small: the writes of a room message do not depend on the
// room's size, and posts equal occupants (counted, never timed).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatRoomCosts, measureRoomCost } from '../../bench/room-cost.ts';

describe('room message cost', () => {
  test('1 and 8 occupants: the same writes and requests, one post per occupant', async (t) => {
    const costs = [await measureRoomCost(1), await measureRoomCost(8)];
    t.diagnostic(formatRoomCosts(costs));
    for (const cost of costs) {
      assert.ok(cost.writeUnits <= 2, `write units ${cost.writeUnits}`);
      assert.equal(cost.posts, cost.occupants);
    }
    assert.equal(costs[0]?.writeUnits, costs[1]?.writeUnits);
    assert.equal(costs[0]?.dynamoRequests, costs[1]?.dynamoRequests);
  });
});
