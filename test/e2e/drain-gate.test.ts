// The drain gate (lib/offline.ts): while a backlog is drained over several invocations,
// messages sent to the session meanwhile wait behind it and arrive after it, in order.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { xml } from '@xmpp/client';
import type { Element } from 'ltx';
import { sequenceId } from '../../lib/ids.ts';
import {
  addUser,
  connectClient,
  eventually,
  goOnline,
  useLocalSystem,
  waitForStanza,
  waiting,
} from '../helpers.ts';

const BACKLOG = 2500;
const LIVE = 20;
const ACK = 'urn:serverless-xmpp:ack:0';

const bodiesOf = (stanzas: readonly Element[]) =>
  stanzas
    .filter((stanza) => stanza.name === 'message' && stanza.getChild('body'))
    .map((s) => s.getChildText('body'));

describe('the drain gate', () => {
  // The defaults: 100 a page, 1,000 an invocation, so 2,500 take three invocations. The
  // test holds the first continuation until the live messages are stored, so that they are
  // certainly sent while the drain is under way.
  const held: Array<() => Promise<void>> = [];
  let holding = true;
  const system = useLocalSystem({
    wrapContext: (context) => ({
      ...context,
      continuations: {
        continueDrain: async (connectionId, after) => {
          if (!holding) return context.continuations.continueDrain(connectionId, after);
          held.push(() => context.continuations.continueDrain(connectionId, after));
        },
      },
    }),
  });

  test(`live messages sent during a drain of ${BACKLOG} arrive after it, in order, once`, async () => {
    await addUser(system(), 'oldnews@localhost', 'pw');
    await addUser(system(), 'reader@localhost', 'pw');
    await addUser(system(), 'writer@localhost', 'pw');
    const { store } = system().context;
    const start = Date.now() - 60_000;
    for (let first = 0; first < BACKLOG; first += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, offset) => {
          const index = first + offset;
          return store.storeMessage(
            {
              recipient: 'reader@localhost',
              sender: 'oldnews@localhost',
              id: `old-${index}`,
              seq: sequenceId(start + index),
              stanza: `<message xmlns="jabber:client" type="chat" from="oldnews@localhost/x" to="reader@localhost" id="old-${index}"><body>old ${index}</body></message>`,
              storedAt: start + index,
              receiptRequested: false,
              expiresAt: Math.floor(Date.now() / 1000) + 3600,
            },
            { listed: true },
          );
        }),
      );
    }
    const writer = await goOnline(system(), 'writer@localhost', 'pw');
    // Initial presence starts the drain; the test does not wait for it to end (goOnline would).
    const reader = await connectClient(system(), 'reader@localhost', 'pw');
    await reader.xmpp.send(xml('presence'));
    // The first invocation's share has arrived; the rest of the drain waits to be continued.
    await eventually(() => held.length === 1, 60_000);
    await eventually(() => bodiesOf(reader.stanzas).length >= 1000, 60_000);
    for (let index = 0; index < LIVE; index++) {
      await writer.xmpp.send(
        xml(
          'message',
          { to: 'reader@localhost', type: 'chat', id: `live-${index}` },
          xml('body', {}, `live ${index}`),
        ),
      );
    }
    // Each is stored (its server receipt came) while the drain still runs.
    await waitForStanza(
      writer.stanzas,
      (stanza) => stanza.getChild('ack', ACK)?.attrs.id === `live-${LIVE - 1}`,
      30_000,
    );
    await system().api.idle();
    assert.equal(bodiesOf(reader.stanzas).length, 1000, 'nothing live overtook the backlog');
    holding = false;
    await held[0]?.();
    await eventually(() => bodiesOf(reader.stanzas).length >= BACKLOG + LIVE, 120_000);
    await system().api.idle();
    assert.deepEqual(bodiesOf(reader.stanzas), [
      ...Array.from({ length: BACKLOG }, (_, index) => `old ${index}`),
      ...Array.from({ length: LIVE }, (_, index) => `live ${index}`),
    ]);
    // Afterwards live messages flow at once again.
    await writer.xmpp.send(
      xml('message', { to: 'reader@localhost', type: 'chat', id: 'after' }, xml('body', {}, 'after')),
    );
    await waitForStanza(reader.stanzas, (stanza) => stanza.getChildText('body') === 'after', 30_000);
    // The push reaches the reader before the writer's handler marks it delivered: wait for it.
    await system().api.idle();
    assert.equal(await waiting(system(), 'reader@localhost'), 0);
    await writer.xmpp.stop();
    await system().api.idle();
    await reader.xmpp.stop();
  });
});

describe('the drain gate, from the sender side', () => {
  // The race the gate alone leaves open: a sender reads the lease, the drain then opens the gate
  // and makes its last pass, and only then is the message stored, behind a gate already open.
  // The hooks below force that order: the drain's first page waits until the sender has read
  // the lease and reached its write, and the write waits until the drain has ended.
  let senderAtWrite: () => void = () => {};
  const senderReadTheLease = new Promise<void>((resolve) => {
    senderAtWrite = resolve;
  });
  let drainEnded: () => void = () => {};
  const drainDone = new Promise<void>((resolve) => {
    drainEnded = resolve;
  });
  const system = useLocalSystem({
    wrapContext: (context) => {
      const { store } = context;
      return {
        ...context,
        store: new Proxy(store, {
          get(target, name, receiver) {
            if (name === 'undelivered') {
              return async (...args: Parameters<typeof store.undelivered>) => {
                if (args[0] === 'late@localhost') await senderReadTheLease;
                return target.undelivered(...args);
              };
            }
            if (name === 'storeMessage') {
              return async (...args: Parameters<typeof store.storeMessage>) => {
                if (args[0].id === 'race-1') {
                  senderAtWrite();
                  await drainDone;
                }
                return target.storeMessage(...args);
              };
            }
            if (name === 'resetOfflineCount') {
              return async (user: string) => {
                await target.resetOfflineCount(user);
                if (user === 'late@localhost') drainEnded();
              };
            }
            return Reflect.get(target, name, receiver);
          },
        }),
      };
    },
  });

  test('a message stored behind a gate that opened meanwhile is pushed at once, before the next one', async () => {
    await addUser(system(), 'late@localhost', 'pw');
    await addUser(system(), 'early@localhost', 'pw');
    const sender = await goOnline(system(), 'early@localhost', 'pw', 'desk');
    const chat = (id: string) =>
      xml('message', { to: 'late@localhost', id, type: 'chat' }, xml('body', {}, id));
    await sender.xmpp.send(chat('backlog-1'));
    await waitForStanza(sender.stanzas, (stanza) => stanza.getChild('ack', ACK)?.attrs.id === 'backlog-1');

    const reader = await connectClient(system(), 'late@localhost', 'pw', 'phone');
    // Initial presence: the lease, then a drain that waits at its first page (the hook above).
    await reader.xmpp.send(xml('presence'));
    await eventually(async () => {
      const { sessions } = await system().context.store.getAccount('late@localhost');
      return sessions.some((session) => (session.drainingUntil ?? 0) > Date.now());
    });
    await sender.xmpp.send(chat('race-1'));
    await waitForStanza(sender.stanzas, (stanza) => stanza.getChild('ack', ACK)?.attrs.id === 'race-1');
    await sender.xmpp.send(chat('race-2'));
    await waitForStanza(reader.stanzas, (stanza) => stanza.getChildText('body') === 'race-2');
    await system().api.idle();
    assert.deepEqual(
      bodiesOf(reader.stanzas).filter((body) => body !== null),
      ['backlog-1', 'race-1', 'race-2'],
    );
    await sender.xmpp.stop();
    await reader.xmpp.stop();
  });
});
