// DynamoDB's TTL process and the table's stream into functions/expired.ts, on one machine.
//
// DynamoDB Local deletes expired items by itself only on tables without a local secondary
// index: on this table (index byOrder) it never does (seen with DynamoDB Local 3.3.1), and
// its own stream records of TTL deletions lack AWS's userIdentity anyway. So this does
// what AWS does: find expired items, delete them (really, in DynamoDB Local), and hand each
// deleted item's old image to the handler as the stream record AWS would write, filtered
// as the stack's event source mapping filters it, in batches, a failed record retried.
import {
  type AttributeValue,
  DeleteItemCommand,
  type DynamoDBClient,
  ScanCommand,
} from '@aws-sdk/client-dynamodb';
import type { DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { isTtlDeletion } from '../../functions/expired.ts';
import { TABLE_SCHEMA, TTL_DELETION } from '../../lib/store/schema.ts';

export interface LocalTimeToLiveOptions {
  readonly dynamo: DynamoDBClient;
  readonly tableName: string;
  readonly handler: (event: DynamoDBStreamEvent) => Promise<DynamoDBBatchResponse>;
  /** Between sweeps; 0 sweeps only when asked (tests). DynamoDB Local's own is 10 s. */
  readonly intervalMs?: number;
  /** Attempts per record before it goes to `failed` (the mapping's on-failure destination). */
  readonly maxAttempts?: number;
  readonly batchSize?: number;
}

/** The stack's event source filter: TTL deletions of the items in TABLE_SCHEMA.expiryStream. */
export function passesExpiryFilter(record: DynamoDBRecord): boolean {
  const sk = record.dynamodb?.Keys?.sk?.S ?? '';
  const { equal, prefix } = TABLE_SCHEMA.expiryStream.sortKeys;
  return (
    isTtlDeletion(record) &&
    ((equal as readonly string[]).includes(sk) || prefix.some((start) => sk.startsWith(start)))
  );
}

type Image = NonNullable<NonNullable<DynamoDBRecord['dynamodb']>['OldImage']>;

export class LocalTimeToLive {
  /** Records given up on after maxAttempts (on AWS: the on-failure queue). */
  readonly failed: DynamoDBRecord[] = [];
  /** Records the filter let through and the handler completed. */
  delivered = 0;
  private sequence = 0;
  private timer?: NodeJS.Timeout;
  private running: Promise<unknown> = Promise.resolve();
  private stopped = false;

  constructor(private readonly options: LocalTimeToLiveOptions) {}

  /** Passes every `intervalMs`, each timed from the end of the last, so they never pile up. */
  start(): void {
    const interval = this.options.intervalMs ?? 10_000;
    if (interval <= 0) return;
    const next = () => {
      this.timer = setTimeout(async () => {
        await this.sweep().catch(report);
        if (!this.stopped) next();
      }, interval);
    };
    next();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running.catch(() => {});
  }

  /**
   * One pass of the TTL process, after any pass under way; returns the items it deleted.
   * A pass that started finishes, delivery included, also when the system stops meanwhile.
   */
  sweep(): Promise<number> {
    const pass = this.running.catch(() => {}).then(() => (this.stopped ? 0 : this.pass()));
    this.running = pass;
    return pass;
  }

  private async pass(): Promise<number> {
    const now = Math.floor(Date.now() / 1000);
    const attribute = TABLE_SCHEMA.timeToLiveAttribute;
    const records: DynamoDBRecord[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.options.dynamo.send(
        new ScanCommand({
          TableName: this.options.tableName,
          FilterExpression: '#ttl <= :now',
          ExpressionAttributeNames: { '#ttl': attribute },
          ExpressionAttributeValues: { ':now': { N: String(now) } },
          ExclusiveStartKey: start,
        }),
      );
      for (const item of page.Items ?? []) {
        const deleted = await this.delete(item, now);
        if (deleted) records.push(this.record(deleted));
      }
      start = page.LastEvaluatedKey;
    } while (start);
    await this.deliver(records.filter(passesExpiryFilter));
    return records.length;
  }

  /** Deletes the item unless it was written again meanwhile with a later expiry. */
  private async delete(item: Record<string, AttributeValue>, now: number) {
    const { pk, sk } = item;
    try {
      const { Attributes } = await this.options.dynamo.send(
        new DeleteItemCommand({
          TableName: this.options.tableName,
          Key: { pk: pk as AttributeValue, sk: sk as AttributeValue },
          ConditionExpression: '#ttl <= :now',
          ExpressionAttributeNames: { '#ttl': TABLE_SCHEMA.timeToLiveAttribute },
          ExpressionAttributeValues: { ':now': { N: String(now) } },
          ReturnValues: 'ALL_OLD',
        }),
      );
      return Attributes;
    } catch (error) {
      if ((error as Error).name === 'ConditionalCheckFailedException') return undefined;
      throw error;
    }
  }

  /**
   * The index of the first record to retry, or -1. As Lambda does: a handler that throws, or
   * names a record that is not in the batch, fails the whole batch.
   */
  private async invoke(batch: DynamoDBRecord[]): Promise<number> {
    try {
      const { batchItemFailures } = await this.options.handler({ Records: batch });
      if (batchItemFailures.length === 0) return -1;
      const first = batch.findIndex((record) =>
        batchItemFailures.some((failure) => failure.itemIdentifier === record.dynamodb?.SequenceNumber),
      );
      return Math.max(first, 0);
    } catch (error) {
      report(error);
      return 0;
    }
  }

  /** The stream record AWS writes for a TTL deletion (view type OLD_IMAGE). */
  private record(oldImage: Record<string, AttributeValue>): DynamoDBRecord {
    const sequenceNumber = String(++this.sequence).padStart(21, '0');
    return {
      eventID: sequenceNumber,
      eventName: TTL_DELETION.eventName,
      eventSource: 'aws:dynamodb',
      userIdentity: { ...TTL_DELETION.userIdentity },
      dynamodb: {
        Keys: { pk: oldImage.pk, sk: oldImage.sk } as Image,
        OldImage: oldImage as Image,
        SequenceNumber: sequenceNumber,
        StreamViewType: TABLE_SCHEMA.expiryStream.viewType,
      },
    };
  }

  /** In order, in batches; a failed record is retried with everything after it. */
  private async deliver(records: DynamoDBRecord[]): Promise<void> {
    const batchSize = this.options.batchSize ?? 10;
    const maxAttempts = this.options.maxAttempts ?? 3;
    let attempts = 0;
    while (records.length > 0) {
      const batch = records.slice(0, batchSize);
      const failedAt = await this.invoke(batch);
      if (failedAt === -1) {
        this.delivered += batch.length;
        records = records.slice(batch.length);
        attempts = 0;
        continue;
      }
      this.delivered += failedAt;
      records = records.slice(failedAt);
      if (++attempts >= maxAttempts) {
        this.failed.push(records.shift() as DynamoDBRecord);
        attempts = 0;
      } else {
        await new Promise((resolve) => setTimeout(resolve, 200 * attempts));
      }
    }
  }
}

const report = (error: unknown) => console.error(`local TTL: ${String(error)}`);
