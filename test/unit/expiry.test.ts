// The TTL path's pure parts: which stream records are TTL deletions the stack lets through
// (infra/local/ttl.ts filters as the stack does), and what a deleted item's old image ended.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import { createExpiredHandler, isTtlDeletion } from '../../functions/expired.ts';
import { passesExpiryFilter } from '../../infra/local/ttl.ts';
import type { Context } from '../../lib/ports.ts';
import { expiredItem } from '../../lib/store/dynamo.ts';
import { TTL_DELETION } from '../../lib/store/schema.ts';

const connectionImage = {
  pk: 'CONN#c1',
  sk: '#CONN',
  connectionId: 'c1',
  state: 'bound',
  user: 'bob@localhost',
  resource: 'phone',
  connectedAt: 1,
  expiresAt: 7260,
};
const occupantImage = {
  pk: 'ROOM#room@conference.localhost',
  sk: '#OCC#bob@localhost/phone',
  nick: 'Bob',
  c: 'c1',
  role: 'participant',
  aff: 'member',
  expiresAt: 7260,
};

function record(image: Record<string, unknown>, ttl = true): DynamoDBRecord {
  const marshalled = marshall(image) as NonNullable<NonNullable<DynamoDBRecord['dynamodb']>['OldImage']>;
  return {
    eventName: 'REMOVE',
    ...(ttl ? { userIdentity: { ...TTL_DELETION.userIdentity } } : {}),
    dynamodb: {
      Keys: { pk: marshalled.pk as never, sk: marshalled.sk as never },
      OldImage: marshalled,
      SequenceNumber: '1',
    },
  };
}

describe('expired items', () => {
  test('a deleted connection and a deleted occupant say what ended', () => {
    assert.deepEqual(expiredItem(connectionImage), {
      kind: 'connection',
      connection: { connectionId: 'c1', user: 'bob@localhost', resource: 'phone', expiresAt: 7260 },
    });
    assert.deepEqual(expiredItem(occupantImage), {
      kind: 'occupant',
      occupant: {
        room: 'room@conference.localhost',
        jid: 'bob@localhost/phone',
        nick: 'Bob',
        connectionId: 'c1',
        role: 'participant',
        affiliation: 'member',
        expiresAt: 7260,
      },
    });
  });

  test('other items end nothing', () => {
    for (const image of [
      { pk: 'CONN#c1', sk: '#ROOMS', rooms: new Set(['room@conference.localhost']), expiresAt: 7260 },
      { pk: 'USER#bob@localhost', sk: 'SESSION#phone', expiresAt: 7260 },
      { pk: 'INBOX#bob@localhost', sk: 'MSG#alice@localhost#1', expiresAt: 7260 },
    ]) {
      assert.equal(expiredItem(image), undefined, image.sk);
    }
  });

  test('the filter passes TTL deletions of connections and occupants only', () => {
    assert.equal(passesExpiryFilter(record(connectionImage)), true);
    assert.equal(passesExpiryFilter(record(occupantImage)), true);
    // $disconnect's own delete: no userIdentity.
    assert.equal(passesExpiryFilter(record(connectionImage, false)), false);
    assert.equal(isTtlDeletion(record(connectionImage, false)), false);
    assert.equal(passesExpiryFilter(record({ pk: 'CONN#c1', sk: '#ROOMS', expiresAt: 1 })), false);
    assert.equal(passesExpiryFilter({ ...record(connectionImage), eventName: 'MODIFY' }), false);
  });

  test('the handler leaves anything but a TTL deletion alone', async () => {
    const untouchable = new Proxy(
      {},
      {
        get: () => {
          throw new Error('the store was used');
        },
      },
    );
    const ctx = { store: untouchable, gateway: untouchable, logger: console } as unknown as Context;
    const handler = createExpiredHandler(() => ctx);
    const result = await handler({ Records: [record(connectionImage, false), record(occupantImage, false)] });
    assert.deepEqual(result, { batchItemFailures: [] });
  });

  test('a record that fails is reported, and the ones after it wait for its retry', async () => {
    const failing = new Proxy(
      {},
      {
        get: () => async () => {
          throw new Error('throttled');
        },
      },
    );
    const quiet = () => {};
    const logger = { debug: quiet, info: quiet, warn: quiet, error: quiet };
    const ctx = { store: failing, gateway: failing, logger } as unknown as Context;
    const second = {
      ...record(occupantImage),
      dynamodb: { ...record(occupantImage).dynamodb, SequenceNumber: '2' },
    };
    const result = await createExpiredHandler(() => ctx)({ Records: [record(connectionImage), second] });
    assert.deepEqual(result, { batchItemFailures: [{ itemIdentifier: '1' }] });
  });
});
