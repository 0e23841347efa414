// Money: counted units times AWS list prices. The prices and their sources are written down
// in docs/costs.md ("Prices"); keep the two in step. Everything assumed (durations, a user's
// month, SQS requests per frame) is in ASSUMPTIONS and printed with the report.
import { type Cost, ZERO_COST } from './harness.ts';

/** US East (N. Virginia) list prices, in dollars per unit; docs/costs.md names each page. */
export const PRICES = {
  /** Amazon API Gateway pricing, WebSocket APIs: $1.00 per million messages (first billion a month), 32 KB each. */
  apiGatewayMessage: 1.0 / 1e6,
  /** Amazon API Gateway pricing, WebSocket APIs: $0.25 per million connection minutes. */
  apiGatewayConnectionMinute: 0.25 / 1e6,
  /** AWS Lambda pricing: $0.20 per million requests. */
  lambdaRequest: 0.2 / 1e6,
  /** AWS Lambda pricing, Arm: $0.0000133334 per GB-second (first 7.5 billion GB-seconds a month). */
  lambdaArmGbSecond: 0.0000133334,
  /** Amazon DynamoDB pricing, on-demand: $0.625 per million write request units. */
  dynamoWriteUnit: 0.625 / 1e6,
  /** Amazon DynamoDB pricing, on-demand: $0.125 per million read request units. */
  dynamoReadUnit: 0.125 / 1e6,
  /** Amazon SQS pricing, FIFO queues: $0.50 per million requests (each 64 KB chunk a request). */
  sqsFifoRequest: 0.5 / 1e6,
} as const;

export const PRICES_AS_OF = 'as of 2026-11, verify on the AWS pricing pages';

export interface Assumptions {
  /** The functions' memory (infra/function.ts: 512 MB). */
  readonly lambdaMemoryGb: number;
  /** Billed duration of one frames invocation: assumed, not measured (see docs/costs.md). */
  readonly framesInvocationMs: number;
  /** Billed duration of one $connect invocation (one DynamoDB put): assumed. */
  readonly connectInvocationMs: number;
  /** SQS FIFO requests per queued record: API Gateway's SendMessage, Lambda's receive and delete. */
  readonly sqsRequestsPerRecord: number;
  /** An active user's month. */
  readonly user: {
    readonly messagesPerDay: number;
    /** Share of those that wait for the recipient (stored, drained at the next login). */
    readonly offlineShare: number;
    readonly sessionsPerDay: number;
    readonly connectedHoursPerDay: number;
    /** A ping whenever nothing else was sent for this long (API Gateway closes idle sockets at 10). */
    readonly pingEveryMinutes: number;
    readonly days: number;
  };
}

export const ASSUMPTIONS: Assumptions = {
  lambdaMemoryGb: 0.5,
  framesInvocationMs: 60,
  connectInvocationMs: 20,
  sqsRequestsPerRecord: 3,
  user: {
    messagesPerDay: 50,
    offlineShare: 0.2,
    sessionsPerDay: 4,
    connectedHoursPerDay: 8,
    pingEveryMinutes: 5,
    days: 30,
  },
};

/** A piece of work in billable quantities. `connects` are $connect invocations among `invocations`. */
export interface Usage extends Cost {
  readonly connects?: number;
  readonly connectionMinutes?: number;
  /** Frames the client sent (API Gateway messages in); by default the queued records. */
  readonly framesIn?: number;
}

export interface Bill {
  readonly apiGatewayMessages: number;
  readonly apiGatewayConnectionMinutes: number;
  readonly lambdaRequests: number;
  readonly lambdaDuration: number;
  readonly dynamoWrites: number;
  readonly dynamoReads: number;
  readonly sqs: number;
  readonly total: number;
}

export const BILL_LINES: { key: Exclude<keyof Bill, 'total'>; label: string }[] = [
  { key: 'apiGatewayMessages', label: 'API Gateway messages (frames in + posts out)' },
  { key: 'apiGatewayConnectionMinutes', label: 'API Gateway connection minutes' },
  { key: 'lambdaRequests', label: 'Lambda requests' },
  { key: 'lambdaDuration', label: 'Lambda duration (arm64, 512 MB, assumed ms)' },
  { key: 'dynamoWrites', label: 'DynamoDB write request units' },
  { key: 'dynamoReads', label: 'DynamoDB read request units' },
  { key: 'sqs', label: 'SQS FIFO requests' },
];

export function bill(usage: Usage, times = 1, assumptions: Assumptions = ASSUMPTIONS): Bill {
  const connects = usage.connects ?? 0;
  const frames = usage.invocations - connects;
  const gbSeconds =
    assumptions.lambdaMemoryGb *
    ((frames * assumptions.framesInvocationMs + connects * assumptions.connectInvocationMs) / 1000);
  const lines = {
    apiGatewayMessages: ((usage.framesIn ?? usage.queuedRecords) + usage.posts) * PRICES.apiGatewayMessage,
    apiGatewayConnectionMinutes: (usage.connectionMinutes ?? 0) * PRICES.apiGatewayConnectionMinute,
    lambdaRequests: usage.invocations * PRICES.lambdaRequest,
    lambdaDuration: gbSeconds * PRICES.lambdaArmGbSecond,
    dynamoWrites: usage.writeUnits * PRICES.dynamoWriteUnit,
    dynamoReads: usage.readUnits * PRICES.dynamoReadUnit,
    sqs: usage.queuedRecords * assumptions.sqsRequestsPerRecord * PRICES.sqsFifoRequest,
  };
  const scaled = Object.fromEntries(
    Object.entries(lines).map(([key, value]) => [key, value * times]),
  ) as Omit<Bill, 'total'>;
  return { ...scaled, total: Object.values(scaled).reduce((total, value) => total + value, 0) };
}

export const addBills = (...bills: Bill[]): Bill =>
  Object.fromEntries(
    (['total', ...BILL_LINES.map((line) => line.key)] as (keyof Bill)[]).map((key) => [
      key,
      bills.reduce((total, entry) => total + entry[key], 0),
    ]),
  ) as unknown as Bill;

export interface Counted {
  /** One message with its receipt, both online (bench/message-cost.ts). */
  readonly onlineMessage: Cost;
  /** One message stored while the recipient is offline (server receipt included). */
  readonly offlineStored: Cost;
  /** Per message of a drained backlog (the smallest measured), receipt included. */
  readonly drainedMessage: Cost;
  readonly login: Cost;
  readonly logout: Cost;
  readonly ping: Cost;
}

export interface MoneyResult {
  readonly assumptions: Assumptions;
  readonly pricesAsOf: string;
  readonly perMillionMessages: Bill;
  readonly perUserMonth: {
    readonly quantities: Record<string, number>;
    readonly parts: Record<string, Bill>;
    readonly total: Bill;
  };
}

export function money(counted: Counted, assumptions: Assumptions = ASSUMPTIONS): MoneyResult {
  const { user } = assumptions;
  const messages = user.messagesPerDay * user.days;
  const sessions = user.sessionsPerDay * user.days;
  const connectedMinutes = user.connectedHoursPerDay * 60 * user.days;
  const pings = Math.round(connectedMinutes / user.pingEveryMinutes);
  const quantities = {
    'messages sent (each with its receipt)': messages,
    'of which waited for the recipient': Math.round(messages * user.offlineShare),
    'sessions (login + logout)': sessions,
    'connection minutes': connectedMinutes,
    'pings (keep-alive)': pings,
  };
  const waiting = messages * user.offlineShare;
  const parts = {
    'messages, recipient online': bill(counted.onlineMessage, messages - waiting, assumptions),
    'messages, stored then drained': addBills(
      bill(counted.offlineStored, waiting, assumptions),
      bill(counted.drainedMessage, waiting, assumptions),
    ),
    'logins and logouts': addBills(
      bill({ ...counted.login, connects: 1 }, sessions, assumptions),
      // $disconnect is queued (an SQS message) but is not a WebSocket message.
      bill(
        { ...counted.logout, framesIn: Math.max(0, counted.logout.queuedRecords - 1) },
        sessions,
        assumptions,
      ),
    ),
    'keep-alive pings': bill(counted.ping, pings, assumptions),
    'connection minutes': bill({ ...ZERO_COST, connectionMinutes: connectedMinutes }, 1, assumptions),
  };
  return {
    assumptions,
    pricesAsOf: PRICES_AS_OF,
    perMillionMessages: bill(counted.onlineMessage, 1e6, assumptions),
    perUserMonth: { quantities, parts, total: addBills(...Object.values(parts)) },
  };
}
