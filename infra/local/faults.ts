// Fault injection for the local system (`npm start -- --faults ddb=0.05,post=0.05`, or
// FAULTS= in the environment; `npm run chaos`). Each fault takes the path a real one takes:
//
// - ddb: a share of the handlers' DynamoDB calls is answered, in place of DynamoDB, with the
//   HTTP error DynamoDB sends: 400 ThrottlingException or ProvisionedThroughputExceededException,
//   or 500 InternalServerError. The answer is made below the SDK's deserializer and retry
//   middleware, so the SDK parses it and retries it as it would a real one (functions/runtime.ts
//   sets the retry mode and attempts). A share of the 500s comes after DynamoDB applied the
//   call (the answer was lost, not the write): the retry then meets its own write.
// - post: a share of posts to connections (PostToConnection) is answered 500 or 429 by the
//   emulator's Management API (LocalWebSocketApi `postFault`).
// - kill: a share of frames invocations "times out" after some of its records: those are
//   handled (their posts and writes happen), then the invocation fails as a Lambda timeout
//   does, and SQS delivers the whole batch again. Only a batch's first delivery is killed, so
//   that the run measures replays and not the dead-letter queue.
import { Readable } from 'node:stream';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type { PostFault } from './websocket-api.ts';

export interface FaultSettings {
  /** Share of DynamoDB calls that fail (0–1). */
  readonly ddb: number;
  /** Share of posts to connections that fail (0–1). */
  readonly post: number;
  /** Share of frames invocations killed part-way (0–1). */
  readonly kill: number;
  /** Seed of the faults' random choices (the same seed, the same sequence of decisions). */
  readonly seed: number;
}

export const NO_FAULTS: FaultSettings = { ddb: 0, post: 0, kill: 0, seed: 1 };

/** `ddb=0.05,post=0.05,kill=0.02,seed=7`; an empty string is no faults. */
export function parseFaults(text: string | undefined): FaultSettings {
  const settings: Record<string, number> = { ...NO_FAULTS };
  for (const part of (text ?? '').split(',').map((p) => p.trim())) {
    if (part === '') continue;
    const [name, value] = part.split('=');
    const number = Number(value);
    if (!name || !(name in NO_FAULTS) || value === undefined || !Number.isFinite(number) || number < 0) {
      throw new Error(`faults: "${part}" is not one of ddb=SHARE, post=SHARE, kill=SHARE, seed=N`);
    }
    if (name !== 'seed' && number > 1) throw new Error(`faults: ${name} is a share, 0 to 1`);
    settings[name] = number;
  }
  return settings as unknown as FaultSettings;
}

export const hasFaults = (settings: FaultSettings) =>
  settings.ddb > 0 || settings.post > 0 || settings.kill > 0;

/** What was injected, for the chaos report. */
export interface FaultCounters {
  ddbCalls: number;
  ddbThrottled: number;
  ddbServerErrors: number;
  /** 500s sent after DynamoDB applied the call. */
  ddbLostAnswers: number;
  postsFailed: number;
  invocationsKilled: number;
  /** Records of killed invocations that were handled before the kill, and so handled twice. */
  recordsReplayed: number;
}

export const newFaultCounters = (): FaultCounters => ({
  ddbCalls: 0,
  ddbThrottled: 0,
  ddbServerErrors: 0,
  ddbLostAnswers: 0,
  postsFailed: 0,
  invocationsKilled: 0,
  recordsReplayed: 0,
});

/** mulberry32: a seeded source, so that a run can be repeated. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const DYNAMO_ERRORS = [
  { status: 400, type: 'ThrottlingException', message: 'Rate of requests exceeds the allowed throughput.' },
  {
    status: 400,
    type: 'ProvisionedThroughputExceededException',
    message: 'The level of configured provisioned throughput for the table was exceeded.',
  },
  { status: 500, type: 'InternalServerError', message: 'Internal server error' },
] as const;

/** An HTTP answer as DynamoDB sends it (JSON 1.0 protocol), for the SDK to deserialize. */
function dynamoErrorResponse(error: (typeof DYNAMO_ERRORS)[number]) {
  const body = JSON.stringify({
    __type: `com.amazonaws.dynamodb.v20120810#${error.type}`,
    message: error.message,
  });
  return {
    statusCode: error.status,
    reason: error.status === 500 ? 'Internal Server Error' : 'Bad Request',
    headers: {
      'content-type': 'application/x-amz-json-1.0',
      'x-amzn-requestid': `fault-${Math.random().toString(36).slice(2)}`,
      'content-length': String(Buffer.byteLength(body)),
    },
    body: Readable.from([Buffer.from(body)]),
  };
}

/**
 * Makes `share` of the client's calls fail. The middleware sits in the deserialize step below
 * the SDK's deserializer (which is below the retry middleware), where the transport's answer
 * comes back: it replaces that answer.
 */
export function injectDynamoFaults(
  client: DynamoDBClient,
  share: number,
  random: () => number,
  counters: FaultCounters,
): void {
  if (share <= 0) return;
  client.middlewareStack.add(
    (next) => async (args) => {
      counters.ddbCalls++;
      if (random() >= share) return next(args);
      const error = DYNAMO_ERRORS[Math.floor(random() * DYNAMO_ERRORS.length)] ?? DYNAMO_ERRORS[0];
      if (error.status === 500 && random() < 0.5) {
        // The call went through; only its answer is lost.
        await next(args);
        counters.ddbLostAnswers++;
      }
      if (error.status === 500) counters.ddbServerErrors++;
      else counters.ddbThrottled++;
      return { response: dynamoErrorResponse(error), output: undefined as never };
    },
    { step: 'deserialize', priority: 'low', name: 'chaosDynamoFaults' },
  );
}

/** The emulator's `postFault` hook: `share` of posts answered 500 or 429. */
export function postFaults(
  share: number,
  random: () => number,
  counters: FaultCounters,
): ((connectionId: string, body: string) => PostFault | undefined) | undefined {
  if (share <= 0) return undefined;
  return () => {
    if (random() >= share) return undefined;
    counters.postsFailed++;
    return random() < 0.5 ? 500 : 429;
  };
}

type FramesHandler = (event: SQSEvent) => Promise<SQSBatchResponse | undefined>;

/**
 * A frames handler of which `share` of invocations (first deliveries of two records or more)
 * handle only their first k records (1 ≤ k < n), then fail as a timed-out Lambda does: SQS
 * delivers the whole batch again.
 */
export function killInvocations(
  handler: FramesHandler,
  share: number,
  random: () => number,
  counters: FaultCounters,
): FramesHandler {
  if (share <= 0) return handler;
  return async (event) => {
    const records = event.Records;
    const firstDelivery = records.every((record) => record.attributes.ApproximateReceiveCount === '1');
    if (records.length < 2 || !firstDelivery || random() >= share) return handler(event);
    const handled = 1 + Math.floor(random() * (records.length - 1));
    await handler({ Records: records.slice(0, handled) });
    counters.invocationsKilled++;
    counters.recordsReplayed += handled;
    throw new Error(`Task timed out (chaos: killed after ${handled} of ${records.length} records)`);
  };
}
