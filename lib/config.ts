// Settings of one deployment. Read from the environment only by the entry points
// (functions/, scripts/), then passed to the core.

export interface Config {
  /** The XMPP domain users live on, e.g. `localhost` or `chat.example.com`. */
  readonly domain: string;
  /** The XEP-0045 service domain, `conference.` + domain by default. */
  readonly mucDomain: string;
  /**
   * Largest frame accepted, in bytes: at most API Gateway's WebSocket frame limit (32 KB),
   * the largest that reaches the handlers intact; a bigger frame closes the connection.
   */
  readonly maxStanzaBytes: number;
  /** SCRAM iteration count for new passwords (RFC 7677 asks for at least 4096). */
  readonly scramIterations: number;
  /** How long API Gateway keeps a connection at most, in seconds (2 h on AWS). */
  readonly maxConnectionSeconds: number;
  /** Undelivered messages kept for one user while offline; over it senders get resource-constraint. */
  readonly offlineQuota: number;
  /** How long an undelivered message is kept, in days (DynamoDB TTL). */
  readonly retentionDays: number;
  /**
   * XEP-0313: how long users' archives (and rooms' messages) are kept, in days (DynamoDB TTL);
   * 0 turns the archive off.
   */
  readonly archiveDays: number;
  /** Messages read from the table per request when draining. */
  readonly drainPageSize: number;
  /** Messages one invocation drains before it hands the rest to the next (docs/architecture.md). */
  readonly drainPerInvocation: number;
  /** Contacts per roster. */
  readonly rosterLimit: number;
  /** `open`: anyone on the domain may message anyone; `roster`: only those the recipient approved. */
  readonly messagePolicy: MessagePolicy;
  /** Frames one connection may send per second (lib/limits.ts); over it: policy-violation. */
  readonly maxFramesPerSecond: number;
  /** Bytes one connection may send per second (lib/limits.ts); over it: policy-violation. */
  readonly maxBytesPerSecond: number;
  /** Sessions (bound resources) one user may have at once; over it bind gets resource-constraint. */
  readonly maxSessionsPerUser: number;
  /** Seconds from $connect to the end of SASL; a connection not authenticated by then is closed. */
  readonly authTimeoutSeconds: number;
  /** XEP-0077: whether anyone may create an account in-band (password change and removal always work). */
  readonly registration: boolean;
  /** Accounts one source address may create per hour in-band (lib/register.ts). */
  readonly registrationsPerHour: number;
  /** Shortest password registration and password change accept, in characters. */
  readonly minPasswordLength: number;
  /** XEP-0363: the HTTP upload service's JID, `upload.` + domain by default (lib/upload.ts). */
  readonly uploadDomain: string;
  /** XEP-0363: largest file a slot is given for, in bytes (its disco#info max-file-size). */
  readonly uploadMaxFileBytes: number;
  /** XEP-0363: bytes of slots one user may request per UTC day; over it resource-constraint. */
  readonly uploadQuotaBytesPerDay: number;
  /** XEP-0363: days an uploaded file is kept (S3 lifecycle; locally the same), so its GET URL works. */
  readonly uploadRetentionDays: number;
  /**
   * XEP-0357: the push services clients may enable (the JID they name in `<enable jid=…>`),
   * each with the app server's endpoint the notifications are POSTed to (lib/push.ts).
   */
  readonly pushServices: ReadonlyMap<string, string>;
  /** Push registrations (service and node) one user may have. */
  readonly pushMaxRegistrations: number;
  /** At most one notification per registration in this many seconds; the count covers the rest. */
  readonly pushCoalesceSeconds: number;
  /** Whether a notification carries the message's body (`last-message-body`); off: sender and count only. */
  readonly pushIncludeBody: boolean;
  /** Whether a room message that mentions an offline member's nick notifies them. */
  readonly pushRoomMentions: boolean;
  /** Tries of one notification before it goes to the dead-letter queue; waits double from `pushRetrySeconds`. */
  readonly pushMaxAttempts: number;
  readonly pushRetrySeconds: number;
}

export type MessagePolicy = 'open' | 'roster';

/**
 * API Gateway closes a WebSocket connection (1009) whose frame exceeds 32 KB, and browsers
 * and most libraries send each message as one frame: nothing bigger reaches the handlers.
 */
export const MAX_FRAME_BYTES = 32 * 1024;

export const DEFAULTS = {
  domain: 'localhost',
  maxStanzaBytes: MAX_FRAME_BYTES,
  scramIterations: 4096,
  maxConnectionSeconds: 7200,
  offlineQuota: 10_000,
  retentionDays: 30,
  archiveDays: 365,
  drainPageSize: 100,
  drainPerInvocation: 1000,
  rosterLimit: 1000,
  messagePolicy: 'open' as MessagePolicy,
  maxFramesPerSecond: 200,
  maxBytesPerSecond: 262_144,
  maxSessionsPerUser: 10,
  authTimeoutSeconds: 30,
  // Off unless a deployment opens it (`npm start` does, for a local system).
  registration: false,
  registrationsPerHour: 10,
  minPasswordLength: 8,
  uploadMaxFileBytes: 50 * 1024 * 1024,
  uploadQuotaBytesPerDay: 1024 * 1024 * 1024,
  uploadRetentionDays: 30,
  pushMaxRegistrations: 10,
  pushCoalesceSeconds: 10,
  pushIncludeBody: false,
  pushRoomMentions: true,
  pushMaxAttempts: 8,
  pushRetrySeconds: 10,
} as const;

export function defaultConfig(domain: string = DEFAULTS.domain): Config {
  const { domain: _default, ...rest } = DEFAULTS;
  return {
    ...rest,
    domain,
    mucDomain: `conference.${domain}`,
    uploadDomain: `upload.${domain}`,
    pushServices: new Map(),
  };
}

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): Config {
  const domain = env.XMPP_DOMAIN || DEFAULTS.domain;
  return {
    domain,
    mucDomain: env.MUC_DOMAIN || `conference.${domain}`,
    // Clamped rather than refused: nothing over the frame limit arrives anyway (the stack's
    // parameters refuse such a value at synth time).
    maxStanzaBytes: Math.min(positiveInt(env.MAX_STANZA_BYTES, DEFAULTS.maxStanzaBytes), MAX_FRAME_BYTES),
    scramIterations: positiveInt(env.SCRAM_ITERATIONS, DEFAULTS.scramIterations),
    maxConnectionSeconds: positiveInt(env.MAX_CONNECTION_SECONDS, DEFAULTS.maxConnectionSeconds),
    offlineQuota: positiveInt(env.OFFLINE_QUOTA, DEFAULTS.offlineQuota),
    retentionDays: positiveInt(env.RETENTION_DAYS, DEFAULTS.retentionDays),
    archiveDays: nonNegativeInt(env.ARCHIVE_DAYS, DEFAULTS.archiveDays),
    drainPageSize: Math.min(positiveInt(env.DRAIN_PAGE_SIZE, DEFAULTS.drainPageSize), 1000),
    drainPerInvocation: positiveInt(env.DRAIN_PER_INVOCATION, DEFAULTS.drainPerInvocation),
    rosterLimit: positiveInt(env.ROSTER_LIMIT, DEFAULTS.rosterLimit),
    messagePolicy: messagePolicy(env.MESSAGE_POLICY),
    maxFramesPerSecond: positiveInt(env.MAX_FRAMES_PER_SECOND, DEFAULTS.maxFramesPerSecond),
    maxBytesPerSecond: positiveInt(env.MAX_BYTES_PER_SECOND, DEFAULTS.maxBytesPerSecond),
    maxSessionsPerUser: positiveInt(env.MAX_SESSIONS_PER_USER, DEFAULTS.maxSessionsPerUser),
    authTimeoutSeconds: positiveInt(env.AUTH_TIMEOUT_SECONDS, DEFAULTS.authTimeoutSeconds),
    registration: registration(env.REGISTRATION),
    registrationsPerHour: positiveInt(env.REGISTRATIONS_PER_HOUR, DEFAULTS.registrationsPerHour),
    minPasswordLength: positiveInt(env.MIN_PASSWORD_LENGTH, DEFAULTS.minPasswordLength),
    uploadDomain: env.UPLOAD_DOMAIN || `upload.${domain}`,
    uploadMaxFileBytes: positiveInt(env.UPLOAD_MAX_FILE_BYTES, DEFAULTS.uploadMaxFileBytes),
    uploadQuotaBytesPerDay: positiveInt(env.UPLOAD_QUOTA_BYTES_PER_DAY, DEFAULTS.uploadQuotaBytesPerDay),
    uploadRetentionDays: positiveInt(env.UPLOAD_RETENTION_DAYS, DEFAULTS.uploadRetentionDays),
    pushServices: parsePushServices(env.PUSH_SERVICES ?? ''),
    pushMaxRegistrations: positiveInt(env.PUSH_MAX_REGISTRATIONS, DEFAULTS.pushMaxRegistrations),
    pushCoalesceSeconds: nonNegativeInt(env.PUSH_COALESCE_SECONDS, DEFAULTS.pushCoalesceSeconds),
    pushIncludeBody: flag(env.PUSH_INCLUDE_BODY, 'PUSH_INCLUDE_BODY', DEFAULTS.pushIncludeBody),
    pushRoomMentions: flag(env.PUSH_ROOM_MENTIONS, 'PUSH_ROOM_MENTIONS', DEFAULTS.pushRoomMentions),
    pushMaxAttempts: positiveInt(env.PUSH_MAX_ATTEMPTS, DEFAULTS.pushMaxAttempts),
    pushRetrySeconds: positiveInt(env.PUSH_RETRY_SECONDS, DEFAULTS.pushRetrySeconds),
  };
}

/**
 * PUSH_SERVICES (the `--push-service` flags, the stack's `pushServices`): `jid=url` entries
 * separated by commas or white space, e.g. `push.example.com=https://app.example.com/xmpp-push`.
 */
export function parsePushServices(text: string): Map<string, string> {
  const services = new Map<string, string>();
  for (const entry of text.split(/[\s,]+/).filter(Boolean)) {
    const split = entry.indexOf('=');
    const jid = entry.slice(0, split).toLowerCase();
    const url = entry.slice(split + 1);
    if (split <= 0 || !/^[^\s/@]+(@[^\s/@]+)?$/.test(jid))
      throw new Error(`a push service is jid=url, got "${entry}"`);
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new Error(`the push service ${jid} needs an http or https URL, got "${url}"`);
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')
      throw new Error(`the push service ${jid} needs an http or https URL, got "${url}"`);
    services.set(jid, url);
  }
  return services;
}

function flag(value: string | undefined, name: string, fallback: boolean): boolean {
  if (value === undefined || value === '') return fallback;
  if (value !== 'true' && value !== 'false') throw new Error(`${name} must be true or false, got "${value}"`);
  return value === 'true';
}

/** REGISTRATION: `open` or `closed` (the stack's context parameter `registration`). */
function registration(value: string | undefined): boolean {
  if (value === undefined || value === '') return DEFAULTS.registration;
  if (value !== 'open' && value !== 'closed')
    throw new Error(`REGISTRATION must be open or closed, got "${value}"`);
  return value === 'open';
}

function positiveInt(value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed <= 0)
    throw new Error(`expected a positive integer, got "${value}"`);
  return parsed;
}

function nonNegativeInt(value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0)
    throw new Error(`expected a non-negative integer, got "${value}"`);
  return parsed;
}

function messagePolicy(value: string | undefined): MessagePolicy {
  if (value === undefined || value === '') return DEFAULTS.messagePolicy;
  if (value !== 'open' && value !== 'roster')
    throw new Error(`MESSAGE_POLICY must be open or roster, got "${value}"`);
  return value;
}
