// scripts/smoke-checks.ts Inbox: the smoke run's view of what a session received. CI's smoke
// test failed with "message 29 of the burst was burst-…-31": frames 28 to 30 arrived in one
// tick, and the waiter that took 28 stayed registered and removed 29 and 30 as well.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { xml } from '@xmpp/client';
import { Inbox } from '../../scripts/smoke-checks.ts';

const message = (id: string) => xml('message', { id });
const isMessage = (stanza: { name: string }) => stanza.name === 'message';

test('stanzas that arrive in one tick while a take waits are each taken once, in order', async () => {
  const inbox = new Inbox();
  const first = inbox.take(isMessage, 1000, 'the first');
  for (const id of ['28', '29', '30']) inbox.push(message(id));
  assert.equal((await first).attrs.id, '28');
  assert.equal((await inbox.take(isMessage, 1000, 'the second')).attrs.id, '29');
  assert.equal((await inbox.take(isMessage, 1000, 'the third')).attrs.id, '30');
});

test('an error stanza ends the wait, and only that one is removed', async () => {
  const inbox = new Inbox();
  const waiting = inbox.take(isMessage, 1000, 'a message');
  inbox.push(xml('iq', { type: 'error', id: 'e1' }));
  inbox.push(xml('iq', { type: 'error', id: 'e2' }));
  await assert.rejects(waiting, /got an error: <iq type="error" id="e1"/);
  await assert.rejects(inbox.take(isMessage, 1000, 'a message'), /id="e2"/);
});
