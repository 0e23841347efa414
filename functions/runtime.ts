// Builds the adapters once per Lambda container (or once per local system) from
// settings, and hands the core a Context. The only place the handlers read the environment.
import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import { MetricUnit, Metrics as PowertoolsMetrics } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Context as LambdaContext } from 'aws-lambda';
import { type Config, configFromEnv } from '../lib/config.ts';
import type {
  Context,
  Continuations,
  Deadlines,
  Gateway,
  Logger,
  MetricName,
  Metrics,
  PushJobs,
} from '../lib/ports.ts';
import { type CapacityMeter, meterCapacity } from '../lib/store/capacity.ts';
import { DynamoStore } from '../lib/store/dynamo.ts';

export interface RuntimeSettings {
  readonly config: Config;
  readonly tableName: string;
  /**
   * The Management API endpoint: `https://{api}.execute-api.{region}.amazonaws.com/{stage}`.
   * Only functions that post to connections have it (not $connect).
   */
  readonly managementEndpoint?: string;
  readonly region?: string;
  /**
   * DynamoDB Local, for the in-process local system. A process gets it the SDK's standard way
   * instead (AWS_ENDPOINT_URL_DYNAMODB), as the bundles do in infra/local/lambda-process.ts.
   */
  readonly dynamoEndpoint?: string;
  readonly logLevel?: LogLevel;
  /** The frames FIFO queue, where long drains continue. */
  readonly framesQueueUrl?: string;
  /** XEP-0357: the push queue (frames and push functions); without it no notification is queued. */
  readonly pushQueueUrl?: string;
  /** Where the push function puts the notifications it gave up on. */
  readonly pushDeadLetterQueueUrl?: string;
  /** The push function: the Secrets Manager secret that keys the notifications' signature. */
  readonly pushSecretArn?: string;
  /** The push function, with `pushEvents`: the EventBridge bus notifications also go to. */
  readonly pushEventBus?: string;
  /**
   * The in-process local system: the emulator's origin, which answers the SQS, Secrets Manager
   * and EventBridge requests (a process gets the SDK's AWS_ENDPOINT_URL_* settings instead).
   */
  readonly awsEndpoint?: string;
  /** The authentication deadline queue ($connect only): without it no deadline is scheduled. */
  readonly authDeadlineQueueUrl?: string;
  /** Sums the capacity units every DynamoDB request consumes (benchmarks). */
  readonly capacityMeter?: CapacityMeter;
  /** Called with the DynamoDB client once built: the local system's fault injection (infra/local/faults.ts). */
  readonly instrumentDynamo?: (client: DynamoDBClient) => void;
  /** CloudWatch namespace of the metrics; without it nothing is published (the local system). */
  readonly metricsNamespace?: string;
  /** The `service` key of log lines and dimension of metrics (the stack's name on AWS). */
  readonly serviceName?: string;
  /** XEP-0363: the bucket slots' PUT URLs write to; without it no slots are given (lib/upload.ts). */
  readonly uploadBucket?: string;
  /** XEP-0363: where uploaded files are read (`https://<CloudFront domain>`). */
  readonly uploadBaseUrl?: string;
  /**
   * S3's endpoint for the in-process local system (infra/local/uploads.ts), path-style. A process
   * gets it the SDK's standard way instead (AWS_ENDPOINT_URL_S3).
   */
  readonly s3Endpoint?: string;
}

type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const LEVELS: LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): RuntimeSettings {
  const tableName = env.TABLE_NAME;
  if (!tableName) throw new Error('TABLE_NAME is not set');
  return {
    config: configFromEnv(env),
    tableName,
    managementEndpoint: env.MANAGEMENT_ENDPOINT || undefined,
    region: env.AWS_REGION,
    framesQueueUrl: env.FRAMES_QUEUE_URL || undefined,
    authDeadlineQueueUrl: env.AUTH_DEADLINE_QUEUE_URL || undefined,
    pushQueueUrl: env.PUSH_QUEUE_URL || undefined,
    pushDeadLetterQueueUrl: env.PUSH_DEAD_LETTER_QUEUE_URL || undefined,
    pushSecretArn: env.PUSH_SECRET_ARN || undefined,
    pushEventBus: env.PUSH_EVENT_BUS || undefined,
    metricsNamespace: env.POWERTOOLS_METRICS_NAMESPACE || undefined,
    serviceName: env.POWERTOOLS_SERVICE_NAME || undefined,
    uploadBucket: env.UPLOAD_BUCKET || undefined,
    uploadBaseUrl: env.UPLOAD_BASE_URL || undefined,
    logLevel: (LEVELS as string[]).includes(env.LOG_LEVEL ?? '') ? (env.LOG_LEVEL as LogLevel) : 'info',
  };
}

/** The service name where none is configured (the local system). */
const DEFAULT_SERVICE = 'serverless-xmpp';

/**
 * Structured JSON lines (Powertools Logger): level, message, service, timestamp, the fields the
 * core passes (connection id, JID; never passwords or message bodies) and, on Lambda, the request
 * id and cold start. `silent` logs nothing.
 */
export class JsonLogger implements Logger {
  readonly powertools: PowertoolsLogger;

  constructor(level: LogLevel = 'info', serviceName = DEFAULT_SERVICE) {
    this.powertools = new PowertoolsLogger({ serviceName, logLevel: level.toUpperCase() as 'INFO' });
  }

  debug(message: string, fields?: Record<string, unknown>): void {
    this.powertools.debug(message, fields ?? {});
  }
  info(message: string, fields?: Record<string, unknown>): void {
    this.powertools.info(message, fields ?? {});
  }
  warn(message: string, fields?: Record<string, unknown>): void {
    this.powertools.warn(message, fields ?? {});
  }
  error(message: string, fields?: Record<string, unknown>): void {
    this.powertools.error(message, fields ?? {});
  }
}

/** Counters kept during one invocation and written as one EMF log line at its end (`flush`). */
export class EmfMetrics implements Metrics {
  readonly powertools: PowertoolsMetrics;

  constructor(namespace: string, serviceName = DEFAULT_SERVICE) {
    this.powertools = new PowertoolsMetrics({ namespace, serviceName });
  }

  count(name: MetricName, value = 1): void {
    if (value > 0) this.powertools.addMetric(name, MetricUnit.Count, value);
  }

  flush(): void {
    if (this.powertools.hasStoredMetrics()) this.powertools.publishStoredMetrics();
  }
}

/**
 * Called by the handlers as an invocation starts: log lines carry its request id from now on,
 * and the core knows the time left (Context.remainingMs; a container runs one invocation at a
 * time, so the per-container context can carry it).
 */
export function startInvocation(ctx: Context, invocation?: LambdaContext): void {
  if (invocation && ctx.logger instanceof JsonLogger) ctx.logger.powertools.addContext(invocation);
  if (!invocation) return;
  const remainingMs = () => invocation.getRemainingTimeInMillis();
  invocationClocks.add(remainingMs);
  ctx.remainingMs = remainingMs;
}

/** The clocks startInvocation set, which endInvocation removes (a test may set its own). */
const invocationClocks = new WeakSet<() => number>();

/** Called by the handlers as an invocation ends, also when it failed: publishes its metrics. */
export function endInvocation(ctx: Context): void {
  if (ctx.remainingMs && invocationClocks.has(ctx.remainingMs)) ctx.remainingMs = undefined;
  if (ctx.metrics instanceof EmfMetrics) ctx.metrics.flush();
}

/**
 * DynamoDB throttling (ThrottlingException, ProvisionedThroughputExceededException) and 500s
 * are retried by the SDK: standard mode, exponential backoff with full jitter (100 ms base,
 * 500 ms for throttling, so a throttled call waits up to 0.5, 1, 2 s), 4 tries in all, and a
 * retry quota per client that stops retrying when most calls fail. A call still failing
 * fails its frame, and SQS delivers the frame again (the handlers are idempotent per frame):
 * a retry that takes longer belongs to the queue, not to a Lambda's 15 s.
 */
export const DYNAMO_RETRIES = { retryMode: 'standard', maxAttempts: 4 } as const;

/** Local endpoints need explicit fake credentials; on AWS the role's are used. */
export const localCredentials = { accessKeyId: 'local', secretAccessKey: 'local' };

/**
 * `continuations` replaces the SQS queue (the in-process local system queues its own). Each adapter
 * and its SDK client is built on first use, so a function needs only the settings of what it uses:
 * $connect has no MANAGEMENT_ENDPOINT nor FRAMES_QUEUE_URL, the expired function no queue.
 */
export function createContext(settings: RuntimeSettings, continuations?: Continuations): Context {
  const logger = new JsonLogger(settings.logLevel, settings.serviceName);
  const local = settings.dynamoEndpoint !== undefined;
  const deadlineQueueUrl = settings.authDeadlineQueueUrl;
  const pushQueueUrl = settings.pushQueueUrl;
  const context: Context = {
    store: onFirstUse(() => {
      const dynamo = new DynamoDBClient({
        region: settings.region,
        ...DYNAMO_RETRIES,
        ...(local ? { endpoint: settings.dynamoEndpoint, credentials: localCredentials } : {}),
      });
      if (settings.capacityMeter) meterCapacity(dynamo, settings.capacityMeter);
      settings.instrumentDynamo?.(dynamo);
      return new DynamoStore(dynamo, settings.tableName);
    }),
    // The Management API, SQS and S3 clients are imported when first used (bundled all the same):
    // $connect never posts, and the other functions rarely queue anything. Their modules'
    // evaluation (the SDK clients' schemas) is a sizeable share of a cold start (bench/bundles.ts).
    gateway: onFirstCall<Gateway>(async () => {
      const [{ ApiGatewayManagementApiClient }, { ManagementApiGateway }] = await Promise.all([
        import('@aws-sdk/client-apigatewaymanagementapi'),
        import('../lib/gateway/management-api.ts'),
      ]);
      const management = new ApiGatewayManagementApiClient({
        region: settings.region,
        endpoint: settings.managementEndpoint ?? missing('MANAGEMENT_ENDPOINT'),
        // ManagementApiGateway retries each post itself, within a bounded time.
        maxAttempts: 1,
        ...(local ? { credentials: localCredentials } : {}),
      });
      // Retries stop near the end of the invocation (startInvocation sets remainingMs).
      return new ManagementApiGateway(management, logger, { timeLeft: () => context.remainingMs?.() });
    }),
    continuations:
      continuations ??
      onFirstCall<Continuations>(async () => {
        const [{ SQSClient }, { SqsContinuations }] = await Promise.all([
          import('@aws-sdk/client-sqs'),
          import('../lib/gateway/sqs-continuations.ts'),
        ]);
        return new SqsContinuations(
          new SQSClient(awsClientSettings(settings)),
          settings.framesQueueUrl ?? missing('FRAMES_QUEUE_URL'),
        );
      }),
    ...(deadlineQueueUrl
      ? {
          deadlines: onFirstCall<Deadlines>(async () => {
            const [{ SQSClient }, { SqsDeadlines }] = await Promise.all([
              import('@aws-sdk/client-sqs'),
              import('../lib/gateway/sqs-deadlines.ts'),
            ]);
            return new SqsDeadlines(new SQSClient(awsClientSettings(settings)), deadlineQueueUrl);
          }),
        }
      : {}),
    ...(pushQueueUrl
      ? {
          pushJobs: onFirstCall<PushJobs>(async () => {
            const [{ SQSClient }, { SqsPushJobs }] = await Promise.all([
              import('@aws-sdk/client-sqs'),
              import('../lib/gateway/sqs-push-jobs.ts'),
            ]);
            return new SqsPushJobs(
              new SQSClient(awsClientSettings(settings)),
              pushQueueUrl,
              settings.pushDeadLetterQueueUrl,
            );
          }),
        }
      : {}),
    config: settings.config,
    logger,
    ...(settings.metricsNamespace
      ? { metrics: new EmfMetrics(settings.metricsNamespace, settings.serviceName) }
      : {}),
    now: Date.now,
  };
  return context;
}

/** Region, and on the in-process local system the emulator's endpoint and fake credentials. */
export function awsClientSettings(settings: Pick<RuntimeSettings, 'region' | 'awsEndpoint'>) {
  return {
    region: settings.region,
    ...(settings.awsEndpoint ? { endpoint: settings.awsEndpoint, credentials: localCredentials } : {}),
  };
}

export function missing(name: string): never {
  throw new Error(`${name} is not set`);
}

/**
 * Stands for the adapter `build` makes, and makes it when one of its members is first used:
 * a setting that is missing fails that use, not the function's start.
 */
export function onFirstUse<T extends object>(build: () => T): T {
  let adapter: T | undefined;
  const target = () => {
    adapter ??= build();
    return adapter;
  };
  const bound = new Map<PropertyKey, unknown>();
  return new Proxy({} as T, {
    get(_, name) {
      const value = Reflect.get(target(), name);
      if (typeof value !== 'function') return value;
      if (!bound.has(name)) bound.set(name, value.bind(target()));
      return bound.get(name);
    },
    has: (_, name) => Reflect.has(target(), name),
    getPrototypeOf: () => Object.getPrototypeOf(target()),
  });
}

/**
 * Like onFirstUse, for an adapter whose module is imported on first use: every member is a
 * method returning a promise (Gateway, Continuations, Deadlines), which waits for the build. A
 * build that fails (a missing setting) fails that call and every later one.
 */
export function onFirstCall<T extends object>(build: () => Promise<T>): T {
  let adapter: Promise<T> | undefined;
  const methods = new Map<PropertyKey, (...args: unknown[]) => Promise<unknown>>();
  return new Proxy({} as T, {
    get(_, name) {
      if (name === 'then') return undefined; // not a promise itself
      let method = methods.get(name);
      if (!method) {
        method = async (...args: unknown[]) => {
          adapter ??= build();
          const built = await adapter;
          return (Reflect.get(built, name) as (...args: unknown[]) => unknown).apply(built, args);
        };
        methods.set(name, method);
      }
      return method;
    },
  });
}

/** One context per container, built on first use. */
export function lazyContext(build: () => Context): () => Context {
  let context: Context | undefined;
  return () => {
    context ??= build();
    return context;
  };
}
