// Deployment parameters: CDK context (`cdk.json` or `npx cdk deploy -c domain=chat.example.com`),
// parsed and validated in one place so that a typo fails the synth instead of the deployment.
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { DEFAULTS, MAX_FRAME_BYTES, parsePushServices } from '../lib/config.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
export type RemovalChoice = 'retain' | 'destroy';
/** Who may send a chat message to whom (lib/config.ts `MESSAGE_POLICY`). */
export type MessagePolicy = 'open' | 'roster';
/** XEP-0077 in-band registration (lib/register.ts): `open` lets anyone create an account. */
export type Registration = 'open' | 'closed';

export interface XmppParameters {
  /** The XMPP domain users live on (`user@domain`). */
  readonly domain: string;
  /** The XEP-0045 service domain. */
  readonly mucDomain: string;
  /** The WebSocket API stage, the last path segment of the `wss://` URL. */
  readonly stageName: string;
  /** Largest frame the server accepts, in bytes (10000 to API Gateway's frame limit, 32768). */
  readonly maxStanzaBytes: number;
  /** Log level of the functions. */
  readonly logLevel: LogLevel;
  /** Stage throttling: steady-state requests per second (messages and connects). */
  readonly throttleRate: number;
  /** Stage throttling: burst capacity. */
  readonly throttleBurst: number;
  /** Retention of the functions' logs, in days (one of CloudWatch Logs' values). */
  readonly logRetentionDays: RetentionDays;
  /** `retain` keeps the table (and logs) when the stack is deleted; `destroy` is for test stacks. */
  readonly removalPolicy: RemovalChoice;
  /** Undelivered messages kept per offline user before senders get resource-constraint. */
  readonly offlineQuota: number;
  /** Days an undelivered message is kept (DynamoDB TTL). */
  readonly retentionDays: number;
  /** Days users' XEP-0313 archives and rooms' messages are kept (DynamoDB TTL); 0 turns the archive off. */
  readonly archiveDays: number;
  /** `open`: anyone on the domain may message anyone; `roster`: only contacts the recipient approved. */
  readonly messagePolicy: MessagePolicy;
  /** Frames one connection may send per second (bursts of 5 s of it); over it: policy-violation. */
  readonly maxFramesPerSecond: number;
  /** Bytes one connection may send per second, at least `maxStanzaBytes`; over it: policy-violation. */
  readonly maxBytesPerSecond: number;
  /** Sessions one user may have at once; one more bind gets resource-constraint. */
  readonly maxSessionsPerUser: number;
  /** Seconds a new connection has to finish SASL before it is closed (SQS delays at most 900). */
  readonly authTimeoutSeconds: number;
  /** `open`: anyone may create an account in-band (XEP-0077); `closed`: only `npm run users`. */
  readonly registration: Registration;
  /** Registration attempts one source address may make per hour (XEP-0077). */
  readonly registrationsPerHour: number;
  /** Shortest password registration and password change accept. */
  readonly minPasswordLength: number;
  /** Deploy the Converse.js chat page (S3 behind CloudFront) and XEP-0156 host-meta beside it. */
  readonly webClient: boolean;
  /** Where alarm notifications go (an SNS e-mail subscription); none when absent. */
  readonly alarmEmail?: string;
  /** A custom domain for the WebSocket API (`wss://chat.example.com`); needs `certificateArn`. */
  readonly customDomainName?: string;
  /** An ACM certificate in the stack's region covering `customDomainName`. */
  readonly certificateArn?: string;
  /**
   * Whether the stack sets API Gateway's account-wide CloudWatch Logs role, which WebSocket access
   * logging needs. `false` when the account and region have one already.
   */
  readonly apiGatewayCloudWatchRole: boolean;
  /** XEP-0363: the upload service's JID. */
  readonly uploadDomain: string;
  /** XEP-0363: largest file a slot is given for, in bytes (S3 takes at most 5 GB in one PUT). */
  readonly uploadMaxFileBytes: number;
  /** XEP-0363: bytes of slots one user may request per UTC day. */
  readonly uploadQuotaBytesPerDay: number;
  /** XEP-0363: days uploaded files are kept (the bucket's lifecycle rule); their GET URLs work that long. */
  readonly uploadRetentionDays: number;
  /**
   * XEP-0357: the push services clients may enable, each with its app server's HTTPS endpoint,
   * as `PUSH_SERVICES` takes them (`jid=url,…`); empty: no push (no queue, no function).
   */
  readonly pushServices: string;
  /** Push registrations one user may have. */
  readonly pushMaxRegistrations: number;
  /** At most one notification per registration in this many seconds. */
  readonly pushCoalesceSeconds: number;
  /** Whether notifications carry the message body (it then passes through the app server). */
  readonly pushIncludeBody: boolean;
  /** Whether a room message mentioning an offline member's nick notifies them. */
  readonly pushRoomMentions: boolean;
  /** Also put each notification on the account's default EventBridge bus. */
  readonly pushEvents: boolean;
  /**
   * Memory of every function, in MB (128 to 10240); Lambda gives CPU in proportion (one vCPU at
   * 1,769 MB). The default is chosen from the table in docs/costs.md, "Lambda memory".
   */
  readonly memorySize: number;
}

/** The XEP-0357 parameters (infra/push.ts), named once. */
export const PUSH_PARAMETER_KEYS = [
  'pushServices',
  'pushMaxRegistrations',
  'pushCoalesceSeconds',
  'pushIncludeBody',
  'pushRoomMentions',
  'pushEvents',
] as const;
export type PushParameterKey = (typeof PUSH_PARAMETER_KEYS)[number];
export type PushParameters = Pick<XmppParameters, PushParameterKey>;

/** Every context key the app reads. */
export const PARAMETER_KEYS = [
  'domain',
  'mucDomain',
  'stageName',
  'maxStanzaBytes',
  'logLevel',
  'throttleRate',
  'throttleBurst',
  'logRetentionDays',
  'removalPolicy',
  'offlineQuota',
  'retentionDays',
  'archiveDays',
  'messagePolicy',
  'maxFramesPerSecond',
  'maxBytesPerSecond',
  'maxSessionsPerUser',
  'authTimeoutSeconds',
  'registration',
  'registrationsPerHour',
  'minPasswordLength',
  'webClient',
  'alarmEmail',
  'customDomainName',
  'certificateArn',
  'apiGatewayCloudWatchRole',
  'uploadDomain',
  'uploadMaxFileBytes',
  'uploadQuotaBytesPerDay',
  'uploadRetentionDays',
  ...PUSH_PARAMETER_KEYS,
  'memorySize',
] as const satisfies readonly (keyof XmppParameters)[];

export const PARAMETER_DEFAULTS = {
  domain: 'localhost',
  stageName: 'prod',
  maxStanzaBytes: MAX_FRAME_BYTES,
  logLevel: 'info',
  throttleRate: 500,
  throttleBurst: 1000,
  logRetentionDays: RetentionDays.ONE_MONTH,
  removalPolicy: 'retain',
  offlineQuota: 10_000,
  retentionDays: 30,
  archiveDays: DEFAULTS.archiveDays,
  messagePolicy: 'open',
  // The abuse limits: the core's defaults (lib/config.ts).
  maxFramesPerSecond: DEFAULTS.maxFramesPerSecond,
  maxBytesPerSecond: DEFAULTS.maxBytesPerSecond,
  maxSessionsPerUser: DEFAULTS.maxSessionsPerUser,
  authTimeoutSeconds: DEFAULTS.authTimeoutSeconds,
  apiGatewayCloudWatchRole: true,
  registration: 'closed',
  registrationsPerHour: DEFAULTS.registrationsPerHour,
  minPasswordLength: DEFAULTS.minPasswordLength,
  webClient: false,
  uploadMaxFileBytes: DEFAULTS.uploadMaxFileBytes,
  uploadQuotaBytesPerDay: DEFAULTS.uploadQuotaBytesPerDay,
  uploadRetentionDays: DEFAULTS.uploadRetentionDays,
  pushServices: '',
  pushMaxRegistrations: DEFAULTS.pushMaxRegistrations,
  pushCoalesceSeconds: DEFAULTS.pushCoalesceSeconds,
  pushIncludeBody: DEFAULTS.pushIncludeBody,
  pushRoomMentions: DEFAULTS.pushRoomMentions,
  pushEvents: false,
  // docs/costs.md, "Lambda memory": the smallest size within 1.25× of one full vCPU's handler time.
  memorySize: 768,
} as const satisfies Omit<XmppParameters, 'mucDomain' | 'uploadDomain' | OptionalParameter>;

/** Parameters without a default: the feature is off unless they are set. */
type OptionalParameter = 'alarmEmail' | 'customDomainName' | 'certificateArn';

/** RFC 6120 §13.12: a server must accept stanzas of at least 10000 bytes. */
const MIN_STANZA_BYTES = 10000;
/** API Gateway closes a WebSocket connection whose frame exceeds 32 KB (lib/config.ts). */
const MAX_STANZA_BYTES = MAX_FRAME_BYTES;

const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];
const REMOVAL_CHOICES: readonly RemovalChoice[] = ['retain', 'destroy'];
const MESSAGE_POLICIES: readonly MessagePolicy[] = ['open', 'roster'];
const REGISTRATIONS: readonly Registration[] = ['open', 'closed'];
const RETENTION_VALUES = Object.values(RetentionDays).filter((value) => typeof value === 'number');
/** A DNS name: labels of letters, digits and inner hyphens. */
const DOMAIN =
  /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
/** API Gateway stage names. */
const STAGE_NAME = /^[A-Za-z0-9_-]{1,128}$/;
/** An e-mail address SNS can subscribe (deliberately loose: SNS asks the owner to confirm). */
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
/** An ACM certificate ARN. */
const CERTIFICATE_ARN = /^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[A-Za-z0-9-]+$/;

export class ParameterError extends Error {
  override name = 'ParameterError';
}

/**
 * Reads every parameter through `context` (for example `(key) => app.node.tryGetContext(key)`),
 * applies the defaults, and throws a ParameterError naming the first invalid value. Values may be
 * strings (from `-c key=value`) or numbers (from `cdk.json`).
 */
export function parseParameters(context: (key: string) => unknown): XmppParameters {
  const domain = dnsName('domain', context('domain') ?? PARAMETER_DEFAULTS.domain);
  const customDomainName = optional(context('customDomainName'), (value) =>
    dnsName('customDomainName', value),
  );
  const certificateArn = optional(context('certificateArn'), (value) =>
    matching('certificateArn', value, CERTIFICATE_ARN),
  );
  if ((customDomainName === undefined) !== (certificateArn === undefined)) {
    throw new ParameterError(
      'context parameters customDomainName and certificateArn: set both (a custom domain needs its certificate) or neither',
    );
  }
  const maxStanzaBytes = integer(
    'maxStanzaBytes',
    context('maxStanzaBytes') ?? PARAMETER_DEFAULTS.maxStanzaBytes,
    MIN_STANZA_BYTES,
    MAX_STANZA_BYTES,
  );
  return {
    domain,
    mucDomain: dnsName('mucDomain', context('mucDomain') ?? `conference.${domain}`),
    stageName: matching('stageName', context('stageName') ?? PARAMETER_DEFAULTS.stageName, STAGE_NAME),
    maxStanzaBytes,
    logLevel: oneOf('logLevel', context('logLevel') ?? PARAMETER_DEFAULTS.logLevel, LOG_LEVELS),
    throttleRate: positiveNumber('throttleRate', context('throttleRate') ?? PARAMETER_DEFAULTS.throttleRate),
    throttleBurst: integer(
      'throttleBurst',
      context('throttleBurst') ?? PARAMETER_DEFAULTS.throttleBurst,
      1,
      Number.MAX_SAFE_INTEGER,
    ),
    logRetentionDays: oneOf(
      'logRetentionDays',
      toNumber(context('logRetentionDays') ?? PARAMETER_DEFAULTS.logRetentionDays),
      RETENTION_VALUES,
    ),
    removalPolicy: oneOf(
      'removalPolicy',
      context('removalPolicy') ?? PARAMETER_DEFAULTS.removalPolicy,
      REMOVAL_CHOICES,
    ),
    offlineQuota: integer(
      'offlineQuota',
      context('offlineQuota') ?? PARAMETER_DEFAULTS.offlineQuota,
      1,
      1_000_000,
    ),
    retentionDays: integer(
      'retentionDays',
      context('retentionDays') ?? PARAMETER_DEFAULTS.retentionDays,
      1,
      3650,
    ),
    archiveDays: integer('archiveDays', context('archiveDays') ?? PARAMETER_DEFAULTS.archiveDays, 0, 3650),
    messagePolicy: oneOf(
      'messagePolicy',
      context('messagePolicy') ?? PARAMETER_DEFAULTS.messagePolicy,
      MESSAGE_POLICIES,
    ),
    ...limits(context, maxStanzaBytes),
    registration: oneOf(
      'registration',
      context('registration') ?? PARAMETER_DEFAULTS.registration,
      REGISTRATIONS,
    ),
    registrationsPerHour: integer(
      'registrationsPerHour',
      context('registrationsPerHour') ?? PARAMETER_DEFAULTS.registrationsPerHour,
      1,
      10_000,
    ),
    minPasswordLength: integer(
      'minPasswordLength',
      context('minPasswordLength') ?? PARAMETER_DEFAULTS.minPasswordLength,
      1,
      1024,
    ),
    webClient: boolean('webClient', context('webClient') ?? PARAMETER_DEFAULTS.webClient),
    ...definedOnly({
      alarmEmail: optional(context('alarmEmail'), (value) => matching('alarmEmail', value, EMAIL)),
      customDomainName,
      certificateArn,
    }),
    apiGatewayCloudWatchRole: boolean(
      'apiGatewayCloudWatchRole',
      context('apiGatewayCloudWatchRole') ?? PARAMETER_DEFAULTS.apiGatewayCloudWatchRole,
    ),
    ...uploads(context, domain),
    ...pushParameters(context),
    // Lambda's range for memory (1 MB steps).
    memorySize: integer('memorySize', context('memorySize') ?? PARAMETER_DEFAULTS.memorySize, 128, 10240),
  };
}

/** S3 takes at most 5 GB in one PUT (a slot is one presigned PutObject). */
const MAX_UPLOAD_BYTES = 5 * 1024 ** 3;

/** XEP-0363 (lib/upload.ts, infra/uploads.ts). */
function uploads(
  context: (key: string) => unknown,
  domain: string,
): Pick<
  XmppParameters,
  'uploadDomain' | 'uploadMaxFileBytes' | 'uploadQuotaBytesPerDay' | 'uploadRetentionDays'
> {
  const value = (key: keyof typeof PARAMETER_DEFAULTS) => context(key) ?? PARAMETER_DEFAULTS[key];
  const uploadMaxFileBytes = integer('uploadMaxFileBytes', value('uploadMaxFileBytes'), 1, MAX_UPLOAD_BYTES);
  return {
    uploadDomain: dnsName('uploadDomain', context('uploadDomain') ?? `upload.${domain}`),
    uploadMaxFileBytes,
    // At least one largest file a day.
    uploadQuotaBytesPerDay: integer(
      'uploadQuotaBytesPerDay',
      value('uploadQuotaBytesPerDay'),
      uploadMaxFileBytes,
      Number.MAX_SAFE_INTEGER,
    ),
    uploadRetentionDays: integer('uploadRetentionDays', value('uploadRetentionDays'), 1, 3650),
  };
}

/** XEP-0357 (lib/push.ts). */
function pushParameters(context: (key: string) => unknown): PushParameters {
  const value = (key: keyof PushParameters) => context(key) ?? PARAMETER_DEFAULTS[key];
  return {
    pushServices: pushServices(value('pushServices')),
    pushMaxRegistrations: integer('pushMaxRegistrations', value('pushMaxRegistrations'), 1, 100),
    // SQS delays a message by at most 15 minutes.
    pushCoalesceSeconds: integer('pushCoalesceSeconds', value('pushCoalesceSeconds'), 0, 900),
    pushIncludeBody: boolean('pushIncludeBody', value('pushIncludeBody')),
    pushRoomMentions: boolean('pushRoomMentions', value('pushRoomMentions')),
    pushEvents: boolean('pushEvents', value('pushEvents')),
  };
}

/**
 * `jid=url,…` (from `-c`), or an object of JIDs to URLs (in cdk.json); HTTPS only, since the
 * notifications leave AWS (plain http only to a loopback address, for the local system).
 * Returned as PUSH_SERVICES takes it.
 */
function pushServices(value: unknown): string {
  const text =
    typeof value === 'object' && value !== null
      ? Object.entries(value as Record<string, unknown>)
          .map(([jid, url]) => `${jid}=${String(url)}`)
          .join(',')
      : value;
  if (typeof text !== 'string') fail('pushServices', value, 'jid=https-url pairs separated by commas');
  let services: Map<string, string>;
  try {
    services = parsePushServices(text);
  } catch (error) {
    fail('pushServices', value, `jid=https-url pairs separated by commas (${(error as Error).message})`);
  }
  for (const [jid, url] of services) {
    // Plain http only to this machine: the local system (`npm start -- --from-synth`) and its tests.
    const loopback = /^http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?\//.test(url);
    if (!url.startsWith('https://') && !loopback) fail('pushServices', value, `an https URL for ${jid}`);
  }
  return [...services].map(([jid, url]) => `${jid}=${url}`).join(',');
}

/** SQS delays a message by at most 15 minutes (lib/gateway/sqs-deadlines.ts). */
const MAX_AUTH_TIMEOUT_SECONDS = 900;

/** The abuse limits (lib/limits.ts). A connection must always be able to send one largest frame. */
function limits(
  context: (key: string) => unknown,
  maxStanzaBytes: number,
): Pick<
  XmppParameters,
  'maxFramesPerSecond' | 'maxBytesPerSecond' | 'maxSessionsPerUser' | 'authTimeoutSeconds'
> {
  const value = (key: keyof typeof PARAMETER_DEFAULTS) => context(key) ?? PARAMETER_DEFAULTS[key];
  return {
    maxFramesPerSecond: integer('maxFramesPerSecond', value('maxFramesPerSecond'), 1, 10_000),
    maxBytesPerSecond: integer(
      'maxBytesPerSecond',
      value('maxBytesPerSecond'),
      maxStanzaBytes,
      100 * 1024 * 1024,
    ),
    maxSessionsPerUser: integer('maxSessionsPerUser', value('maxSessionsPerUser'), 1, 1000),
    authTimeoutSeconds: integer(
      'authTimeoutSeconds',
      value('authTimeoutSeconds'),
      1,
      MAX_AUTH_TIMEOUT_SECONDS,
    ),
  };
}

/** Leaves out the optional parameters that are not set. */
function definedOnly<T extends object>(values: T): Partial<T> {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== undefined)) as Partial<T>;
}

/** An optional parameter: absent (or empty, as `-c key=` gives) means not set. */
function optional<T>(value: unknown, parse: (value: unknown) => T): T | undefined {
  return value === undefined || value === null || value === '' ? undefined : parse(value);
}

/** `true`/`false` from cdk.json, or the strings from `-c key=value`. */
function boolean(key: string, value: unknown): boolean {
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  fail(key, value, 'true or false');
}

function fail(key: string, value: unknown, expected: string): never {
  throw new ParameterError(`context parameter ${key}: expected ${expected}, got ${JSON.stringify(value)}`);
}

function matching(key: string, value: unknown, pattern: RegExp): string {
  if (typeof value !== 'string' || !pattern.test(value)) fail(key, value, `a value matching ${pattern}`);
  return value;
}

/** Domain names are case-insensitive (RFC 7622 §3.2): normalised to lower case. */
function dnsName(key: string, value: unknown): string {
  if (typeof value !== 'string' || !DOMAIN.test(value.toLowerCase())) fail(key, value, 'a DNS domain name');
  return value.toLowerCase();
}

function toNumber(value: unknown): unknown {
  return typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
}

function positiveNumber(key: string, value: unknown): number {
  const parsed = toNumber(value);
  if (typeof parsed !== 'number' || !Number.isFinite(parsed) || parsed <= 0)
    fail(key, value, 'a positive number');
  return parsed;
}

function integer(key: string, value: unknown, min: number, max: number): number {
  const parsed = toNumber(value);
  if (typeof parsed !== 'number' || !Number.isInteger(parsed) || parsed < min || parsed > max) {
    fail(key, value, `an integer from ${min} to ${max}`);
  }
  return parsed;
}

function oneOf<T>(key: string, value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) fail(key, value, `one of ${allowed.join(', ')}`);
  return value as T;
}
