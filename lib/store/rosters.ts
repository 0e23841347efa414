// Rosters (RFC 6121): a user's contacts and the roster version, in the user's ROSTER#
// partition. Key design and the general remarks: dynamo.ts.
//
// | Item              | pk                  | sk                 | Access pattern (cost)                                   |
// |-------------------|---------------------|--------------------|---------------------------------------------------------|
// | Roster item       | ROSTER#<user>       | ITEM#<contact>     | whole roster in one query at login (bytes/4 KB RU); one |
// |                   |                     |                    | item get per subscription stanza; put per change (1 WU) |
// | Roster version    | ROSTER#<user>       | #META              | ADD ver (and count, bounded by the limit) per change    |

import { DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Roster, RosterItem } from '../ports.ts';
import { isConditionFailure, type Table } from './table.ts';

const key = {
  rosterItem: (user: string, contact: string) => ({ pk: `ROSTER#${user}`, sk: `ITEM#${contact}` }),
  rosterMeta: (user: string) => ({ pk: `ROSTER#${user}`, sk: '#META' }),
};

function toRosterItem(item: Record<string, unknown>): RosterItem {
  return {
    contact: item.contact as string,
    name: (item.name as string | undefined) || undefined,
    groups: (item.groups as string[] | undefined) ?? [],
    subscription: (item.subscription as RosterItem['subscription']) ?? 'none',
    askOut: item.askOut === true,
    pendingIn: item.pendingIn === true,
    listed: item.listed !== false,
  };
}

export class Rosters {
  constructor(private readonly table: Table) {}

  async getRoster(user: string): Promise<Roster> {
    const items: RosterItem[] = [];
    let version = 0;
    let ExclusiveStartKey: Record<string, unknown> | undefined;
    do {
      const page = await this.table.doc.send(
        new QueryCommand({
          TableName: this.table.name,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': `ROSTER#${user}` },
          ConsistentRead: true,
          ExclusiveStartKey,
        }),
      );
      for (const item of page.Items ?? []) {
        if (item.sk === '#META') version = (item.ver as number) ?? 0;
        else items.push(toRosterItem(item));
      }
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
    return { items, version };
  }

  async getRosterItem(user: string, contact: string): Promise<RosterItem | undefined> {
    const { Item } = await this.table.doc.send(
      new GetCommand({
        TableName: this.table.name,
        Key: key.rosterItem(user, contact),
        ConsistentRead: true,
      }),
    );
    return Item ? toRosterItem(Item) : undefined;
  }

  private async bumpRosterVersion(
    user: string,
    countChange: number,
    limit?: number,
  ): Promise<number | 'full'> {
    try {
      const { Attributes } = await this.table.doc.send(
        new UpdateCommand({
          TableName: this.table.name,
          Key: key.rosterMeta(user),
          UpdateExpression: 'ADD ver :one, #count :change',
          ConditionExpression:
            countChange > 0 && limit !== undefined
              ? 'attribute_not_exists(#count) OR #count < :limit'
              : undefined,
          ExpressionAttributeNames: { '#count': 'count' },
          ExpressionAttributeValues: {
            ':one': 1,
            ':change': countChange,
            ...(countChange > 0 && limit !== undefined ? { ':limit': limit } : {}),
          },
          ReturnValues: 'UPDATED_NEW',
        }),
      );
      return Attributes?.ver as number;
    } catch (error) {
      if (isConditionFailure(error)) return 'full';
      throw error;
    }
  }

  async saveRosterItem(
    user: string,
    item: RosterItem,
    options: { adds: boolean; limit: number },
  ): Promise<number | 'full'> {
    const version = await this.bumpRosterVersion(user, options.adds ? 1 : 0, options.limit);
    if (version === 'full') return version;
    await this.table.doc.send(
      new PutCommand({
        TableName: this.table.name,
        Item: { ...key.rosterItem(user, item.contact), ...item },
      }),
    );
    return version;
  }

  async removeRosterItem(user: string, contact: string, options: { listed: boolean }): Promise<number> {
    await this.table.doc.send(
      new DeleteCommand({ TableName: this.table.name, Key: key.rosterItem(user, contact) }),
    );
    return (await this.bumpRosterVersion(user, options.listed ? -1 : 0)) as number;
  }
}
