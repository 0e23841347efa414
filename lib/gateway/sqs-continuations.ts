// The Continuations port over the frames FIFO queue: work handed on goes into the
// connection's own message group, so it runs after the frames already queued.

import { randomUUID } from 'node:crypto';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { CONTINUE_EVENT, type Continuations } from '../ports.ts';

export class SqsContinuations implements Continuations {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async continueDrain(connectionId: string, after: string): Promise<void> {
    await this.client.send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageGroupId: connectionId,
        MessageDeduplicationId: randomUUID(),
        MessageBody: after,
        MessageAttributes: {
          connectionId: { DataType: 'String', StringValue: connectionId },
          eventType: { DataType: 'String', StringValue: CONTINUE_EVENT },
        },
      }),
    );
  }
}
