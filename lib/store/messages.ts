// A user's inbox: one-to-one messages kept until delivered, and the count of those stored
// while the user was offline. Key design and the general remarks: dynamo.ts.
//
// | Item              | pk                  | sk                 | Access pattern (cost)                                   |
// |-------------------|---------------------|--------------------|---------------------------------------------------------|
// | Message           | INBOX#<recipient>   | MSG#<sender>#<id>  | conditional put dedupes a retry (1 WU + 1 WU for the    |
// |                   |                     |                    | index entry); marked delivered by removing `seq` and the|
// |                   |                     |                    | stanza (1 + 1 WU); the tombstone keeps deduping until TTL|
// | (index byOrder)   | INBOX#<recipient>   | seq                | only undelivered messages have `seq`: one strongly      |
// |                   |                     |                    | consistent query a page, in storage order (drain)       |
// | Offline count     | INBOX#<recipient>   | #COUNT             | conditional ADD per message stored for an offline user  |

import { createHash } from 'node:crypto';
import { DeleteCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { InboxPage, StoredMessage } from '../ports.ts';
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

const key = {
  message: (recipient: string, sender: string, id: string) => ({
    pk: `INBOX#${recipient}`,
    sk: `MSG#${sender}#${idKey(id)}`,
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
    seq: (item.seq ?? item.deliveredSeq) as string,
    stanza: unpackStanza(item),
    storedAt: item.storedAt as number,
    receiptRequested: item.receiptRequested === true,
    expiresAt: item.expiresAt as number,
  };
}

export class Messages {
  constructor(private readonly table: Table) {}

  async storeMessage(
    message: StoredMessage,
  ): Promise<{ stored: true } | { stored: false; existing: StoredMessage }> {
    const { stanza, ...attributes } = message;
    try {
      await this.table.doc.send(
        new PutCommand({
          TableName: this.table.name,
          Item: {
            ...key.message(message.recipient, message.sender, message.id),
            ...attributes,
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
      return { stored: false, existing: toMessage(item) };
    }
  }

  async markDelivered(recipient: string, sender: string, id: string): Promise<boolean> {
    return this.table.conditionally(
      new UpdateCommand({
        TableName: this.table.name,
        Key: key.message(recipient, sender, id),
        UpdateExpression: 'REMOVE seq, s, z SET deliveredAt = :now, deliveredSeq = seq',
        ConditionExpression: 'attribute_exists(seq)',
        ExpressionAttributeValues: { ':now': this.table.now() },
      }),
    );
  }

  async markAllDelivered(
    messages: readonly Pick<StoredMessage, 'recipient' | 'sender' | 'id'>[],
  ): Promise<void> {
    // A tombstone replaces each message: one batch request for up to 25, no condition needed
    // because these messages were just read as undelivered.
    const deliveredAt = this.table.now();
    await this.table.writeBatches(
      messages.map((message) => ({
        PutRequest: {
          Item: {
            ...key.message(message.recipient, message.sender, message.id),
            recipient: message.recipient,
            sender: message.sender,
            id: message.id,
            deliveredAt,
            deliveredSeq: (message as StoredMessage).seq,
            expiresAt: (message as StoredMessage).expiresAt,
          },
        },
      })),
    );
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

  async reserveOfflineSlot(recipient: string, quota: number): Promise<boolean> {
    return this.table.conditionally(
      new UpdateCommand({
        TableName: this.table.name,
        Key: key.offlineCount(recipient),
        UpdateExpression: 'ADD #count :one',
        ConditionExpression: 'attribute_not_exists(#count) OR #count < :quota',
        ExpressionAttributeNames: { '#count': 'count' },
        ExpressionAttributeValues: { ':one': 1, ':quota': quota },
      }),
    );
  }

  async resetOfflineCount(recipient: string): Promise<void> {
    await this.table.doc.send(
      new DeleteCommand({ TableName: this.table.name, Key: key.offlineCount(recipient) }),
    );
  }
}
