// All DynamoDB access lives here. One table, keys below; every method is one request
// unless it says otherwise.
//
// | Item              | pk                  | sk                 | Access pattern (cost)                                   |
// |-------------------|---------------------|--------------------|---------------------------------------------------------|
// | Connection        | CONN#<connectionId> | #CONN              | get per frame (0.5 RU, 0 when cached); put on connect,  |
// |                   |                     |                    | on each negotiation step and delete on $disconnect (1 WU)|
// |                   |                     |                    | `closingAt` set as a stream ends (1 WU); a late post to |
// |                   |                     |                    | another connection reads it first (1 RU, consistent)    |
// | User credentials  | USER#<bare JID>     | #USER              | get per login (0.5 RU); put/delete by the users command |
// | Session           | USER#<bare JID>     | SESSION#<resource> | put on bind (1 WU, returns the replaced one); query all |
// |                   |                     |                    | of a user's sessions in one request to route (0.5 RU)  |
// |                   |                     |                    | `drainingUntil` set with initial presence, removed when |
// |                   |                     |                    | the drain ends (1 WU per login)                         |
// | Server secret     | SERVER              | #SECRET            | get once per container (decoy SCRAM salts)              |
// | Registrations     | REGISTER#<address>  | #HOUR#<hour>       | XEP-0077 attempts from one source address in one hour:  |
// |                   |                     |                    | conditional ADD per attempt (1 WU); TTL after the hour  |
// | Message           | INBOX#<recipient>   | MSG#<sender>#<id>  | conditional put dedupes a retry (1 WU + 1 WU for the    |
// |                   |                     |                    | index entry); marked delivered by removing `seq` and the|
// |                   |                     |                    | stanza (1 + 1 WU); the tombstone keeps deduping until TTL|
// | (index byOrder)   | INBOX#<recipient>   | seq                | only undelivered messages have `seq`: one strongly      |
// |                   |                     |                    | consistent query a page, in storage order (drain)       |
// | Offline count     | INBOX#<recipient>   | #COUNT             | conditional ADD per message stored for an offline user  |
// | Roster item       | ROSTER#<user>       | ITEM#<contact>     | whole roster in one query at login (bytes/4 KB RU); one |
// |                   |                     |                    | item get per subscription stanza; put per change (1 WU) |
// | Roster version    | ROSTER#<user>       | #META              | ADD ver (and count, bounded by the limit) per change    |
// | Block             | USER#<user>         | BLOCK#<jid>        | XEP-0191 blocklist; with the reverse entry below, one   |
// | Blocked by        | USER#<jid>          | BLOCKEDBY#<user>   | routing query answers "blocked either way" (2 WU/block) |
// | Presence          | USER#<user>         | #PRESENCE          | map resource -> last available presence; contacts' items|
// |                   |                     |                    | are read with BatchGetItem, 100 a request (0.5 RU each) |
// | Room (XEP-0045)   | ROOM#<room JID>     | #ROOM              | config, lock, subject; conditional put creates the room |
// | Room affiliation  | ROOM#<room JID>     | #AFF#<bare JID>    | owner/admin/member/outcast (none is not stored)         |
// | Room occupant     | ROOM#<room JID>     | #OCC#<full JID>    | nick, connectionId, role: put on join, conditional      |
// |                   |                     |                    | delete on leave (1 WU each)                             |
// |   (room state)    | ROOM#<room JID>     | begins_with #      | room, affiliations and occupants in ONE query (join,    |
// |                   |                     |                    | admin); a room message queries begins_with #OCC# only:  |
// |                   |                     |                    | reads grow with the occupant list's bytes, not its count|
// | Room message      | ROOM#<room JID>     | MSG#<seq>          | ONE put per room message whatever the occupant count    |
// |                   |                     |                    | (1 WU under 1 KB deflated; no `seq` attribute, so no    |
// |                   |                     |                    | byOrder index entry); history = query on MSG#, newest   |
// |                   |                     |                    | first, Limit n; TTL retentionDays                        |
// | Pushed marker     | ROOM#<room JID>     | PUSHED#<bare JID>  | the last room message pushed to a member, written when  |
// |                   |                     |                    | the member leaves ('0' when the room had none yet), only|
// |                   |                     |                    | lowered (conditional) when a push meets its gone socket;|
// |                   |                     |                    | the rejoin drain starts after it (at most historyLength)|
// | Room directory    | MUC                 | ROOM#<room JID>    | public rooms (disco#items on the service): one query    |
// | Room pool         | CONN#<connectionId> | #ROOMS             | string set of the rooms the session joined; read when   |
// |                   |                     |                    | the session ends to leave them all (TTL as connection)  |
//
// The USER# partition holds only the credentials and the sessions, so routing reads it
// whole: whether the user exists and where they are, in one query (0.5 RU, 1 consistent).
// Stanzas over 200 bytes are stored deflated when that is smaller: a 1 KB chat message
// then fits one write unit.
//
// The table's stream (schema.ts expiryStream) brings the Connection and Room occupant items
// TTL deletes to server.ts onExpired, read back by `expiredItem` below.
//
// Listing users is a Scan filtered on sk = #USER: an administrative command, never a
// request path. Items that may go stale (connections, sessions) carry `expiresAt`, the
// end of API Gateway's 2-hour connection limit, and reads ignore expired ones.

import { createHash, randomBytes } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type {
  Account,
  Affiliation,
  ConnectionRecord,
  ExpiredItem,
  InboxPage,
  Occupant,
  PresenceEntry,
  RoomMessage,
  RoomRecord,
  RoomState,
  Roster,
  RosterItem,
  SessionRecord,
  Store,
  StoredMessage,
  UserRecord,
} from '../ports.ts';
import { TABLE_SCHEMA } from './schema.ts';

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
  connection: (connectionId: string) => ({ pk: `CONN#${connectionId}`, sk: '#CONN' }),
  user: (user: string) => ({ pk: `USER#${user}`, sk: '#USER' }),
  session: (user: string, resource: string) => ({ pk: `USER#${user}`, sk: `SESSION#${resource}` }),
  secret: () => ({ pk: 'SERVER', sk: '#SECRET' }),
  registrations: (address: string, hour: number) => ({ pk: `REGISTER#${address}`, sk: `#HOUR#${hour}` }),
  message: (recipient: string, sender: string, id: string) => ({
    pk: `INBOX#${recipient}`,
    sk: `MSG#${sender}#${idKey(id)}`,
  }),
  offlineCount: (recipient: string) => ({ pk: `INBOX#${recipient}`, sk: '#COUNT' }),
  rosterItem: (user: string, contact: string) => ({ pk: `ROSTER#${user}`, sk: `ITEM#${contact}` }),
  rosterMeta: (user: string) => ({ pk: `ROSTER#${user}`, sk: '#META' }),
  presence: (user: string) => ({ pk: `USER#${user}`, sk: '#PRESENCE' }),
  room: (room: string) => ({ pk: `ROOM#${room}`, sk: '#ROOM' }),
  affiliation: (room: string, user: string) => ({ pk: `ROOM#${room}`, sk: `#AFF#${user}` }),
  occupant: (room: string, jid: string) => ({ pk: `ROOM#${room}`, sk: `#OCC#${jid}` }),
  roomMessage: (room: string, seq: string) => ({ pk: `ROOM#${room}`, sk: `MSG#${seq}` }),
  pushed: (room: string, user: string) => ({ pk: `ROOM#${room}`, sk: `PUSHED#${user}` }),
  directory: (room: string) => ({ pk: 'MUC', sk: `ROOM#${room}` }),
  joinedRooms: (connectionId: string) => ({ pk: `CONN#${connectionId}`, sk: '#ROOMS' }),
};

function toOccupant(room: string, item: Record<string, unknown>): Occupant {
  return {
    room,
    jid: String(item.sk).slice('#OCC#'.length),
    nick: item.nick as string,
    connectionId: item.c as string,
    role: item.role as Occupant['role'],
    affiliation: item.aff as Occupant['affiliation'],
    expiresAt: item.expiresAt as number,
  };
}

/**
 * What a deleted item (a stream record's old image, unmarshalled) ended, if it is one of
 * schema.ts expiryStream's items.
 */
export function expiredItem(image: Record<string, unknown>): ExpiredItem | undefined {
  const pk = String(image.pk ?? '');
  const sk = String(image.sk ?? '');
  if (sk === '#CONN' && pk.startsWith('CONN#')) {
    const { connectionId, user, resource, expiresAt } = image as Partial<ConnectionRecord>;
    if (!connectionId || expiresAt === undefined) return undefined;
    return { kind: 'connection', connection: { connectionId, user, resource, expiresAt } };
  }
  if (sk.startsWith('#OCC#') && pk.startsWith('ROOM#'))
    return { kind: 'occupant', occupant: toOccupant(pk.slice('ROOM#'.length), image) };
  return undefined;
}

function toRoomMessage(room: string, item: Record<string, unknown>): RoomMessage {
  return {
    room,
    seq: String(item.sk).slice('MSG#'.length),
    stanza: unpackStanza(item),
    postedAt: item.at as number,
    expiresAt: item.expiresAt as number,
  };
}

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

/** DynamoDB BatchGetItem takes at most 100 keys. */
const BATCH_GET_LIMIT = 100;

const COMPRESS_ABOVE = 200;

function packStanza(stanza: string): { s: string } | { z: Uint8Array } {
  if (stanza.length <= COMPRESS_ABOVE) return { s: stanza };
  const deflated = deflateRawSync(stanza);
  return deflated.length < Buffer.byteLength(stanza) ? { z: deflated } : { s: stanza };
}

function unpackStanza(item: Record<string, unknown>): string {
  if (item.z instanceof Uint8Array) return inflateRawSync(item.z).toString('utf8');
  return item.s as string;
}

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

/** The item a failed condition returns is in the low-level format. */
const unmarshallItem = (item: Record<string, unknown>) =>
  unmarshall(item as never) as Record<string, unknown>;

/** DynamoDB BatchWriteItem takes at most 25 requests. */
const BATCH_WRITE_LIMIT = 25;

const isConditionFailure = (error: unknown) =>
  error instanceof ConditionalCheckFailedException ||
  (error as Error)?.name === 'ConditionalCheckFailedException';

/** Bound connections change only when they end, so a container may keep them. */
const CACHE_LIMIT = 10_000;

export class DynamoStore implements Store {
  private readonly client: DynamoDBDocumentClient;
  private readonly boundConnections = new Map<string, ConnectionRecord>();
  /** Connections this container deleted: ids are never reused, so they are never cached again. */
  private readonly deletedConnections = new Set<string>();
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

  /** Sends a conditional write; false when its condition did not hold (nothing was written). */
  private async conditionally(command: PutCommand | UpdateCommand | DeleteCommand): Promise<boolean> {
    try {
      // The client's overloads take one command type at a time; all three send the same way.
      await this.client.send(command as PutCommand);
      return true;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      return false;
    }
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
    const cached = this.live(this.boundConnections.get(connectionId));
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
    // A read that began before the connection was deleted must not bring it back to life here.
    if (this.deletedConnections.has(record.connectionId)) return;
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

  async markClosing(connectionId: string, at: number): Promise<void> {
    await this.conditionally(
      new UpdateCommand({
        TableName: this.tableName,
        Key: key.connection(connectionId),
        UpdateExpression: 'SET closingAt = :at',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':at': at },
      }),
    );
  }

  async claimClosing(connectionId: string, at: number, staleBefore: number): Promise<boolean> {
    return this.conditionally(
      new UpdateCommand({
        TableName: this.tableName,
        Key: key.connection(connectionId),
        UpdateExpression: 'SET closingAt = :at',
        ConditionExpression:
          'attribute_exists(pk) AND (attribute_not_exists(closingAt) OR closingAt < :stale)',
        ExpressionAttributeValues: { ':at': at, ':stale': staleBefore },
      }),
    );
  }

  async isClosing(connectionId: string): Promise<boolean> {
    const { Item } = await this.client.send(
      new GetCommand({
        TableName: this.tableName,
        Key: key.connection(connectionId),
        ConsistentRead: true,
        ProjectionExpression: 'closingAt, expiresAt',
      }),
    );
    return !Item || Item.closingAt !== undefined || !this.live(Item as { expiresAt: number });
  }

  async deleteConnection(connectionId: string): Promise<void> {
    if (this.deletedConnections.size >= CACHE_LIMIT) this.deletedConnections.clear();
    this.deletedConnections.add(connectionId);
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

  async createUser(record: UserRecord): Promise<boolean> {
    return this.conditionally(
      new PutCommand({
        TableName: this.tableName,
        Item: { ...key.user(record.user), ...record },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  /** Several queries and batched deletes: an account's removal, never a message path. */
  async purgeAccount(user: string): Promise<void> {
    const items = [
      // Others' blocks of this name (BLOCKEDBY#) stay: a new account of the name is still blocked.
      ...(await this.queryAll(`USER#${user}`)).filter((item) => !String(item.sk).startsWith('BLOCKEDBY#')),
      ...(await this.queryAll(`ROSTER#${user}`)),
      ...(await this.queryAll(`INBOX#${user}`)),
    ];
    await this.writeBlocks([
      ...items.map((item) => ({ DeleteRequest: { Key: { pk: item.pk, sk: item.sk } } })),
      // The reverse entries of the account's own blocks.
      ...items
        .filter((item) => String(item.sk).startsWith('BLOCK#'))
        .map((item) => ({
          DeleteRequest: {
            Key: { pk: `USER#${String(item.sk).slice('BLOCK#'.length)}`, sk: `BLOCKEDBY#${user}` },
          },
        })),
    ]);
  }

  async countRegistration(address: string, limit: number, now: number): Promise<boolean> {
    const hour = Math.floor(now / 3_600_000);
    return this.conditionally(
      new UpdateCommand({
        TableName: this.tableName,
        Key: key.registrations(address, hour),
        UpdateExpression: 'ADD #count :one SET expiresAt = :expires',
        ConditionExpression: 'attribute_not_exists(#count) OR #count < :limit',
        ExpressionAttributeNames: { '#count': 'count' },
        ExpressionAttributeValues: { ':one': 1, ':limit': limit, ':expires': (hour + 2) * 3600 },
      }),
    );
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
      await this.conditionally(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...key.secret(), secret: randomBytes(32).toString('base64') },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
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
    await this.conditionally(
      new DeleteCommand({
        TableName: this.tableName,
        Key: key.session(user, resource),
        ConditionExpression: 'connectionId = :connectionId',
        ExpressionAttributeValues: { ':connectionId': connectionId },
      }),
    );
  }

  async updateSession(
    user: string,
    resource: string,
    connectionId: string,
    changes: Pick<SessionRecord, 'available' | 'priority' | 'drainingUntil'>,
  ): Promise<void> {
    const draining = changes.drainingUntil !== undefined;
    await this.conditionally(
      new UpdateCommand({
        TableName: this.tableName,
        Key: key.session(user, resource),
        UpdateExpression: `SET available = :available, priority = :priority${draining ? ', drainingUntil = :until' : ''}`,
        ConditionExpression: 'connectionId = :connectionId',
        ExpressionAttributeValues: {
          ':available': changes.available,
          ':priority': changes.priority,
          ':connectionId': connectionId,
          ...(draining ? { ':until': changes.drainingUntil } : {}),
        },
      }),
    );
  }

  async setDraining(
    user: string,
    resource: string,
    connectionId: string,
    until: number | undefined,
  ): Promise<void> {
    await this.conditionally(
      new UpdateCommand({
        TableName: this.tableName,
        Key: key.session(user, resource),
        UpdateExpression: until === undefined ? 'REMOVE drainingUntil' : 'SET drainingUntil = :until',
        ConditionExpression: 'connectionId = :connectionId',
        ExpressionAttributeValues: {
          ':connectionId': connectionId,
          ...(until === undefined ? {} : { ':until': until }),
        },
      }),
    );
  }

  async getAccount(user: string, options: { consistent?: boolean } = {}): Promise<Account> {
    const { Items = [] } = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': `USER#${user}` },
        ConsistentRead: options.consistent ?? true,
      }),
    );
    const suffixes = (prefix: string) =>
      new Set(
        Items.filter((item) => String(item.sk).startsWith(prefix)).map((item) =>
          String(item.sk).slice(prefix.length),
        ),
      );
    return {
      exists: Items.some((item) => item.sk === '#USER'),
      blocks: suffixes('BLOCK#'),
      blockedBy: suffixes('BLOCKEDBY#'),
      sessions: Items.filter((item) => String(item.sk).startsWith('SESSION#'))
        .map(toSession)
        .filter((session) => this.live(session)),
    };
  }

  async storeMessage(
    message: StoredMessage,
  ): Promise<{ stored: true } | { stored: false; existing: StoredMessage }> {
    const { stanza, ...attributes } = message;
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
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
    return this.conditionally(
      new UpdateCommand({
        TableName: this.tableName,
        Key: key.message(recipient, sender, id),
        UpdateExpression: 'REMOVE seq, s, z SET deliveredAt = :now, deliveredSeq = seq',
        ConditionExpression: 'attribute_exists(seq)',
        ExpressionAttributeValues: { ':now': this.now() },
      }),
    );
  }

  async markAllDelivered(
    messages: readonly Pick<StoredMessage, 'recipient' | 'sender' | 'id'>[],
  ): Promise<void> {
    // A tombstone replaces each message: one batch request for up to 25, no condition needed
    // because these messages were just read as undelivered.
    const deliveredAt = this.now();
    for (let start = 0; start < messages.length; start += BATCH_WRITE_LIMIT) {
      let requests: Record<string, unknown>[] | undefined = messages
        .slice(start, start + BATCH_WRITE_LIMIT)
        .map((message) => ({
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
        }));
      for (let attempt = 0; requests && requests.length > 0; attempt++) {
        if (attempt > 0)
          await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 50 * 2 ** attempt)));
        const result = await this.client.send(
          new BatchWriteCommand({ RequestItems: { [this.tableName]: requests as never } }),
        );
        requests = result.UnprocessedItems?.[this.tableName] as Record<string, unknown>[] | undefined;
      }
    }
  }

  async undelivered(recipient: string, limit: number, after?: string): Promise<InboxPage> {
    const page = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: TABLE_SCHEMA.orderIndex.name,
        KeyConditionExpression: after ? 'pk = :pk AND seq > :after' : 'pk = :pk',
        FilterExpression: 'expiresAt > :now',
        ExpressionAttributeValues: {
          ':pk': `INBOX#${recipient}`,
          ':now': this.nowSeconds(),
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
    return this.conditionally(
      new UpdateCommand({
        TableName: this.tableName,
        Key: key.offlineCount(recipient),
        UpdateExpression: 'ADD #count :one',
        ConditionExpression: 'attribute_not_exists(#count) OR #count < :quota',
        ExpressionAttributeNames: { '#count': 'count' },
        ExpressionAttributeValues: { ':one': 1, ':quota': quota },
      }),
    );
  }

  async resetOfflineCount(recipient: string): Promise<void> {
    await this.client.send(
      new DeleteCommand({ TableName: this.tableName, Key: key.offlineCount(recipient) }),
    );
  }

  async markInterested(
    user: string,
    resource: string,
    connectionId: string,
    what: 'roster' | 'blocklist' = 'roster',
  ): Promise<void> {
    await this.conditionally(
      new UpdateCommand({
        TableName: this.tableName,
        Key: key.session(user, resource),
        UpdateExpression: what === 'roster' ? 'SET interested = :yes' : 'SET blocklistInterested = :yes',
        ConditionExpression: 'connectionId = :connectionId',
        ExpressionAttributeValues: { ':yes': true, ':connectionId': connectionId },
      }),
    );
  }

  async getRoster(user: string): Promise<Roster> {
    const items: RosterItem[] = [];
    let version = 0;
    let ExclusiveStartKey: Record<string, unknown> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
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
    const { Item } = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: key.rosterItem(user, contact), ConsistentRead: true }),
    );
    return Item ? toRosterItem(Item) : undefined;
  }

  private async bumpRosterVersion(
    user: string,
    countChange: number,
    limit?: number,
  ): Promise<number | 'full'> {
    try {
      const { Attributes } = await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
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
    await this.client.send(
      new PutCommand({ TableName: this.tableName, Item: { ...key.rosterItem(user, item.contact), ...item } }),
    );
    return version;
  }

  async removeRosterItem(user: string, contact: string, options: { listed: boolean }): Promise<number> {
    await this.client.send(
      new DeleteCommand({ TableName: this.tableName, Key: key.rosterItem(user, contact) }),
    );
    return (await this.bumpRosterVersion(user, options.listed ? -1 : 0)) as number;
  }

  async getPresences(users: readonly string[]): Promise<Map<string, PresenceEntry[]>> {
    const result = new Map<string, PresenceEntry[]>();
    const unique = [...new Set(users)];
    for (let start = 0; start < unique.length; start += BATCH_GET_LIMIT) {
      let keys: Record<string, unknown>[] | undefined = unique
        .slice(start, start + BATCH_GET_LIMIT)
        .map((user) => key.presence(user));
      for (let attempt = 0; keys && keys.length > 0; attempt++) {
        if (attempt > 0)
          await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 50 * 2 ** attempt)));
        const page = await this.client.send(
          new BatchGetCommand({ RequestItems: { [this.tableName]: { Keys: keys } } }),
        );
        for (const item of page.Responses?.[this.tableName] ?? []) {
          const user = String(item.pk).slice('USER#'.length);
          const entries = Object.values((item.resources as Record<string, PresenceEntry> | undefined) ?? {});
          result.set(
            user,
            entries.filter((entry) => this.live(entry)),
          );
        }
        keys = page.UnprocessedKeys?.[this.tableName]?.Keys as Record<string, unknown>[] | undefined;
      }
    }
    return result;
  }

  async setPresence(user: string, entry: PresenceEntry): Promise<void> {
    const update = () =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: key.presence(user),
          UpdateExpression: 'SET resources.#resource = :entry',
          ConditionExpression: 'attribute_exists(resources)',
          ExpressionAttributeNames: { '#resource': entry.resource },
          ExpressionAttributeValues: { ':entry': entry },
        }),
      );
    try {
      await update();
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      // The first presence of this user: create the map, unless someone else just did.
      try {
        await this.client.send(
          new PutCommand({
            TableName: this.tableName,
            Item: { ...key.presence(user), resources: { [entry.resource]: entry } },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        );
      } catch (again) {
        if (!isConditionFailure(again)) throw again;
        await update();
      }
    }
  }

  async removePresence(
    user: string,
    resource: string,
    connectionId: string,
  ): Promise<PresenceEntry | undefined> {
    try {
      const { Attributes } = await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: key.presence(user),
          UpdateExpression: 'REMOVE resources.#resource',
          ConditionExpression: 'resources.#resource.connectionId = :connectionId',
          ExpressionAttributeNames: { '#resource': resource },
          ExpressionAttributeValues: { ':connectionId': connectionId },
          ReturnValues: 'UPDATED_OLD',
        }),
      );
      return (Attributes?.resources as Record<string, PresenceEntry> | undefined)?.[resource];
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      return undefined;
    }
  }

  async getBlocklist(user: string): Promise<string[]> {
    const { Items = [] } = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': `USER#${user}`, ':prefix': 'BLOCK#' },
        ConsistentRead: true,
      }),
    );
    return Items.map((item) => String(item.sk).slice('BLOCK#'.length));
  }

  /** BatchWriteItem, 25 requests at a time, unprocessed ones retried with backoff. */
  private async writeBlocks(requests: Record<string, unknown>[]): Promise<void> {
    for (let start = 0; start < requests.length; start += BATCH_WRITE_LIMIT) {
      let pending: Record<string, unknown>[] | undefined = requests.slice(start, start + BATCH_WRITE_LIMIT);
      for (let attempt = 0; pending && pending.length > 0; attempt++) {
        if (attempt > 0)
          await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 50 * 2 ** attempt)));
        const result = await this.client.send(
          new BatchWriteCommand({ RequestItems: { [this.tableName]: pending as never } }),
        );
        pending = result.UnprocessedItems?.[this.tableName] as Record<string, unknown>[] | undefined;
      }
    }
  }

  async block(user: string, jids: readonly string[]): Promise<void> {
    await this.writeBlocks(
      jids.flatMap((jid) => [
        { PutRequest: { Item: { pk: `USER#${user}`, sk: `BLOCK#${jid}` } } },
        { PutRequest: { Item: { pk: `USER#${jid}`, sk: `BLOCKEDBY#${user}` } } },
      ]),
    );
  }

  async unblock(user: string, jids?: readonly string[]): Promise<string[]> {
    const current = await this.getBlocklist(user);
    const removed = jids ? current.filter((jid) => jids.includes(jid)) : current;
    await this.writeBlocks(
      removed.flatMap((jid) => [
        { DeleteRequest: { Key: { pk: `USER#${user}`, sk: `BLOCK#${jid}` } } },
        { DeleteRequest: { Key: { pk: `USER#${jid}`, sk: `BLOCKEDBY#${user}` } } },
      ]),
    );
    return removed;
  }

  async getRoomState(room: string): Promise<RoomState> {
    const items = await this.queryAll(`ROOM#${room}`, '#');
    let record: RoomRecord | undefined;
    const affiliations = new Map<string, Affiliation>();
    const occupants: Occupant[] = [];
    for (const item of items) {
      const sk = String(item.sk);
      if (sk === '#ROOM') {
        const { pk: _pk, sk: _sk, ...rest } = item;
        record = rest as unknown as RoomRecord;
      } else if (sk.startsWith('#AFF#')) affiliations.set(sk.slice(5), item.aff as Affiliation);
      else if (sk.startsWith('#OCC#')) {
        const occupant = toOccupant(room, item);
        if (this.live(occupant)) occupants.push(occupant);
      }
    }
    return { room: record, affiliations, occupants };
  }

  async getOccupants(room: string): Promise<Occupant[]> {
    const items = await this.queryAll(`ROOM#${room}`, '#OCC#');
    return items.map((item) => toOccupant(room, item)).filter((occupant) => this.live(occupant));
  }

  /** Every item of a partition under a prefix, strongly consistent, page after page. */
  /** Every item of the partition, or of those whose sort key starts with `prefix`. */
  private async queryAll(pk: string, prefix?: string): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let ExclusiveStartKey: Record<string, unknown> | undefined;
    // DynamoDB refuses an empty key value, so a whole partition is queried on pk alone.
    const condition = prefix
      ? { KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)', values: { ':prefix': prefix } }
      : { KeyConditionExpression: 'pk = :pk', values: {} };
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
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

  async createRoom(record: RoomRecord): Promise<boolean> {
    return this.conditionally(
      new PutCommand({
        TableName: this.tableName,
        Item: { ...key.room(record.room), ...record },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  async saveRoom(record: RoomRecord): Promise<void> {
    await this.client.send(
      new PutCommand({ TableName: this.tableName, Item: { ...key.room(record.room), ...record } }),
    );
    if (record.config.public && !record.locked) {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...key.directory(record.room), room: record.room, name: record.config.name },
        }),
      );
    } else {
      await this.client.send(
        new DeleteCommand({ TableName: this.tableName, Key: key.directory(record.room) }),
      );
    }
  }

  async listPublicRooms(): Promise<{ room: string; name: string }[]> {
    const items = await this.queryAll('MUC', 'ROOM#');
    return items.map((item) => ({ room: item.room as string, name: (item.name as string) ?? '' }));
  }

  async deleteRoom(room: string): Promise<void> {
    const items = await this.queryAll(`ROOM#${room}`);
    await this.writeBlocks([
      ...items.map((item) => ({ DeleteRequest: { Key: { pk: item.pk, sk: item.sk } } })),
      { DeleteRequest: { Key: key.directory(room) } },
    ]);
  }

  async putOccupant(occupant: Occupant): Promise<void> {
    await this.client.send(
      new PutCommand({
        TableName: this.tableName,
        Item: {
          ...key.occupant(occupant.room, occupant.jid),
          nick: occupant.nick,
          c: occupant.connectionId,
          role: occupant.role,
          aff: occupant.affiliation,
          expiresAt: occupant.expiresAt,
        },
      }),
    );
  }

  async removeOccupant(room: string, jid: string, connectionId: string): Promise<Occupant | undefined> {
    try {
      const { Attributes } = await this.client.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: key.occupant(room, jid),
          ConditionExpression: 'c = :c',
          ExpressionAttributeValues: { ':c': connectionId },
          ReturnValues: 'ALL_OLD',
        }),
      );
      return Attributes ? toOccupant(room, Attributes) : undefined;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      return undefined;
    }
  }

  async setAffiliation(room: string, user: string, affiliation: Affiliation): Promise<void> {
    if (affiliation === 'none') {
      await this.client.send(
        new DeleteCommand({ TableName: this.tableName, Key: key.affiliation(room, user) }),
      );
      return;
    }
    await this.client.send(
      new PutCommand({
        TableName: this.tableName,
        Item: { ...key.affiliation(room, user), aff: affiliation },
      }),
    );
  }

  async storeRoomMessage(message: RoomMessage): Promise<void> {
    await this.client.send(
      new PutCommand({
        TableName: this.tableName,
        Item: {
          ...key.roomMessage(message.room, message.seq),
          at: message.postedAt,
          expiresAt: message.expiresAt,
          ...packStanza(message.stanza),
        },
      }),
    );
  }

  async roomHistory(room: string, limit: number, after?: string): Promise<RoomMessage[]> {
    if (limit <= 0) return [];
    const page = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: after
          ? 'pk = :pk AND sk BETWEEN :from AND :to'
          : 'pk = :pk AND begins_with(sk, :prefix)',
        FilterExpression: 'expiresAt > :now',
        ExpressionAttributeValues: {
          ':pk': `ROOM#${room}`,
          ':now': this.nowSeconds(),
          ...(after ? { ':from': `MSG#${after}!`, ':to': 'MSG$' } : { ':prefix': 'MSG#' }),
        },
        ScanIndexForward: false,
        ConsistentRead: true,
        Limit: limit,
      }),
    );
    return (page.Items ?? []).map((item) => toRoomMessage(room, item));
  }

  async lastRoomSeq(room: string, before?: string): Promise<string | undefined> {
    // Keys only, newest first. BETWEEN includes `before` itself: the next item is then the
    // one wanted. ('MSG$' sorts after every MSG# key.)
    const { Items = [] } = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
        ExpressionAttributeValues: {
          ':pk': `ROOM#${room}`,
          ':from': 'MSG#',
          ':to': before ? `MSG#${before}` : 'MSG$',
        },
        ProjectionExpression: 'sk',
        ScanIndexForward: false,
        ConsistentRead: true,
        Limit: 2,
      }),
    );
    return Items.map((item) => String(item.sk).slice('MSG#'.length)).find((seq) => seq !== before);
  }

  async getPushedMarker(room: string, user: string): Promise<string | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: key.pushed(room, user), ConsistentRead: true }),
    );
    return Item?.last as string | undefined;
  }

  async setPushedMarker(room: string, user: string, seq: string): Promise<void> {
    await this.client.send(
      new PutCommand({ TableName: this.tableName, Item: { ...key.pushed(room, user), last: seq } }),
    );
  }

  async lowerPushedMarker(room: string, user: string, seq: string): Promise<void> {
    await this.conditionally(
      new UpdateCommand({
        TableName: this.tableName,
        Key: key.pushed(room, user),
        UpdateExpression: 'SET #last = :seq',
        ConditionExpression: '#last > :seq',
        ExpressionAttributeNames: { '#last': 'last' },
        ExpressionAttributeValues: { ':seq': seq },
      }),
    );
  }

  async addJoinedRoom(connectionId: string, room: string, expiresAt: number): Promise<void> {
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: key.joinedRooms(connectionId),
        UpdateExpression: 'ADD rooms :room SET expiresAt = :expiresAt',
        ExpressionAttributeValues: { ':room': new Set([room]), ':expiresAt': expiresAt },
      }),
    );
  }

  async removeJoinedRoom(connectionId: string, room: string): Promise<void> {
    await this.client
      .send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: key.joinedRooms(connectionId),
          UpdateExpression: 'DELETE rooms :room',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':room': new Set([room]) },
        }),
      )
      .catch((error: unknown) => {
        if (!isConditionFailure(error)) throw error;
      });
  }

  async getJoinedRooms(connectionId: string): Promise<string[]> {
    const { Item } = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: key.joinedRooms(connectionId), ConsistentRead: true }),
    );
    return [...((Item?.rooms as Set<string> | undefined) ?? [])];
  }

  async deleteJoinedRooms(connectionId: string): Promise<void> {
    await this.client.send(
      new DeleteCommand({ TableName: this.tableName, Key: key.joinedRooms(connectionId) }),
    );
  }
}

function toSession(item: Record<string, unknown>): SessionRecord {
  return {
    user: item.user as string,
    resource: item.resource as string,
    connectionId: item.connectionId as string,
    available: item.available as boolean,
    priority: item.priority as number,
    ...(item.interested === true ? { interested: true } : {}),
    ...(item.blocklistInterested === true ? { blocklistInterested: true } : {}),
    ...(typeof item.drainingUntil === 'number' ? { drainingUntil: item.drainingUntil } : {}),
    expiresAt: item.expiresAt as number,
  };
}
