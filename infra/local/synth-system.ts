// The local system running exactly what `cdk deploy` ships (`npm start -- --from-synth`,
// `npm run test:synth`): the stack is synthesised with its bundles (infra/local/synth.ts), and each
// function's bundle runs in processes of its own (infra/local/lambda-process.ts) with the
// environment its template gives it, every reference resolved to the local stand-in (the table in
// DynamoDB Local, the Management API and the queues on the emulator), plus only what Lambda itself
// sets: region, the role's credentials (fake), and the SDK's standard endpoint settings
// (AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_SQS). A variable the code needs and the template
// lacks fails here as it would on AWS.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { APIGatewayProxyResultV2, DynamoDBBatchResponse, SQSBatchResponse } from 'aws-lambda';
import { createContext } from '../../functions/runtime.ts';
import { type Config, configFromEnv } from '../../lib/config.ts';
import { CONTINUE_EVENT } from '../../lib/ports.ts';
import type { LogLevel, PushParameterKey } from '../parameters.ts';
import type { XmppStackProps } from '../stack.ts';
import { ensureTable, LOCAL_CREDENTIALS, LOCAL_REGION, startDynamoLocal } from './dynamodb.ts';
import { LambdaProcess } from './lambda-process.ts';
import { LocalSecretsAndEvents } from './secrets-and-events.ts';
import { LocalSqs, LocalStandardQueue, SqsError, type SqsMessage } from './sqs.ts';
import {
  readSynthesizedStack,
  type SynthesizedFunction,
  type SynthesizedStack,
  synthesizeStack,
  type Template,
  type TemplateValue,
} from './synth.ts';
import type { LocalSystem, LocalSystemOptions } from './system.ts';
import { LocalTimeToLive } from './ttl.ts';
import { LOCAL_UPLOAD_BUCKET, LocalUploads } from './uploads.ts';
import { localWeb } from './web.ts';
import { LocalWebSocketApi } from './websocket-api.ts';

/** What `Ref` of the WebSocket API gives locally (the host name's first label on AWS). */
const LOCAL_API_ID = 'local';
/** What a CloudFront distribution's DomainName gives locally; its https:// URL becomes the emulator's. */
const LOCAL_DISTRIBUTION = 'files.local.cloudfront.net';

export interface SynthesizedSystemOptions
  extends Omit<LocalSystemOptions, 'wrapContext' | 'capacityMeter' | 'config' | 'logLevel'> {
  /** Stack parameters (infra/parameters.ts): what a deployment could set, nothing else. */
  readonly stack?: Pick<
    XmppStackProps,
    | 'domain'
    | 'mucDomain'
    | 'messagePolicy'
    | 'maxStanzaBytes'
    | 'offlineQuota'
    | 'retentionDays'
    | 'archiveDays'
    | 'maxFramesPerSecond'
    | 'maxBytesPerSecond'
    | 'maxSessionsPerUser'
    | 'authTimeoutSeconds'
    | 'registration'
    | PushParameterKey
  >;
  /** The functions' LOG_LEVEL, a stack parameter too. @default 'warn' */
  readonly logLevel?: LogLevel;
  /** Where the cloud assembly goes; a temporary folder (removed at stop) by default. */
  readonly outdir?: string;
  /** Uses this synthesised stack instead of synthesising (e.g. a `cdk synth` output's). */
  readonly synthesized?: { readonly template: Template; readonly assemblyDir: string };
  /** Each line the functions' processes write (their logs). @default - discarded */
  readonly onOutput?: (functionName: string, line: string) => void;
  /** Containers per function at most. @default 4 */
  readonly maxContainers?: number;
}

export interface SynthesizedSystem
  extends Pick<LocalSystem, 'url' | 'api' | 'dynamo' | 'expiry' | 'uploads' | 'tableName' | 'stop'> {
  /** In-process access to the same table and connections, for tests and tools (not the functions). */
  readonly context: LocalSystem['context'];
  /** The configuration the functions read from their template environment. */
  readonly config: Config;
  readonly stack: SynthesizedStack;
  /** Each function's processes, by logical id. */
  readonly functions: ReadonlyMap<string, LambdaProcess>;
  /** Each function's environment as its processes get it, by logical id. */
  readonly environments: ReadonlyMap<string, Record<string, string>>;
  readonly sqs: LocalSqs;
  /** Secrets Manager's and EventBridge's stand-in: the push secret, the events put. */
  readonly secretsAndEvents: LocalSecretsAndEvents;
  /** The value of each secret of the stack, by logical id (the push signing secret). */
  readonly secrets: ReadonlyMap<string, string>;
  /** What the functions sent to dead-letter queues, by the queue's logical id. */
  readonly deadLetters: ReadonlyMap<string, SqsMessage[]>;
}

export async function startSynthesizedSystem(
  options: SynthesizedSystemOptions = {},
): Promise<SynthesizedSystem> {
  const tableName = options.tableName ?? 'serverless-xmpp';
  const outdir = options.outdir ?? mkdtempSync(join(tmpdir(), 'xmpp-synth-'));
  const removeOutdir = () => {
    if (!options.outdir && !options.synthesized) rmSync(outdir, { recursive: true, force: true });
  };
  let stack: SynthesizedStack;
  try {
    stack = options.synthesized
      ? readSynthesizedStack(options.synthesized.template, options.synthesized.assemblyDir)
      : synthesizeStack(outdir, { ...options.stack, logLevel: options.logLevel ?? 'warn' });
  } catch (error) {
    removeOutdir();
    throw error;
  }
  // After the synth, which holds this process for a while: DynamoDB Local's start has a deadline.
  const dynamo = await startDynamoLocal({
    port: options.dynamoPort,
    dataDir: options.dataDir,
    // Java starts slowly on a busy machine, and this system's processes start alongside it.
    startTimeoutMs: 120_000,
  });
  const admin = new DynamoDBClient({
    endpoint: dynamo.endpoint,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
  });
  const processes = new Map<string, LambdaProcess>();
  const standardQueues: LocalStandardQueue[] = [];
  // XEP-0363 files: the stack's bucket and distribution, on the emulator's port.
  let uploads: LocalUploads | undefined;
  const temporaryUploads = options.uploadsDir ? undefined : mkdtempSync(join(tmpdir(), 'xmpp-uploads-'));
  const removeUploads = () => {
    uploads?.stop();
    if (temporaryUploads) rmSync(temporaryUploads, { recursive: true, force: true });
  };
  const invoke = <Result>(fn: SynthesizedFunction) => {
    return (event: unknown) => {
      const process = processes.get(fn.logicalId);
      if (!process) throw new Error(`${fn.logicalId} is not started`);
      return process.invoke<Result>(event);
    };
  };
  try {
    await ensureTable(admin, tableName);
    const framesQueue = stack.queues.get(stack.framesQueueId);
    let sqs: LocalSqs | undefined;
    const secretsAndEvents = new LocalSecretsAndEvents();
    let config: Config | undefined;
    const web = localWeb({
      websocketPath: options.api?.path ?? '/xmpp-websocket',
      domain: options.stack?.domain ?? 'localhost',
      mucDomain: options.stack?.mucDomain ?? `conference.${options.stack?.domain ?? 'localhost'}`,
      registration: () => config?.registration ?? false,
    });
    const api = new LocalWebSocketApi({
      ...options.api,
      port: options.port ?? 0,
      host: options.host ?? '127.0.0.1',
      stage: stack.stageName,
      batchSize: stack.frames.eventSource?.batchSize ?? 10,
      maxReceiveCount: framesQueue?.maxReceiveCount ?? 3,
      connectHandler: invoke<APIGatewayProxyResultV2>(stack.connect),
      framesHandler: invoke<SQSBatchResponse>(stack.frames),
      // SQS's, Secrets Manager's and EventBridge's APIs, S3 and CloudFront for uploads, then the
      // chat page and host-meta (infra/local/web.ts), on the emulator's port.
      services: async (request, response) =>
        (await (sqs?.answer(request, response) ?? Promise.resolve(false))) ||
        (await secretsAndEvents.answer(request, response)) ||
        (await (uploads?.answer(request, response) ?? Promise.resolve(false))) ||
        (await web(request, response)),
    });
    await api.listen();
    const origin = `http://${options.host ?? '127.0.0.1'}:${api.port}`;
    sqs = new LocalSqs(() => origin);

    const queueUrls = new Map<string, string>();
    queueUrls.set(
      stack.framesQueueId,
      sqs.addQueue(`${stack.framesQueueId}.fifo`, {
        fifo: true,
        // The functions send only continuations to it; API Gateway's frames come over the sockets.
        accept(message) {
          if (message.attributes.eventType?.StringValue !== CONTINUE_EVENT) {
            throw new SqsError('InvalidParameterValue', 'the local frames queue takes continuations only');
          }
          api.enqueueContinuation(message.groupId ?? '', message.body);
        },
      }),
    );
    for (const { fn, queue } of stack.queueConsumers) {
      const local = new LocalStandardQueue({
        queueArn: `arn:aws:sqs:${LOCAL_REGION}:000000000000:${queue.logicalId}`,
        consumer: invoke<SQSBatchResponse>(fn),
        maxReceiveCount: queue.maxReceiveCount,
        retryDelayMs: options.api?.retryDelayMs,
        log: options.api?.log,
      });
      standardQueues.push(local);
      queueUrls.set(queue.logicalId, sqs.addQueue(queue.logicalId, local));
    }

    // Dead-letter queues the functions send to themselves (the push queue's): kept, for a look.
    const deadLetters = new Map<string, SqsMessage[]>();
    for (const [id, resource] of Object.entries(stack.template.Resources)) {
      if (resource.Type !== 'AWS::SQS::Queue' || queueUrls.has(id) || resource.Properties?.FifoQueue)
        continue;
      const kept: SqsMessage[] = [];
      deadLetters.set(id, kept);
      queueUrls.set(id, sqs.addQueue(id, { fifo: false, accept: (message) => kept.push(message) }));
    }
    // Each secret's value, generated here as Secrets Manager would at deployment.
    const secrets = new Map<string, string>();
    const secretArns = new Map<string, string>();
    for (const [id, resource] of Object.entries(stack.template.Resources)) {
      if (resource.Type !== 'AWS::SecretsManager::Secret') continue;
      const arn = `arn:aws:secretsmanager:${LOCAL_REGION}:000000000000:secret:${id}`;
      secrets.set(id, randomBytes(32).toString('hex'));
      secretArns.set(id, arn);
      secretsAndEvents.addSecret(arn, secrets.get(id) as string);
    }
    const resolve = environmentResolver(stack, {
      tableName,
      secretArns,
      queueUrls,
      apiOrigin: origin,
      webSocketOrigin: `ws://${options.host ?? '127.0.0.1'}:${api.port}`,
    });
    const runtimeEnvironment = {
      AWS_REGION: LOCAL_REGION,
      AWS_DEFAULT_REGION: LOCAL_REGION,
      // The execution role's temporary credentials on Lambda; anything goes locally.
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      AWS_SESSION_TOKEN: 'local',
      // The SDK's standard per-service endpoint settings: the code has no local switch.
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      AWS_ENDPOINT_URL_SQS: origin,
      // Path-style, the endpoint being an IP address: PUT /<bucket>/<key>, as infra/local/uploads.ts takes it.
      AWS_ENDPOINT_URL_S3: origin,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: origin,
      AWS_ENDPOINT_URL_EVENTBRIDGE: origin,
      // This machine's Node.js is older than Lambda's 22, which the SDK would warn about.
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
    const environments = new Map<string, Record<string, string>>();
    for (const fn of stack.functions) {
      const environment = resolve(fn);
      environments.set(fn.logicalId, environment);
      processes.set(
        fn.logicalId,
        new LambdaProcess({
          functionName: fn.logicalId,
          assetDir: fn.assetDir,
          handler: fn.handler,
          environment,
          runtimeEnvironment,
          timeoutSeconds: fn.timeoutSeconds,
          memorySize: fn.memorySize,
          maxContainers: options.maxContainers,
          onOutput: options.onOutput,
        }),
      );
    }
    // One warm container each: a bundle that does not load fails the start, not a first client.
    await Promise.all([...processes.values()].map((process) => process.warm()));

    const framesEnvironment = environments.get(stack.frames.logicalId) ?? {};
    config = configFromEnv(framesEnvironment);
    uploads = new LocalUploads({
      dir: options.uploadsDir ?? (temporaryUploads as string),
      bucket: framesEnvironment.UPLOAD_BUCKET ?? LOCAL_UPLOAD_BUCKET,
      retentionDays: config.uploadRetentionDays,
    });
    await uploads.start();
    const context = createContext(
      {
        config,
        tableName,
        managementEndpoint: api.managementEndpoint,
        region: LOCAL_REGION,
        dynamoEndpoint: dynamo.endpoint,
        logLevel: 'warn',
      },
      { continueDrain: async (connectionId, after) => api.enqueueContinuation(connectionId, after) },
    );
    const expiry = new LocalTimeToLive({
      dynamo: admin,
      tableName,
      handler: invoke<DynamoDBBatchResponse>(stack.expired),
      batchSize: stack.expired.eventSource?.batchSize,
      intervalMs: options.ttlSweepMs,
    });
    expiry.start();
    return {
      url: api.url,
      api,
      dynamo,
      expiry,
      uploads,
      context,
      tableName,
      config,
      stack,
      functions: processes,
      environments,
      sqs,
      secretsAndEvents,
      secrets,
      deadLetters,
      async stop() {
        await expiry.stop();
        await Promise.all(standardQueues.map((queue) => queue.stop()));
        await api.close();
        await Promise.all([...processes.values()].map((process) => process.close()));
        admin.destroy();
        await dynamo.stop();
        removeOutdir();
        removeUploads();
      },
    };
  } catch (error) {
    await Promise.all([...processes.values()].map((process) => process.close()));
    admin.destroy();
    await dynamo.stop();
    removeOutdir();
    removeUploads();
    throw error;
  }
}

interface LocalResources {
  readonly tableName: string;
  /** By the queue's logical id. */
  readonly queueUrls: ReadonlyMap<string, string>;
  /** By the secret's logical id. */
  readonly secretArns?: ReadonlyMap<string, string>;
  /** The emulator's HTTP origin: the Management API (and SQS) answer there. */
  readonly apiOrigin: string;
  readonly webSocketOrigin: string;
}

/**
 * Each template variable as a string: references to the table, a queue, the API or its stage become
 * the local resource; a reference the local system has no stand-in for fails the start.
 */
export function environmentResolver(stack: SynthesizedStack, local: LocalResources) {
  const { Resources } = stack.template;
  const pseudo: Record<string, string> = {
    'AWS::Region': LOCAL_REGION,
    'AWS::AccountId': '000000000000',
    'AWS::Partition': 'aws',
    'AWS::URLSuffix': 'amazonaws.com',
  };
  const value = (variable: string, raw: TemplateValue): string => {
    if (typeof raw === 'string') return raw;
    if (typeof raw === 'number' || typeof raw === 'boolean') return String(raw);
    const object = raw as Record<string, unknown>;
    if (typeof object.Ref === 'string') {
      const id = object.Ref;
      const type = Resources[id]?.Type ?? '';
      if (pseudo[id]) return pseudo[id];
      if (type.startsWith('AWS::DynamoDB::')) return local.tableName;
      if (type === 'AWS::SQS::Queue') {
        return local.queueUrls.get(id) ?? unresolved(variable, `queue ${id}, which nothing consumes`);
      }
      if (type === 'AWS::SecretsManager::Secret') {
        return local.secretArns?.get(id) ?? unresolved(variable, `secret ${id}`);
      }
      if (type === 'AWS::ApiGatewayV2::Api') return LOCAL_API_ID;
      if (type === 'AWS::ApiGatewayV2::Stage') return stack.stageName;
      if (type === 'AWS::S3::Bucket') return LOCAL_UPLOAD_BUCKET;
      return unresolved(variable, `Ref ${id} (${type})`);
    }
    const getAtt = object['Fn::GetAtt'];
    if (Array.isArray(getAtt) && getAtt[1] === 'DomainName') {
      const type = Resources[String(getAtt[0])]?.Type;
      if (type === 'AWS::CloudFront::Distribution') return LOCAL_DISTRIBUTION;
    }
    const join = object['Fn::Join'];
    if (Array.isArray(join) && typeof join[0] === 'string' && Array.isArray(join[1])) {
      const text = (join[1] as TemplateValue[]).map((part) => value(variable, part)).join(join[0]);
      // The stage's URLs: the callback URL (Management API) and the wss:// URL, on the emulator.
      const apiHost = `${LOCAL_API_ID}.execute-api.${LOCAL_REGION}.amazonaws.com`;
      if (text.startsWith(`https://${apiHost}/`))
        return local.apiOrigin + text.slice(`https://${apiHost}`.length);
      if (text.startsWith(`wss://${apiHost}/`))
        return local.webSocketOrigin + text.slice(`wss://${apiHost}`.length);
      // XEP-0363 files are read where the emulator serves them (infra/local/uploads.ts).
      if (text.startsWith(`https://${LOCAL_DISTRIBUTION}`))
        return local.apiOrigin + text.slice(`https://${LOCAL_DISTRIBUTION}`.length);
      return text;
    }
    return unresolved(variable, JSON.stringify(raw));
  };
  return (fn: SynthesizedFunction): Record<string, string> =>
    Object.fromEntries(
      Object.entries(fn.environment).map(([name, raw]) => {
        try {
          return [name, value(name, raw)];
        } catch (error) {
          throw new Error(`${fn.logicalId}: ${(error as Error).message}`);
        }
      }),
    );
}

function unresolved(variable: string, what: string): never {
  throw new Error(`the local system has no stand-in for ${variable}: ${what}`);
}
