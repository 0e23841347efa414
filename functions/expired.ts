// Consumes the table's stream, filtered to the items TTL deletes that end something
// (lib/store/schema.ts expiryStream): a connection whose $disconnect never came, a room
// occupant of such a connection. Records of one shard come in order; a failed record is
// retried, with those after it, before the shard moves on.

import { unmarshall } from '@aws-sdk/util-dynamodb';
import type {
  DynamoDBBatchResponse,
  DynamoDBRecord,
  DynamoDBStreamEvent,
  Context as LambdaContext,
} from 'aws-lambda';
import type { Context } from '../lib/ports.ts';
import { onExpired } from '../lib/server.ts';
import { expiredItem } from '../lib/store/dynamo.ts';
import { TTL_DELETION } from '../lib/store/schema.ts';
import { createContext, endInvocation, lazyContext, settingsFromEnv, startInvocation } from './runtime.ts';

export const isTtlDeletion = (record: DynamoDBRecord) =>
  record.eventName === TTL_DELETION.eventName &&
  record.userIdentity?.type === TTL_DELETION.userIdentity.type &&
  record.userIdentity?.principalId === TTL_DELETION.userIdentity.principalId;

async function handleRecord(ctx: Context, record: DynamoDBRecord): Promise<void> {
  const image = record.dynamodb?.OldImage;
  // The filter lets only TTL deletions through; anything else is not this function's.
  if (!isTtlDeletion(record) || !image) return;
  const item = expiredItem(unmarshall(image as Parameters<typeof unmarshall>[0]));
  if (item) await onExpired(ctx, item);
}

export function createExpiredHandler(context: () => Context) {
  return async (event: DynamoDBStreamEvent, invocation?: LambdaContext): Promise<DynamoDBBatchResponse> => {
    const ctx = context();
    startInvocation(ctx, invocation);
    try {
      for (const record of event.Records) {
        try {
          await handleRecord(ctx, record);
        } catch (error) {
          ctx.logger.error('expired item failed', {
            sequenceNumber: record.dynamodb?.SequenceNumber,
            error: String(error),
          });
          // The stream retries from this record on: the later ones wait for it.
          return { batchItemFailures: [{ itemIdentifier: record.dynamodb?.SequenceNumber ?? '' }] };
        }
      }
      return { batchItemFailures: [] };
    } finally {
      endInvocation(ctx);
    }
  };
}

export const handler = createExpiredHandler(lazyContext(() => createContext(settingsFromEnv())));
