// The Deadlines port over a standard SQS queue: a message sent with DelaySeconds becomes
// visible, and reaches functions/auth-deadline.ts, once the deadline has passed. A FIFO
// queue cannot delay single messages, hence a queue of its own.
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Deadlines } from '../ports.ts';

/** SQS delays a message by at most 15 minutes. */
export const MAX_DELAY_SECONDS = 900;

export class SqsDeadlines implements Deadlines {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async authDeadline(connectionId: string, seconds: number): Promise<void> {
    await this.client.send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: connectionId,
        DelaySeconds: Math.min(Math.max(0, Math.ceil(seconds)), MAX_DELAY_SECONDS),
      }),
    );
  }
}
