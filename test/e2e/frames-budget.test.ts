// functions/frames.ts keeps a batch inside the function's timeout: a record starts only while
// enough of the invocation is left (Lambda's getRemainingTimeInMillis); the records it did not
// start are reported as batch item failures, so SQS delivers them again, and no record that
// ran is replayed.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import type { Context as LambdaContext, SQSRecord } from 'aws-lambda';
import { createFramesHandler, RECORD_START_MARGIN_MS } from '../../functions/frames.ts';
import { eventually, RawClient, useLocalSystem } from '../helpers.ts';

/** The record API Gateway's `$disconnect` integration queues (infra/ordered-route.ts). */
function disconnectRecord(connectionId: string): SQSRecord {
  const attribute = (value: string) => ({
    stringValue: value,
    dataType: 'String' as const,
    stringListValues: [],
    binaryListValues: [],
  });
  const now = String(Date.now());
  return {
    messageId: randomUUID(),
    receiptHandle: randomUUID(),
    body: 'DISCONNECT',
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: now,
      SenderId: 'apigateway',
      ApproximateFirstReceiveTimestamp: now,
      MessageGroupId: connectionId,
      MessageDeduplicationId: randomUUID(),
      SequenceNumber: now,
    },
    messageAttributes: { connectionId: attribute(connectionId), eventType: attribute('DISCONNECT') },
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:local:000000000000:frames.fifo',
    awsRegion: 'local',
  };
}

/** A Lambda context whose clock is a script: the remaining time it reports, call after call. */
function scriptedInvocation(remaining: number[]): LambdaContext & { calls: number } {
  const invocation = {
    calls: 0,
    getRemainingTimeInMillis() {
      const value = remaining[Math.min(invocation.calls, remaining.length - 1)] as number;
      invocation.calls++;
      return value;
    },
    functionName: 'frames',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:local:000000000000:function:frames',
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: 'frames',
    logStreamName: 'frames',
    callbackWaitsForEmptyEventLoop: false,
    done() {},
    fail() {},
    succeed() {},
  };
  return invocation as unknown as LambdaContext & { calls: number };
}

describe('frames: a time budget per invocation', () => {
  const system = useLocalSystem();

  test('records are not started once less than the margin is left; they go back to the queue', async () => {
    // Four live connections, each with a record in the batch ($disconnect: it removes the
    // connection's item, which shows whether the record ran).
    const clients = await Promise.all([1, 2, 3, 4].map(() => RawClient.connect(system().url)));
    const ids = await eventually(() => {
      const known = system().api.connectionIds;
      return known.length >= 4 ? known.slice(-4) : undefined;
    });
    const records = ids.map(disconnectRecord);
    const handler = createFramesHandler(() => system().context);
    // Plenty of time for the first two, then less than the margin.
    const invocation = scriptedInvocation([14_000, 9_000, RECORD_START_MARGIN_MS - 1]);
    const response = await handler({ Records: records }, invocation);

    assert.deepEqual(
      response.batchItemFailures.map((failure) => failure.itemIdentifier),
      records.slice(2).map((record) => record.messageId),
    );
    const store = system().context.store;
    const [first, second, third, fourth] = ids as [string, string, string, string];
    assert.equal(await store.getConnection(first), undefined, 'the first record ran');
    assert.equal(await store.getConnection(second), undefined, 'the second record ran');
    assert.ok(await store.getConnection(third), 'the third record was not started');
    assert.ok(await store.getConnection(fourth), 'the fourth record was not started');
    // The time budget belongs to that invocation only.
    assert.equal(system().context.remainingMs, undefined);

    // Delivered again (by SQS, here by hand), the untouched records run.
    const retry = await handler({ Records: records.slice(2) }, scriptedInvocation([14_000]));
    assert.deepEqual(retry.batchItemFailures, []);
    assert.equal(await store.getConnection(third), undefined);
    assert.equal(await store.getConnection(fourth), undefined);
    for (const client of clients) client.close();
  });

  test('without a Lambda context (the emulator), every record runs', async () => {
    const client = await RawClient.connect(system().url);
    const id = await eventually(() => system().api.connectionIds.at(-1));
    const handler = createFramesHandler(() => system().context);
    const response = await handler({ Records: [disconnectRecord(id)] });
    assert.deepEqual(response.batchItemFailures, []);
    assert.equal(await system().context.store.getConnection(id), undefined);
    client.close();
  });
});
