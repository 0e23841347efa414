// What is stored, read past the meter: the bytes of a set of items by DynamoDB's item-size
// rule, and the units one unpaged, strongly consistent query of them takes.
import {
  type AttributeValue,
  DynamoDBClient,
  QueryCommand,
  type QueryCommandInput,
} from '@aws-sdk/client-dynamodb';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../infra/local/dynamodb.ts';
import type { LocalSystem } from '../infra/local/system.ts';

export interface Stored {
  readonly bytes: number;
  /** Read units of one query, pages summed. */
  readonly units: number;
  readonly count: number;
}

/** Attribute names plus values, as DynamoDB sizes an item for its units. */
export function itemSize(item: Record<string, AttributeValue>): number {
  let size = 0;
  for (const [name, value] of Object.entries(item)) size += Buffer.byteLength(name) + valueSize(value);
  return size;
}

function valueSize(value: AttributeValue): number {
  if (value.S !== undefined) return Buffer.byteLength(value.S);
  if (value.N !== undefined) return Math.ceil(value.N.replace(/[-.]/g, '').replace(/^0+/, '').length / 2) + 1;
  if (value.B !== undefined) return value.B.length;
  if (value.BOOL !== undefined || value.NULL !== undefined) return 1;
  if (value.M !== undefined) return 3 + itemSize(value.M) + Object.keys(value.M).length;
  if (value.L !== undefined) return 3 + value.L.reduce((total, entry) => total + 1 + valueSize(entry), 0);
  if (value.SS !== undefined) return value.SS.reduce((total, entry) => total + Buffer.byteLength(entry), 0);
  return 0;
}

/** Runs one query on the system's table with a client of its own, so the handlers' meter never sees it. */
export async function measureQuery(
  system: LocalSystem,
  query: Omit<
    QueryCommandInput,
    'TableName' | 'ConsistentRead' | 'ReturnConsumedCapacity' | 'ExclusiveStartKey'
  >,
): Promise<Stored> {
  const client = new DynamoDBClient({
    endpoint: system.dynamo.endpoint,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
  });
  let bytes = 0;
  let units = 0;
  let count = 0;
  let start: Record<string, AttributeValue> | undefined;
  try {
    do {
      const page = await client.send(
        new QueryCommand({
          ...query,
          TableName: system.tableName,
          ConsistentRead: true,
          ReturnConsumedCapacity: 'TOTAL',
          ExclusiveStartKey: start,
        }),
      );
      for (const item of page.Items ?? []) bytes += itemSize(item);
      count += page.Items?.length ?? 0;
      units += page.ConsumedCapacity?.CapacityUnits ?? 0;
      start = page.LastEvaluatedKey;
    } while (start);
  } finally {
    client.destroy();
  }
  return { bytes, units, count };
}
