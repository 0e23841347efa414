// A user's inbox: one-to-one messages kept until delivered, and the count of those stored
// while the user was offline. Key design and the general remarks: dynamo.ts.
//
// | Item              | pk                  | sk                 | Access pattern (cost)                                   |
// |-------------------|---------------------|--------------------|---------------------------------------------------------|
// | Message           | INBOX#<recipient>   | MSG#<sender>#<id>  | conditional put dedupes a retry (1 WU under 1 KB        |
// |                   |                     |                    | deflated); `sid` is the server id. Marked delivered by  |
// |                   |                     |                    | removing the stanza (1 WU); the tombstone keeps deduping|
// |                   |                     |                    | for DEDUPE_WINDOW_SECONDS, then TTL removes it. A message|
// |                   |                     |                    | asking for a receipt keeps its sender's `route`, which  |
// |                   |                     |                    | the mark returns (UPDATED_OLD, no read) and removes     |
// | (index byOrder)   | INBOX#<recipient>   | seq                | only listed undelivered messages have `seq` (= sid): one|
// |                   |                     |                    | strongly consistent query a page, in storage order      |
// |                   |                     |                    | (drain). A message pushed live is stored unlisted (no   |
// |                   |                     |                    | index entry, half the writes); `listForDrain` lists it  |
// |                   |                     |                    | when the push fails (1 + 1 WU), and a drain's start     |
// |                   |                     |                    | lists what is left unlisted (one query of the partition:|
// |                   |                     |                    | reads its bytes, tombstones and listed messages too)    |
// |                   |                     |                    | A message stored while a drain runs is stored unlisted  |
// |                   |                     |                    | and held on the session (accounts.ts); the drain reads  |
// |                   |                     |                    | those with one consistent BatchGetItem per 100          |
// | Offline count     | INBOX#<recipient>   | #COUNT             | conditional ADD per message stored for an offline user  |
// |                   |                     |                    | (returns the new count: XEP-0357's message-count)       |
//
// Items written before `sid` existed carry `seq` (undelivered) or `deliveredSeq` (tombstones);
// toMessage reads either, so an existing table needs no migration.

import { createHash } from 'node:crypto';
import { DeleteCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { InboxPage, SenderRoute, StoredMessage } from '../ports.ts';
import { TABLE_SCHEMA } from './schema.ts';
import { isConditionFailure, packStanza, type Table, unmarshallItem, unpackStanza } from './table.ts';

/**
 * A client's message id is part of a sort key, which DynamoDB limits to 1,024 bytes, while
 * an id may be any length (RFC 6120 §8.1.3): a long one is keyed by its SHA-256 (the item
 * keeps the id itself). Without this a long id failed the frame on every retry.
 */
const idKey = (id: string) =>
  Buffer.byteLength(id, 'utf8') <= 256
    ? id
    : `#sha256:${createHash('sha256').update(id).digest('base64url')}`;

/**
 * How long a delivered message's tombstone recognises a retry of its id (a client resending
 * after a lost connection does so within minutes). Bounded so that the drain's listing query
 * (listUnlisted) does not read weeks of tombstones.
 */
export const DEDUPE_WINDOW_SECONDS = 24 * 60 * 60;

/** A message's sort key in its recipient's inbox: what the drain gate holds (accounts.ts). */
export const inboxSortKey = (sender: string, id: string) => `MSG#${sender}#${idKey(id)}`;

const key = {
  message: (recipient: string, sender: string, id: string) => ({
    pk: `INBOX#${recipient}`,
    sk: inboxSortKey(sender, id),
  }),
  offlineCount: (recipient: string) => ({ pk: `INBOX#${recipient}`, sk: '#COUNT' }),
};

function toMessage(item: Record<string, unknown>): StoredMessage {
  return {
    recipient: item.recipient as string,
    sender: item.sender as string,
    id: item.id as string,
    // A delivered message's tombstone keeps its server id apart: a resend is acknowledged
    // with the same stanza-id as the first time.
    seq: (item.sid ?? item.seq ?? item.deliveredSeq) as string,
    stanza: unpackStanza(item),
    storedAt: item.storedAt as number,
    receiptRequested: item.receiptRequested === true,
    expiresAt: item.expiresAt as number,
  };
}

/** Still holds its stanza: not delivered. */
const UNDELIVERED = 'attribute_exists(s) OR attribute_exists(z)';

/** Listing updates sent at once at a drain's start. */
const LIST_CONCURRENCY = 25;

export class Messages {
  constructor(private readonly table: Table) {}

  async storeMessage(
    message: StoredMessage,
    options: { listed: boolean },
  ): Promise<{ stored: true } | { stored: false; existing: StoredMessage; delivered: boolean }> {
    const { stanza, seq, ...attributes } = message;
    try {
      await this.table.doc.send(
        new PutCommand({
          TableName: this.table.name,
          Item: {
            ...key.message(message.recipient, message.sender, message.id),
            ...attributes,
            sid: seq,
            ...(options.listed ? { seq } : {}),
            ...packStanza(stanza),
          },
          ConditionExpression: 'attribute_not_exists(pk)',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return { stored: true };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const old = (error as { Item?: Record<string, unknown> }).Item;
      if (!old) throw error;
      const item = 'pk' in old && typeof old.pk === 'object' ? unmarshallItem(old) : old;
      return { stored: false, existing: toMessage(item), delivered: item.deliveredAt !== undefined };
    }
  }

  async listForDrain(message: Pick<StoredMessage, 'recipient' | 'sender' | 'id' | 'seq'>): Promise<void> {
    await this.table.conditionally(
      new UpdateCommand({
        TableName: this.table.name,
        Key: key.message(message.recipient, message.sender, message.id),
        UpdateExpression: 'SET seq = :seq',
        ConditionExpression: UNDELIVERED,
        ExpressionAttributeValues: { ':seq': message.seq },
      }),
    );
  }

  async listUnlisted(recipient: string): Promise<number> {
    const unlisted: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.table.doc.send(
        new QueryCommand({
          TableName: this.table.name,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :msg)',
          FilterExpression: `attribute_not_exists(seq) AND attribute_exists(sid) AND expiresAt > :now AND (${UNDELIVERED})`,
          ProjectionExpression: 'pk, sk, sid',
          ExpressionAttributeValues: {
            ':pk': `INBOX#${recipient}`,
            ':msg': 'MSG#',
            ':now': this.table.nowSeconds(),
          },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      unlisted.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start);
    for (let first = 0; first < unlisted.length; first += LIST_CONCURRENCY) {
      await Promise.all(
        unlisted.slice(first, first + LIST_CONCURRENCY).map((item) =>
          this.table.conditionally(
            new UpdateCommand({
              TableName: this.table.name,
              Key: { pk: item.pk, sk: item.sk },
              UpdateExpression: 'SET seq = sid',
              ConditionExpression: UNDELIVERED,
            }),
          ),
        ),
      );
    }
    return unlisted.length;
  }

  async markDelivered(
    recipient: string,
    sender: string,
    id: string,
  ): Promise<false | { route?: SenderRoute }> {
    const now = this.table.now();
    try {
      const { Attributes } = await this.table.doc.send(
        new UpdateCommand({
          TableName: this.table.name,
          Key: key.message(recipient, sender, id),
          // (A message stored before `sid` existed loses its server id here: a retry of it within
          // the dedupe window is acknowledged without a stanza-id. DynamoDB refuses a SET that
          // names a missing attribute, so `sid = if_not_exists(sid, seq)` cannot serve both.)
          UpdateExpression: 'REMOVE seq, s, z, route SET deliveredAt = :now, expiresAt = :until',
          ConditionExpression: UNDELIVERED,
          ExpressionAttributeValues: {
            ':now': now,
            ':until': Math.floor(now / 1000) + DEDUPE_WINDOW_SECONDS,
          },
          // The sender's route comes back with the write (no read, no extra unit).
          ReturnValues: 'UPDATED_OLD',
        }),
      );
      const route = Attributes?.route as SenderRoute | undefined;
      return route ? { route } : {};
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async markAllDelivered(
    messages: readonly Pick<StoredMessage, 'recipient' | 'sender' | 'id'>[],
  ): Promise<void> {
    // A tombstone replaces each message: one batch request for up to 25, no condition needed
    // because these messages were just read as undelivered.
    const deliveredAt = this.table.now();
    const until = Math.floor(deliveredAt / 1000) + DEDUPE_WINDOW_SECONDS;
    await this.table.writeBatches(
      messages.map((message) => ({
        PutRequest: {
          Item: {
            ...key.message(message.recipient, message.sender, message.id),
            recipient: message.recipient,
            sender: message.sender,
            id: message.id,
            deliveredAt,
            sid: (message as StoredMessage).seq,
            // A retry re-archives the message at its first time (lib/message.ts).
            storedAt: (message as StoredMessage).storedAt,
            expiresAt: Math.min(until, (message as StoredMessage).expiresAt),
          },
        },
      })),
    );
  }

  async heldMessages(recipient: string, held: readonly string[]): Promise<(StoredMessage | undefined)[]> {
    const pk = `INBOX#${recipient}`;
    const items = await this.table.getBatches(
      [...new Set(held)].map((sk) => ({ pk, sk })),
      { consistent: true },
    );
    const now = this.table.nowSeconds();
    const bySortKey = new Map(
      items
        .filter((item) => (item.s !== undefined || item.z !== undefined) && (item.expiresAt as number) > now)
        .map((item) => [item.sk as string, toMessage(item)]),
    );
    return held.map((sk) => bySortKey.get(sk));
  }

  async undelivered(recipient: string, limit: number, after?: string): Promise<InboxPage> {
    const page = await this.table.doc.send(
      new QueryCommand({
        TableName: this.table.name,
        IndexName: TABLE_SCHEMA.orderIndex.name,
        KeyConditionExpression: after ? 'pk = :pk AND seq > :after' : 'pk = :pk',
        FilterExpression: 'expiresAt > :now',
        ExpressionAttributeValues: {
          ':pk': `INBOX#${recipient}`,
          ':now': this.table.nowSeconds(),
          ...(after ? { ':after': after } : {}),
        },
        ConsistentRead: true,
        Limit: limit,
      }),
    );
    return {
      messages: (page.Items ?? []).map(toMessage),
      next: page.LastEvaluatedKey ? (page.LastEvaluatedKey.seq as string) : undefined,
    };
  }

  async reserveOfflineSlot(recipient: string, quota: number): Promise<number | false> {
    try {
      const { Attributes } = await this.table.doc.send(
        new UpdateCommand({
          TableName: this.table.name,
          Key: key.offlineCount(recipient),
          UpdateExpression: 'ADD #count :one',
          ConditionExpression: 'attribute_not_exists(#count) OR #count < :quota',
          ExpressionAttributeNames: { '#count': 'count' },
          ExpressionAttributeValues: { ':one': 1, ':quota': quota },
          // The new count comes with the write's answer: the push summary's message-count.
          ReturnValues: 'UPDATED_NEW',
        }),
      );
      return (Attributes?.count as number | undefined) ?? 1;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async resetOfflineCount(recipient: string): Promise<void> {
    await this.table.doc.send(
      new DeleteCommand({ TableName: this.table.name, Key: key.offlineCount(recipient) }),
    );
  }
}
