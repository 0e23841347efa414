// RFC 7395 §3.6: after the server's <close/>, nothing more is sent on that stream. Many
// sessions close while rooms and a contact fan out to them; none of them may receive a
// frame after its <close/> (xmpp.js throws on one, which ends a Node.js client process).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Element } from 'ltx';
import { addUser, RawClient, useLocalSystem } from '../helpers.ts';

const SESSIONS = 200;
const ROOMS = 20;
const SERVICE = 'conference.localhost';
const MUC = 'http://jabber.org/protocol/muc';
const MUC_USER = 'http://jabber.org/protocol/muc#user';
const MUC_OWNER = 'http://jabber.org/protocol/muc#owner';

const roomOf = (index: number) => `close-room-${index % ROOMS}@${SERVICE}`;
const isSelfPresence = (room: string) => (stanza: Element) =>
  stanza.name === 'presence' &&
  stanza.attrs.from?.startsWith(`${room}/`) === true &&
  (stanza.getChild('x', MUC_USER)?.getChildren('status') ?? []).some((status) => status.attrs.code === '110');

/** Batches of `size` at once: logins are CPU work for the server on a 2-core machine. */
async function inBatches<T>(items: readonly T[], size: number, work: (item: T) => Promise<void>) {
  for (let start = 0; start < items.length; start += size) {
    await Promise.all(items.slice(start, start + size).map(work));
  }
}

async function joinRoom(client: RawClient, room: string, nick: string): Promise<void> {
  client.send(`<presence xmlns="jabber:client" to="${room}/${nick}"><x xmlns="${MUC}"/></presence>`);
  await client.next(isSelfPresence(room), 30_000);
}

describe('no frame after <close/>', () => {
  const system = useLocalSystem();

  test(`${SESSIONS} sessions close while their rooms and a contact fan out to them`, async () => {
    const store = system().context.store;
    const watcher = 'watcher@localhost';
    const talker = 'talker@localhost';
    const users = Array.from({ length: SESSIONS }, (_, index) => `closer${index}@localhost`);
    for (const user of [watcher, talker, ...users]) await addUser(system(), user, 'secret');
    // The watcher and every closer are contacts both ways: the watcher's presence goes to each.
    for (const user of users) {
      const both = {
        subscription: 'both',
        askOut: false,
        pendingIn: false,
        groups: [],
        listed: true,
      } as const;
      await store.saveRosterItem(watcher, { ...both, contact: user }, { adds: true, limit: 1000 });
      await store.saveRosterItem(user, { ...both, contact: watcher }, { adds: true, limit: 1000 });
    }

    // The talker creates the rooms (instant rooms) and stays in them.
    const talking = await RawClient.connect(system().url);
    await talking.login(talker, 'secret', 'desk');
    for (let index = 0; index < ROOMS; index++) {
      const room = roomOf(index);
      await joinRoom(talking, room, 'talker');
      talking.send(
        `<iq xmlns="jabber:client" type="set" id="create-${index}" to="${room}"><query xmlns="${MUC_OWNER}"><x xmlns="jabber:x:data" type="submit"/></query></iq>`,
      );
      await talking.next((stanza) => stanza.name === 'iq' && stanza.attrs.id === `create-${index}`, 30_000);
    }
    const watching = await RawClient.connect(system().url);
    await watching.login(watcher, 'secret', 'desk');
    watching.send('<presence xmlns="jabber:client"/>');

    const closers: RawClient[] = [];
    await inBatches(users, 20, async (user) => {
      const client = await RawClient.connect(system().url);
      closers.push(client);
      const index = users.indexOf(user);
      await client.login(user, 'secret', 'phone');
      client.send('<presence xmlns="jabber:client"/>');
      await joinRoom(client, roomOf(index), `n${index}`);
    });

    // Fan-out keeps going while the sessions close: room messages and presence changes.
    let loadRunning = true;
    let posted = 0;
    const load = (async () => {
      for (let round = 0; loadRunning; round++) {
        talking.send(
          `<message xmlns="jabber:client" type="groupchat" to="${roomOf(round)}" id="t${round}"><body>round ${round}</body></message>`,
        );
        watching.send(`<presence xmlns="jabber:client"><status>round ${round}</status></presence>`);
        watching.send(
          `<iq xmlns="jabber:client" type="get" id="p${round}"><ping xmlns="urn:xmpp:ping"/></iq>`,
        );
        posted++;
        // Each round waits for its room message to come back and for the presence broadcast
        // to be done (the ping after it is answered): a steady load, not a flood.
        await Promise.all([
          talking.next((stanza) => stanza.name === 'message' && stanza.attrs.id === `t${round}`),
          watching.next((stanza) => stanza.name === 'iq' && stanza.attrs.id === `p${round}`),
        ]);
      }
    })();

    await inBatches(closers, 25, async (client) => {
      client.send('<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>');
      await client.closed;
    });
    loadRunning = false;
    await load;
    await system().api.idle();

    const late = closers.flatMap((client) => {
      const at = client.received.findIndex((element) => element.name === 'close');
      assert.notEqual(at, -1, 'every session gets <close/>');
      return client.received.slice(at + 1).map((element) => element.toString());
    });
    assert.ok(posted > 0);
    assert.deepEqual(late, [], 'no frame after <close/>');

    // Everything the sessions left in the routing paths is gone.
    for (let index = 0; index < ROOMS; index++) {
      const occupants = await store.getOccupants(roomOf(index));
      assert.deepEqual(
        occupants.map((occupant) => occupant.nick),
        ['talker'],
      );
    }
    const presences = await store.getPresences(users);
    assert.equal([...presences.values()].flat().length, 0);
    talking.close();
    watching.close();
  });
});
