// XEP-0363 upload quotas (lib/upload.ts). Key design and the general remarks: dynamo.ts.
//
// | Item              | pk                  | sk                 | Access pattern (cost)                                   |
// |-------------------|---------------------|--------------------|---------------------------------------------------------|
// | Upload day        | UPLOAD#<bare JID>   | #DAY#<yyyy-mm-dd>  | bytes of the slots a user got that UTC day: one         |
// |                   |                     |                    | conditional ADD per slot (1 WU, no read); TTL the day   |
// |                   |                     |                    | after                                                   |
//
// Its own partition, not USER#: routing reads the USER# partition whole on every message
// (accounts.ts), and a counter no message needs would only add to that read. A day's item is
// never read again once the day is over, so the late TTL deletion costs nothing; an account
// removed and made again keeps the day's count (the item is not the account's).

import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Table } from './table.ts';

const DAY_SECONDS = 24 * 60 * 60;

const key = (user: string, day: string) => ({ pk: `UPLOAD#${user}`, sk: `#DAY#${day}` });

export class UploadCounts {
  constructor(private readonly table: Table) {}

  async countUpload(user: string, bytes: number, limit: number, now: number): Promise<boolean> {
    if (bytes > limit) return false;
    const day = new Date(now).toISOString().slice(0, 10);
    const dayEnds = (Math.floor(now / 1000 / DAY_SECONDS) + 1) * DAY_SECONDS;
    return this.table.conditionally(
      new UpdateCommand({
        TableName: this.table.name,
        Key: key(user, day),
        UpdateExpression: 'ADD #bytes :bytes SET expiresAt = :expires',
        ConditionExpression: 'attribute_not_exists(#bytes) OR #bytes <= :room',
        ExpressionAttributeNames: { '#bytes': 'bytes' },
        ExpressionAttributeValues: {
          ':bytes': bytes,
          ':room': limit - bytes,
          ':expires': dayEnds + DAY_SECONDS,
        },
      }),
    );
  }
}
