// All DynamoDB access lives in lib/store/. One table; every method is one request unless it
// says otherwise. Each aggregate has its own file, opening with its keys and access patterns:
//
// - connections.ts: Connection items (CONN# / #CONN), cached once bound
// - accounts.ts: credentials, sessions, blocks and presence (USER#), the server secret,
//   registration counts
// - messages.ts: the inbox (INBOX#): messages, the byOrder index, the offline count
// - archive.ts: XEP-0313 archives (ARCHIVE#), and queries on rooms' messages
// - rosters.ts: roster items and version (ROSTER#)
// - rooms.ts: XEP-0045 rooms (ROOM#), the directory (MUC) and joined-room pools (CONN# / #ROOMS)
// - uploads.ts: XEP-0363 upload quotas (UPLOAD#), a counter per user and day
// - push.ts: XEP-0357 push registrations and their coalescing state (USER# / PUSH#)
//
// table.ts holds what they share (the document client, conditional writes, expiry, whole-
// partition queries, batched writes, stanza packing); DynamoStore below composes them into
// the Store port.
//
// Stanzas over 200 bytes are stored deflated when that is smaller: a 1 KB chat message
// then fits one write unit.
//
// The table's stream (schema.ts expiryStream) brings the Connection and Room occupant items
// TTL deletes to server.ts onExpired, read back by `expiredItem` below.
//
// Items that may go stale (connections, sessions) carry `expiresAt`, the end of API
// Gateway's 2-hour connection limit, and reads ignore expired ones.

import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { ConnectionRecord, ExpiredItem, Store } from '../ports.ts';
import { Accounts } from './accounts.ts';
import { Archives } from './archive.ts';
import { Connections } from './connections.ts';
import { Messages } from './messages.ts';
import { PushRegistrations } from './push.ts';
import { Rooms, toOccupant } from './rooms.ts';
import { Rosters } from './rosters.ts';
import { Table } from './table.ts';
import { UploadCounts } from './uploads.ts';

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

/** The public methods of an aggregate, which DynamoStore takes over as its own. */
type Methods<T> = {
  [K in keyof T as T[K] extends (...args: never[]) => unknown ? K : never]: T[K];
};

/**
 * Puts every method of `part`'s class on `target`, bound to `part` (private helpers too: they
 * stay `part`'s own, and no two aggregates may share a method name). Like a class's methods
 * they are not enumerable.
 */
function delegate(target: object, part: object): void {
  const prototype = Object.getPrototypeOf(part) as Record<string, unknown>;
  for (const name of Object.getOwnPropertyNames(prototype)) {
    const method = prototype[name];
    if (name === 'constructor' || typeof method !== 'function') continue;
    if (name in target) throw new Error(`DynamoStore: two aggregates define ${name}`);
    Object.defineProperty(target, name, { value: method.bind(part), writable: true, configurable: true });
  }
}

// DynamoStore takes the aggregates' methods through declaration merging: this interface says
// what delegate() puts on each instance, and `implements Store` checks it against the port.
export interface DynamoStore
  extends Methods<Connections>,
    Methods<Accounts>,
    Methods<Messages>,
    Methods<Archives>,
    Methods<Rosters>,
    Methods<Rooms>,
    Methods<UploadCounts>,
    Methods<PushRegistrations> {}

export class DynamoStore implements Store {
  constructor(client: DynamoDBClient, tableName: string, now: () => number = Date.now) {
    const table = new Table(client, tableName, now);
    const parts = [
      new Connections(table),
      new Accounts(table),
      new Messages(table),
      new Archives(table),
      new Rosters(table),
      new Rooms(table),
      new UploadCounts(table),
      new PushRegistrations(table),
    ];
    for (const part of parts) delegate(this, part);
  }
}
