// The PushJobs port (lib/push.ts) over a standard SQS queue: the frames function sends one
// request per stored message however many registrations the user has (SendMessageBatch, up to
// 10 entries), and the push function schedules notifications with DelaySeconds. A standard
// queue, not FIFO: per-message delays are what coalescing and the retries' backoff need, and
// lib/push.ts tolerates a job delivered twice.
import { SendMessageBatchCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { PushJob, PushJobs } from '../ports.ts';

/** SendMessageBatch takes at most 10 entries. */
const BATCH_LIMIT = 10;

export class SqsPushJobs implements PushJobs {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
    private readonly deadLetterQueueUrl?: string,
  ) {}

  async send(jobs: readonly PushJob[], delaySeconds = 0): Promise<void> {
    for (let start = 0; start < jobs.length; start += BATCH_LIMIT) {
      const batch = jobs.slice(start, start + BATCH_LIMIT);
      const { Failed = [] } = await this.client.send(
        new SendMessageBatchCommand({
          QueueUrl: this.queueUrl,
          Entries: batch.map((job, index) => ({
            Id: String(index),
            MessageBody: JSON.stringify(job),
            ...(delaySeconds > 0 ? { DelaySeconds: delaySeconds } : {}),
          })),
        }),
      );
      if (Failed.length > 0) {
        throw new Error(`push jobs not queued: ${Failed.map((entry) => entry.Code).join(', ')}`);
      }
    }
  }

  async deadLetter(job: PushJob, reason: string): Promise<void> {
    if (!this.deadLetterQueueUrl) throw new Error('PUSH_DEAD_LETTER_QUEUE_URL is not set');
    await this.client.send(
      new SendMessageCommand({
        QueueUrl: this.deadLetterQueueUrl,
        MessageBody: JSON.stringify({ job, reason }),
      }),
    );
  }
}

/** A job as the push function receives it in an SQS record's body. */
export function parsePushJob(body: string): PushJob {
  const job = JSON.parse(body) as PushJob;
  if ((job.kind !== 'message' && job.kind !== 'notify') || typeof job.user !== 'string')
    throw new Error('not a push job');
  return job;
}
