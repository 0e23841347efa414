// DynamoStore takes its methods from the aggregates of lib/store/ at run time (delegate() in
// dynamo.ts): every method the Store port declares must be there, as a function. The names
// come from lib/ports.ts itself, so a method added to the port is checked without listing it
// here. Nothing is sent: constructing the client makes no request.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoStore } from '../../lib/store/dynamo.ts';

function storeMethodNames(): string[] {
  const source = readFileSync(new URL('../../lib/ports.ts', import.meta.url), 'utf8');
  const block = /^export interface Store \{\n([\s\S]*?)^\}/m.exec(source)?.[1];
  assert.ok(block, 'lib/ports.ts declares `export interface Store {`');
  // A generic method (`name<T>(`) counts too.
  return [...block.matchAll(/^\s+(\w+)(?:<[^(]*>)?\(/gm)].map((match) => match[1] as string);
}

describe('DynamoStore', () => {
  it('has every method of the Store port', () => {
    const names = storeMethodNames();
    assert.ok(names.length > 40, `found ${names.length} Store methods in lib/ports.ts`);
    assert.ok(names.includes('getAccounts'), 'generic methods are found');
    const store: object = new DynamoStore(new DynamoDBClient({ region: 'us-east-1' }), 't');
    const missing = names.filter((name) => typeof Reflect.get(store, name) !== 'function');
    assert.deepEqual(missing, []);
  });
});
