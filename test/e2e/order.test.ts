// DESIGN.md §4: frames of one connection are handled in order even though different
// connections are handled concurrently (the emulator reproduces the SQS FIFO path).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { LocalSystem } from '../../infra/local/system.ts';
import type { Context } from '../../lib/ports.ts';
import { addUser, RawClient, sleep, useLocalSystem } from '../helpers.ts';

/**
 * Connection ids whose frames wait until the test lets them go (not for a time: a loaded
 * machine could stall the other connection longer than any fixed delay), and a random jitter
 * for all others.
 */
const slow = new Set<string>();
let releaseSlow = () => {};
let slowReleased = Promise.resolve();

function withDelays(context: Context): Context {
  const store = context.store;
  const delayed: typeof store = Object.create(store);
  delayed.getConnection = async (connectionId: string) => {
    if (slow.has(connectionId)) await slowReleased;
    else await sleep(Math.random() * 15);
    return store.getConnection(connectionId);
  };
  return { ...context, store: delayed };
}

async function connectTracked(system: LocalSystem): Promise<{ client: RawClient; connectionId: string }> {
  const before = new Set(system.api.connectionIds);
  const client = await RawClient.connect(system.url);
  const connectionId = system.api.connectionIds.find((id) => !before.has(id));
  assert.ok(connectionId);
  return { client, connectionId };
}

const ping = (id: string) =>
  `<iq xmlns="jabber:client" type="get" id="${id}" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`;

describe('per-connection order', () => {
  const system = useLocalSystem({ wrapContext: withDelays });

  test('a burst of 100 frames from one connection is handled in send order, despite random handler delays', async () => {
    await addUser(system(), 'burst@localhost', 'pw');
    const { client } = await connectTracked(system());
    await client.login('burst@localhost', 'pw');
    const ids = Array.from({ length: 100 }, (_, index) => `p${index}`);
    for (const id of ids) client.send(ping(id));
    const answered: string[] = [];
    for (const _ of ids)
      answered.push((await client.next((element) => element.name === 'iq', 20_000)).attrs.id);
    assert.deepEqual(answered, ids);
    client.close();
  });

  test('connections are handled concurrently: a slow connection does not hold up another', async () => {
    await addUser(system(), 'slow@localhost', 'pw');
    await addUser(system(), 'quick@localhost', 'pw');
    const slowClient = await connectTracked(system());
    await slowClient.client.login('slow@localhost', 'pw');
    const quick = await connectTracked(system());
    await quick.client.login('quick@localhost', 'pw');
    slowReleased = new Promise((resolve) => {
      releaseSlow = resolve;
    });
    slow.add(slowClient.connectionId);
    const order: string[] = [];
    slowClient.client.send(ping('slow-1'));
    quick.client.send(ping('quick-1'));
    const slowAnswer = slowClient.client
      .next((element) => element.attrs.id === 'slow-1')
      .then(() => order.push('slow'));
    // The slow connection's frame is held until the quick one's answer has arrived: handled one
    // after the other, the quick answer would never come.
    try {
      await quick.client.next((element) => element.attrs.id === 'quick-1').then(() => order.push('quick'));
    } finally {
      releaseSlow();
    }
    await slowAnswer;
    assert.deepEqual(order, ['quick', 'slow']);
    slowClient.client.close();
    quick.client.close();
  });
});
