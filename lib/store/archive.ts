// XEP-0313 archives: users' own, and rooms' (their messages, rooms.ts). Key design and the
// general remarks: dynamo.ts.
//
// | Item              | pk                  | sk                 | Access pattern (cost)                                   |
// |-------------------|---------------------|--------------------|---------------------------------------------------------|
// | Archived message  | ARCHIVE#<user>      | MSG#<id>           | one BatchWrite puts both sides of a message (1 WU each  |
// |                   |                     |                    | under 1 KB deflated); `w` the peer's bare JID, `r` its  |
// |                   |                     |                    | resource, `at` epoch ms; TTL archiveDays                |
// | Room message      | ROOM#<room JID>     | MSG#<seq>          | rooms.ts: the room's archive is its messages (`w` the   |
// |                   |                     |                    | sender's occupant JID): no second write                 |
//
// A page is one query on the id range (ids are time-ordered, lib/ids.ts), Limit max + 1 (the
// one more says whether the page is complete), forwards or, for the last page, backwards:
// reads grow with the page's bytes. A `with` query filters on `w`, and DynamoDB
// counts what it reads before the filter: it reads on, page after page, up to
// WITH_PAGES_WITH_MATCH pages once something matched, WITH_PAGES_WITHOUT_MATCH otherwise;
// the page then says complete='false' and the client pages on from the last id.

import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { ArchivedMessage, ArchiveOwner, ArchivePage, ArchiveRange } from '../ports.ts';
import { packStanza, type Table, unpackStanza } from './table.ts';

const WITH_PAGES_WITH_MATCH = 4;
const WITH_PAGES_WITHOUT_MATCH = 20;

const partition = (owner: ArchiveOwner) => ('user' in owner ? `ARCHIVE#${owner.user}` : `ROOM#${owner.room}`);
const sortKey = (id: string) => `MSG#${id}`;

/** The greatest key below `key` that an id can have: its last character one less, then '~'. */
function justBefore(key: string): string {
  const last = key.charCodeAt(key.length - 1);
  return `${key.slice(0, -1)}${String.fromCharCode(last - 1)}~`;
}

function toArchived(item: Record<string, unknown>): ArchivedMessage {
  return {
    id: String(item.sk).slice('MSG#'.length),
    with: (item.w as string | undefined) ?? '',
    withResource: (item.r as string | undefined) || undefined,
    stanza: unpackStanza(item),
    at: item.at as number,
  };
}

export class Archives {
  constructor(private readonly table: Table) {}

  async archive(
    entries: readonly { readonly user: string; readonly message: ArchivedMessage }[],
    expiresAt: number,
  ): Promise<void> {
    await this.table.writeBatches(
      entries.map(({ user, message }) => ({
        PutRequest: {
          Item: {
            pk: partition({ user }),
            sk: sortKey(message.id),
            w: message.with,
            ...(message.withResource ? { r: message.withResource } : {}),
            at: message.at,
            ...packStanza(message.stanza),
            expiresAt,
          },
        },
      })),
    );
  }

  async queryArchive(owner: ArchiveOwner, range: ArchiveRange): Promise<ArchivePage> {
    // Ids are of one length and alphabet (lib/ids.ts), so an exclusive end becomes a key
    // just past it: the query never reads the item it was given.
    const lower = [range.from && sortKey(range.from), range.after && `${sortKey(range.after)}!`]
      .filter((key): key is string => Boolean(key))
      .sort()
      .pop();
    const upper = [
      range.until && justBefore(sortKey(range.until)),
      range.before && justBefore(sortKey(range.before)),
    ]
      .filter((key): key is string => Boolean(key))
      .sort()
      .shift();
    // An empty range (an end before the start, or before the archive's start): nothing to read.
    if ((lower ?? sortKey('')) > (upper ?? sortKey('~'))) return { messages: [], complete: true };
    const filters = ['expiresAt > :now'];
    const values: Record<string, unknown> = {
      ':pk': partition(owner),
      ':lo': lower ?? sortKey(''),
      ':hi': upper ?? sortKey('~'),
      ':now': this.table.nowSeconds(),
    };
    if (range.with !== undefined) {
      if ('room' in owner) {
        // A room's messages keep the sender's occupant JID whole.
        filters.push('w = :with');
        values[':with'] = range.withResource ? `${range.with}/${range.withResource}` : range.with;
      } else {
        filters.push('w = :with');
        values[':with'] = range.with;
        if (range.withResource) {
          filters.push('r = :resource');
          values[':resource'] = range.withResource;
        }
      }
    }
    const wanted = range.max + 1; // one more than the page: whether it is complete
    const found: ArchivedMessage[] = [];
    let start: Record<string, unknown> | undefined;
    let pages = 0;
    let exhausted = false;
    for (;;) {
      const page = await this.table.doc.send(
        new QueryCommand({
          TableName: this.table.name,
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lo AND :hi',
          FilterExpression: filters.join(' AND '),
          ExpressionAttributeValues: values,
          ScanIndexForward: !range.last,
          ConsistentRead: true,
          Limit: range.with === undefined ? wanted : Math.max(wanted, 100),
          ExclusiveStartKey: start,
        }),
      );
      pages++;
      for (const item of page.Items ?? []) {
        if (found.length < wanted) found.push(toArchived(item));
      }
      start = page.LastEvaluatedKey;
      if (!start) {
        exhausted = true;
        break;
      }
      if (found.length >= wanted) break;
      const cap = found.length > 0 ? WITH_PAGES_WITH_MATCH : WITH_PAGES_WITHOUT_MATCH;
      if (range.with === undefined || pages >= cap) break;
    }
    const complete = exhausted && found.length <= range.max;
    const messages = found.slice(0, range.max);
    if (range.last) messages.reverse();
    return { messages, complete };
  }

  async getArchived(owner: ArchiveOwner, ids: readonly string[]): Promise<ArchivedMessage[]> {
    const keys = [...new Set(ids)].map((id) => ({ pk: partition(owner), sk: sortKey(id) }));
    const now = this.table.nowSeconds();
    return (await this.table.getBatches(keys, { consistent: true }))
      .filter((item) => (item.expiresAt as number) > now)
      .map(toArchived)
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }
}
