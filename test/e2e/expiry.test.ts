// A session whose $disconnect never comes and that nobody posts to ends when DynamoDB's
// TTL deletes its items: the table's stream (infra/local/ttl.ts here) reaches
// functions/expired.ts, contacts see unavailable, its rooms see it leave, once, and what
// was posted to the room after it expired waits for its rejoin.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { xml } from '@xmpp/client';
import type { Element } from 'ltx';
import {
  abandon,
  addUser,
  befriend,
  goOnline,
  roundTrip,
  useLocalSystem,
  waitForStanza,
} from '../helpers.ts';

const MUC = 'http://jabber.org/protocol/muc';
const SERVICE = 'conference.localhost';

const presenceFrom = (from: string, type?: string) => (stanza: Element) =>
  stanza.name === 'presence' && stanza.attrs.from === from && stanza.attrs.type === type;
const groupBody = (body: string) => (stanza: Element) =>
  stanza.name === 'message' && stanza.attrs.type === 'groupchat' && stanza.getChildText('body') === body;
const subject = (stanza: Element) => stanza.name === 'message' && stanza.getChild('subject') !== undefined;

describe('sessions that end by expiry', () => {
  // The handlers' clock, which stamps messages, runs a minute behind the one the TTL process
  // and the store's reads go by (real time), and a test moves it forward instead of waiting:
  // an expiry can then be after a message in the handlers' time and past for TTL.
  let clockOffset = -60_000;
  const serverNow = () => Date.now() + clockOffset;
  const system = useLocalSystem({
    ttlSweepMs: 0, // the test says when TTL comes by
    wrapContext: (context) => ({ ...context, now: serverNow }),
  });

  test('setup: alice and bob are friends', async () => {
    for (const user of ['alice', 'bob']) await addUser(system(), `${user}@localhost`, 'pw');
    await befriend(system(), 'alice@localhost', 'bob@localhost');
  });

  /**
   * Bob's session ends by expiry. `due` says which of its items TTL reaches in one pass: all
   * of them, or the connection alone (on AWS its record may come before the others are due
   * for deletion; the room pool still names the rooms then).
   */
  async function expireBob(room: string, due: 'all' | 'connection') {
    const { store } = system().context;
    const alice = await goOnline(system(), 'alice@localhost', 'pw', 'desk');
    const bob = await goOnline(system(), 'bob@localhost', 'pw', 'phone');
    await waitForStanza(alice.stanzas, presenceFrom('bob@localhost/phone'));

    await alice.xmpp.send(xml('presence', { to: `${room}/Alice` }, xml('x', { xmlns: MUC })));
    await waitForStanza(alice.stanzas, subject);
    await alice.xmpp.iqCaller.request(
      xml(
        'iq',
        { type: 'set', to: room },
        xml('query', { xmlns: `${MUC}#owner` }, xml('x', { xmlns: 'jabber:x:data', type: 'submit' })),
      ),
    );
    await bob.xmpp.send(xml('presence', { to: `${room}/Bob` }, xml('x', { xmlns: MUC })));
    await waitForStanza(bob.stanzas, subject);
    await alice.xmpp.send(xml('message', { to: room, type: 'groupchat' }, xml('body', {}, 'seen')));
    await waitForStanza(bob.stanzas, groupBody('seen'));
    // Expiry times are whole seconds: two seconds pass, and this message is older than the
    // expiry set below.
    clockOffset += 2000;

    // Bob's network vanishes and API Gateway never says so: no $disconnect, and posts
    // would still be accepted. Then two hours pass: every item of the session is due.
    const [session] = await store.getSessions('bob@localhost');
    assert.ok(session);
    system().api.killSilently(session.connectionId);
    abandon(bob);
    const dueAt = Math.floor(serverNow() / 1000) - 1;
    const connection = await store.getConnection(session.connectionId);
    assert.ok(connection);
    const occupant = (await store.getOccupants(room)).find((entry) => entry.nick === 'Bob');
    assert.ok(occupant);
    await store.saveConnection({ ...connection, expiresAt: dueAt });
    if (due === 'all') {
      await store.putOccupant({ ...occupant, expiresAt: dueAt });
      await store.addJoinedRoom(session.connectionId, room, dueAt);
    }

    // Posted after the expiry: skipped as an expired occupant, or lost in the dead socket.
    await alice.xmpp.send(xml('message', { to: room, type: 'groupchat' }, xml('body', {}, 'after expiry')));
    await waitForStanza(alice.stanzas, groupBody('after expiry'));

    // DynamoDB's TTL process comes by: the connection and the occupant are deleted, and
    // the stream brings both to the handler. Whichever comes first ends the room visit;
    // the other finds nothing left to announce.
    const delivered = system().expiry.delivered;
    const swept = await system().expiry.sweep();
    assert.equal(swept, due === 'all' ? 3 : 1); // connection, occupant, room pool
    await waitForStanza(alice.stanzas, presenceFrom('bob@localhost/phone', 'unavailable'));
    await waitForStanza(alice.stanzas, presenceFrom(`${room}/Bob`, 'unavailable'));
    assert.equal(system().expiry.delivered - delivered, due === 'all' ? 2 : 1);
    await system().api.idle();
    await roundTrip(alice); // a second announcement would be here
    assert.equal(alice.stanzas.filter(presenceFrom(`${room}/Bob`, 'unavailable')).length, 1);
    assert.equal(alice.stanzas.filter(presenceFrom('bob@localhost/phone', 'unavailable')).length, 1);
    assert.deepEqual(system().expiry.failed, []);
    assert.deepEqual(await store.getSessions('bob@localhost'), []);
    assert.deepEqual((await store.getPresences(['bob@localhost'])).get('bob@localhost') ?? [], []);
    assert.deepEqual(
      (await store.getOccupants(room)).map((entry) => entry.nick),
      ['Alice'],
    );

    // Bob comes back and rejoins: exactly what he missed.
    const again = await goOnline(system(), 'bob@localhost', 'pw', 'phone');
    await again.xmpp.send(xml('presence', { to: `${room}/Bob` }, xml('x', { xmlns: MUC })));
    await waitForStanza(again.stanzas, subject);
    const bodies = again.stanzas
      .filter((stanza) => stanza.attrs.type === 'groupchat')
      .map((s) => s.getChildText('body'));
    assert.deepEqual(
      bodies.filter((body) => body !== null),
      ['after expiry'],
    );
    await again.xmpp.stop();
    await system().api.idle();
    await alice.xmpp.stop();
  }

  test('all items due at once: contacts get unavailable, the room sees Bob leave once, his rejoin drains the rest', () =>
    expireBob(`all@${SERVICE}`, 'all'));

  test('the connection first: the room pool still leads to the rooms', () =>
    expireBob(`first@${SERVICE}`, 'connection'));
});
