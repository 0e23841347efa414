// The whole system on one machine: DynamoDB Local, the table, the WebSocket API emulator
// in front of the real Lambda handlers, and TTL deletions feeding the expiry handler.
// Used by `npm start`, the tests and the benchmarks.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createAuthDeadlineHandler } from '../../functions/auth-deadline.ts';
import { createConnectHandler } from '../../functions/connect.ts';
import { createExpiredHandler } from '../../functions/expired.ts';
import { createFramesHandler } from '../../functions/frames.ts';
import { createPushHandler, pushDelivery } from '../../functions/push.ts';
import { createContext, type RuntimeSettings } from '../../functions/runtime.ts';
import { withUploads } from '../../functions/uploads.ts';
import { type Config, defaultConfig } from '../../lib/config.ts';
import type { Context } from '../../lib/ports.ts';
import type { CapacityMeter } from '../../lib/store/capacity.ts';
import { LocalDeadlines } from './deadlines.ts';
import {
  ensureTable,
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  type LocalDynamo,
  startDynamoLocal,
} from './dynamodb.ts';
import {
  type FaultCounters,
  type FaultSettings,
  injectDynamoFaults,
  killInvocations,
  newFaultCounters,
  postFaults,
  seededRandom,
} from './faults.ts';
import { AWS_LATENCY, delayDynamo, LatencyModel } from './latency.ts';
import { LocalSecretsAndEvents } from './secrets-and-events.ts';
import { LocalSqs, LocalStandardQueue, type SqsMessage } from './sqs.ts';
import { LocalTimeToLive } from './ttl.ts';
import { LOCAL_UPLOAD_BUCKET, LocalUploads } from './uploads.ts';
import { localWeb } from './web.ts';
import { LocalWebSocketApi, type LocalWebSocketApiOptions } from './websocket-api.ts';

export interface LocalSystemOptions {
  /** WebSocket port; 0 picks a free one. */
  readonly port?: number;
  readonly host?: string;
  readonly dynamoPort?: number;
  /** Keep data on disk here; in memory when absent. */
  readonly dataDir?: string;
  readonly tableName?: string;
  readonly config?: Partial<Config>;
  readonly logLevel?: RuntimeSettings['logLevel'];
  /** Emulator settings (limits, retry timing). */
  readonly api?: Partial<Omit<LocalWebSocketApiOptions, 'connectHandler' | 'framesHandler'>>;
  /** Sums the DynamoDB capacity the handlers consume. */
  readonly capacityMeter?: CapacityMeter;
  /** Between passes of the local TTL process (default 10 s; 0 only when `expiry.sweep()` is called). */
  readonly ttlSweepMs?: number;
  /** Lets a test wrap the context the handlers get (fault injection, metering). */
  readonly wrapContext?: (context: Context) => Context;
  /** DynamoDB errors, failed posts and killed invocations, each a share (infra/local/faults.ts). */
  readonly faults?: FaultSettings;
  /** XEP-0363 files are kept here; in a temporary folder (removed at stop) when absent. */
  readonly uploadsDir?: string;
  /** XEP-0357: also put each notification on the local EventBridge bus (the stack's `pushEvents`). */
  readonly pushEvents?: boolean;
  /**
   * Adds AWS's modelled latency per hop (infra/local/latency.ts; `npm start -- --aws-latency`):
   * API Gateway, SQS FIFO to Lambda, each DynamoDB request, each post. @default false
   */
  readonly awsLatency?: boolean | { readonly seed: number };
}

/** The push path, when push services are configured (lib/push.ts). */
export interface LocalPush {
  /** The key of the notifications' HMAC signature (Secrets Manager's secret on AWS). */
  readonly secret: string;
  /** The push queue, consumed by functions/push.ts. */
  readonly queue: LocalStandardQueue;
  /** Jobs put on the push queue so far (by the frames function and the push function). */
  queuedJobs(): number;
  /** Jobs given up on: the dead-letter queue's messages (app server failures, then consumer crashes). */
  deadLetters(): SqsMessage[];
  /** EventBridge's stand-in: the events put (with `pushEvents`). */
  readonly events: LocalSecretsAndEvents;
}

/** The push secret's ARN as the local Secrets Manager knows it. */
const LOCAL_PUSH_SECRET_ARN = `arn:aws:secretsmanager:${LOCAL_REGION}:000000000000:secret:serverless-xmpp-push`;
const LOCAL_EVENT_BUS = 'default';

export interface LocalSystem {
  readonly url: string;
  readonly api: LocalWebSocketApi;
  readonly dynamo: LocalDynamo;
  /** DynamoDB's TTL process and the stream into functions/expired.ts (`sweep()` runs one pass). */
  readonly expiry: LocalTimeToLive;
  /** What `faults` injected so far. */
  readonly faults: FaultCounters;
  /** The authentication deadline queue, played by timers into functions/auth-deadline.ts. */
  readonly deadlines: LocalDeadlines;
  /** XEP-0363 files: S3's presigned PUTs and CloudFront's GETs on the system's port. */
  readonly uploads: LocalUploads;
  /** Present when push services are configured. */
  readonly push?: LocalPush;
  readonly context: Context;
  readonly tableName: string;
  readonly config: Config;
  stop(): Promise<void>;
}

export async function startLocalSystem(options: LocalSystemOptions = {}): Promise<LocalSystem> {
  const config: Config = { ...defaultConfig(options.config?.domain), ...options.config };
  const tableName = options.tableName ?? 'serverless-xmpp';
  const dynamo = await startDynamoLocal({ port: options.dynamoPort, dataDir: options.dataDir });
  const admin = new DynamoDBClient({
    endpoint: dynamo.endpoint,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
  });
  const temporaryUploads = options.uploadsDir ? undefined : mkdtempSync(join(tmpdir(), 'xmpp-uploads-'));
  const uploads = new LocalUploads({
    dir: options.uploadsDir ?? (temporaryUploads as string),
    bucket: LOCAL_UPLOAD_BUCKET,
    retentionDays: config.uploadRetentionDays,
  });
  const removeUploads = () => {
    uploads.stop();
    if (temporaryUploads) rmSync(temporaryUploads, { recursive: true, force: true });
  };
  try {
    await ensureTable(admin, tableName);
    await uploads.start();

    let context: Context | undefined;
    const handlerContext = () => {
      if (!context) throw new Error('the local system is not started');
      return context;
    };
    const faults = newFaultCounters();
    const faultSettings = options.faults;
    const faultRandom = (stream: number) => seededRandom((faultSettings?.seed ?? 1) * 7919 + stream);
    const postFault = postFaults(faultSettings?.post ?? 0, faultRandom(1), faults);
    const web = localWeb({
      websocketPath: options.api?.path ?? '/xmpp-websocket',
      domain: config.domain,
      mucDomain: config.mucDomain,
      registration: () => config.registration,
    });
    const services = options.api?.services;
    let origin = '';
    const sqs = new LocalSqs(() => origin);
    const secretsAndEvents = new LocalSecretsAndEvents();
    const latency = options.awsLatency
      ? new LatencyModel(AWS_LATENCY, typeof options.awsLatency === 'object' ? options.awsLatency.seed : 1)
      : undefined;
    const api = new LocalWebSocketApi({
      ...options.api,
      ...(latency ? { latency } : {}),
      // S3 and CloudFront for uploads (infra/local/uploads.ts), SQS, Secrets Manager and EventBridge
      // (the push path), then the chat page and host-meta (infra/local/web.ts), beside the emulated
      // API Gateway.
      services: async (request, response) =>
        (await services?.(request, response)) ||
        (await uploads.answer(request, response)) ||
        (await sqs.answer(request, response)) ||
        (await secretsAndEvents.answer(request, response)) ||
        (await web(request, response)),
      ...(postFault ? { postFault } : {}),
      port: options.port ?? 0,
      host: options.host ?? '127.0.0.1',
      connectHandler: createConnectHandler(handlerContext),
      framesHandler: killInvocations(
        createFramesHandler(handlerContext),
        faultSettings?.kill ?? 0,
        faultRandom(2),
        faults,
      ),
    });
    await api.listen();
    origin = `http://${options.host ?? '127.0.0.1'}:${api.port}`;
    const pushSettings =
      config.pushServices.size > 0 ? startPushQueues(options, sqs, secretsAndEvents, origin) : undefined;
    const runtimeSettings: RuntimeSettings = {
      ...pushSettings?.settings,
      config,
      tableName,
      managementEndpoint: api.managementEndpoint,
      region: LOCAL_REGION,
      dynamoEndpoint: dynamo.endpoint,
      logLevel: options.logLevel ?? 'warn',
      capacityMeter: options.capacityMeter,
      uploadBucket: LOCAL_UPLOAD_BUCKET,
      uploadBaseUrl: origin,
      s3Endpoint: origin,
      instrumentDynamo: (client) => {
        injectDynamoFaults(client, faultSettings?.ddb ?? 0, faultRandom(3), faults);
        if (latency) delayDynamo(client, latency);
      },
    };
    const base = withUploads(
      runtimeSettings,
      createContext(runtimeSettings, {
        continueDrain: async (connectionId, after) => api.enqueueContinuation(connectionId, after),
      }),
    );
    const deadlines = new LocalDeadlines(
      createAuthDeadlineHandler(handlerContext),
      (connectionId) => api.connectionIds.includes(connectionId),
      options.api?.log,
    );
    const withDeadlines: Context = { ...base, deadlines };
    context = options.wrapContext ? options.wrapContext(withDeadlines) : withDeadlines;
    const handlerContextWithPush = context;
    const pushContext: Context | undefined = pushSettings && {
      ...handlerContextWithPush,
      pushDelivery: pushDelivery({ ...pushSettings.settings, region: LOCAL_REGION }),
    };
    pushSettings?.consume(() => pushContext as Context);
    const expiry = new LocalTimeToLive({
      dynamo: admin,
      tableName,
      handler: createExpiredHandler(handlerContext),
      intervalMs: options.ttlSweepMs,
    });
    expiry.start();
    return {
      url: api.url,
      api,
      dynamo,
      expiry,
      faults,
      deadlines,
      uploads,
      ...(pushSettings ? { push: pushSettings.push } : {}),
      context,
      tableName,
      config,
      async stop() {
        // A TTL pass under way still posts to connections: it ends before the API does.
        await expiry.stop();
        await deadlines.stop();
        await pushSettings?.push.queue.stop();
        await api.close();
        admin.destroy();
        await dynamo.stop();
        removeUploads();
      },
    };
  } catch (error) {
    admin.destroy();
    await dynamo.stop();
    removeUploads();
    throw error;
  }
}

/**
 * The push queue (consumed by functions/push.ts once `consume` names its context), its
 * dead-letter queue, the signing secret and the event bus, on the emulator's port.
 */
function startPushQueues(
  options: LocalSystemOptions,
  sqs: LocalSqs,
  secretsAndEvents: LocalSecretsAndEvents,
  origin: string,
) {
  let pushContext: (() => Context) | undefined;
  const queue = new LocalStandardQueue({
    queueArn: `arn:aws:sqs:${LOCAL_REGION}:000000000000:push`,
    consumer: createPushHandler(() => {
      if (!pushContext) throw new Error('the local system is not started');
      return pushContext();
    }),
    maxReceiveCount: 3,
    retryDelayMs: options.api?.retryDelayMs,
    log: options.api?.log,
  });
  const givenUp: SqsMessage[] = [];
  const secret = randomBytes(32).toString('hex');
  secretsAndEvents.addSecret(LOCAL_PUSH_SECRET_ARN, secret);
  const pushQueueUrl = sqs.addQueue('push', queue);
  const settings = {
    pushQueueUrl,
    pushDeadLetterQueueUrl: sqs.addQueue('push-dead-letters', {
      fifo: false,
      accept: (message) => givenUp.push(message),
    }),
    pushSecretArn: LOCAL_PUSH_SECRET_ARN,
    ...(options.pushEvents ? { pushEventBus: LOCAL_EVENT_BUS } : {}),
    awsEndpoint: origin,
  };
  const push: LocalPush = {
    secret,
    queue,
    queuedJobs: () => sqs.counters.get(new URL(pushQueueUrl).pathname) ?? 0,
    deadLetters: () => [...givenUp, ...queue.deadLetters],
    events: secretsAndEvents,
  };
  return {
    settings,
    push,
    consume: (context: () => Context) => {
      pushContext = context;
    },
  };
}
