// Counts what DynamoDB charges: every request asks for ReturnConsumedCapacity and the
// units are summed (table and indexes). Used by the benchmarks and the cost tests.
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';

export interface CapacityMeter {
  readUnits: number;
  writeUnits: number;
  requests: number;
}

export const newMeter = (): CapacityMeter => ({ readUnits: 0, writeUnits: 0, requests: 0 });

const READS = new Set([
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
      const units = [consumed ?? []].flat().reduce((sum, entry) => sum + (entry.CapacityUnits ?? 0), 0);
      meter.requests++;
      if (READS.has(context.commandName ?? '')) meter.readUnits += units;
      else meter.writeUnits += units;
      return result;
    },
    { step: 'initialize', name: 'meterCapacity' },
  );
}
