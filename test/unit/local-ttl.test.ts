// The local stand-in for DynamoDB's TTL process and the stream's event source mapping
// (infra/local/ttl.ts): what it hands the handler, and how it retries, as Lambda does.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBBatchResponse, DynamoDBStreamEvent } from 'aws-lambda';
import { LocalTimeToLive } from '../../infra/local/ttl.ts';

const expired = [
  { pk: 'CONN#c1', sk: '#CONN', connectionId: 'c1', expiresAt: 1 },
  { pk: 'CONN#c1', sk: '#ROOMS', rooms: new Set(['room@conference.localhost']), expiresAt: 1 },
  { pk: 'ROOM#room@conference.localhost', sk: '#OCC#bob@localhost/phone', c: 'c1', expiresAt: 1 },
].map((item) => marshall(item));

/** A table holding `expired`: a Scan returns them, a DeleteItem returns the old image. */
function fakeTable() {
  const deleted: string[] = [];
  const dynamo = {
    send: async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      if (command.constructor.name === 'ScanCommand') return { Items: expired };
      const key = command.input.Key as { sk: { S: string } };
      deleted.push(key.sk.S);
      return { Attributes: expired.find((item) => item.sk?.S === key.sk.S) };
    },
  } as unknown as DynamoDBClient;
  return { dynamo, deleted };
}

const sks = (event: DynamoDBStreamEvent) => event.Records.map((record) => record.dynamodb?.Keys?.sk?.S);

describe('local TTL process', () => {
  test('deletes every expired item, hands on the filtered ones, retries from a failed record', async () => {
    const { dynamo, deleted } = fakeTable();
    const batches: (string | undefined)[][] = [];
    let failOnce = true;
    const handler = async (event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> => {
      batches.push(sks(event));
      const second = event.Records[1]?.dynamodb?.SequenceNumber;
      if (failOnce && second) {
        failOnce = false;
        return { batchItemFailures: [{ itemIdentifier: second }] };
      }
      return { batchItemFailures: [] };
    };
    const ttl = new LocalTimeToLive({ dynamo, tableName: 't', handler, intervalMs: 0 });
    assert.equal(await ttl.sweep(), 3);
    assert.deepEqual(deleted, ['#CONN', '#ROOMS', '#OCC#bob@localhost/phone']);
    // The room pool is not one of the stream's items; the occupant is retried alone.
    assert.deepEqual(batches, [['#CONN', '#OCC#bob@localhost/phone'], ['#OCC#bob@localhost/phone']]);
    assert.equal(ttl.delivered, 2);
    assert.deepEqual(ttl.failed, []);
  });

  test('a handler that keeps throwing: each record goes to the failures after its attempts', async () => {
    const { dynamo } = fakeTable();
    let calls = 0;
    const handler = async (): Promise<DynamoDBBatchResponse> => {
      calls++;
      throw new Error('throttled');
    };
    const ttl = new LocalTimeToLive({ dynamo, tableName: 't', handler, intervalMs: 0, maxAttempts: 2 });
    const quiet = console.error;
    console.error = () => {};
    try {
      await ttl.sweep();
    } finally {
      console.error = quiet;
    }
    assert.equal(calls, 4);
    assert.deepEqual(
      ttl.failed.map((record) => record.dynamodb?.Keys?.sk?.S),
      ['#CONN', '#OCC#bob@localhost/phone'],
    );
    assert.equal(ttl.delivered, 0);
  });
});
