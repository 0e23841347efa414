// XEP-0357 push registrations (lib/push.ts), in the user's partition so that the account read
// routing makes anyway (accounts.ts getAccount) brings them at no extra request.
//
// | Item         | pk              | sk                        | Access pattern (cost)                              |
// |--------------|-----------------|---------------------------|----------------------------------------------------|
// | Registration | USER#<bare JID> | PUSH#<service JID> <node> | update per enable (1 WU), delete per disable or    |
// |              |                 |                           | app server's 404/410; read with the account        |
// |              |                 |                           | (part of its 0.5 RU query)                         |
// |              |                 |                           | the push function: ADD one message per message told|
// |              |                 |                           | (1 WU, returns the old state), a consistent get and|
// |              |                 |                           | an update per notification sent (0.5 RU + 1 WU),   |
// |              |                 |                           | one more when a notification is queued for later   |
//
// JIDs cannot hold a space, so `<service> <node>` names one registration. The coalescing state
// (pending, count, sender, body, notifiedAt) lives on the same item: a disable removes it too.

import { DeleteCommand, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { PushPending, PushRegistration } from '../ports.ts';
import { isConditionFailure, type Table } from './table.ts';

export const PUSH_PREFIX = 'PUSH#';

const key = (user: string, registration: PushRegistration) => ({
  pk: `USER#${user}`,
  sk: `${PUSH_PREFIX}${registration.service} ${registration.node}`,
});

/** A registration item, as read with the account or on its own. */
export function toPushRegistration(item: Record<string, unknown>): PushRegistration {
  return {
    service: item.service as string,
    node: item.node as string,
    ...(typeof item.options === 'string' ? { options: item.options } : {}),
  };
}

function toPending(item: Record<string, unknown>): PushPending {
  return {
    ...toPushRegistration(item),
    pending: (item.pending as number | undefined) ?? 0,
    count: (item.count as number | undefined) ?? 0,
    ...(typeof item.sender === 'string' ? { sender: item.sender } : {}),
    ...(typeof item.body === 'string' ? { body: item.body } : {}),
    ...(typeof item.notifiedAt === 'number' ? { notifiedAt: item.notifiedAt } : {}),
    ...(typeof item.scheduledFor === 'number' ? { scheduledFor: item.scheduledFor } : {}),
  };
}

export class PushRegistrations {
  constructor(private readonly table: Table) {}

  async enablePush(user: string, registration: PushRegistration): Promise<void> {
    // An update, not a put: enabling again changes the options and keeps what is waiting.
    await this.table.doc.send(
      new UpdateCommand({
        TableName: this.table.name,
        Key: key(user, registration),
        UpdateExpression: registration.options
          ? 'SET service = :service, node = :node, options = :options'
          : 'SET service = :service, node = :node REMOVE options',
        ExpressionAttributeValues: {
          ':service': registration.service,
          ':node': registration.node,
          ...(registration.options ? { ':options': registration.options } : {}),
        },
      }),
    );
  }

  async disablePush(user: string, registrations: readonly PushRegistration[]): Promise<void> {
    await Promise.all(
      registrations.map((registration) =>
        this.table.doc.send(new DeleteCommand({ TableName: this.table.name, Key: key(user, registration) })),
      ),
    );
  }

  async addPushPending(
    user: string,
    registration: PushRegistration,
    message: { readonly count: number; readonly sender: string; readonly body?: string },
  ): Promise<PushPending | undefined> {
    try {
      const { Attributes } = await this.table.doc.send(
        new UpdateCommand({
          TableName: this.table.name,
          Key: key(user, registration),
          // `scheduledFor` set only if absent: the first message of a wait owns its notification.
          UpdateExpression: `ADD pending :one SET #count = :count, sender = :sender, scheduledFor = if_not_exists(scheduledFor, :now)${message.body === undefined ? ' REMOVE body' : ', body = :body'}`,
          // Only while the registration exists: a disable (or a 410) ends it for good.
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: { '#count': 'count' },
          ExpressionAttributeValues: {
            ':one': 1,
            ':count': message.count,
            ':sender': message.sender,
            ':now': this.table.now(),
            ...(message.body === undefined ? {} : { ':body': message.body }),
          },
          ReturnValues: 'ALL_OLD',
        }),
      );
      return Attributes ? toPending(Attributes) : undefined;
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }

  async schedulePush(user: string, registration: PushRegistration, at: number): Promise<void> {
    await this.table.conditionally(
      new UpdateCommand({
        TableName: this.table.name,
        Key: key(user, registration),
        UpdateExpression: 'SET scheduledFor = :at',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':at': at },
      }),
    );
  }

  async getPushPending(user: string, registration: PushRegistration): Promise<PushPending | undefined> {
    const { Item } = await this.table.doc.send(
      new GetCommand({ TableName: this.table.name, Key: key(user, registration), ConsistentRead: true }),
    );
    return Item ? toPending(Item) : undefined;
  }

  async notePushSent(
    user: string,
    registration: PushRegistration,
    covered: number,
    at: number,
  ): Promise<number> {
    try {
      const { Attributes } = await this.table.doc.send(
        new UpdateCommand({
          TableName: this.table.name,
          Key: key(user, registration),
          UpdateExpression: 'SET notifiedAt = :at REMOVE scheduledFor ADD pending :covered',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':at': at, ':covered': -covered },
          ReturnValues: 'UPDATED_NEW',
        }),
      );
      return Math.max(0, (Attributes?.pending as number | undefined) ?? 0);
    } catch (error) {
      if (isConditionFailure(error)) return 0;
      throw error;
    }
  }
}
