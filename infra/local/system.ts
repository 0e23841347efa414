// The whole system on one machine: DynamoDB Local, the table, the WebSocket API emulator
// in front of the real Lambda handlers, and TTL deletions feeding the expiry handler.
// Used by `npm start`, the tests and the benchmarks.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createAuthDeadlineHandler } from '../../functions/auth-deadline.ts';
import { createConnectHandler } from '../../functions/connect.ts';
import { createExpiredHandler } from '../../functions/expired.ts';
import { createFramesHandler } from '../../functions/frames.ts';
import { createContext, type RuntimeSettings } from '../../functions/runtime.ts';
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
import { LocalTimeToLive } from './ttl.ts';
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
  /**
   * Adds AWS's modelled latency per hop (infra/local/latency.ts; `npm start -- --aws-latency`):
   * API Gateway, SQS FIFO to Lambda, each DynamoDB request, each post. @default false
   */
  readonly awsLatency?: boolean | { readonly seed: number };
}

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
  try {
    await ensureTable(admin, tableName);

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
    const latency = options.awsLatency
      ? new LatencyModel(AWS_LATENCY, typeof options.awsLatency === 'object' ? options.awsLatency.seed : 1)
      : undefined;
    const api = new LocalWebSocketApi({
      ...options.api,
      ...(latency ? { latency } : {}),
      // The chat page and host-meta (infra/local/web.ts) beside the emulated AWS services.
      services: async (request, response) =>
        (await services?.(request, response)) || (await web(request, response)),
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
    const base = createContext(
      {
        config,
        tableName,
        managementEndpoint: api.managementEndpoint,
        region: LOCAL_REGION,
        dynamoEndpoint: dynamo.endpoint,
        logLevel: options.logLevel ?? 'warn',
        capacityMeter: options.capacityMeter,
        instrumentDynamo: (client) => {
          injectDynamoFaults(client, faultSettings?.ddb ?? 0, faultRandom(3), faults);
          if (latency) delayDynamo(client, latency);
        },
      },
      {
        continueDrain: async (connectionId, after) => api.enqueueContinuation(connectionId, after),
      },
    );
    const deadlines = new LocalDeadlines(
      createAuthDeadlineHandler(handlerContext),
      (connectionId) => api.connectionIds.includes(connectionId),
      options.api?.log,
    );
    const withDeadlines: Context = { ...base, deadlines };
    context = options.wrapContext ? options.wrapContext(withDeadlines) : withDeadlines;
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
      context,
      tableName,
      config,
      async stop() {
        // A TTL pass under way still posts to connections: it ends before the API does.
        await expiry.stop();
        await deadlines.stop();
        await api.close();
        admin.destroy();
        await dynamo.stop();
      },
    };
  } catch (error) {
    admin.destroy();
    await dynamo.stop();
    throw error;
  }
}
