// Connection items: one per WebSocket connection, in its own partition. Key design and the
// general remarks: dynamo.ts.
//
// | Item              | pk                  | sk                 | Access pattern (cost)                                   |
// |-------------------|---------------------|--------------------|---------------------------------------------------------|
// | Connection        | CONN#<connectionId> | #CONN              | get per frame (0.5 RU, 0 when cached); put on connect,  |
// |                   |                     |                    | on each negotiation step and delete on $disconnect (1 WU)|
// |                   |                     |                    | `closingAt` set as a stream ends (1 WU); a late post to |
// |                   |                     |                    | another connection reads it first (1 RU, consistent)    |
//
// The joined-room pool (CONN#<connectionId> / #ROOMS) shares the partition but is rooms.ts's.

import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { ConnectionRecord } from '../ports.ts';
import { isConditionFailure, type Table } from './table.ts';

const key = {
  connection: (connectionId: string) => ({ pk: `CONN#${connectionId}`, sk: '#CONN' }),
};

/** Bound connections change only when they end, so a container may keep them. */
const CACHE_LIMIT = 10_000;

export class Connections {
  private readonly boundConnections = new Map<string, ConnectionRecord>();
  /** Connections this container deleted: ids are never reused, so they are never cached again. */
  private readonly deletedConnections = new Set<string>();

  constructor(private readonly table: Table) {}

  async createConnection(record: ConnectionRecord): Promise<void> {
    await this.table.doc.send(
      new PutCommand({
        TableName: this.table.name,
        Item: { ...key.connection(record.connectionId), ...record },
      }),
    );
  }

  async getConnection(connectionId: string): Promise<ConnectionRecord | undefined> {
    const cached = this.table.live(this.boundConnections.get(connectionId));
    if (cached) return structuredClone(cached);
    // An eventually consistent read is enough once bound (a bound record only goes
    // away); before that the last negotiation step must be seen, so read again strongly.
    let record = await this.readConnection(connectionId, false);
    if (record?.state !== 'bound') record = await this.readConnection(connectionId, true);
    if (record?.state === 'bound') this.remember(record);
    return record;
  }

  private async readConnection(connectionId: string, consistent: boolean) {
    const { Item } = await this.table.doc.send(
      new GetCommand({
        TableName: this.table.name,
        Key: key.connection(connectionId),
        ConsistentRead: consistent,
      }),
    );
    if (!Item) return undefined;
    const { pk: _pk, sk: _sk, ...record } = Item;
    return this.table.live(record as ConnectionRecord);
  }

  private remember(record: ConnectionRecord) {
    // A read that began before the connection was deleted must not bring it back to life here.
    if (this.deletedConnections.has(record.connectionId)) return;
    if (this.boundConnections.size >= CACHE_LIMIT) this.boundConnections.clear();
    this.boundConnections.set(record.connectionId, structuredClone(record));
  }

  async saveConnection(record: ConnectionRecord): Promise<void> {
    try {
      await this.table.doc.send(
        new PutCommand({
          TableName: this.table.name,
          Item: { ...key.connection(record.connectionId), ...record },
          // Never bring back a connection that was replaced or disconnected meanwhile.
          ConditionExpression: 'attribute_exists(pk)',
        }),
      );
      if (record.state === 'bound') this.remember(record);
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }

  async markClosing(connectionId: string, at: number): Promise<void> {
    await this.table.conditionally(
      new UpdateCommand({
        TableName: this.table.name,
        Key: key.connection(connectionId),
        UpdateExpression: 'SET closingAt = :at',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':at': at },
      }),
    );
  }

  async claimClosing(connectionId: string, at: number, staleBefore: number): Promise<boolean> {
    return this.table.conditionally(
      new UpdateCommand({
        TableName: this.table.name,
        Key: key.connection(connectionId),
        UpdateExpression: 'SET closingAt = :at',
        ConditionExpression:
          'attribute_exists(pk) AND (attribute_not_exists(closingAt) OR closingAt < :stale)',
        ExpressionAttributeValues: { ':at': at, ':stale': staleBefore },
      }),
    );
  }

  async isClosing(connectionId: string): Promise<boolean> {
    const { Item } = await this.table.doc.send(
      new GetCommand({
        TableName: this.table.name,
        Key: key.connection(connectionId),
        ConsistentRead: true,
        ProjectionExpression: 'closingAt, expiresAt',
      }),
    );
    return !Item || Item.closingAt !== undefined || !this.table.live(Item as { expiresAt: number });
  }

  async deleteConnection(connectionId: string): Promise<void> {
    if (this.deletedConnections.size >= CACHE_LIMIT) this.deletedConnections.clear();
    this.deletedConnections.add(connectionId);
    this.boundConnections.delete(connectionId);
    await this.table.doc.send(
      new DeleteCommand({ TableName: this.table.name, Key: key.connection(connectionId) }),
    );
  }
}
