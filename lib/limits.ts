// Abuse limits: what API Gateway's throttling cannot do, because it knows no connection
// and no user (README, "Limits"). Three of them, each cheap enough to run on every frame:
//
// - Frames and bytes per connection (RFC 6120 §4.9.3.14 policy-violation): a token bucket
//   per connection, kept in memory by each container (a cache: losing it only forgets how
//   fast a connection was). It counts frames by the time they reached the queue (SQS
//   SentTimestamp), not by when they are handled, so a backlog handled late is not a flood,
//   and needs no DynamoDB write. What it does not catch: a connection's batches may be
//   handled by different containers (one batch at a time per FIFO group, but any warm
//   container), each with its own bucket; a flood spread over C containers is seen at 1/C of
//   its rate. One connection still runs at most one invocation at a time (its FIFO group),
//   so what it can cost is bounded by its own queue, and every frame of a closed connection
//   still queued is dropped here without a read or a post.
// - Sessions per user (RFC 6120 §7.6.2.1 resource-constraint): counted at bind with one
//   query of the user's sessions. Two binds at the same moment may both pass; a session
//   whose $disconnect was lost counts until TTL removes it (at most 2 hours).
// - The authentication deadline (RFC 6120 §4.9.3.14 policy-violation): $connect asks the
//   Deadlines port to come back after `authTimeoutSeconds` (a delayed SQS message on AWS, a
//   timer locally); a connection that has not finished SASL by then is closed.
import type { Config } from './config.ts';
import type { Link } from './link.ts';
import type { ConnectionRecord, Context } from './ports.ts';

/**
 * A bucket holds this many seconds of its rate. Generous on purpose: a client that acknowledges
 * a drain (a receipt per message) answers at the server's push rate, which can pass the
 * sustained rate for a few seconds; a flood goes on until it is cut.
 */
export const BURST_SECONDS = 5;

/** Connections whose bucket one container remembers; the least recently seen go first. */
const REMEMBERED_CONNECTIONS = 10_000;

export interface Rates {
  readonly framesPerSecond: number;
  readonly bytesPerSecond: number;
}

/** Tokens left, in frames and bytes, at time `at` (epoch ms). */
export interface Bucket {
  readonly frames: number;
  readonly bytes: number;
  readonly at: number;
}

/**
 * Refills `bucket` for the time since its last frame (a frame stamped earlier than that
 * refills nothing) and takes one frame of `bytes` from it. A new connection starts full.
 * `admitted` is false when the frame does not fit: the connection sent too much.
 */
export function takeFrame(
  bucket: Bucket | undefined,
  rates: Rates,
  at: number,
  bytes: number,
): { bucket: Bucket; admitted: boolean } {
  const maxFrames = rates.framesPerSecond * BURST_SECONDS;
  const maxBytes = rates.bytesPerSecond * BURST_SECONDS;
  const elapsed = bucket ? Math.max(0, at - bucket.at) / 1000 : 0;
  const frames = Math.min(maxFrames, (bucket?.frames ?? maxFrames) + elapsed * rates.framesPerSecond);
  const available = Math.min(maxBytes, (bucket?.bytes ?? maxBytes) + elapsed * rates.bytesPerSecond);
  const next = { frames: frames - 1, bytes: available - bytes, at: Math.max(at, bucket?.at ?? at) };
  return { bucket: next, admitted: next.frames >= 0 && next.bytes >= 0 };
}

export type Admission = 'admitted' | 'exceeded' | 'closed';

/** The buckets of one container's connections, and the connections closed for flooding. */
export class FrameRateLimiter {
  private readonly buckets = new Map<string, Bucket | 'closed'>();

  constructor(private readonly capacity = REMEMBERED_CONNECTIONS) {}

  /**
   * Counts one frame. 'exceeded' the first time a connection goes over (it is remembered as
   * closed from then on), 'closed' for the frames it had queued behind that one.
   */
  admit(connectionId: string, rates: Rates, at: number, bytes: number): Admission {
    const known = this.buckets.get(connectionId);
    if (known === 'closed') return 'closed';
    const { bucket, admitted } = takeFrame(known, rates, at, bytes);
    this.remember(connectionId, admitted ? bucket : 'closed');
    return admitted ? 'admitted' : 'exceeded';
  }

  forget(connectionId: string): void {
    this.buckets.delete(connectionId);
  }

  get size(): number {
    return this.buckets.size;
  }

  private remember(connectionId: string, entry: Bucket | 'closed'): void {
    // A Map keeps insertion order: re-inserting makes it the most recently seen.
    this.buckets.delete(connectionId);
    this.buckets.set(connectionId, entry);
    if (this.buckets.size > this.capacity) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
  }
}

/**
 * One limiter per container. Keyed by the settings object, which every context of a container
 * shares, however the core wraps its context for one invocation (session.ts).
 */
const limiters = new WeakMap<Config, FrameRateLimiter>();

export function frameRateLimiter(ctx: Context): FrameRateLimiter {
  let limiter = limiters.get(ctx.config);
  if (!limiter) {
    limiter = new FrameRateLimiter();
    limiters.set(ctx.config, limiter);
  }
  return limiter;
}

/**
 * Counts a frame that reached the queue at `receivedAt` (SQS SentTimestamp). Frames without
 * that time (the core called directly, as the CPU benchmark does) are not counted.
 */
export function admitFrame(
  ctx: Context,
  frame: { readonly connectionId: string; readonly body: string; readonly receivedAt?: number },
): Admission {
  if (frame.receivedAt === undefined || !Number.isFinite(frame.receivedAt)) return 'admitted';
  const { maxFramesPerSecond, maxBytesPerSecond } = ctx.config;
  return frameRateLimiter(ctx).admit(
    frame.connectionId,
    { framesPerSecond: maxFramesPerSecond, bytesPerSecond: maxBytesPerSecond },
    frame.receivedAt,
    Buffer.byteLength(frame.body, 'utf8'),
  );
}

/** RFC 6120 §4.9.3.14: the stream error of a connection that sent too much. */
export function failFlooding(link: Link): Promise<void> {
  const { maxFramesPerSecond, maxBytesPerSecond } = link.ctx.config;
  link.ctx.logger.warn('frame rate exceeded', { connectionId: link.connectionId, user: link.record.user });
  return link.fail(
    'policy-violation',
    `at most ${maxFramesPerSecond} frames and ${maxBytesPerSecond} bytes per second`,
  );
}

/**
 * RFC 6120 §7.6.2.1: whether binding `resource` would pass the user's session limit. A
 * session of the same resource is replaced by the bind (§7.7.2.2), so it does not count.
 */
export async function sessionLimitReached(ctx: Context, user: string, resource: string): Promise<boolean> {
  const sessions = await ctx.store.getSessions(user);
  const others = sessions.filter((session) => session.resource !== resource);
  return others.length >= ctx.config.maxSessionsPerUser;
}

/** Past SASL: the states after <success/>. */
const AUTHENTICATED: ReadonlySet<ConnectionRecord['state']> = new Set([
  'authenticated',
  'restarted',
  'bound',
]);

export const isAuthenticated = (record: ConnectionRecord) => AUTHENTICATED.has(record.state);

/**
 * $connect: asks to be called back (`closeIfUnauthenticated`) once the deadline has passed.
 * A failure to schedule is logged, not fatal: the connection still ends at API Gateway's
 * idle timeout (10 minutes) at the latest.
 */
export async function scheduleAuthDeadline(ctx: Context, connectionId: string): Promise<void> {
  if (!ctx.deadlines) return;
  try {
    await ctx.deadlines.authDeadline(connectionId, ctx.config.authTimeoutSeconds);
  } catch (error) {
    ctx.logger.error('authentication deadline not scheduled', { connectionId, error: String(error) });
  }
}

/**
 * The deadline passed. RFC 6120 §4.9.3.14 policy-violation rather than §4.9.3.4
 * connection-timeout: the server does not believe the client lost the connection (what
 * connection-timeout says), it applies a local policy, named in the text.
 */
export async function closeIfUnauthenticated(link: Link): Promise<void> {
  if (isAuthenticated(link.record)) return;
  link.ctx.logger.info('authentication deadline passed', { connectionId: link.connectionId });
  await link.fail(
    'policy-violation',
    `authentication must complete within ${link.ctx.config.authTimeoutSeconds} seconds`,
  );
}
