// SQS SendMessage for the local system's queues, as the real SQS client speaks it: AWS JSON 1.0
// (`POST /`, `x-amz-target: AmazonSQS.SendMessage`, @aws-sdk/client-sqs 3.1169), with SQS's own
// checks (a body of 1 character at least, only characters XML allows, a message group on a FIFO
// queue) and the MD5 digests the client verifies. Served by the WebSocket API emulator's HTTP
// server; the bundles reach it through AWS_ENDPOINT_URL_SQS and the queue URLs in their template
// environment. What happens to a message is the queue's business: the frames FIFO queue feeds the
// emulator's per-connection groups, other queues deliver to their consumer (LocalStandardQueue).
import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';

/** The account in local queue URLs. */
export const LOCAL_ACCOUNT = '000000000000';

export interface SqsMessageAttribute {
  readonly DataType: string;
  readonly StringValue?: string;
  readonly BinaryValue?: string;
}

export interface SqsMessage {
  readonly messageId: string;
  readonly body: string;
  readonly groupId?: string;
  readonly deduplicationId?: string;
  readonly delaySeconds: number;
  readonly attributes: Record<string, SqsMessageAttribute>;
  readonly sentAt: number;
}

export interface LocalQueue {
  readonly fifo: boolean;
  /** Takes the message; throwing SqsError refuses it. */
  accept(message: SqsMessage): void;
}

/** An SQS error as the JSON protocol returns it; the client raises it by name. */
export class SqsError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/** The characters SQS accepts in a message (those of XML 1.0). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: tab, LF and CR are among them
const SQS_CHARACTERS = /^[\u0009\u000A\u000D\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]*$/u;
const MAX_BODY_BYTES = 256 * 1024;

/** Why SQS would refuse this message body, if it would. */
export function sqsRefusal(body: string): SqsError | undefined {
  if (body.length === 0) {
    return new SqsError('MissingParameter', 'The request must contain the parameter MessageBody.');
  }
  if (!SQS_CHARACTERS.test(body)) {
    return new SqsError('InvalidMessageContents', 'Invalid characters found in the message body.');
  }
  if (Buffer.byteLength(body) > MAX_BODY_BYTES)
    return new SqsError('InvalidParameterValue', 'Message too long.');
  return undefined;
}

export class LocalSqs {
  private readonly queues = new Map<string, LocalQueue>();
  /** Messages accepted, per queue path. */
  readonly counters = new Map<string, number>();

  /** `origin` is the HTTP server's, e.g. `http://127.0.0.1:5280`. */
  constructor(private readonly origin: () => string) {}

  /** A queue at `{origin}/{account}/{name}`; returns its URL (what `Ref` of the queue gives). */
  addQueue(name: string, queue: LocalQueue): string {
    this.queues.set(`/${LOCAL_ACCOUNT}/${name}`, queue);
    return this.urlOf(name);
  }

  urlOf(name: string): string {
    return `${this.origin()}/${LOCAL_ACCOUNT}/${name}`;
  }

  static isSqsRequest(request: IncomingMessage): boolean {
    return String(request.headers['x-amz-target'] ?? '').startsWith('AmazonSQS.');
  }

  /** Answers one SQS request; true when it was one. */
  async answer(request: IncomingMessage, response: ServerResponse): Promise<boolean> {
    if (!LocalSqs.isSqsRequest(request)) return false;
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const operation = String(request.headers['x-amz-target']).slice('AmazonSQS.'.length);
    try {
      const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      let result: unknown;
      if (operation === 'SendMessage') result = this.sendMessage(input);
      else if (operation === 'SendMessageBatch') result = this.sendMessageBatch(input);
      else {
        throw new SqsError(
          'UnsupportedOperation',
          `the local SQS answers SendMessage and SendMessageBatch only, not ${operation}`,
        );
      }
      response.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
      response.end(JSON.stringify(result));
    } catch (error) {
      const { code, message, status } =
        error instanceof SqsError ? error : new SqsError('InternalError', String(error), 500);
      response.writeHead(status, {
        'content-type': 'application/x-amz-json-1.0',
        'x-amzn-query-error': `${code};Sender`,
      });
      response.end(JSON.stringify({ __type: `com.amazonaws.sqs#${code}`, message }));
    }
    return true;
  }

  /** Each entry on its own, as SQS does: a refused one is reported in `Failed`, the others go. */
  private sendMessageBatch(input: {
    QueueUrl?: string;
    Entries?: { Id: string; MessageBody?: string; DelaySeconds?: number; MessageGroupId?: string }[];
  }) {
    const entries = input.Entries ?? [];
    if (entries.length === 0) throw new SqsError('EmptyBatchRequest', 'There should be at least one entry.');
    if (entries.length > 10)
      throw new SqsError('TooManyEntriesInBatchRequest', 'Maximum number of entries per request are 10.');
    const Successful: Record<string, unknown>[] = [];
    const Failed: Record<string, unknown>[] = [];
    for (const entry of entries) {
      try {
        const { MessageId, MD5OfMessageBody } = this.sendMessage({ ...entry, QueueUrl: input.QueueUrl });
        Successful.push({ Id: entry.Id, MessageId, MD5OfMessageBody });
      } catch (error) {
        if (!(error instanceof SqsError) || error.code === 'QueueDoesNotExist') throw error;
        Failed.push({ Id: entry.Id, SenderFault: true, Code: error.code, Message: error.message });
      }
    }
    return { Successful, Failed };
  }

  private sendMessage(input: {
    QueueUrl?: string;
    MessageBody?: string;
    MessageGroupId?: string;
    MessageDeduplicationId?: string;
    DelaySeconds?: number;
    MessageAttributes?: Record<string, SqsMessageAttribute>;
  }) {
    const path = input.QueueUrl ? new URL(input.QueueUrl).pathname : '';
    const queue = this.queues.get(path);
    if (!queue) throw new SqsError('QueueDoesNotExist', `no queue ${input.QueueUrl}`);
    const body = input.MessageBody ?? '';
    const refusal = sqsRefusal(body);
    if (refusal) throw refusal;
    if (queue.fifo && !input.MessageGroupId) {
      throw new SqsError('MissingParameter', 'The request must contain the parameter MessageGroupId.');
    }
    if (queue.fifo && input.DelaySeconds) {
      throw new SqsError('InvalidParameterValue', 'FIFO queues do not support per-message delays.');
    }
    const attributes = input.MessageAttributes ?? {};
    const message: SqsMessage = {
      messageId: randomUUID(),
      body,
      groupId: input.MessageGroupId,
      deduplicationId: input.MessageDeduplicationId,
      delaySeconds: input.DelaySeconds ?? 0,
      attributes,
      sentAt: Date.now(),
    };
    queue.accept(message);
    this.counters.set(path, (this.counters.get(path) ?? 0) + 1);
    return {
      MessageId: message.messageId,
      MD5OfMessageBody: md5(Buffer.from(body, 'utf8')),
      ...(Object.keys(attributes).length > 0 ? { MD5OfMessageAttributes: md5OfAttributes(attributes) } : {}),
      ...(queue.fifo ? { SequenceNumber: String(message.sentAt).padStart(20, '0') } : {}),
    };
  }
}

const md5 = (data: Buffer) => createHash('md5').update(data).digest('hex');

/** SQS's digest of message attributes: each, by name, as length-prefixed name, type and value. */
export function md5OfAttributes(attributes: Record<string, SqsMessageAttribute>): string {
  const parts: Buffer[] = [];
  const prefixed = (data: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    parts.push(length, data);
  };
  for (const name of Object.keys(attributes).sort()) {
    const attribute = attributes[name] as SqsMessageAttribute;
    prefixed(Buffer.from(name, 'utf8'));
    prefixed(Buffer.from(attribute.DataType, 'utf8'));
    if (attribute.BinaryValue !== undefined) {
      parts.push(Buffer.from([2]));
      prefixed(Buffer.from(attribute.BinaryValue, 'base64'));
    } else {
      parts.push(Buffer.from([1]));
      prefixed(Buffer.from(attribute.StringValue ?? '', 'utf8'));
    }
  }
  return md5(Buffer.concat(parts));
}

/** The record Lambda's SQS poller hands the consumer for a message. */
export function sqsRecord(message: SqsMessage, queueArn: string, receiveCount: number): SQSRecord {
  return {
    messageId: message.messageId,
    receiptHandle: message.messageId,
    body: message.body,
    attributes: {
      ApproximateReceiveCount: String(receiveCount),
      SentTimestamp: String(message.sentAt),
      SenderId: 'local',
      ApproximateFirstReceiveTimestamp: String(Date.now()),
      ...(message.groupId ? { MessageGroupId: message.groupId } : {}),
      ...(message.deduplicationId ? { MessageDeduplicationId: message.deduplicationId } : {}),
    },
    messageAttributes: Object.fromEntries(
      Object.entries(message.attributes).map(([name, value]) => [
        name,
        {
          dataType: value.DataType,
          stringValue: value.StringValue,
          binaryValue: value.BinaryValue,
          stringListValues: [],
          binaryListValues: [],
        },
      ]),
    ),
    md5OfBody: md5(Buffer.from(message.body, 'utf8')),
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: queueArn.split(':')[3] ?? '',
  };
}

export interface LocalStandardQueueOptions {
  readonly queueArn: string;
  readonly consumer: (event: SQSEvent) => Promise<SQSBatchResponse | undefined | null>;
  /** The queue's redrive policy: receives before a message is dropped (its dead-letter queue). */
  readonly maxReceiveCount?: number;
  /** The visibility timeout, shortened locally: the wait before a failed message is retried. */
  readonly retryDelayMs?: number;
  readonly log?: (message: string, fields?: Record<string, unknown>) => void;
}

/**
 * A standard queue with its Lambda consumer: each message is delivered once its DelaySeconds have
 * passed, alone (delays make batches rare); a failed one is retried until its receives run out.
 */
export class LocalStandardQueue implements LocalQueue {
  readonly fifo = false;
  readonly deadLetters: SqsMessage[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly running = new Set<Promise<void>>();
  private stopped = false;

  constructor(private readonly options: LocalStandardQueueOptions) {}

  accept(message: SqsMessage): void {
    this.schedule(message, message.delaySeconds * 1000, 1);
  }

  /** Nothing waits to be delivered (delayed or retried) and nothing is being handled. */
  idle(): boolean {
    return this.timers.size === 0 && this.running.size === 0;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    await Promise.all(this.running);
  }

  private schedule(message: SqsMessage, delayMs: number, receiveCount: number): void {
    if (this.stopped) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      const delivery = this.deliver(message, receiveCount).finally(() => this.running.delete(delivery));
      this.running.add(delivery);
    }, delayMs);
    timer.unref();
    this.timers.add(timer);
  }

  private async deliver(message: SqsMessage, receiveCount: number): Promise<void> {
    let failed: boolean;
    try {
      const response = await this.options.consumer({
        Records: [sqsRecord(message, this.options.queueArn, receiveCount)],
      });
      failed = (response?.batchItemFailures ?? []).length > 0;
    } catch (error) {
      this.options.log?.('queue consumer failed', { queue: this.options.queueArn, error: String(error) });
      failed = true;
    }
    if (!failed) return;
    if (receiveCount >= (this.options.maxReceiveCount ?? 3)) this.deadLetters.push(message);
    else this.schedule(message, this.options.retryDelayMs ?? 200, receiveCount + 1);
  }
}
