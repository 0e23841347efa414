// Accounts: credentials, sessions, blocks and presence in the user's partition, plus the
// server secret and the registration counts. Key design and the general remarks: dynamo.ts.
//
// | Item              | pk                  | sk                 | Access pattern (cost)                                   |
// |-------------------|---------------------|--------------------|---------------------------------------------------------|
// | User credentials  | USER#<bare JID>     | #USER              | get per login (0.5 RU); put/delete by the users command |
// | Session           | USER#<bare JID>     | SESSION#<resource> | put on bind (1 WU, returns the replaced one); query all |
// |                   |                     |                    | of a user's sessions in one request to route (0.5 RU)  |
// |                   |                     |                    | `drainingUntil` set with initial presence, removed when |
// |                   |                     |                    | the drain ends (1 WU per login), with `drainId` (the    |
// |                   |                     |                    | first lease, kept by renewals). `held`: the inbox keys  |
// |                   |                     |                    | of messages stored while the lease ran, appended by     |
// |                   |                     |                    | their senders only while it runs (1 WU each); the gate  |
// |                   |                     |                    | opens only when the drain has brought them all          |
// | Server secret     | SERVER              | #SECRET            | get once per container (decoy SCRAM salts)              |
// | Registrations     | REGISTER#<address>  | #HOUR#<hour>       | XEP-0077 attempts from one source address in one hour:  |
// |                   |                     |                    | conditional ADD per attempt (1 WU); TTL after the hour  |
// | Block             | USER#<user>         | BLOCK#<jid>        | XEP-0191 blocklist; with the reverse entry below, one   |
// | Blocked by        | USER#<jid>          | BLOCKEDBY#<user>   | routing query answers "blocked either way" (2 WU/block) |
// | Presence          | USER#<user>         | #PRESENCE          | map resource -> last available presence; contacts' items|
// |                   |                     |                    | are read with BatchGetItem, 100 a request (0.5 RU each) |
// | Archive prefs     | USER#<user>         | #ARCHIVEPREFS      | XEP-0313 §6 preferences: put per change; read with the  |
// |                   |                     |                    | account (the routing query), so archiving costs no read |
//
// A session's `carbons` flag (XEP-0280) is set on its item (1 WU), read with the account.
// Its `inactive` flag (XEP-0352) is set or removed on its item and, while the session is
// available, on its entry in the #PRESENCE item too, so that presence broadcasts, which read
// only presence items, skip it (2 requests, 2 WU or more with a large presence item, per change).
// XEP-0357 push registrations (push.ts) live in the partition too, so routing reads them
// with the rest. The USER# partition holds only small items, so routing reads it whole:
// whether the user exists and where they are, in one query (0.5 RU, 1 consistent). A message
// reads its recipient's and its sender's partitions in one request (getAccounts: a PartiQL
// SELECT on `pk IN [...]`, answered as a query per partition, 1 RU each, both consistent).
//
// Listing users is a Scan filtered on sk = #USER: an administrative command, never a
// request path.

import { randomBytes } from 'node:crypto';
import {
  DeleteCommand,
  ExecuteStatementCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type {
  Account,
  AccountsOf,
  ArchivePrefs,
  PresenceEntry,
  SessionRecord,
  StoredMessage,
  UserRecord,
} from '../ports.ts';
import { inboxSortKey } from './messages.ts';
import { PUSH_PREFIX, toPushRegistration } from './push.ts';
import { isConditionFailure, type Table, unmarshallItem } from './table.ts';

/** The most messages held on one session for its drain (holdForDrain). */
export const MOST_HELD = 200;

const key = {
  user: (user: string) => ({ pk: `USER#${user}`, sk: '#USER' }),
  session: (user: string, resource: string) => ({ pk: `USER#${user}`, sk: `SESSION#${resource}` }),
  archivePrefs: (user: string) => ({ pk: `USER#${user}`, sk: '#ARCHIVEPREFS' }),
  secret: () => ({ pk: 'SERVER', sk: '#SECRET' }),
  registrations: (address: string, hour: number) => ({ pk: `REGISTER#${address}`, sk: `#HOUR#${hour}` }),
  presence: (user: string) => ({ pk: `USER#${user}`, sk: '#PRESENCE' }),
};

export class Accounts {
  private secret?: Buffer;

  constructor(private readonly table: Table) {}

  async getUser(user: string): Promise<UserRecord | undefined> {
    const { Item } = await this.table.doc.send(
      new GetCommand({ TableName: this.table.name, Key: key.user(user) }),
    );
    return Item ? { user: Item.user, scram: Item.scram, createdAt: Item.createdAt } : undefined;
  }

  async putUser(record: UserRecord): Promise<void> {
    await this.table.doc.send(
      new PutCommand({ TableName: this.table.name, Item: { ...key.user(record.user), ...record } }),
    );
  }

  async deleteUser(user: string): Promise<boolean> {
    const { Attributes } = await this.table.doc.send(
      new DeleteCommand({ TableName: this.table.name, Key: key.user(user), ReturnValues: 'ALL_OLD' }),
    );
    return Attributes !== undefined;
  }

  async createUser(record: UserRecord): Promise<boolean> {
    return this.table.conditionally(
      new PutCommand({
        TableName: this.table.name,
        Item: { ...key.user(record.user), ...record },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  /** Several queries and batched deletes: an account's removal, never a message path. */
  async purgeAccount(user: string): Promise<void> {
    const items = [
      // Others' blocks of this name (BLOCKEDBY#) stay: a new account of the name is still blocked.
      ...(await this.table.queryAll(`USER#${user}`)).filter(
        (item) => !String(item.sk).startsWith('BLOCKEDBY#'),
      ),
      ...(await this.table.queryAll(`ROSTER#${user}`)),
      ...(await this.table.queryAll(`INBOX#${user}`)),
    ];
    await this.table.writeBatches([
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
    return this.table.conditionally(
      new UpdateCommand({
        TableName: this.table.name,
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
      const page = await this.table.doc.send(
        new ScanCommand({
          TableName: this.table.name,
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
        await this.table.doc.send(
          new GetCommand({ TableName: this.table.name, Key: key.secret(), ConsistentRead: true }),
        )
      ).Item;
    let item = await read();
    if (!item) {
      await this.table.conditionally(
        new PutCommand({
          TableName: this.table.name,
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
    const { Attributes } = await this.table.doc.send(
      new PutCommand({
        TableName: this.table.name,
        Item: { ...key.session(session.user, session.resource), ...session },
        ReturnValues: 'ALL_OLD',
      }),
    );
    return Attributes ? this.table.live(toSession(Attributes)) : undefined;
  }

  async getSessions(user: string): Promise<SessionRecord[]> {
    const { Items } = await this.table.doc.send(
      new QueryCommand({
        TableName: this.table.name,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': `USER#${user}`, ':prefix': 'SESSION#' },
      }),
    );
    return (Items ?? []).map(toSession).filter((session) => this.table.live(session));
  }

  async deleteSession(user: string, resource: string, connectionId: string): Promise<void> {
    await this.table.conditionally(
      new DeleteCommand({
        TableName: this.table.name,
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
    await this.table.conditionally(
      new UpdateCommand({
        TableName: this.table.name,
        Key: key.session(user, resource),
        // A new drain: its lease, its id (the first lease's value, which renewals keep), nothing held.
        UpdateExpression: `SET available = :available, priority = :priority${draining ? ', drainingUntil = :until, drainId = :until REMOVE held' : ''}`,
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
    current?: number,
  ): Promise<boolean> {
    // A lease is only renewed while the gate is closed, by the drain that holds it (its id is
    // the first lease's value, which renewals keep, so a continuation retried after a failure
    // still resumes): one replayed after the drain opened the gate, or one of a drain that a new
    // initial presence replaced, must not close it again.
    const renewal =
      current === undefined
        ? 'connectionId = :connectionId AND attribute_exists(drainingUntil)'
        : 'connectionId = :connectionId AND attribute_exists(drainingUntil) AND drainId = :current';
    return this.table.conditionally(
      new UpdateCommand({
        TableName: this.table.name,
        Key: key.session(user, resource),
        UpdateExpression:
          until === undefined ? 'REMOVE drainingUntil, drainId, held' : 'SET drainingUntil = :until',
        ConditionExpression: until === undefined ? 'connectionId = :connectionId' : renewal,
        ExpressionAttributeValues: {
          ':connectionId': connectionId,
          ...(until === undefined ? {} : { ':until': until }),
          ...(until !== undefined && current !== undefined ? { ':current': current } : {}),
        },
      }),
    );
  }

  /**
   * Each hold rewrites the session item, and routing reads it whole: past MOST_HELD held
   * messages (about 12 KB) a sender pushes its message itself, as if the gate were open.
   */
  async holdForDrain(
    session: Pick<SessionRecord, 'user' | 'resource' | 'connectionId'>,
    message: Pick<StoredMessage, 'sender' | 'id'>,
    now: number,
  ): Promise<boolean> {
    return this.table.conditionally(
      new UpdateCommand({
        TableName: this.table.name,
        Key: key.session(session.user, session.resource),
        UpdateExpression: 'SET held = list_append(if_not_exists(held, :none), :entry)',
        ConditionExpression:
          'connectionId = :connectionId AND drainingUntil > :now AND (attribute_not_exists(held) OR size(held) < :most)',
        ExpressionAttributeValues: {
          ':most': MOST_HELD,
          ':none': [],
          ':entry': [inboxSortKey(message.sender, message.id)],
          ':connectionId': session.connectionId,
          ':now': now,
        },
      }),
    );
  }

  async openDrainGate(
    user: string,
    resource: string,
    connectionId: string,
    handled: number,
  ): Promise<'open' | 'gone' | readonly string[]> {
    try {
      await this.table.doc.send(
        new UpdateCommand({
          TableName: this.table.name,
          Key: key.session(user, resource),
          UpdateExpression: 'REMOVE drainingUntil, drainId, held',
          ConditionExpression:
            handled === 0
              ? 'connectionId = :connectionId AND attribute_not_exists(held)'
              : 'connectionId = :connectionId AND size(held) = :handled',
          ExpressionAttributeValues: {
            ':connectionId': connectionId,
            ...(handled === 0 ? {} : { ':handled': handled }),
          },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return 'open';
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const old = (error as { Item?: Record<string, unknown> }).Item;
      const item = old && 'pk' in old && typeof old.pk === 'object' ? unmarshallItem(old) : old;
      if (!item || item.connectionId !== connectionId) return 'gone';
      return (item.held as string[] | undefined) ?? [];
    }
  }

  async getAccount(user: string, options: { consistent?: boolean } = {}): Promise<Account> {
    const { Items = [] } = await this.table.doc.send(
      new QueryCommand({
        TableName: this.table.name,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': `USER#${user}` },
        ConsistentRead: options.consistent ?? true,
      }),
    );
    return this.toAccount(Items);
  }

  /**
   * Several users' accounts in one request, each read whole and strongly consistent: a PartiQL
   * SELECT with `pk IN [...]`, which DynamoDB answers partition by partition (a query each, no
   * scan) and charges as those queries. A message's routing reads its recipient and its sender
   * this way. In the order asked; a user named twice is read once.
   */
  async getAccounts<const Users extends readonly string[]>(users: Users): Promise<AccountsOf<Users>> {
    const partitions = [...new Set(users)].map((user) => `USER#${user}`);
    const items = new Map<string, Record<string, unknown>[]>(partitions.map((pk) => [pk, []]));
    let NextToken: string | undefined;
    do {
      const page = await this.table.doc.send(
        new ExecuteStatementCommand({
          Statement: `SELECT * FROM "${this.table.name}" WHERE pk IN [${partitions.map(() => '?').join(', ')}]`,
          Parameters: partitions,
          ConsistentRead: true,
          NextToken,
        }),
      );
      for (const item of page.Items ?? []) items.get(String(item.pk))?.push(item);
      NextToken = page.NextToken;
    } while (NextToken);
    return users.map((user) => this.toAccount(items.get(`USER#${user}`) ?? [])) as AccountsOf<Users>;
  }

  /** An account from its partition's items (any order). */
  private toAccount(items: readonly Record<string, unknown>[]): Account {
    const suffixes = (prefix: string) =>
      new Set(
        items
          .filter((item) => String(item.sk).startsWith(prefix))
          .map((item) => String(item.sk).slice(prefix.length)),
      );
    const credentials = items.find((item) => item.sk === '#USER');
    const prefs = items.find((item) => item.sk === '#ARCHIVEPREFS');
    return {
      exists: credentials !== undefined,
      createdAt: credentials?.createdAt as number | undefined,
      archivePrefs: prefs
        ? {
            default: prefs.default as ArchivePrefs['default'],
            always: (prefs.always as string[] | undefined) ?? [],
            never: (prefs.never as string[] | undefined) ?? [],
          }
        : undefined,
      blocks: suffixes('BLOCK#'),
      blockedBy: suffixes('BLOCKEDBY#'),
      push: items.filter((item) => String(item.sk).startsWith(PUSH_PREFIX)).map(toPushRegistration),
      sessions: items
        .filter((item) => String(item.sk).startsWith('SESSION#'))
        .map(toSession)
        .filter((session) => this.table.live(session)),
    };
  }

  async setArchivePrefs(user: string, prefs: ArchivePrefs): Promise<void> {
    await this.table.doc.send(
      new PutCommand({ TableName: this.table.name, Item: { ...key.archivePrefs(user), ...prefs } }),
    );
  }

  async setCarbons(user: string, resource: string, connectionId: string, enabled: boolean): Promise<void> {
    await this.table.conditionally(
      new UpdateCommand({
        TableName: this.table.name,
        Key: key.session(user, resource),
        UpdateExpression: enabled ? 'SET carbons = :yes' : 'REMOVE carbons',
        ConditionExpression: 'connectionId = :connectionId',
        ExpressionAttributeValues: { ':connectionId': connectionId, ...(enabled ? { ':yes': true } : {}) },
      }),
    );
  }

  async setInactive(user: string, resource: string, connectionId: string, inactive: boolean): Promise<void> {
    const values = { ':connectionId': connectionId, ...(inactive ? { ':yes': true } : {}) };
    await Promise.all([
      this.table.conditionally(
        new UpdateCommand({
          TableName: this.table.name,
          Key: key.session(user, resource),
          UpdateExpression: inactive ? 'SET inactive = :yes' : 'REMOVE inactive',
          ConditionExpression: 'connectionId = :connectionId',
          ExpressionAttributeValues: values,
        }),
      ),
      // No entry (the session is not available): nothing to do; initial presence copies the flag.
      this.table.conditionally(
        new UpdateCommand({
          TableName: this.table.name,
          Key: key.presence(user),
          UpdateExpression: inactive
            ? 'SET resources.#resource.inactive = :yes'
            : 'REMOVE resources.#resource.inactive',
          ConditionExpression: 'resources.#resource.connectionId = :connectionId',
          ExpressionAttributeNames: { '#resource': resource },
          ExpressionAttributeValues: values,
        }),
      ),
    ]);
  }

  async markInterested(
    user: string,
    resource: string,
    connectionId: string,
    what: 'roster' | 'blocklist' = 'roster',
  ): Promise<void> {
    await this.table.conditionally(
      new UpdateCommand({
        TableName: this.table.name,
        Key: key.session(user, resource),
        UpdateExpression: what === 'roster' ? 'SET interested = :yes' : 'SET blocklistInterested = :yes',
        ConditionExpression: 'connectionId = :connectionId',
        ExpressionAttributeValues: { ':yes': true, ':connectionId': connectionId },
      }),
    );
  }

  async getPresences(users: readonly string[]): Promise<Map<string, PresenceEntry[]>> {
    const result = new Map<string, PresenceEntry[]>();
    const items = await this.table.getBatches([...new Set(users)].map((user) => key.presence(user)));
    for (const item of items) {
      const user = String(item.pk).slice('USER#'.length);
      const entries = Object.values((item.resources as Record<string, PresenceEntry> | undefined) ?? {});
      result.set(
        user,
        entries.filter((entry) => this.table.live(entry)),
      );
    }
    return result;
  }

  async setPresence(user: string, entry: PresenceEntry): Promise<void> {
    const update = () =>
      this.table.doc.send(
        new UpdateCommand({
          TableName: this.table.name,
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
        await this.table.doc.send(
          new PutCommand({
            TableName: this.table.name,
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
      const { Attributes } = await this.table.doc.send(
        new UpdateCommand({
          TableName: this.table.name,
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
    const { Items = [] } = await this.table.doc.send(
      new QueryCommand({
        TableName: this.table.name,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': `USER#${user}`, ':prefix': 'BLOCK#' },
        ConsistentRead: true,
      }),
    );
    return Items.map((item) => String(item.sk).slice('BLOCK#'.length));
  }

  async block(user: string, jids: readonly string[]): Promise<void> {
    await this.table.writeBatches(
      jids.flatMap((jid) => [
        { PutRequest: { Item: { pk: `USER#${user}`, sk: `BLOCK#${jid}` } } },
        { PutRequest: { Item: { pk: `USER#${jid}`, sk: `BLOCKEDBY#${user}` } } },
      ]),
    );
  }

  async unblock(user: string, jids?: readonly string[]): Promise<string[]> {
    const current = await this.getBlocklist(user);
    const removed = jids ? current.filter((jid) => jids.includes(jid)) : current;
    await this.table.writeBatches(
      removed.flatMap((jid) => [
        { DeleteRequest: { Key: { pk: `USER#${user}`, sk: `BLOCK#${jid}` } } },
        { DeleteRequest: { Key: { pk: `USER#${jid}`, sk: `BLOCKEDBY#${user}` } } },
      ]),
    );
    return removed;
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
    ...(item.carbons === true ? { carbons: true } : {}),
    ...(item.inactive === true ? { inactive: true } : {}),
    ...(typeof item.drainingUntil === 'number' ? { drainingUntil: item.drainingUntil } : {}),
    expiresAt: item.expiresAt as number,
  };
}
