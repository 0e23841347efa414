// lib/config.ts: settings from the environment the stack gives the functions.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configFromEnv, DEFAULTS, MAX_FRAME_BYTES } from '../../lib/config.ts';

test('maxStanzaBytes: defaults to API Gateway’s 32 KB frame limit', () => {
  assert.equal(DEFAULTS.maxStanzaBytes, MAX_FRAME_BYTES);
  assert.equal(configFromEnv({}).maxStanzaBytes, 32768);
  assert.equal(configFromEnv({ MAX_STANZA_BYTES: '20000' }).maxStanzaBytes, 20000);
});

test('maxStanzaBytes: a value over the frame limit is clamped to it (nothing larger arrives)', () => {
  assert.equal(configFromEnv({ MAX_STANZA_BYTES: '65536' }).maxStanzaBytes, 32768);
  assert.throws(() => configFromEnv({ MAX_STANZA_BYTES: 'big' }), /positive integer/);
});
