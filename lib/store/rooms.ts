// XEP-0045 rooms: a room's state, occupants and messages in its ROOM# partition, the public
// directory, and each connection's pool of joined rooms. Design: docs/muc.md. Key design and
// the general remarks: dynamo.ts.
//
// | Item              | pk                  | sk                 | Access pattern (cost)                                   |
// |-------------------|---------------------|--------------------|---------------------------------------------------------|
// | Room (XEP-0045)   | ROOM#<room JID>     | #ROOM              | config, lock, subject; conditional put creates the room |
// | Room affiliation  | ROOM#<room JID>     | #AFF#<bare JID>    | owner/admin/member/outcast (none is not stored); `nick`:|
// |                   |                     |                    | the one a member left with, set at leave (1 WU), for    |
// |                   |                     |                    | XEP-0357 mentions                                       |
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

import { DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Affiliation, Occupant, RoomMessage, RoomRecord, RoomState } from '../ports.ts';
import { isConditionFailure, packStanza, type Table, unpackStanza } from './table.ts';

const key = {
  room: (room: string) => ({ pk: `ROOM#${room}`, sk: '#ROOM' }),
  affiliation: (room: string, user: string) => ({ pk: `ROOM#${room}`, sk: `#AFF#${user}` }),
  occupant: (room: string, jid: string) => ({ pk: `ROOM#${room}`, sk: `#OCC#${jid}` }),
  roomMessage: (room: string, seq: string) => ({ pk: `ROOM#${room}`, sk: `MSG#${seq}` }),
  pushed: (room: string, user: string) => ({ pk: `ROOM#${room}`, sk: `PUSHED#${user}` }),
  directory: (room: string) => ({ pk: 'MUC', sk: `ROOM#${room}` }),
  joinedRooms: (connectionId: string) => ({ pk: `CONN#${connectionId}`, sk: '#ROOMS' }),
};

export function toOccupant(room: string, item: Record<string, unknown>): Occupant {
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

function toRoomMessage(room: string, item: Record<string, unknown>): RoomMessage {
  return {
    room,
    seq: String(item.sk).slice('MSG#'.length),
    stanza: unpackStanza(item),
    postedAt: item.at as number,
    expiresAt: item.expiresAt as number,
  };
}

export class Rooms {
  constructor(private readonly table: Table) {}

  async getRoomState(room: string): Promise<RoomState> {
    const items = await this.table.queryAll(`ROOM#${room}`, '#');
    let record: RoomRecord | undefined;
    const affiliations = new Map<string, Affiliation>();
    const memberNicks = new Map<string, string>();
    const occupants: Occupant[] = [];
    for (const item of items) {
      const sk = String(item.sk);
      if (sk === '#ROOM') {
        const { pk: _pk, sk: _sk, ...rest } = item;
        record = rest as unknown as RoomRecord;
      } else if (sk.startsWith('#AFF#')) {
        affiliations.set(sk.slice(5), item.aff as Affiliation);
        if (typeof item.nick === 'string') memberNicks.set(sk.slice(5), item.nick);
      } else if (sk.startsWith('#OCC#')) {
        const occupant = toOccupant(room, item);
        if (this.table.live(occupant)) occupants.push(occupant);
      }
    }
    return { room: record, affiliations, occupants, memberNicks };
  }

  async getOccupants(room: string): Promise<Occupant[]> {
    const items = await this.table.queryAll(`ROOM#${room}`, '#OCC#');
    return items.map((item) => toOccupant(room, item)).filter((occupant) => this.table.live(occupant));
  }

  async createRoom(record: RoomRecord): Promise<boolean> {
    return this.table.conditionally(
      new PutCommand({
        TableName: this.table.name,
        Item: { ...key.room(record.room), ...record },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  async saveRoom(record: RoomRecord): Promise<void> {
    await this.table.doc.send(
      new PutCommand({ TableName: this.table.name, Item: { ...key.room(record.room), ...record } }),
    );
    if (record.config.public && !record.locked) {
      await this.table.doc.send(
        new PutCommand({
          TableName: this.table.name,
          Item: { ...key.directory(record.room), room: record.room, name: record.config.name },
        }),
      );
    } else {
      await this.table.doc.send(
        new DeleteCommand({ TableName: this.table.name, Key: key.directory(record.room) }),
      );
    }
  }

  async listPublicRooms(): Promise<{ room: string; name: string }[]> {
    const items = await this.table.queryAll('MUC', 'ROOM#');
    return items.map((item) => ({ room: item.room as string, name: (item.name as string) ?? '' }));
  }

  async deleteRoom(room: string): Promise<void> {
    const items = await this.table.queryAll(`ROOM#${room}`);
    await this.table.writeBatches([
      ...items.map((item) => ({ DeleteRequest: { Key: { pk: item.pk, sk: item.sk } } })),
      { DeleteRequest: { Key: key.directory(room) } },
    ]);
  }

  async putOccupant(occupant: Occupant): Promise<void> {
    await this.table.doc.send(
      new PutCommand({
        TableName: this.table.name,
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
      const { Attributes } = await this.table.doc.send(
        new DeleteCommand({
          TableName: this.table.name,
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
      await this.table.doc.send(
        new DeleteCommand({ TableName: this.table.name, Key: key.affiliation(room, user) }),
      );
      return;
    }
    await this.table.doc.send(
      new PutCommand({
        TableName: this.table.name,
        Item: { ...key.affiliation(room, user), aff: affiliation },
      }),
    );
  }

  async noteMemberNick(room: string, user: string, nick: string): Promise<void> {
    await this.table.conditionally(
      new UpdateCommand({
        TableName: this.table.name,
        Key: key.affiliation(room, user),
        UpdateExpression: 'SET nick = :nick',
        ConditionExpression: 'attribute_exists(aff)',
        ExpressionAttributeValues: { ':nick': nick },
      }),
    );
  }

  async storeRoomMessage(message: RoomMessage, sender?: string): Promise<void> {
    await this.table.doc.send(
      new PutCommand({
        TableName: this.table.name,
        Item: {
          ...key.roomMessage(message.room, message.seq),
          // The room's XEP-0313 archive (archive.ts) filters `with` on it.
          ...(sender ? { w: sender } : {}),
          at: message.postedAt,
          expiresAt: message.expiresAt,
          ...packStanza(message.stanza),
        },
      }),
    );
  }

  async roomHistory(room: string, limit: number, after?: string): Promise<RoomMessage[]> {
    if (limit <= 0) return [];
    const page = await this.table.doc.send(
      new QueryCommand({
        TableName: this.table.name,
        KeyConditionExpression: after
          ? 'pk = :pk AND sk BETWEEN :from AND :to'
          : 'pk = :pk AND begins_with(sk, :prefix)',
        FilterExpression: 'expiresAt > :now',
        ExpressionAttributeValues: {
          ':pk': `ROOM#${room}`,
          ':now': this.table.nowSeconds(),
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
    const { Items = [] } = await this.table.doc.send(
      new QueryCommand({
        TableName: this.table.name,
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
    const { Item } = await this.table.doc.send(
      new GetCommand({ TableName: this.table.name, Key: key.pushed(room, user), ConsistentRead: true }),
    );
    return Item?.last as string | undefined;
  }

  async setPushedMarker(room: string, user: string, seq: string): Promise<void> {
    await this.table.doc.send(
      new PutCommand({ TableName: this.table.name, Item: { ...key.pushed(room, user), last: seq } }),
    );
  }

  async lowerPushedMarker(room: string, user: string, seq: string): Promise<void> {
    await this.table.conditionally(
      new UpdateCommand({
        TableName: this.table.name,
        Key: key.pushed(room, user),
        UpdateExpression: 'SET #last = :seq',
        ConditionExpression: '#last > :seq',
        ExpressionAttributeNames: { '#last': 'last' },
        ExpressionAttributeValues: { ':seq': seq },
      }),
    );
  }

  async addJoinedRoom(connectionId: string, room: string, expiresAt: number): Promise<void> {
    await this.table.doc.send(
      new UpdateCommand({
        TableName: this.table.name,
        Key: key.joinedRooms(connectionId),
        UpdateExpression: 'ADD rooms :room SET expiresAt = :expiresAt',
        ExpressionAttributeValues: { ':room': new Set([room]), ':expiresAt': expiresAt },
      }),
    );
  }

  async removeJoinedRoom(connectionId: string, room: string): Promise<void> {
    await this.table.doc
      .send(
        new UpdateCommand({
          TableName: this.table.name,
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
    const { Item } = await this.table.doc.send(
      new GetCommand({
        TableName: this.table.name,
        Key: key.joinedRooms(connectionId),
        ConsistentRead: true,
      }),
    );
    return [...((Item?.rooms as Set<string> | undefined) ?? [])];
  }

  async deleteJoinedRooms(connectionId: string): Promise<void> {
    await this.table.doc.send(
      new DeleteCommand({ TableName: this.table.name, Key: key.joinedRooms(connectionId) }),
    );
  }
}
