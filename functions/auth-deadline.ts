// Consumes the authentication deadline queue (a standard SQS queue): $connect puts each new
// connection's id on it with DelaySeconds = authTimeoutSeconds (lib/gateway/sqs-deadlines.ts),
// so each message arrives once the deadline has passed. A connection that has not finished
// SASL by then is closed (lib/limits.ts); the others, and those gone already, cost one read.
import type { Context as LambdaContext, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type { Context } from '../lib/ports.ts';
import { onAuthDeadline } from '../lib/server.ts';
import { createContext, endInvocation, lazyContext, settingsFromEnv, startInvocation } from './runtime.ts';

export function createAuthDeadlineHandler(context: () => Context) {
  return async (event: SQSEvent, invocation?: LambdaContext): Promise<SQSBatchResponse> => {
    const ctx = context();
    startInvocation(ctx, invocation);
    try {
      const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
      // Deadlines of different connections are independent: a failed one is retried alone.
      for (const record of event.Records) {
        try {
          await onAuthDeadline(ctx, record.body);
        } catch (error) {
          ctx.logger.error('authentication deadline failed', {
            connectionId: record.body,
            messageId: record.messageId,
            error: String(error),
          });
          batchItemFailures.push({ itemIdentifier: record.messageId });
        }
      }
      return { batchItemFailures };
    } finally {
      endInvocation(ctx);
    }
  };
}

export const handler = createAuthDeadlineHandler(lazyContext(() => createContext(settingsFromEnv())));
