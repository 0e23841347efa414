// Consumes the per-connection FIFO queue that $default and $disconnect feed
// (docs/architecture.md, "Order"): one message group per connection, so frames of
// one connection are handled one after another, and different connections in parallel.
import type { Context as LambdaContext, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { CONTINUE_EVENT } from '../lib/gateway/sqs-continuations.ts';
import type { Context } from '../lib/ports.ts';
import { onContinueDrain, onDisconnect, onFrame } from '../lib/server.ts';
import { createContext, endInvocation, lazyContext, settingsFromEnv, startInvocation } from './runtime.ts';

/** Message attributes the API Gateway integration sets (infra/ordered-route.ts). */
export const FRAME_ATTRIBUTES = { connectionId: 'connectionId', eventType: 'eventType' } as const;

const attribute = (record: SQSRecord, name: string) => record.messageAttributes[name]?.stringValue;

async function handleRecord(context: Context, record: SQSRecord): Promise<void> {
  const connectionId = attribute(record, FRAME_ATTRIBUTES.connectionId) ?? record.attributes.MessageGroupId;
  if (!connectionId) throw new Error('record without a connection id');
  const eventType = attribute(record, FRAME_ATTRIBUTES.eventType);
  if (eventType === 'DISCONNECT') return onDisconnect(context, connectionId);
  // Set only by the server itself (SqsContinuations): API Gateway sets MESSAGE or DISCONNECT.
  if (eventType === CONTINUE_EVENT) return onContinueDrain(context, connectionId, record.body);
  await onFrame(context, {
    connectionId,
    body: record.body,
    isBinary: attribute(record, 'isBinary') === 'true',
  });
  context.metrics?.count('StanzasHandled');
}

export function createFramesHandler(context: () => Context) {
  return async (event: SQSEvent, invocation?: LambdaContext): Promise<SQSBatchResponse> => {
    const ctx = context();
    startInvocation(ctx, invocation);
    try {
      return { batchItemFailures: await handleBatch(ctx, event) };
    } finally {
      endInvocation(ctx);
    }
  };
}

/** Handles the records in order; returns those SQS must deliver again. */
async function handleBatch(ctx: Context, event: SQSEvent): Promise<SQSBatchResponse['batchItemFailures']> {
  const failedGroups = new Set<string>();
  const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
  for (const record of event.Records) {
    const group = record.attributes.MessageGroupId ?? '';
    // FIFO: once a frame of a connection fails, its later frames must wait for the retry.
    if (failedGroups.has(group)) {
      batchItemFailures.push({ itemIdentifier: record.messageId });
      continue;
    }
    try {
      await handleRecord(ctx, record);
    } catch (error) {
      ctx.logger.error('frame failed', {
        connectionId: group,
        messageId: record.messageId,
        error: String(error),
      });
      failedGroups.add(group);
      batchItemFailures.push({ itemIdentifier: record.messageId });
    }
  }
  return batchItemFailures;
}

export const handler = createFramesHandler(lazyContext(() => createContext(settingsFromEnv())));
