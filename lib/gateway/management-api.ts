// The Gateway port over the API Gateway Management API (PostToConnection, DeleteConnection).
// Every post's error is settled here, one post at a time, so that one frame's failure never
// fails (and replays) the whole frame that produced it:
// - 410 Gone: the connection is over ('gone'); the caller ends its session.
// - 413 PayloadTooLargeException: over 128 KB ('too-large'); retrying cannot help.
// - 429 (LimitExceededException: the account's request rate) and 5xx: retried a few times
//   with jittered exponential backoff, within a bounded time; then 'failed'.
// - anything else (403 Forbidden: a missing grant): 'failed' at once, logged as an error.
// The SDK client must not retry on its own (maxAttempts 1, functions/runtime.ts), or the
// tries multiply.
import {
  type ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import type { Gateway, Logger, PostResult } from '../ports.ts';

export interface PostRetryPolicy {
  /** Tries of one post, the first included. */
  readonly attempts: number;
  /** The pause before retry n is a random time up to baseDelayMs × 2^(n-1) ("full jitter"). */
  readonly baseDelayMs: number;
  /** No retry starts later than this after the first try. */
  readonly maxElapsedMs: number;
  /**
   * No retry starts with less than this left of the invocation: in a throttling storm a fan-out
   * of 1,000 posts would otherwise outlast the function's timeout (each post gets one try then).
   */
  readonly minTimeLeftMs: number;
}

/** At most 150 + 300 + 600 ms of pauses: a throttled post settles in well under 2 s. */
export const POST_RETRY: PostRetryPolicy = {
  attempts: 4,
  baseDelayMs: 150,
  maxElapsedMs: 1500,
  minTimeLeftMs: 6_000,
};

interface SdkError {
  readonly name?: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
}

const THROTTLING = new Set(['LimitExceededException', 'TooManyRequestsException', 'ThrottlingException']);

/** What one failed try means. */
export function classifyPostError(error: unknown): 'gone' | 'too-large' | 'retry' | 'refused' {
  const { name, $metadata } = (error ?? {}) as SdkError;
  const status = $metadata?.httpStatusCode;
  if (name === 'GoneException' || status === 410) return 'gone';
  if (name === 'PayloadTooLargeException' || status === 413) return 'too-large';
  if (status === 429 || (name && THROTTLING.has(name))) return 'retry';
  // A server error, or no answer at all (a reset connection, a timeout).
  if (status === undefined || status >= 500) return 'retry';
  return 'refused';
}

export interface ManagementApiGatewayOptions {
  readonly retry?: PostRetryPolicy;
  /** For tests: the pause between tries, and the random source of the jitter. */
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
  /** The time left in the current invocation (Context.remainingMs), when known. */
  readonly timeLeft?: () => number | undefined;
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class ManagementApiGateway implements Gateway {
  private readonly retry: PostRetryPolicy;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private readonly timeLeft: () => number | undefined;

  constructor(
    private readonly client: ApiGatewayManagementApiClient,
    private readonly logger?: Logger,
    options: ManagementApiGatewayOptions = {},
  ) {
    this.retry = options.retry ?? POST_RETRY;
    this.sleep = options.sleep ?? pause;
    this.random = options.random ?? Math.random;
    this.timeLeft = options.timeLeft ?? (() => undefined);
  }

  async post(connectionId: string, frame: string): Promise<PostResult> {
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        await this.client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: frame }));
        return 'ok';
      } catch (error) {
        const kind = classifyPostError(error);
        const fields = { connectionId, error: (error as Error)?.name ?? String(error), attempt };
        if (kind === 'gone') {
          this.logger?.info('connection gone', { connectionId });
          return 'gone';
        }
        if (kind === 'too-large') {
          this.logger?.warn('post too large', { connectionId, bytes: Buffer.byteLength(frame) });
          return 'too-large';
        }
        if (kind === 'refused') {
          this.logger?.error('post refused', fields);
          return 'failed';
        }
        const delay = this.random() * this.retry.baseDelayMs * 2 ** (attempt - 1);
        const left = this.timeLeft();
        if (
          attempt >= this.retry.attempts ||
          Date.now() - started + delay > this.retry.maxElapsedMs ||
          (left !== undefined && left < this.retry.minTimeLeftMs)
        ) {
          this.logger?.warn('post failed after retries', fields);
          return 'failed';
        }
        await this.sleep(delay);
      }
    }
  }

  async close(connectionId: string): Promise<void> {
    try {
      await this.client.send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
    } catch (error) {
      if (classifyPostError(error) !== 'gone') throw error;
    }
  }
}
