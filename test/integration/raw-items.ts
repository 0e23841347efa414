// Checks on items read with the low-level client, shared by the integration tests.
import assert from 'node:assert/strict';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { SCRAM_HASHES } from '../../lib/scram.ts';

/** Asserts that a raw user item is pk, sk, user, createdAt and SCRAM keys, and nothing else. */
export function assertOnlyScramKeys(item: Record<string, AttributeValue>, password: string): void {
  assert.deepEqual(Object.keys(item).sort(), ['createdAt', 'pk', 'scram', 'sk', 'user']);
  const scram = item.scram?.M;
  assert.ok(scram, 'scram is a map');
  assert.deepEqual(Object.keys(scram).sort(), ['SHA-1', 'SHA-256']);
  for (const hash of SCRAM_HASHES) {
    const keys: Record<string, AttributeValue> | undefined = scram[hash]?.M;
    assert.ok(keys, `${hash} keys are a map`);
    assert.deepEqual(Object.keys(keys).sort(), ['iterations', 'salt', 'serverKey', 'storedKey']);
    assert.ok(Number(keys.iterations?.N) >= 4096, 'at least 4096 iterations');
    for (const name of ['salt', 'serverKey', 'storedKey'] as const) {
      assert.ok(keys[name]?.S, `${hash} ${name} is a string`);
    }
  }
  const text = JSON.stringify(item);
  assert.equal(text.includes(password), false, 'the password is not stored');
  assert.equal(text.includes(Buffer.from(password).toString('base64')), false, 'nor its base64');
}
