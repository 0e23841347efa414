// Builds the adapters once per Lambda container (or once per local system) from
// settings, and hands the core a Context. The only place the handlers read the environment.
import { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { type Config, configFromEnv } from '../lib/config.ts';
import { ManagementApiGateway } from '../lib/gateway/management-api.ts';
import { SqsContinuations } from '../lib/gateway/sqs-continuations.ts';
import type { Context, Continuations, Logger } from '../lib/ports.ts';
import { type CapacityMeter, meterCapacity } from '../lib/store/capacity.ts';
import { DynamoStore } from '../lib/store/dynamo.ts';

export interface RuntimeSettings {
  readonly config: Config;
  readonly tableName: string;
  /** The Management API endpoint: `https://{api}.execute-api.{region}.amazonaws.com/{stage}`. */
  readonly managementEndpoint: string;
  readonly region?: string;
  /** Only for DynamoDB Local. */
  readonly dynamoEndpoint?: string;
  readonly logLevel?: LogLevel;
  /** The frames FIFO queue, where long drains continue. */
  readonly framesQueueUrl?: string;
  /** Sums the capacity units every DynamoDB request consumes (benchmarks). */
  readonly capacityMeter?: CapacityMeter;
}

type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const LEVELS: LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): RuntimeSettings {
  const tableName = env.TABLE_NAME;
  if (!tableName) throw new Error('TABLE_NAME is not set');
  return {
    config: configFromEnv(env),
    tableName,
    managementEndpoint: env.MANAGEMENT_ENDPOINT ?? '',
    region: env.AWS_REGION,
    dynamoEndpoint: env.DYNAMODB_ENDPOINT || undefined,
    framesQueueUrl: env.FRAMES_QUEUE_URL,
    logLevel: (LEVELS as string[]).includes(env.LOG_LEVEL ?? '') ? (env.LOG_LEVEL as LogLevel) : 'info',
  };
}

/** Structured JSON lines; never passwords or message bodies. */
export function jsonLogger(level: LogLevel = 'info'): Logger {
  const threshold = LEVELS.indexOf(level);
  const write = (name: LogLevel) => (message: string, fields?: Record<string, unknown>) => {
    if (LEVELS.indexOf(name) < threshold) return;
    const line = JSON.stringify({
      level: name.toUpperCase(),
      message,
      ...fields,
      timestamp: new Date().toISOString(),
    });
    if (name === 'error' || name === 'warn') console.error(line);
    else console.log(line);
  };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}

/** Local endpoints need explicit fake credentials; on AWS the role's are used. */
const localCredentials = { accessKeyId: 'local', secretAccessKey: 'local' };

/** `continuations` replaces the SQS queue (the local emulator queues its own). */
export function createContext(settings: RuntimeSettings, continuations?: Continuations): Context {
  const logger = jsonLogger(settings.logLevel);
  const dynamo = new DynamoDBClient({
    region: settings.region,
    ...(settings.dynamoEndpoint ? { endpoint: settings.dynamoEndpoint, credentials: localCredentials } : {}),
  });
  if (settings.capacityMeter) meterCapacity(dynamo, settings.capacityMeter);
  const local = settings.dynamoEndpoint !== undefined;
  const management = new ApiGatewayManagementApiClient({
    region: settings.region,
    endpoint: settings.managementEndpoint,
    ...(local ? { credentials: localCredentials } : {}),
  });
  const queueUrl = settings.framesQueueUrl;
  return {
    store: new DynamoStore(dynamo, settings.tableName),
    gateway: new ManagementApiGateway(management, logger),
    continuations:
      continuations ??
      new SqsContinuations(
        new SQSClient({ region: settings.region }),
        queueUrl ?? missing('FRAMES_QUEUE_URL'),
      ),
    config: settings.config,
    logger,
    now: Date.now,
  };
}

function missing(name: string): never {
  throw new Error(`${name} is not set`);
}

/** One context per container, built on first use. */
export function lazyContext(build: () => Context): () => Context {
  let context: Context | undefined;
  return () => {
    context ??= build();
    return context;
  };
}
