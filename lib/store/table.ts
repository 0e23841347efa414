// What every aggregate of the table shares: the document client, the table's name, the
// clock, and the helpers for conditional writes, expiry, whole-partition queries and batched
// writes. Key design and access patterns: dynamo.ts and the top of each aggregate's file.

import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  BatchWriteCommand,
  type DeleteCommand,
  DynamoDBDocumentClient,
  type PutCommand,
  QueryCommand,
  type UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';

/** DynamoDB BatchGetItem takes at most 100 keys. */
export const BATCH_GET_LIMIT = 100;

const COMPRESS_ABOVE = 200;

export function packStanza(stanza: string): { s: string } | { z: Uint8Array } {
  if (stanza.length <= COMPRESS_ABOVE) return { s: stanza };
  const deflated = deflateRawSync(stanza);
  return deflated.length < Buffer.byteLength(stanza) ? { z: deflated } : { s: stanza };
}

export function unpackStanza(item: Record<string, unknown>): string {
  if (item.z instanceof Uint8Array) return inflateRawSync(item.z).toString('utf8');
  return item.s as string;
}

/** The item a failed condition returns is in the low-level format. */
export const unmarshallItem = (item: Record<string, unknown>) =>
  unmarshall(item as never) as Record<string, unknown>;

/** DynamoDB BatchWriteItem takes at most 25 requests. */
export const BATCH_WRITE_LIMIT = 25;

export const isConditionFailure = (error: unknown) =>
  error instanceof ConditionalCheckFailedException ||
  (error as Error)?.name === 'ConditionalCheckFailedException';

export class Table {
  readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    readonly name: string,
    readonly now: () => number = Date.now,
  ) {
    this.doc = DynamoDBDocumentClient.from(client, {
      marshallOptions: { removeUndefinedValues: true },
    });
  }

  /** Sends a conditional write; false when its condition did not hold (nothing was written). */
  async conditionally(command: PutCommand | UpdateCommand | DeleteCommand): Promise<boolean> {
    try {
      // The client's overloads take one command type at a time; all three send the same way.
      await this.doc.send(command as PutCommand);
      return true;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      return false;
    }
  }

  nowSeconds() {
    return Math.floor(this.now() / 1000);
  }

  live<T extends { expiresAt?: number }>(item: T | undefined): T | undefined {
    return item && (item.expiresAt === undefined || item.expiresAt > this.nowSeconds()) ? item : undefined;
  }

  /** BatchWriteItem, 25 requests at a time, unprocessed ones retried with backoff. */
  async writeBatches(requests: Record<string, unknown>[]): Promise<void> {
    for (let start = 0; start < requests.length; start += BATCH_WRITE_LIMIT) {
      let pending: Record<string, unknown>[] | undefined = requests.slice(start, start + BATCH_WRITE_LIMIT);
      for (let attempt = 0; pending && pending.length > 0; attempt++) {
        if (attempt > 0)
          await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 50 * 2 ** attempt)));
        const result = await this.doc.send(
          new BatchWriteCommand({ RequestItems: { [this.name]: pending as never } }),
        );
        pending = result.UnprocessedItems?.[this.name] as Record<string, unknown>[] | undefined;
      }
    }
  }

  /** BatchGetItem, 100 keys at a time, unprocessed ones retried with backoff; items in no order. */
  async getBatches(
    keys: readonly Record<string, unknown>[],
    options: { consistent?: boolean } = {},
  ): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    for (let start = 0; start < keys.length; start += BATCH_GET_LIMIT) {
      let pending: Record<string, unknown>[] | undefined = keys.slice(start, start + BATCH_GET_LIMIT);
      for (let attempt = 0; pending && pending.length > 0; attempt++) {
        if (attempt > 0)
          await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 50 * 2 ** attempt)));
        const page = await this.doc.send(
          new BatchGetCommand({
            RequestItems: { [this.name]: { Keys: pending, ConsistentRead: options.consistent ?? false } },
          }),
        );
        items.push(...(page.Responses?.[this.name] ?? []));
        pending = page.UnprocessedKeys?.[this.name]?.Keys as Record<string, unknown>[] | undefined;
      }
    }
    return items;
  }

  /**
   * Every item of the partition, or of those whose sort key starts with `prefix`, strongly
   * consistent, page after page.
   */
  async queryAll(pk: string, prefix?: string): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let ExclusiveStartKey: Record<string, unknown> | undefined;
    // DynamoDB refuses an empty key value, so a whole partition is queried on pk alone.
    const condition = prefix
      ? { KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)', values: { ':prefix': prefix } }
      : { KeyConditionExpression: 'pk = :pk', values: {} };
    do {
      const page = await this.doc.send(
        new QueryCommand({
          TableName: this.name,
          KeyConditionExpression: condition.KeyConditionExpression,
          ExpressionAttributeValues: { ':pk': pk, ...condition.values },
          ConsistentRead: true,
          ExclusiveStartKey,
        }),
      );
      items.push(...(page.Items ?? []));
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
    return items;
  }
}
