// One-to-one messaging that never loses a message: the seed's flow, script-like.
// Alice sends; the server acknowledges at once, stores, pushes; Bob's receipt comes back.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { xml } from '@xmpp/client';
import type { Element } from 'ltx';
import type { LocalSystem } from '../../infra/local/system.ts';
import {
  addUser,
  connectClient,
  eventually,
  goOnline,
  RawClient,
  roundTrip,
  useLocalSystem,
  waitForStanza,
  waiting,
} from '../helpers.ts';

const ACK = 'urn:serverless-xmpp:ack:0';
const RECEIPTS = 'urn:xmpp:receipts';
const SID = 'urn:xmpp:sid:0';

const chat = (to: string, id: string, body: string, receipt = true) =>
  xml(
    'message',
    { type: 'chat', to, id },
    xml('body', {}, body),
    ...(receipt ? [xml('request', { xmlns: RECEIPTS })] : []),
  );
const receiptFor = (message: Element) =>
  xml(
    'message',
    { to: message.attrs.from, type: 'chat' },
    xml('received', { xmlns: RECEIPTS, id: message.attrs.id }),
  );
const isAckFor = (id: string) => (stanza: Element) => stanza.getChild('ack', ACK)?.attrs.id === id;
const isBody = (body: string) => (stanza: Element) => stanza.getChildText('body') === body;
const isReceiptFor = (id: string) => (stanza: Element) =>
  stanza.getChild('received', RECEIPTS)?.attrs.id === id;

/** A raw client, bound and available (its presence handled). */
async function rawOnline(system: LocalSystem, user: string, resource: string): Promise<RawClient> {
  const client = await RawClient.connect(system.url);
  await client.login(user, 'pw', resource);
  client.send('<presence xmlns="jabber:client"/>');
  client.send('<iq xmlns="jabber:client" type="get" id="settled"><ping xmlns="urn:xmpp:ping"/></iq>');
  await client.next((element) => element.attrs.id === 'settled');
  return client;
}

/** Finds the emulator's connection id of the connection opened by `connect`. */
async function tracked<T>(system: LocalSystem, connect: () => Promise<T>): Promise<[T, string]> {
  const before = new Set(system.api.connectionIds);
  const result = await connect();
  const id = system.api.connectionIds.find((candidate) => !before.has(candidate));
  assert.ok(id);
  return [result, id];
}

describe('one-to-one messaging', () => {
  let failNextPushContaining: string | undefined;
  const system = useLocalSystem({
    config: { offlineQuota: 60, drainPageSize: 25, drainPerInvocation: 500 },
    wrapContext: (context) => ({
      ...context,
      gateway: {
        close: (id) => context.gateway.close(id),
        post: async (id, frame) => {
          // Fault injection: the handler crashes between storing a message and pushing it.
          if (failNextPushContaining && frame.includes(failNextPushContaining) && !frame.includes(ACK)) {
            failNextPushContaining = undefined;
            throw new Error('injected crash before the push');
          }
          return context.gateway.post(id, frame);
        },
      },
    }),
  });
  const users = [
    'alice',
    'bob',
    'carol',
    'dan',
    'erin',
    'frank',
    'gina',
    'hank',
    'ivy',
    'jack',
    'kim',
    'leo',
  ];

  test('setup', async () => {
    for (const user of users) await addUser(system(), `${user}@localhost`, 'pw');
  });

  test('online: server receipt at once, push with stanza-id and stamped from, delivery receipt back', async () => {
    const alice = await goOnline(system(), 'alice@localhost', 'pw', 'phone');
    const bob = await goOnline(system(), 'bob@localhost', 'pw', 'tablet');
    const message = chat(
      'bob@localhost',
      'm-online-1',
      '{"messageId":"m-online-1","content":"你好","type":1}',
    );
    message.attrs.from = 'mallory@localhost/evil';
    message.cnode(xml('stanza-id', { xmlns: SID, by: 'bob@localhost', id: 'forged' }));
    await alice.xmpp.send(message);

    const ack = await waitForStanza(alice.stanzas, isAckFor('m-online-1'));
    assert.equal(ack.attrs.from, 'localhost');
    assert.equal(ack.getChild('body'), undefined, 'a server ack carries no body');
    const serverId = ack.getChild('stanza-id', SID);
    assert.equal(serverId?.attrs.by, 'alice@localhost');
    assert.ok(serverId?.attrs.id);

    const received = await waitForStanza(
      bob.stanzas,
      isBody('{"messageId":"m-online-1","content":"你好","type":1}'),
    );
    assert.equal(received.attrs.from, 'alice@localhost/phone');
    assert.equal(received.attrs.id, 'm-online-1');
    const ids = received.getChildren('stanza-id', SID);
    assert.equal(ids.length, 1, 'the forged stanza-id is stripped');
    assert.equal(ids[0]?.attrs.by, 'bob@localhost');
    assert.equal(ids[0]?.attrs.id, serverId?.attrs.id);
    assert.equal(received.getChild('delay', 'urn:xmpp:delay'), undefined);

    await bob.xmpp.send(receiptFor(received));
    const receipt = await waitForStanza(alice.stanzas, isReceiptFor('m-online-1'));
    assert.equal(receipt.attrs.from, 'bob@localhost/tablet');
    await eventually(async () => (await waiting(system(), 'bob@localhost')) === 0);
    await alice.xmpp.stop();
    await bob.xmpp.stop();
  });

  test('offline: stored, drained with a delay at the next session, receipt reaches the sender', async () => {
    const alice = await goOnline(system(), 'alice@localhost', 'pw', 'phone');
    await alice.xmpp.send(chat('carol@localhost', 'm-offline-1', 'while you were away'));
    await waitForStanza(alice.stanzas, isAckFor('m-offline-1'));
    const carol = await goOnline(system(), 'carol@localhost', 'pw');
    const drained = await waitForStanza(carol.stanzas, isBody('while you were away'));
    const delay = drained.getChild('delay', 'urn:xmpp:delay');
    assert.equal(delay?.attrs.from, 'localhost');
    assert.ok(Date.parse(delay?.attrs.stamp ?? '') <= Date.now());
    await carol.xmpp.send(receiptFor(drained));
    await waitForStanza(alice.stanzas, isReceiptFor('m-offline-1'));
    await alice.xmpp.stop();
    await carol.xmpp.stop();
  });

  test('a receipt for a sender who went offline is stored and reaches them at their next session', async () => {
    const alice = await goOnline(system(), 'alice@localhost', 'pw', 'laptop');
    await alice.xmpp.send(chat('carol@localhost', 'm-late-receipt', 'answer me later'));
    await waitForStanza(alice.stanzas, isAckFor('m-late-receipt'));
    await alice.xmpp.stop();
    const carol = await goOnline(system(), 'carol@localhost', 'pw');
    const drained = await waitForStanza(carol.stanzas, isBody('answer me later'));
    await carol.xmpp.send(receiptFor(drained));
    await system().api.idle();
    const back = await goOnline(system(), 'alice@localhost', 'pw', 'laptop');
    const receipt = await waitForStanza(back.stanzas, isReceiptFor('m-late-receipt'));
    assert.equal(receipt.attrs.from?.split('/')[0], 'carol@localhost');
    assert.ok(receipt.getChild('delay', 'urn:xmpp:delay'));
    await carol.xmpp.stop();
    await back.xmpp.stop();
  });

  test('nothing is drained before initial presence (xmpp.js sends none by itself)', async () => {
    const alice = await goOnline(system(), 'alice@localhost', 'pw');
    await alice.xmpp.send(chat('dan@localhost', 'm-presence-1', 'after presence only'));
    await waitForStanza(alice.stanzas, isAckFor('m-presence-1'));
    const dan = await connectClient(system(), 'dan@localhost', 'pw');
    await system().api.idle();
    await roundTrip(dan); // a drain started by the login would have pushed by now
    assert.equal(dan.stanzas.filter(isBody('after presence only')).length, 0);
    await dan.xmpp.send(xml('presence'));
    await waitForStanza(dan.stanzas, isBody('after presence only'));
    await alice.xmpp.stop();
    await dan.xmpp.stop();
  });

  test('the seed’s problem 1: the push goes into a dead socket; the next session gets it; the receipt reaches A', async () => {
    const alice = await goOnline(system(), 'alice@localhost', 'pw', 'phone');
    // A raw client: xmpp.js would reconnect by itself, and this phone must stay dead.
    const [bob, bobConnection] = await tracked(system(), () =>
      rawOnline(system(), 'erin@localhost', 'phone'),
    );
    system().api.killSilently(bobConnection);
    await alice.xmpp.send(chat('erin@localhost', 'm-dead-1', 'into the void'));
    await waitForStanza(alice.stanzas, isAckFor('m-dead-1'));
    await system().api.idle();
    assert.equal(await waiting(system(), 'erin@localhost'), 1);
    bob.close();

    const again = await goOnline(system(), 'erin@localhost', 'pw', 'phone');
    const drained = await waitForStanza(again.stanzas, isBody('into the void'));
    await again.xmpp.send(receiptFor(drained));
    await waitForStanza(alice.stanzas, isReceiptFor('m-dead-1'));
    assert.equal(again.stanzas.filter(isBody('into the void')).length, 1);
    await alice.xmpp.stop();
    await again.xmpp.stop();
  });

  test('a push that meets 410 Gone removes the stale session and the message stays undelivered', async () => {
    const alice = await goOnline(system(), 'alice@localhost', 'pw');
    const [frank, frankConnection] = await tracked(system(), () =>
      rawOnline(system(), 'frank@localhost', 'pc'),
    );
    system().api.killSilently(frankConnection);
    system().api.expire(frankConnection);
    await alice.xmpp.send(chat('frank@localhost', 'm-gone-1', 'gone', false));
    await waitForStanza(alice.stanzas, isAckFor('m-gone-1'));
    await eventually(
      async () => (await system().context.store.getAccount('frank@localhost')).sessions.length === 0,
    );
    await eventually(async () => (await system().context.store.getConnection(frankConnection)) === undefined);
    assert.equal(await waiting(system(), 'frank@localhost'), 1);
    frank.close();
    const back = await goOnline(system(), 'frank@localhost', 'pw');
    await waitForStanza(back.stanzas, isBody('gone'));
    await alice.xmpp.stop();
    await back.xmpp.stop();
  });

  test('a retry of the same id after a lost server receipt is acknowledged again and delivered once', async () => {
    const alice = await goOnline(system(), 'alice@localhost', 'pw');
    const gina = await goOnline(system(), 'gina@localhost', 'pw');
    await alice.xmpp.send(chat('gina@localhost', 'm-retry-1', 'only once'));
    const first = await waitForStanza(alice.stanzas, isAckFor('m-retry-1'));
    await alice.xmpp.send(chat('gina@localhost', 'm-retry-1', 'only once'));
    await eventually(() => alice.stanzas.filter(isAckFor('m-retry-1')).length === 2);
    const second = alice.stanzas.filter(isAckFor('m-retry-1'))[1];
    assert.equal(second?.getChild('stanza-id', SID)?.attrs.id, first.getChild('stanza-id', SID)?.attrs.id);
    await roundTrip(alice); // the retry is handled
    await roundTrip(gina); // a second push of it would be here
    assert.equal(gina.stanzas.filter(isBody('only once')).length, 1);
    await alice.xmpp.stop();
    await gina.xmpp.stop();
  });

  test('a crash between storing and pushing: retried, not duplicated, drained at the next session', async () => {
    const alice = await goOnline(system(), 'alice@localhost', 'pw');
    const hank = await goOnline(system(), 'hank@localhost', 'pw', 'one');
    failNextPushContaining = 'crash-body';
    await alice.xmpp.send(chat('hank@localhost', 'm-crash-1', 'crash-body'));
    await eventually(() => alice.stanzas.filter(isAckFor('m-crash-1')).length >= 1);
    await system().api.idle();
    assert.equal(await waiting(system(), 'hank@localhost'), 1);
    await hank.xmpp.stop();
    const again = await goOnline(system(), 'hank@localhost', 'pw', 'two');
    await waitForStanza(again.stanzas, isBody('crash-body'));
    await system().api.idle(); // the drain is over, continuations included
    await roundTrip(again); // a second copy would be here
    const copies = [...hank.stanzas, ...again.stanzas].filter(isBody('crash-body'));
    assert.equal(new Set(copies.map((copy) => copy.attrs.id)).size, 1);
    assert.equal(again.stanzas.filter(isBody('crash-body')).length, 1);
    await alice.xmpp.stop();
    await again.xmpp.stop();
  });

  test('two sessions of the recipient both get live messages; either receipt marks delivery', async () => {
    const alice = await goOnline(system(), 'alice@localhost', 'pw', 'phone');
    const ivyPhone = await goOnline(system(), 'ivy@localhost', 'pw', 'phone');
    const ivyDesk = await goOnline(system(), 'ivy@localhost', 'pw', 'desk');
    await eventually(async () =>
      (await system().context.store.getAccount('ivy@localhost')).sessions.every((s) => s.available),
    );
    await alice.xmpp.send(chat('ivy@localhost', 'm-two-1', 'to both'));
    const onPhone = await waitForStanza(ivyPhone.stanzas, isBody('to both'));
    await waitForStanza(ivyDesk.stanzas, isBody('to both'));
    await ivyDesk.xmpp.send(receiptFor(onPhone));
    await waitForStanza(alice.stanzas, isReceiptFor('m-two-1'));
    await eventually(async () => (await waiting(system(), 'ivy@localhost')) === 0);
    await ivyPhone.xmpp.send(receiptFor(onPhone)); // a second receipt is harmless
    await alice.xmpp.send(chat('ivy@localhost', 'm-two-2', 'to the desk only'));
    await alice.xmpp.send(chat('ivy@localhost/desk', 'm-two-3', 'addressed to the desk'));
    await waitForStanza(ivyDesk.stanzas, isBody('addressed to the desk'));
    await roundTrip(alice); // both messages are handled
    await roundTrip(ivyPhone); // had one been pushed to the phone, it is here
    assert.equal(ivyPhone.stanzas.filter(isBody('addressed to the desk')).length, 0);
    await alice.xmpp.stop();
    await ivyPhone.xmpp.stop();
    await ivyDesk.xmpp.stop();
  });

  test('a burst of 60 messages arrives in send order, online and drained offline', async () => {
    const alice = await RawClient.connect(system().url);
    await alice.login('alice@localhost', 'pw', 'burst');
    const jack = await goOnline(system(), 'jack@localhost', 'pw');
    const bodies = Array.from({ length: 60 }, (_, index) => `burst ${index}`);
    for (const [index, body] of bodies.entries()) {
      alice.send(
        `<message xmlns="jabber:client" type="chat" to="jack@localhost" id="b-on-${index}"><body>${body}</body></message>`,
      );
    }
    await eventually(
      () => jack.stanzas.filter((s) => s.getChildText('body')?.startsWith('burst')).length === 60,
      20_000,
    );
    assert.deepEqual(
      jack.stanzas
        .filter((s) => s.getChildText('body')?.startsWith('burst'))
        .map((s) => s.getChildText('body')),
      bodies,
    );
    await jack.xmpp.stop();
    await system().api.idle();
    // Offline: 60 messages wait (the quota in this suite is exactly 60), drained in pages of 25.
    for (const [index, body] of bodies.entries()) {
      alice.send(
        `<message xmlns="jabber:client" type="chat" to="jack@localhost" id="b-off-${index}"><body>off ${body}</body></message>`,
      );
    }
    await eventually(
      () =>
        alice.received.filter((s) => s.getChild('ack', ACK)?.attrs.id?.startsWith('b-off-')).length === 60,
      20_000,
    );
    const back = await goOnline(system(), 'jack@localhost', 'pw');
    await eventually(
      () => back.stanzas.filter((s) => s.getChildText('body')?.startsWith('off ')).length === 60,
      20_000,
    );
    assert.deepEqual(
      back.stanzas
        .filter((s) => s.getChildText('body')?.startsWith('off '))
        .map((s) => s.getChildText('body')),
      bodies.map((body) => `off ${body}`),
    );
    alice.close();
    await back.xmpp.stop();
  });

  test('limits: the offline quota gives resource-constraint; chat states are routed, never stored', async () => {
    const alice = await RawClient.connect(system().url);
    await alice.login('alice@localhost', 'pw', 'quota');
    for (let index = 0; index < 61; index++) {
      alice.send(
        `<message xmlns="jabber:client" type="chat" to="kim@localhost" id="q-${index}"><body>q${index}</body></message>`,
      );
    }
    const refused = await alice.next((s) => s.attrs.type === 'error' && s.attrs.id === 'q-60', 20_000);
    assert.ok(refused.getChild('error')?.getChild('resource-constraint'));
    assert.equal(refused.getChild('error')?.attrs.type, 'wait');
    assert.equal(
      alice.received.filter((s) => s.attrs.type === 'error').length,
      0,
      'only the 61st is refused',
    );
    assert.equal(await waiting(system(), 'kim@localhost'), 60);
    alice.send(
      '<message xmlns="jabber:client" type="chat" to="leo@localhost" id="cs1"><active xmlns="http://jabber.org/protocol/chatstates"/></message>',
    );
    alice.send(
      '<message xmlns="jabber:client" type="headline" to="leo@localhost" id="h1"><body>news</body></message>',
    );
    await system().api.idle();
    assert.equal(await waiting(system(), 'leo@localhost'), 0);
    const leo = await goOnline(system(), 'leo@localhost', 'pw');
    alice.send(
      '<message xmlns="jabber:client" type="chat" to="leo@localhost" id="cs2"><composing xmlns="http://jabber.org/protocol/chatstates"/></message>',
    );
    await waitForStanza(leo.stanzas, (s) => s.attrs.id === 'cs2');
    await system().api.idle(); // the drain at his presence is over
    await roundTrip(leo); // had they been stored, they would be here
    assert.equal(leo.stanzas.filter((s) => s.attrs.id === 'cs1' || s.attrs.id === 'h1').length, 0);
    alice.close();
    await leo.xmpp.stop();
  });

  test('errors: unknown user service-unavailable, the server itself service-unavailable, bad JID jid-malformed', async () => {
    const alice = await RawClient.connect(system().url);
    await alice.login('alice@localhost', 'pw', 'errors');
    for (const [to, id, condition] of [
      ['nobody@localhost', 'e1', 'service-unavailable'],
      ['localhost', 'e2', 'service-unavailable'],
      ['bad@@localhost', 'e3', 'jid-malformed'],
      ['someone@example.org', 'e4', 'remote-server-not-found'],
    ]) {
      alice.send(`<message xmlns="jabber:client" type="chat" to="${to}" id="${id}"><body>x</body></message>`);
      const error = await alice.next((s) => s.attrs.id === id);
      assert.equal(error.attrs.type, 'error');
      assert.ok(error.getChild('error')?.getChild(condition as string), `${to}: ${error}`);
    }
    alice.close();
  });
});

describe('draining a large backlog', () => {
  const system = useLocalSystem({ config: { drainPageSize: 100, drainPerInvocation: 300 } });

  test('2,000 waiting messages: all drained in order, exactly once, across pages and continuations', async () => {
    await addUser(system(), 'sender@localhost', 'pw');
    await addUser(system(), 'reader@localhost', 'pw');
    const { store } = system().context;
    const { sequenceId } = await import('../../lib/ids.ts');
    const now = Date.now();
    for (let start = 0; start < 2000; start += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, offset) => {
          const index = start + offset;
          return store.storeMessage(
            {
              recipient: 'reader@localhost',
              sender: 'sender@localhost',
              id: `big-${index}`,
              seq: `${sequenceId(now + index)}`,
              stanza: `<message xmlns="jabber:client" type="chat" from="sender@localhost/x" to="reader@localhost" id="big-${index}"><body>${index}</body></message>`,
              storedAt: now + index,
              receiptRequested: false,
              expiresAt: Math.floor(now / 1000) + 3600,
            },
            { listed: true },
          );
        }),
      );
    }
    // One expired message is never drained.
    await store.storeMessage(
      {
        recipient: 'reader@localhost',
        sender: 'sender@localhost',
        id: 'expired',
        seq: sequenceId(now + 5000),
        stanza:
          '<message xmlns="jabber:client" type="chat" to="reader@localhost" id="expired"><body>old</body></message>',
        storedAt: now,
        receiptRequested: false,
        expiresAt: Math.floor(now / 1000) - 1,
      },
      { listed: true },
    );
    const reader = await goOnline(system(), 'reader@localhost', 'pw');
    await eventually(() => reader.stanzas.filter((s) => s.getChild('body')).length >= 2000, 60_000);
    await system().api.idle();
    const bodies = reader.stanzas
      .filter((s) => s.getChild('body'))
      .map((s) => Number(s.getChildText('body')));
    assert.equal(bodies.length, 2000);
    assert.deepEqual(
      bodies,
      Array.from({ length: 2000 }, (_, index) => index),
    );
    assert.equal(await waiting(system(), 'reader@localhost'), 0);
    await reader.xmpp.stop();
  });
});
