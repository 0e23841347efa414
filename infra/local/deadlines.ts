// What the authentication deadline queue does on AWS (a standard SQS queue, each message
// delayed by DelaySeconds), played by timers: when one fires, the real handler
// (functions/auth-deadline.ts) gets the SQS event Lambda would give it. A deadline of a
// connection the emulator no longer has is dropped, which is what the handler would do after
// one read: so a deadline that falls in a benchmark's measurement adds no reads to it.
import { randomUUID } from 'node:crypto';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type { Deadlines } from '../../lib/ports.ts';

export type AuthDeadlineHandler = (event: SQSEvent) => Promise<SQSBatchResponse | undefined>;

export class LocalDeadlines implements Deadlines {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly running = new Set<Promise<unknown>>();
  private stopped = false;
  /** Deadlines scheduled, and those whose handler has returned. */
  readonly counters = { scheduled: 0, handled: 0 };

  constructor(
    private readonly handler: AuthDeadlineHandler,
    /** Whether the connection is still open (the emulator's view). */
    private readonly isOpen: (connectionId: string) => boolean = () => true,
    private readonly log?: (message: string, fields?: Record<string, unknown>) => void,
  ) {}

  async authDeadline(connectionId: string, seconds: number): Promise<void> {
    if (this.stopped) return;
    this.counters.scheduled++;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      const handled = this.deliver(connectionId).finally(() => this.running.delete(handled));
      this.running.add(handled);
    }, seconds * 1000);
    // A pending deadline never keeps the process alive.
    timer.unref();
    this.timers.add(timer);
  }

  /** Deadlines not yet due or being handled. */
  get pending(): number {
    return this.timers.size + this.running.size;
  }

  /** Cancels the deadlines not yet due and waits for those being handled. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    await Promise.all([...this.running]);
  }

  private async deliver(connectionId: string): Promise<void> {
    if (!this.isOpen(connectionId)) {
      this.counters.handled++;
      return;
    }
    const now = String(Date.now());
    const messageId = randomUUID();
    try {
      await this.handler({
        Records: [
          {
            messageId,
            receiptHandle: messageId,
            body: connectionId,
            attributes: {
              ApproximateReceiveCount: '1',
              SentTimestamp: now,
              SenderId: 'connect',
              ApproximateFirstReceiveTimestamp: now,
            },
            messageAttributes: {},
            md5OfBody: '',
            eventSource: 'aws:sqs',
            eventSourceARN: 'arn:aws:sqs:local:000000000000:auth-deadlines',
            awsRegion: 'local',
          },
        ],
      });
    } catch (error) {
      this.log?.('authentication deadline handler threw', { connectionId, error: String(error) });
    } finally {
      this.counters.handled++;
    }
  }
}
