// Counts what DynamoDB charges: every request asks for ReturnConsumedCapacity and the
// units are summed (table and indexes). Used by the benchmarks and the cost tests.
//
// DynamoDB Local reports no consumed capacity for PartiQL, so a SELECT (the only statement
// lib/store/ runs, accounts.ts getAccounts) is charged here as DynamoDB charges the queries it
// runs: per partition asked for, the size of its items rounded up to 4 KB, a unit per 4 KB
// when strongly consistent (half otherwise); an empty partition costs nothing, as DynamoDB
// Local charges a query that finds no item.
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';

export interface CapacityMeter {
  readUnits: number;
  writeUnits: number;
  requests: number;
}

export const newMeter = (): CapacityMeter => ({ readUnits: 0, writeUnits: 0, requests: 0 });

const READS = new Set([
  'ExecuteStatementCommand',
  'GetItemCommand',
  'QueryCommand',
  'ScanCommand',
  'BatchGetItemCommand',
  'TransactGetItemsCommand',
]);

interface Consumed {
  CapacityUnits?: number;
}

export function meterCapacity(client: DynamoDBClient, meter: CapacityMeter): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as Record<string, unknown>;
      if (context.commandName !== 'DescribeTableCommand') input.ReturnConsumedCapacity ??= 'TOTAL';
      const result = await next(args);
      const consumed = (result.output as { ConsumedCapacity?: Consumed | Consumed[] }).ConsumedCapacity;
      const units =
        consumed === undefined && context.commandName === 'ExecuteStatementCommand'
          ? selectUnits(input, result.output as { Items?: Record<string, unknown>[] })
          : [consumed ?? []].flat().reduce((sum, entry) => sum + (entry.CapacityUnits ?? 0), 0);
      meter.requests++;
      if (READS.has(context.commandName ?? '')) meter.readUnits += units;
      else meter.writeUnits += units;
      return result;
    },
    { step: 'initialize', name: 'meterCapacity' },
  );
}

/** What a PartiQL SELECT with `pk IN [...]` costs: a query's read units per partition. */
function selectUnits(input: Record<string, unknown>, output: { Items?: Record<string, unknown>[] }): number {
  const partitions = (input.Parameters as unknown[] | undefined) ?? [];
  const perUnit = input.ConsistentRead === true ? 1 : 0.5;
  return partitions.reduce<number>((sum, pk) => {
    const bytes = (output.Items ?? [])
      .filter((item) => item.pk === pk)
      .reduce((total, item) => total + itemBytes(item), 0);
    return sum + Math.ceil(bytes / 4096) * perUnit;
  }, 0);
}

/** An item's size by DynamoDB's rules (attribute names and values), from the document client's values. */
function itemBytes(item: Record<string, unknown>): number {
  return Object.entries(item).reduce(
    (sum, [name, value]) => sum + Buffer.byteLength(name) + valueBytes(value),
    0,
  );
}

function valueBytes(value: unknown): number {
  if (typeof value === 'string') return Buffer.byteLength(value);
  if (typeof value === 'number' || typeof value === 'bigint') {
    const digits = String(value)
      .replace(/[^0-9]/g, '')
      .replace(/^0+/, '').length;
    return Math.ceil(digits / 2) + 1;
  }
  if (value instanceof Uint8Array) return value.byteLength;
  if (value instanceof Set) return [...value].reduce((sum, entry) => sum + valueBytes(entry), 0);
  if (Array.isArray(value)) return 3 + value.reduce((sum, entry) => sum + 1 + valueBytes(entry), 0);
  if (value !== null && typeof value === 'object')
    return 3 + itemBytes(value as Record<string, unknown>) + Object.keys(value).length;
  return 1;
}
