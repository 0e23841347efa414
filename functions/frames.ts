// Consumes the per-connection FIFO queue that $default and $disconnect feed
// (docs/architecture.md, "Order"): one message group per connection, so frames of
// one connection are handled one after another, and different connections in parallel,
// in separate invocations and, within one batch, concurrently.
import type { Context as LambdaContext, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { CONTINUE_EVENT, type Context } from '../lib/ports.ts';
import { onContinueDrain, onDisconnect, onFrame } from '../lib/server.ts';
import { createContext, endInvocation, lazyContext, settingsFromEnv, startInvocation } from './runtime.ts';
import { withUploads } from './uploads.ts';

/** Message attributes the API Gateway integration sets (infra/ordered-route.ts). */
export const FRAME_ATTRIBUTES = { connectionId: 'connectionId', eventType: 'eventType' } as const;

const attribute = (record: SQSRecord, name: string) => record.messageAttributes[name]?.stringValue;

/**
 * A frame's message body, as the `$default` integration writes it (infra/ordered-route.ts): this
 * prefix, then the frame's UTF-8 bytes in base64. SQS refuses an empty body and characters outside
 * XML's set, and a client may send either: encoded, every frame reaches the queue, and the core
 * answers it as XMPP says (an empty frame, a control character: not-well-formed).
 */
export const FRAME_BODY_PREFIX = 'b64:';

/** The frame a record carries. A body without the prefix was queued by the template before it. */
export function frameText(body: string): string {
  if (!body.startsWith(FRAME_BODY_PREFIX)) return body;
  return Buffer.from(body.slice(FRAME_BODY_PREFIX.length), 'base64').toString('utf8');
}

async function handleRecord(context: Context, record: SQSRecord): Promise<void> {
  const connectionId = attribute(record, FRAME_ATTRIBUTES.connectionId) ?? record.attributes.MessageGroupId;
  if (!connectionId) throw new Error('record without a connection id');
  const eventType = attribute(record, FRAME_ATTRIBUTES.eventType);
  if (eventType === 'DISCONNECT') return onDisconnect(context, connectionId);
  // Set only by the server itself (SqsContinuations): API Gateway sets MESSAGE or DISCONNECT.
  if (eventType === CONTINUE_EVENT) return onContinueDrain(context, connectionId, record.body);
  await onFrame(context, {
    connectionId,
    body: frameText(record.body),
    isBinary: attribute(record, 'isBinary') === 'true',
    // When the frame reached the queue: the rate limits count by it (lib/limits.ts).
    receivedAt: Number(record.attributes.SentTimestamp),
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

/**
 * A record starts only with this much of the invocation left. A timeout would fail the whole
 * batch, several connections' frames, and replay those already handled; a record not started
 * goes back to the queue instead (it counts one receive) and runs in a later invocation. One
 * frame's own work (a room fan-out, posts with their retries) takes well under this; a drain
 * stops by itself earlier (lib/offline.ts).
 */
export const RECORD_START_MARGIN_MS = 5_000;

type RecordHandler = (ctx: Context, record: SQSRecord) => Promise<void>;

/**
 * Handles the records of each connection (message group) in order, and different
 * connections concurrently: one connection's slow frame (a room fan-out, a drain) no longer
 * holds up the others' in the same batch. Returns the records SQS must deliver again.
 */
export async function handleBatch(
  ctx: Context,
  event: SQSEvent,
  handle: RecordHandler = handleRecord,
): Promise<SQSBatchResponse['batchItemFailures']> {
  const groups = new Map<string, SQSRecord[]>();
  for (const record of event.Records) {
    const group = record.attributes.MessageGroupId ?? '';
    groups.set(group, [...(groups.get(group) ?? []), record]);
  }
  const left = await Promise.all(
    [...groups].map(([group, records]) => handleGroup(ctx, group, records, handle)),
  );
  // In the batch's order, as SQS gave them.
  const failed = new Set(left.flat());
  const batchItemFailures = event.Records.filter((record) => failed.has(record.messageId)).map((record) => ({
    itemIdentifier: record.messageId,
  }));
  if (
    batchItemFailures.length > 0 &&
    ctx.remainingMs !== undefined &&
    ctx.remainingMs() < RECORD_START_MARGIN_MS
  ) {
    ctx.logger.warn('invocation short of time: records left for a later one', {
      left: batchItemFailures.length,
    });
  }
  return batchItemFailures;
}

/** One connection's records, one after another; returns the ids of those not handled. */
async function handleGroup(
  ctx: Context,
  group: string,
  records: readonly SQSRecord[],
  handle: RecordHandler,
): Promise<string[]> {
  for (const [index, record] of records.entries()) {
    // FIFO: once a frame of a connection fails (or cannot start in time), its later frames
    // must wait for the retry.
    const rest = () => records.slice(index).map((later) => later.messageId);
    if (ctx.remainingMs !== undefined && ctx.remainingMs() < RECORD_START_MARGIN_MS) return rest();
    try {
      await handle(ctx, record);
    } catch (error) {
      ctx.logger.error('frame failed', {
        connectionId: group,
        messageId: record.messageId,
        error: String(error),
      });
      return rest();
    }
  }
  return [];
}

export const handler = createFramesHandler(
  lazyContext(() => {
    const settings = settingsFromEnv();
    return withUploads(settings, createContext(settings));
  }),
);
