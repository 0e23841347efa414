// XEP-0045 group chat, script-like: create and configure, join order, talk, leave,
// rejoin with history, members-only and invitations, kick and ban, sessions that end.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { xml } from '@xmpp/client';
import type { Element } from 'ltx';
import type { LocalSystem } from '../../infra/local/system.ts';
import {
  abandon,
  addUser,
  eventually,
  goOnline,
  useLocalSystem,
  waitForStanza,
  waiting,
} from '../helpers.ts';

const MUC = 'http://jabber.org/protocol/muc';
const MUC_USER = 'http://jabber.org/protocol/muc#user';
const MUC_OWNER = 'http://jabber.org/protocol/muc#owner';
const MUC_ADMIN = 'http://jabber.org/protocol/muc#admin';
const DISCO_INFO = 'http://jabber.org/protocol/disco#info';
const DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';
const SID = 'urn:xmpp:sid:0';
const DELAY = 'urn:xmpp:delay';
const SERVICE = 'conference.localhost';

type Session = Awaited<ReturnType<typeof goOnline>>;

/**
 * Stops sessions one at a time, each after the server handled the previous one's end: a
 * session's end is announced to the rooms it was in, and @xmpp/client throws on a frame
 * that arrives while it is stopping.
 */
async function stopAll(system: LocalSystem, ...sessions: Session[]) {
  for (const session of sessions) {
    await session.xmpp.stop();
    await system.api.idle();
  }
}

const join = (session: Session, occupantJid: string, history?: Record<string, string>) =>
  session.xmpp.send(
    xml(
      'presence',
      { to: occupantJid },
      xml('x', { xmlns: MUC }, ...(history ? [xml('history', history)] : [])),
    ),
  );
const leave = (session: Session, occupantJid: string) =>
  session.xmpp.send(xml('presence', { to: occupantJid, type: 'unavailable' }));
const say = (session: Session, room: string, body: string, id = body) =>
  session.xmpp.send(xml('message', { to: room, type: 'groupchat', id }, xml('body', {}, body)));

const statuses = (stanza: Element) =>
  stanza
    .getChild('x', MUC_USER)
    ?.getChildren('status')
    .map((status) => status.attrs.code) ?? [];
const isSelfPresence = (room: string) => (stanza: Element) =>
  stanza.name === 'presence' &&
  stanza.attrs.from?.startsWith(`${room}/`) &&
  stanza.attrs.type !== 'unavailable' &&
  statuses(stanza).includes('110');
const isPresenceFrom = (from: string, type?: string) => (stanza: Element) =>
  stanza.name === 'presence' && stanza.attrs.from === from && stanza.attrs.type === type;
const isGroupBody = (body: string) => (stanza: Element) =>
  stanza.name === 'message' && stanza.attrs.type === 'groupchat' && stanza.getChildText('body') === body;
const isSubject = (room: string) => (stanza: Element) =>
  stanza.name === 'message' &&
  stanza.attrs.from?.startsWith(room) &&
  stanza.getChild('subject') !== undefined;
const isErrorFrom = (from: string, condition: string) => (stanza: Element) =>
  stanza.attrs.type === 'error' &&
  stanza.attrs.from === from &&
  stanza.getChild('error')?.getChild(condition) !== undefined;
const bodies = (stanzas: readonly Element[], room: string) =>
  stanzas
    .filter((stanza) => stanza.name === 'message' && stanza.attrs.from?.startsWith(`${room}/`))
    .map((stanza) => stanza.getChildText('body'))
    .filter((body) => body !== null);

let iqCounter = 0;
async function iq(session: Session, type: 'get' | 'set', to: string, payload: Element): Promise<Element> {
  const id = `iq-${++iqCounter}`;
  await session.xmpp.send(xml('iq', { type, to, id }, payload));
  return waitForStanza(session.stanzas, (stanza) => stanza.name === 'iq' && stanza.attrs.id === id);
}

const submit = (fields: Record<string, string> = {}) =>
  xml(
    'query',
    { xmlns: MUC_OWNER },
    xml(
      'x',
      { xmlns: 'jabber:x:data', type: 'submit' },
      ...Object.entries(fields).map(([name, value]) => xml('field', { var: name }, xml('value', {}, value))),
    ),
  );

/** Creates a room as `owner` (joined as `nick`), configured with `fields` (instant when none). */
async function createRoom(owner: Session, room: string, nick: string, fields?: Record<string, string>) {
  await join(owner, `${room}/${nick}`);
  const self = await waitForStanza(owner.stanzas, isSelfPresence(room));
  await waitForStanza(owner.stanzas, isSubject(room));
  const result = await iq(owner, 'set', room, submit(fields));
  assert.equal(result.attrs.type, 'result', result.toString());
  return self;
}

async function joined(session: Session, room: string, nick: string, history?: Record<string, string>) {
  await join(session, `${room}/${nick}`, history);
  await waitForStanza(session.stanzas, isSubject(room));
}

describe('group chat (XEP-0045)', () => {
  // The server's clock: a test moves it forward instead of waiting for time to pass.
  let clockOffset = 0;
  const system = useLocalSystem({
    wrapContext: (context) => ({ ...context, now: () => Date.now() + clockOffset }),
  });
  const serverNow = () => Date.now() + clockOffset;
  const sys = (): LocalSystem => system();
  const users = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'];

  test('setup', async () => {
    for (const user of users) await addUser(sys(), `${user}@localhost`, 'pw');
  });

  test('the service answers disco#info and lists public rooms in disco#items', async () => {
    const alice = await goOnline(sys(), 'alice@localhost', 'pw');
    const info = await iq(alice, 'get', SERVICE, xml('query', { xmlns: DISCO_INFO }));
    const query = info.getChild('query', DISCO_INFO);
    assert.equal(query?.getChild('identity')?.attrs.category, 'conference');
    assert.equal(query?.getChild('identity')?.attrs.type, 'text');
    assert.ok(query?.getChildren('feature').some((feature) => feature.attrs.var === MUC));
    const server = await iq(alice, 'get', 'localhost', xml('query', { xmlns: DISCO_ITEMS }));
    const services = server.getChild('query', DISCO_ITEMS)?.getChildren('item') ?? [];
    assert.ok(services.some((item) => item.attrs.jid === SERVICE));
    const room = `lobby@${SERVICE}`;
    await createRoom(alice, room, 'Alice', { 'muc#roomconfig_roomname': 'The lobby' });
    const items = await iq(alice, 'get', SERVICE, xml('query', { xmlns: DISCO_ITEMS }));
    const listed = items.getChild('query', DISCO_ITEMS)?.getChildren('item') ?? [];
    assert.ok(listed.some((item) => item.attrs.jid === room && item.attrs.name === 'The lobby'));
    const roomInfo = await iq(alice, 'get', room, xml('query', { xmlns: DISCO_INFO }));
    const features = roomInfo
      .getChild('query')
      ?.getChildren('feature')
      .map((f) => f.attrs.var);
    assert.ok(features?.includes('muc_persistent'));
    await stopAll(sys(), alice);
  });

  test('create: owner with 201 and 110, locked until configured, then the join order of §7.2.3', async () => {
    const room = `create@${SERVICE}`;
    const alice = await goOnline(sys(), 'alice@localhost', 'pw');
    const bob = await goOnline(sys(), 'bob@localhost', 'pw');
    await join(alice, `${room}/Alice`);
    const self = await waitForStanza(alice.stanzas, isSelfPresence(room));
    assert.deepEqual(statuses(self).sort(), ['110', '201']);
    const item = self.getChild('x', MUC_USER)?.getChild('item');
    assert.equal(item?.attrs.affiliation, 'owner');
    assert.equal(item?.attrs.role, 'moderator');

    await join(bob, `${room}/Bob`);
    await waitForStanza(bob.stanzas, isErrorFrom(`${room}/Bob`, 'item-not-found'));

    const form = await iq(alice, 'get', room, xml('query', { xmlns: MUC_OWNER }));
    assert.ok(form.getChild('query', MUC_OWNER)?.getChild('x', 'jabber:x:data'));
    assert.equal((await iq(alice, 'set', room, submit())).attrs.type, 'result');
    await say(alice, room, 'before bob');
    await waitForStanza(alice.stanzas, isGroupBody('before bob'));
    await alice.xmpp.send(xml('message', { to: room, type: 'groupchat' }, xml('subject', {}, 'Welcome')));
    await waitForStanza(alice.stanzas, (s) => s.getChildText('subject') === 'Welcome');

    await join(bob, `${room}/Bob`);
    await waitForStanza(bob.stanzas, isSubject(room));
    const relevant = bob.stanzas.filter((s) => s.attrs.from?.startsWith(room) && s.attrs.type !== 'error');
    const index = (match: (s: Element) => boolean) => relevant.findIndex(match);
    const others = index(isPresenceFrom(`${room}/Alice`));
    const own = index(isSelfPresence(room));
    const history = index(isGroupBody('before bob'));
    const subject = index(isSubject(room));
    assert.ok(others >= 0 && others < own && own < history && history < subject, relevant.join('\n'));
    assert.equal(relevant[subject]?.getChildText('subject'), 'Welcome');
    assert.equal(relevant[history]?.getChild('delay', DELAY)?.attrs.from, room);
    // Alice sees Bob arrive.
    await waitForStanza(alice.stanzas, isPresenceFrom(`${room}/Bob`));
    await stopAll(sys(), alice, bob);
  });

  test('talk: stored once, stanza-id by the room, reflected to everyone; non-occupants refused', async () => {
    const room = `talk@${SERVICE}`;
    const alice = await goOnline(sys(), 'alice@localhost', 'pw');
    const bob = await goOnline(sys(), 'bob@localhost', 'pw');
    const carol = await goOnline(sys(), 'carol@localhost', 'pw');
    await createRoom(alice, room, 'Alice');
    await joined(bob, room, 'Bob');
    await say(bob, room, 'hello room', 'b1');
    const mine = await waitForStanza(bob.stanzas, isGroupBody('hello room'));
    const theirs = await waitForStanza(alice.stanzas, isGroupBody('hello room'));
    for (const copy of [mine, theirs]) {
      assert.equal(copy.attrs.from, `${room}/Bob`);
      assert.equal(copy.attrs.id, 'b1');
      assert.equal(copy.getChild('stanza-id', SID)?.attrs.by, room);
    }
    assert.equal(mine.getChild('stanza-id', SID)?.attrs.id, theirs.getChild('stanza-id', SID)?.attrs.id);
    assert.equal((await sys().context.store.roomHistory(room, 100)).length, 1, 'stored once per room');

    await say(carol, room, 'let me in');
    await waitForStanza(carol.stanzas, isErrorFrom(room, 'not-acceptable'));

    // Receipts and markers are reflected, never stored.
    await bob.xmpp.send(
      xml(
        'message',
        { to: room, type: 'groupchat', id: 'r1' },
        xml('displayed', { xmlns: 'urn:xmpp:chat-markers:0', id: 'b1' }),
      ),
    );
    await waitForStanza(
      alice.stanzas,
      (s) => s.getChild('displayed', 'urn:xmpp:chat-markers:0') !== undefined,
    );
    assert.equal((await sys().context.store.roomHistory(room, 100)).length, 1);

    // Private messages between occupants.
    await bob.xmpp.send(xml('message', { to: `${room}/Alice`, type: 'chat' }, xml('body', {}, 'psst')));
    const pm = await waitForStanza(alice.stanzas, (s) => s.getChildText('body') === 'psst');
    assert.equal(pm.attrs.from, `${room}/Bob`);
    assert.equal(pm.attrs.type, 'chat');

    // Nick conflict; another resource of the same user may share the nick.
    await join(carol, `${room}/Bob`);
    await waitForStanza(carol.stanzas, isErrorFrom(`${room}/Bob`, 'conflict'));
    const bob2 = await goOnline(sys(), 'bob@localhost', 'pw', 'second');
    await joined(bob2, room, 'Bob');
    await say(alice, room, 'to both bobs');
    await waitForStanza(bob2.stanzas, isGroupBody('to both bobs'));
    await waitForStanza(bob.stanzas, isGroupBody('to both bobs'));
    await stopAll(sys(), alice, bob, bob2, carol);
  });

  test('leave, and a session killed without a close frame leaves its rooms', async () => {
    const room = `leave@${SERVICE}`;
    const alice = await goOnline(sys(), 'alice@localhost', 'pw');
    const bob = await goOnline(sys(), 'bob@localhost', 'pw');
    await createRoom(alice, room, 'Alice');
    await joined(bob, room, 'Bob');
    await leave(bob, `${room}/Bob`);
    const gone = await waitForStanza(alice.stanzas, isPresenceFrom(`${room}/Bob`, 'unavailable'));
    assert.equal(gone.getChild('x', MUC_USER)?.getChild('item')?.attrs.role, 'none');
    const own = await waitForStanza(bob.stanzas, isPresenceFrom(`${room}/Bob`, 'unavailable'));
    assert.ok(statuses(own).includes('110'));
    await stopAll(sys(), bob);

    // A session that ends without a close frame: the next push meets 410 Gone.
    const before = new Set(sys().api.connectionIds);
    const erin = await goOnline(sys(), 'erin@localhost', 'pw');
    const erinConnection = sys().api.connectionIds.find((id) => !before.has(id)) as string;
    await joined(erin, room, 'Erin');
    await waitForStanza(alice.stanzas, isPresenceFrom(`${room}/Erin`));
    await say(alice, room, 'seen by Erin');
    await waitForStanza(erin.stanzas, isGroupBody('seen by Erin'));
    sys().api.killSilently(erinConnection);
    sys().api.expire(erinConnection);
    await say(alice, room, 'anyone there?');
    await waitForStanza(alice.stanzas, isPresenceFrom(`${room}/Erin`, 'unavailable'));
    // The others are told before the occupant is removed: wait for the end to finish.
    await sys().api.idle();
    assert.deepEqual(
      (await sys().context.store.getOccupants(room)).map((o) => o.nick),
      ['Alice'],
    );
    abandon(erin);
    // The message that met the dead connection never reached Erin: her rejoin brings it,
    // after what was posted in the fan-out window before it (which may have failed too; what
    // did arrive comes again with its stanza-id), and nothing older.
    const erinAgain = await goOnline(sys(), 'erin@localhost', 'pw');
    await joined(erinAgain, room, 'Erin');
    assert.deepEqual(bodies(erinAgain.stanzas, room), ['seen by Erin', 'anyone there?']);
    await stopAll(sys(), erinAgain);

    // A session closed normally leaves too.
    const frank = await goOnline(sys(), 'frank@localhost', 'pw');
    await joined(frank, room, 'Frank');
    await stopAll(sys(), frank);
    await waitForStanza(alice.stanzas, isPresenceFrom(`${room}/Frank`, 'unavailable'));
    await stopAll(sys(), alice);
  });

  test('the seed’s flow: leave, log out, come back, rejoin, get exactly what was missed, in order, once', async () => {
    const room = `seed@${SERVICE}`;
    const alice = await goOnline(sys(), 'alice@localhost', 'pw');
    await createRoom(alice, room, 'Alice');
    await say(alice, room, 'old 1');
    await waitForStanza(alice.stanzas, isGroupBody('old 1'));
    let bob = await goOnline(sys(), 'bob@localhost', 'pw');
    await joined(bob, room, 'Bob');
    await say(alice, room, 'seen live');
    await waitForStanza(bob.stanzas, isGroupBody('seen live'));
    await leave(bob, `${room}/Bob`);
    await waitForStanza(alice.stanzas, isPresenceFrom(`${room}/Bob`, 'unavailable'));
    await stopAll(sys(), bob);

    for (const body of ['missed 1', 'missed 2', 'missed 3']) {
      await say(alice, room, body);
      await waitForStanza(alice.stanzas, isGroupBody(body));
    }
    await sys().api.idle();
    bob = await goOnline(sys(), 'bob@localhost', 'pw');
    assert.deepEqual(bodies(bob.stanzas, room), [], 'nothing is pushed before the rejoin');
    await joined(bob, room, 'Bob');
    assert.deepEqual(bodies(bob.stanzas, room), ['missed 1', 'missed 2', 'missed 3']);
    for (const stanza of bob.stanzas.filter(isGroupBody('missed 1')))
      assert.equal(stanza.getChild('delay', DELAY)?.attrs.from, room);
    await say(alice, room, 'live again');
    await waitForStanza(bob.stanzas, isGroupBody('live again'));
    await sys().api.idle();
    assert.deepEqual(bodies(bob.stanzas, room), ['missed 1', 'missed 2', 'missed 3', 'live again']);

    // A newcomer with no <history/> gets the default history.
    const carol = await goOnline(sys(), 'carol@localhost', 'pw');
    await joined(carol, room, 'Carol');
    assert.deepEqual(bodies(carol.stanzas, room), [
      'old 1',
      'seen live',
      'missed 1',
      'missed 2',
      'missed 3',
      'live again',
    ]);
    await stopAll(sys(), alice, bob, carol);
  });

  test('history attributes: maxstanzas, maxchars, seconds, since, combined', async () => {
    const room = `history@${SERVICE}`;
    const alice = await goOnline(sys(), 'alice@localhost', 'pw');
    await createRoom(alice, room, 'Alice');
    for (const body of ['h1', 'h2']) {
      await say(alice, room, body);
      await waitForStanza(alice.stanzas, isGroupBody(body));
    }
    // h1 and h2 are a minute older than `since`: far outside any window that reaches it.
    clockOffset += 60_000;
    const since = new Date(serverNow()).toISOString();
    clockOffset += 1_000;
    for (const body of ['h3', 'h4', 'h5']) {
      await say(alice, room, body);
      await waitForStanza(alice.stanzas, isGroupBody(body));
    }
    const bob = await goOnline(sys(), 'bob@localhost', 'pw');
    const rejoin = async (history: Record<string, string>) => {
      bob.stanzas.length = 0;
      await joined(bob, room, 'Bob', history);
      const got = bodies(bob.stanzas, room);
      await leave(bob, `${room}/Bob`);
      await waitForStanza(bob.stanzas, isPresenceFrom(`${room}/Bob`, 'unavailable'));
      return got;
    };
    assert.deepEqual(await rejoin({ maxstanzas: '2' }), ['h4', 'h5']);
    assert.deepEqual(await rejoin({ maxstanzas: '0' }), []);
    assert.deepEqual(await rejoin({ maxchars: '0' }), []);
    const one = (await sys().context.store.roomHistory(room, 1))[0];
    assert.ok(one);
    // Room for about two stanzas of this size, with the delay and the `to` added.
    assert.deepEqual(await rejoin({ maxchars: String((one.stanza.length + 200) * 2) }), ['h4', 'h5']);
    // A window reaching back to `since` and some seconds more: h3 to h5, never h1 and h2.
    const seconds = () => String(Math.ceil((serverNow() - Date.parse(since)) / 1000) + 10);
    assert.deepEqual(await rejoin({ seconds: seconds() }), ['h3', 'h4', 'h5']);
    assert.deepEqual(await rejoin({ since }), ['h3', 'h4', 'h5']);
    assert.deepEqual(await rejoin({ since, maxstanzas: '2' }), ['h4', 'h5']);
    assert.deepEqual(await rejoin({ seconds: '3600', maxstanzas: '10' }), ['h1', 'h2', 'h3', 'h4', 'h5']);
    await stopAll(sys(), alice, bob);
  });

  test('bounds: a newcomer gets 20, a rejoining member at most the room’s history length', async () => {
    const room = `bounds@${SERVICE}`;
    const alice = await goOnline(sys(), 'alice@localhost', 'pw');
    await createRoom(alice, room, 'Alice', { 'muc#maxhistoryfetch': '25' });
    const bob = await goOnline(sys(), 'bob@localhost', 'pw');
    await joined(bob, room, 'Bob');
    await leave(bob, `${room}/Bob`);
    await waitForStanza(alice.stanzas, isPresenceFrom(`${room}/Bob`, 'unavailable'));
    const posted = Array.from({ length: 30 }, (_, index) => `b${index}`);
    for (const body of posted) await say(alice, room, body);
    await waitForStanza(alice.stanzas, isGroupBody('b29'));
    bob.stanzas.length = 0;
    await joined(bob, room, 'Bob');
    assert.deepEqual(bodies(bob.stanzas, room), posted.slice(5), 'the newest 25 of the 30 missed');
    const carol = await goOnline(sys(), 'carol@localhost', 'pw');
    await joined(carol, room, 'Carol');
    assert.deepEqual(bodies(carol.stanzas, room), posted.slice(10), 'a newcomer gets 20');
    await stopAll(sys(), alice, bob, carol);
  });

  test('members-only: refused without membership; an invitation to an offline user grants it', async () => {
    const room = `private@${SERVICE}`;
    const alice = await goOnline(sys(), 'alice@localhost', 'pw');
    await createRoom(alice, room, 'Alice', {
      'muc#roomconfig_membersonly': '1',
      'muc#roomconfig_publicroom': '0',
    });
    const carol = await goOnline(sys(), 'carol@localhost', 'pw');
    await join(carol, `${room}/Carol`);
    await waitForStanza(carol.stanzas, isErrorFrom(`${room}/Carol`, 'registration-required'));
    await stopAll(sys(), carol);

    // Dave is offline: the invitation waits for his next session.
    await alice.xmpp.send(
      xml(
        'message',
        { to: room },
        xml('x', { xmlns: MUC_USER }, xml('invite', { to: 'dave@localhost' }, xml('reason', {}, 'join us'))),
      ),
    );
    await eventually(async () => (await waiting(sys(), 'dave@localhost')) === 1);
    const dave = await goOnline(sys(), 'dave@localhost', 'pw');
    const invitation = await waitForStanza(
      dave.stanzas,
      (s) => s.getChild('x', MUC_USER)?.getChild('invite') !== undefined,
    );
    assert.equal(invitation.attrs.from, room);
    assert.equal(invitation.getChild('x', MUC_USER)?.getChild('invite')?.attrs.from, 'alice@localhost');
    await joined(dave, room, 'Dave');
    await say(dave, room, 'thanks');
    await waitForStanza(alice.stanzas, isGroupBody('thanks'));
    const members = await iq(
      alice,
      'get',
      room,
      xml('query', { xmlns: MUC_ADMIN }, xml('item', { affiliation: 'member' })),
    );
    assert.deepEqual(
      members
        .getChild('query', MUC_ADMIN)
        ?.getChildren('item')
        .map((item) => item.attrs.jid),
      ['dave@localhost'],
    );
    await stopAll(sys(), alice, dave);
  });

  test('kick and ban; affiliations; a full room', async () => {
    const room = `strict@${SERVICE}`;
    const alice = await goOnline(sys(), 'alice@localhost', 'pw');
    await createRoom(alice, room, 'Alice', { 'muc#roomconfig_maxusers': '3' });
    const bob = await goOnline(sys(), 'bob@localhost', 'pw');
    const carol = await goOnline(sys(), 'carol@localhost', 'pw');
    await joined(bob, room, 'Bob');
    await joined(carol, room, 'Carol');

    const dave = await goOnline(sys(), 'dave@localhost', 'pw');
    await join(dave, `${room}/Dave`);
    await waitForStanza(dave.stanzas, isErrorFrom(`${room}/Dave`, 'service-unavailable'));

    // Bob is not a moderator: he may not kick.
    const denied = await iq(
      bob,
      'set',
      room,
      xml('query', { xmlns: MUC_ADMIN }, xml('item', { nick: 'Carol', role: 'none' })),
    );
    assert.equal(denied.attrs.type, 'error');

    const kick = await iq(
      alice,
      'set',
      room,
      xml('query', { xmlns: MUC_ADMIN }, xml('item', { nick: 'Bob', role: 'none' })),
    );
    assert.equal(kick.attrs.type, 'result');
    const kicked = await waitForStanza(bob.stanzas, isPresenceFrom(`${room}/Bob`, 'unavailable'));
    assert.ok(statuses(kicked).includes('307'));
    const seen = await waitForStanza(carol.stanzas, isPresenceFrom(`${room}/Bob`, 'unavailable'));
    assert.ok(statuses(seen).includes('307'));
    await joined(bob, room, 'Bob'); // a kick is not a ban

    const ban = await iq(
      alice,
      'set',
      room,
      xml('query', { xmlns: MUC_ADMIN }, xml('item', { jid: 'carol@localhost', affiliation: 'outcast' })),
    );
    assert.equal(ban.attrs.type, 'result');
    const banned = await waitForStanza(carol.stanzas, isPresenceFrom(`${room}/Carol`, 'unavailable'));
    assert.ok(statuses(banned).includes('301'));
    await join(carol, `${room}/Carol`);
    await waitForStanza(carol.stanzas, isErrorFrom(`${room}/Carol`, 'forbidden'));

    // Making Bob an admin makes him a moderator, announced to the room.
    await iq(
      alice,
      'set',
      room,
      xml('query', { xmlns: MUC_ADMIN }, xml('item', { jid: 'bob@localhost', affiliation: 'admin' })),
    );
    const promoted = await waitForStanza(
      alice.stanzas,
      (s) =>
        isPresenceFrom(`${room}/Bob`)(s) &&
        s.getChild('x', MUC_USER)?.getChild('item')?.attrs.role === 'moderator',
    );
    assert.equal(promoted.getChild('x', MUC_USER)?.getChild('item')?.attrs.affiliation, 'admin');
    await stopAll(sys(), alice, bob, carol, dave);
  });
});
