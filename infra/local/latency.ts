// The latency AWS adds per hop, modelled (docs/costs.md, "Latency on AWS, modelled"), for the
// emulator to add when asked (`npm start -- --aws-latency`, or AWS_LATENCY=1): developers feel
// locally what a message takes on AWS. Off by default, and in tests but the one that checks it.
//
// Each hop's delay is drawn from a log-normal distribution with the hop's median (p50) and 99th
// percentile (p99), from a seeded generator, so a run can be repeated. The model counts what it
// applied, per hop: the emulator reports it (`api.latency?.applied`).
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { seededRandom } from './faults.ts';

export const HOPS = ['apiGateway', 'sqsFifoToLambda', 'dynamoDb', 'postToConnection'] as const;
export type Hop = (typeof HOPS)[number];

export interface HopLatency {
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/** The budget of docs/costs.md: keep the two in step. */
export const AWS_LATENCY: Record<Hop, HopLatency> = {
  // A frame from the client's socket to the integration's SendMessage (assumed: no published figure).
  apiGateway: { p50Ms: 10, p99Ms: 50 },
  // SQS FIFO to a Lambda event source mapping, measured by bitesizedserverless.com (2022, eu-west-1).
  sqsFifoToLambda: { p50Ms: 28, p99Ms: 645 },
  // One DynamoDB request from Lambda in the same region: "single-digit milliseconds".
  dynamoDb: { p50Ms: 5, p99Ms: 25 },
  // One PostToConnection call, until the frame is on its way to the client (assumed).
  postToConnection: { p50Ms: 15, p99Ms: 60 },
};

/** The standard normal distribution's 99th percentile. */
const Z99 = 2.326;

export interface AppliedDelays {
  count: number;
  totalMs: number;
}

export class LatencyModel {
  /** What was applied so far, per hop. */
  readonly applied: Record<Hop, AppliedDelays> = Object.fromEntries(
    HOPS.map((hop) => [hop, { count: 0, totalMs: 0 }]),
  ) as Record<Hop, AppliedDelays>;
  private readonly random: () => number;

  constructor(
    readonly hops: Record<Hop, HopLatency> = AWS_LATENCY,
    seed = 1,
  ) {
    this.random = seededRandom(seed);
  }

  /** A delay for `hop`, in ms, counted as applied. */
  sample(hop: Hop): number {
    const { p50Ms, p99Ms } = this.hops[hop];
    const sigma = Math.log(p99Ms / p50Ms) / Z99;
    // Box–Muller from two uniform draws (the first kept away from 0).
    const u = Math.max(this.random(), Number.EPSILON);
    const normal = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.random());
    const delay = p50Ms * Math.exp(sigma * normal);
    const entry = this.applied[hop];
    entry.count++;
    entry.totalMs += delay;
    return delay;
  }

  /** Waits for a delay drawn for `hop`. */
  wait(hop: Hop): Promise<void> {
    const delay = this.sample(hop);
    return new Promise((resolve) => setTimeout(resolve, delay));
  }
}

/** `--aws-latency` or AWS_LATENCY=1 (any value but empty, 0 and false). */
export function awsLatencyWanted(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): boolean {
  const value = env.AWS_LATENCY;
  return argv.includes('--aws-latency') || (value !== undefined && !['', '0', 'false'].includes(value));
}

/** Each request of `client` waits for a DynamoDB delay first (the local system's handlers). */
export function delayDynamo(client: DynamoDBClient, latency: LatencyModel): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      await latency.wait('dynamoDb');
      return next(args);
    },
    { step: 'finalizeRequest', name: 'modelledAwsLatency' },
  );
}
