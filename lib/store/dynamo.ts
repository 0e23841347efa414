// All DynamoDB access lives here. One table, keys below; every method is one request
// unless it says otherwise.
//
// | Item              | pk                  | sk                 | Access pattern (cost)                                   |
// |-------------------|---------------------|--------------------|---------------------------------------------------------|
// | Connection        | CONN#<connectionId> | #CONN              | get per frame (0.5 RU, 0 when cached); put on connect,  |
// |                   |                     |                    | on each negotiation step and delete on $disconnect (1 WU)|
// | User credentials  | USER#<bare JID>     | #USER              | get per login (0.5 RU); put/delete by the users command |
// | Session           | USER#<bare JID>     | SESSION#<resource> | put on bind (1 WU, returns the replaced one); query all |
// |                   |                     |                    | of a user's sessions in one request to route (0.5 RU)  |
// | Server secret     | SERVER              | #SECRET            | get once per container (decoy SCRAM salts)              |
// | Message (undeliv.)| INBOX#<bare JID>    | MSG#<sender>#<id>  | conditional put dedupes retries; index byOrder (seq)    |
// |                   |                     |                    | lists undelivered messages in storage order for drain   |
//
// Listing users is a Scan filtered on sk = #USER: an administrative command, never a
// request path. Items that may go stale (connections, sessions) carry `expiresAt`, the
// end of API Gateway's 2-hour connection limit, and reads ignore expired ones.

import { randomBytes } from 'node:crypto';
import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
} from '@aws-sdk/lib-dynamodb';
import type { ConnectionRecord, SessionRecord, Store, UserRecord } from '../ports.ts';

const key = {
  connection: (connectionId: string) => ({ pk: `CONN#${connectionId}`, sk: '#CONN' }),
  user: (user: string) => ({ pk: `USER#${user}`, sk: '#USER' }),
  session: (user: string, resource: string) => ({ pk: `USER#${user}`, sk: `SESSION#${resource}` }),
  secret: () => ({ pk: 'SERVER', sk: '#SECRET' }),
};

const isConditionFailure = (error: unknown) =>
  error instanceof ConditionalCheckFailedException ||
  (error as Error)?.name === 'ConditionalCheckFailedException';

/** Bound connections change only when they end, so a container may keep them. */
const CACHE_LIMIT = 10_000;

export class DynamoStore implements Store {
  private readonly client: DynamoDBDocumentClient;
  private readonly boundConnections = new Map<string, ConnectionRecord>();
  private secret?: Buffer;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
    private readonly now: () => number = Date.now,
  ) {
    this.client = DynamoDBDocumentClient.from(client, {
      marshallOptions: { removeUndefinedValues: true },
    });
  }

  private nowSeconds() {
    return Math.floor(this.now() / 1000);
  }

  private live<T extends { expiresAt?: number }>(item: T | undefined): T | undefined {
    return item && (item.expiresAt === undefined || item.expiresAt > this.nowSeconds()) ? item : undefined;
  }

  async createConnection(record: ConnectionRecord): Promise<void> {
    await this.client.send(
      new PutCommand({
        TableName: this.tableName,
        Item: { ...key.connection(record.connectionId), ...record },
      }),
    );
  }

  async getConnection(connectionId: string): Promise<ConnectionRecord | undefined> {
    const cached = this.boundConnections.get(connectionId);
    if (cached) return structuredClone(cached);
    // An eventually consistent read is enough once bound (a bound record only goes
    // away); before that the last negotiation step must be seen, so read again strongly.
    let record = await this.readConnection(connectionId, false);
    if (record?.state !== 'bound') record = await this.readConnection(connectionId, true);
    if (record?.state === 'bound') this.remember(record);
    return record;
  }

  private async readConnection(connectionId: string, consistent: boolean) {
    const { Item } = await this.client.send(
      new GetCommand({
        TableName: this.tableName,
        Key: key.connection(connectionId),
        ConsistentRead: consistent,
      }),
    );
    if (!Item) return undefined;
    const { pk: _pk, sk: _sk, ...record } = Item;
    return this.live(record as ConnectionRecord);
  }

  private remember(record: ConnectionRecord) {
    if (this.boundConnections.size >= CACHE_LIMIT) this.boundConnections.clear();
    this.boundConnections.set(record.connectionId, structuredClone(record));
  }

  async saveConnection(record: ConnectionRecord): Promise<void> {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
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

  async deleteConnection(connectionId: string): Promise<void> {
    this.boundConnections.delete(connectionId);
    await this.client.send(
      new DeleteCommand({ TableName: this.tableName, Key: key.connection(connectionId) }),
    );
  }

  async getUser(user: string): Promise<UserRecord | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: key.user(user) }),
    );
    return Item ? { user: Item.user, scram: Item.scram, createdAt: Item.createdAt } : undefined;
  }

  async putUser(record: UserRecord): Promise<void> {
    await this.client.send(
      new PutCommand({ TableName: this.tableName, Item: { ...key.user(record.user), ...record } }),
    );
  }

  async deleteUser(user: string): Promise<boolean> {
    const { Attributes } = await this.client.send(
      new DeleteCommand({ TableName: this.tableName, Key: key.user(user), ReturnValues: 'ALL_OLD' }),
    );
    return Attributes !== undefined;
  }

  async listUsers(): Promise<string[]> {
    const users: string[] = [];
    let ExclusiveStartKey: Record<string, unknown> | undefined;
    do {
      const page = await this.client.send(
        new ScanCommand({
          TableName: this.tableName,
          FilterExpression: 'sk = :sk',
          ExpressionAttributeValues: { ':sk': '#USER' },
          ProjectionExpression: '#user',
          ExpressionAttributeNames: { '#user': 'user' },
          ExclusiveStartKey,
        }),
      );
      for (const item of page.Items ?? []) users.push(item.user as string);
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
    return users.sort();
  }

  async getServerSecret(): Promise<Buffer> {
    if (this.secret) return this.secret;
    const read = async () =>
      (
        await this.client.send(
          new GetCommand({ TableName: this.tableName, Key: key.secret(), ConsistentRead: true }),
        )
      ).Item;
    let item = await read();
    if (!item) {
      try {
        await this.client.send(
          new PutCommand({
            TableName: this.tableName,
            Item: { ...key.secret(), secret: randomBytes(32).toString('base64') },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        );
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
      }
      item = await read();
    }
    this.secret = Buffer.from(item?.secret as string, 'base64');
    return this.secret;
  }

  async putSession(session: SessionRecord): Promise<SessionRecord | undefined> {
    const { Attributes } = await this.client.send(
      new PutCommand({
        TableName: this.tableName,
        Item: { ...key.session(session.user, session.resource), ...session },
        ReturnValues: 'ALL_OLD',
      }),
    );
    return Attributes ? this.live(toSession(Attributes)) : undefined;
  }

  async getSessions(user: string): Promise<SessionRecord[]> {
    const { Items } = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': `USER#${user}`, ':prefix': 'SESSION#' },
      }),
    );
    return (Items ?? []).map(toSession).filter((session) => this.live(session));
  }

  async deleteSession(user: string, resource: string, connectionId: string): Promise<void> {
    try {
      await this.client.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: key.session(user, resource),
          ConditionExpression: 'connectionId = :connectionId',
          ExpressionAttributeValues: { ':connectionId': connectionId },
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }
}

function toSession(item: Record<string, unknown>): SessionRecord {
  return {
    user: item.user as string,
    resource: item.resource as string,
    connectionId: item.connectionId as string,
    available: item.available as boolean,
    priority: item.priority as number,
    expiresAt: item.expiresAt as number,
  };
}
