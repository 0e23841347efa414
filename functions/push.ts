// Consumes the push queue (a standard SQS queue, lib/gateway/sqs-push-jobs.ts): the jobs the
// frames function queues for messages a user's sessions did not take, and the notifications
// lib/push.ts schedules for later (coalescing, retries with backoff). Jobs are independent: a
// batch's records run concurrently, and a failed one is retried alone (after three receives
// it goes to the dead-letter queue, alarmed, like the jobs whose app server kept failing).
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Context as LambdaContext, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { cachedSecret, HttpPushDelivery } from '../lib/gateway/push-delivery.ts';
import { parsePushJob } from '../lib/gateway/sqs-push-jobs.ts';
import type { Context, PushDelivery } from '../lib/ports.ts';
import { handlePushJob } from '../lib/push.ts';
import {
  awsClientSettings,
  createContext,
  endInvocation,
  lazyContext,
  onFirstUse,
  type RuntimeSettings,
  settingsFromEnv,
  startInvocation,
} from './runtime.ts';

/**
 * The way out to app servers, built on first use: the signing secret read once per container
 * from Secrets Manager, and the EventBridge client when the deployment puts events too. Only
 * this function has them (the frames function only queues jobs), so only its bundle holds
 * those clients.
 */
export function pushDelivery(
  settings: Pick<RuntimeSettings, 'pushSecretArn' | 'pushEventBus' | 'region' | 'awsEndpoint'>,
): PushDelivery {
  return onFirstUse(() => {
    const secretArn = settings.pushSecretArn;
    if (!secretArn) throw new Error('PUSH_SECRET_ARN is not set');
    const secrets = new SecretsManagerClient(awsClientSettings(settings));
    const busName = settings.pushEventBus;
    return new HttpPushDelivery({
      secret: cachedSecret(async () => {
        const { SecretString } = await secrets.send(new GetSecretValueCommand({ SecretId: secretArn }));
        if (!SecretString) throw new Error('the push secret has no value');
        return SecretString;
      }),
      ...(busName ? { events: { client: new EventBridgeClient(awsClientSettings(settings)), busName } } : {}),
    });
  });
}

/** The push function's context: the core's, with the delivery to app servers. */
export function createPushContext(
  settings: RuntimeSettings,
  base: Context = createContext(settings),
): Context {
  return { ...base, pushDelivery: pushDelivery(settings) };
}

export function createPushHandler(context: () => Context) {
  return async (event: SQSEvent, invocation?: LambdaContext): Promise<SQSBatchResponse> => {
    const ctx = context();
    startInvocation(ctx, invocation);
    try {
      const failed = await Promise.all(
        event.Records.map(async (record) => {
          try {
            await handlePushJob(ctx, parsePushJob(record.body));
            return undefined;
          } catch (error) {
            ctx.logger.error('push job failed', { messageId: record.messageId, error: String(error) });
            return { itemIdentifier: record.messageId };
          }
        }),
      );
      return { batchItemFailures: failed.filter((failure) => failure !== undefined) };
    } finally {
      endInvocation(ctx);
    }
  };
}

export const handler = createPushHandler(lazyContext(() => createPushContext(settingsFromEnv())));
