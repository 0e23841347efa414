// XEP-0313 Message Archive Management with real xmpp.js clients: what is archived (both
// sides, one id everywhere), queries (with, start, end, ids, before-id, after-id), RSM
// paging, preferences, errors, room archives, and the archive turned off.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { xml } from '@xmpp/client';
import type { Element } from 'ltx';
import type { LocalSystem } from '../../infra/local/system.ts';
import { addUser, befriend, goOnline, useLocalSystem, waitForStanza } from '../helpers.ts';

const MAM = 'urn:xmpp:mam:2';
const RSM = 'http://jabber.org/protocol/rsm';
const FORWARD = 'urn:xmpp:forward:0';
const SID = 'urn:xmpp:sid:0';
const ACK = 'urn:serverless-xmpp:ack:0';
const RECEIPTS = 'urn:xmpp:receipts';
const DELAY = 'urn:xmpp:delay';
const DISCO_INFO = 'http://jabber.org/protocol/disco#info';
const MUC = 'http://jabber.org/protocol/muc';
const MUC_OWNER = 'http://jabber.org/protocol/muc#owner';
const SERVICE = 'conference.localhost';

type Session = Awaited<ReturnType<typeof goOnline>>;

const chat = (to: string, id: string, body: string) =>
  xml('message', { type: 'chat', to, id }, xml('body', {}, body), xml('request', { xmlns: RECEIPTS }));
const isAckFor = (id: string) => (stanza: Element) => stanza.getChild('ack', ACK)?.attrs.id === id;
const isBody = (body: string) => (stanza: Element) =>
  stanza.name === 'message' && stanza.getChildText('body') === body;

let counter = 0;

/** Sends an iq and waits for its answer (result or error), whatever it is. */
async function iq(session: Session, type: 'get' | 'set', payload: Element, to?: string): Promise<Element> {
  const id = `iq-${++counter}`;
  await session.xmpp.send(xml('iq', { type, id, to }, payload));
  return waitForStanza(session.stanzas, (stanza) => stanza.name === 'iq' && stanza.attrs.id === id);
}

const errorOf = (answer: Element) =>
  answer.attrs.type === 'error' ? answer.getChild('error')?.getChildElements()[0]?.name : undefined;

interface Query {
  fields?: Record<string, string | string[]>;
  max?: number;
  after?: string;
  before?: string; // '' for the last page
  flip?: boolean;
  to?: string;
}

/** A MAM query: the forwarded messages it brought, and the iq answer (with <fin/>). */
async function query(session: Session, q: Query = {}) {
  const queryId = `q-${++counter}`;
  const fields = Object.entries(q.fields ?? {}).map(([name, value]) =>
    xml('field', { var: name }, ...(Array.isArray(value) ? value : [value]).map((v) => xml('value', {}, v))),
  );
  const rsm: Element[] = [];
  if (q.max !== undefined) rsm.push(xml('max', {}, String(q.max)));
  if (q.after !== undefined) rsm.push(xml('after', {}, q.after));
  if (q.before !== undefined) rsm.push(xml('before', {}, q.before));
  const children: Element[] = [];
  if (fields.length > 0)
    children.push(
      xml(
        'x',
        { xmlns: 'jabber:x:data', type: 'submit' },
        xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, MAM)),
        ...fields,
      ),
    );
  if (rsm.length > 0) children.push(xml('set', { xmlns: RSM }, ...rsm));
  if (q.flip) children.push(xml('flip-page'));
  const payload = xml('query', { xmlns: MAM, queryid: queryId }, ...children);
  const answer = await iq(session, 'set', payload, q.to);
  const results = session.stanzas.filter(
    (stanza) => stanza.name === 'message' && stanza.getChild('result', MAM)?.attrs.queryid === queryId,
  );
  const fin = answer.getChild('fin', MAM);
  return {
    answer,
    results,
    ids: results.map((stanza) => stanza.getChild('result', MAM)?.attrs.id as string),
    bodies: results.map((stanza) => forwarded(stanza)?.getChildText('body')),
    complete: fin?.attrs.complete === 'true',
    first: fin?.getChild('set', RSM)?.getChildText('first') ?? undefined,
    last: fin?.getChild('set', RSM)?.getChildText('last') ?? undefined,
    count: fin?.getChild('set', RSM)?.getChildText('count') ?? undefined,
  };
}

const forwarded = (result: Element) =>
  result.getChild('result', MAM)?.getChild('forwarded', FORWARD)?.getChild('message');

describe('message archive (XEP-0313)', () => {
  const system = useLocalSystem();
  const sys = (): LocalSystem => system();
  let alice: Session;
  let bob: Session;
  /** The ids of alice's first five messages to bob, as her server receipts gave them. */
  const ackIds: string[] = [];
  const bobSawIds: string[] = [];

  test('setup', async () => {
    for (const user of ['alice', 'bob', 'carol', 'dora', 'eve'])
      await addUser(sys(), `${user}@localhost`, 'pw');
    alice = await goOnline(sys(), 'alice@localhost', 'pw', 'laptop');
    bob = await goOnline(sys(), 'bob@localhost', 'pw', 'phone');
  });

  test('the account advertises mam:2, #extended and stanza ids', async () => {
    const info = await iq(alice, 'get', xml('query', { xmlns: DISCO_INFO }), 'alice@localhost');
    const features = info
      .getChild('query')
      ?.getChildren('feature')
      .map((f) => f.attrs.var);
    for (const feature of [MAM, `${MAM}#extended`, SID]) assert.ok(features?.includes(feature), feature);
    const form = await iq(alice, 'get', xml('query', { xmlns: MAM }));
    const vars = form
      .getChild('query', MAM)
      ?.getChild('x', 'jabber:x:data')
      ?.getChildren('field')
      .map((f) => f.attrs.var);
    assert.deepEqual(vars, ['FORM_TYPE', 'with', 'start', 'end', 'before-id', 'after-id', 'ids']);
  });

  test('both sides archive each chat message under the one id the receipt and the push carried', async () => {
    for (let i = 1; i <= 5; i++) {
      await alice.xmpp.send(chat('bob@localhost', `a${i}`, `hello ${i}`));
      const ack = await waitForStanza(alice.stanzas, isAckFor(`a${i}`));
      ackIds.push(ack.getChild('stanza-id', SID)?.attrs.id as string);
      const pushed = await waitForStanza(bob.stanzas, isBody(`hello ${i}`));
      bobSawIds.push(pushed.getChild('stanza-id', SID)?.attrs.id as string);
      await bob.xmpp.send(
        xml(
          'message',
          { to: pushed.attrs.from, type: 'chat' },
          xml('received', { xmlns: RECEIPTS, id: `a${i}` }),
        ),
      );
    }
    await bob.xmpp.send(chat('alice@localhost', 'b1', 'hi alice'));
    await waitForStanza(alice.stanzas, isBody('hi alice'));
    assert.deepEqual(bobSawIds, ackIds);

    const mine = await query(alice);
    assert.deepEqual(mine.bodies, ['hello 1', 'hello 2', 'hello 3', 'hello 4', 'hello 5', 'hi alice']);
    assert.deepEqual(mine.ids.slice(0, 5), ackIds);
    assert.ok(mine.complete);
    assert.equal(mine.count, '6');
    const first = mine.results[0] as Element;
    assert.equal(first.attrs.to, alice.jid);
    assert.ok(
      first.getChild('result', MAM)?.getChild('forwarded', FORWARD)?.getChild('delay', DELAY)?.attrs.stamp,
    );
    assert.equal(forwarded(first)?.attrs.from, 'alice@localhost/laptop');
    assert.equal(forwarded(first)?.attrs.to, 'bob@localhost');

    const theirs = await query(bob);
    assert.deepEqual(theirs.ids, mine.ids);
    // Receipts, chat states and server acks are not archived.
    assert.ok(theirs.bodies.every((body) => body !== undefined && body !== null));
  });

  test('messages stored for an offline user are archived on both sides too', async () => {
    await alice.xmpp.send(chat('carol@localhost', 'c1', 'carol is away'));
    await waitForStanza(alice.stanzas, isAckFor('c1'));
    const carol = await goOnline(sys(), 'carol@localhost', 'pw');
    await waitForStanza(carol.stanzas, isBody('carol is away'));
    assert.deepEqual((await query(carol)).bodies, ['carol is away']);
    await carol.xmpp.stop();
  });

  test('with: a bare JID, or a full JID for one resource', async () => {
    assert.deepEqual((await query(alice, { fields: { with: 'carol@localhost' } })).bodies, ['carol is away']);
    assert.equal((await query(alice, { fields: { with: 'bob@localhost' } })).bodies.length, 6);
    // bob's message came from his phone; alice's went to his bare JID.
    assert.deepEqual((await query(alice, { fields: { with: 'bob@localhost/phone' } })).bodies, ['hi alice']);
  });

  test('RSM: pages forwards, the last page with an empty before, flipped pages, count only when whole', async () => {
    const page1 = await query(alice, { max: 2 });
    assert.deepEqual(page1.bodies, ['hello 1', 'hello 2']);
    assert.equal(page1.complete, false);
    assert.equal(page1.count, undefined);
    assert.equal(page1.first, ackIds[0]);
    assert.equal(page1.last, ackIds[1]);
    const page2 = await query(alice, { max: 2, after: page1.last });
    assert.deepEqual(page2.bodies, ['hello 3', 'hello 4']);
    const lastPage = await query(alice, { max: 2, before: '' });
    assert.deepEqual(lastPage.bodies, ['hi alice', 'carol is away']);
    assert.equal(lastPage.complete, false);
    const earlier = await query(alice, { max: 2, before: lastPage.first });
    assert.deepEqual(earlier.bodies, ['hello 4', 'hello 5']);
    const flipped = await query(alice, { max: 2, after: page1.last, flip: true });
    assert.deepEqual(flipped.bodies, ['hello 4', 'hello 3']);
    const none = await query(alice, { max: 0 });
    assert.deepEqual(none.bodies, []);
  });

  test('before-id, after-id, ids, start and end', async () => {
    const range = await query(alice, {
      fields: { 'after-id': ackIds[0] as string, 'before-id': ackIds[3] as string },
    });
    assert.deepEqual(range.bodies, ['hello 2', 'hello 3']);
    const picked = await query(alice, { fields: { ids: [ackIds[4] as string, ackIds[1] as string] } });
    assert.deepEqual(picked.bodies, ['hello 2', 'hello 5']);
    const future = await query(alice, { fields: { start: new Date(Date.now() + 3_600_000).toISOString() } });
    assert.deepEqual(future.bodies, []);
    assert.ok(future.complete);
    const past = await query(alice, { fields: { end: '2020-01-01T00:00:00Z' } });
    assert.deepEqual(past.bodies, []);
    const all = await query(alice, {
      fields: { start: '2020-01-01T00:00:00Z', end: new Date(Date.now() + 60_000).toISOString() },
    });
    assert.equal(all.bodies.length, 7);
  });

  test('metadata: the first and the last message', async () => {
    const answer = await iq(alice, 'get', xml('metadata', { xmlns: MAM }));
    const metadata = answer.getChild('metadata', MAM);
    assert.equal(metadata?.getChild('start')?.attrs.id, ackIds[0]);
    const all = await query(alice);
    assert.equal(metadata?.getChild('end')?.attrs.id, all.ids[all.ids.length - 1]);
    assert.ok(metadata?.getChild('start')?.attrs.timestamp);
  });

  test('errors: an unknown field, a bad date, an unknown id, someone else’s archive', async () => {
    assert.equal(
      errorOf((await query(alice, { fields: { 'urn:example:x': 'y' } })).answer),
      'feature-not-implemented',
    );
    assert.equal(errorOf((await query(alice, { fields: { start: 'yesterday' } })).answer), 'bad-request');
    assert.equal(errorOf((await query(alice, { max: 2, after: 'no-such-id' })).answer), 'item-not-found');
    assert.equal(
      errorOf((await query(alice, { max: 2, after: '0000000000000aaaaaaaa' })).answer),
      'item-not-found',
    );
    assert.equal(
      errorOf((await query(alice, { fields: { ids: ['0000000000000aaaaaaaa'] } })).answer),
      'item-not-found',
    );
    assert.equal(errorOf((await query(alice, { fields: { with: '@localhost' } })).answer), 'jid-malformed');
    assert.equal(errorOf((await query(alice, { fields: { 'after-id': '~x' } })).answer), 'item-not-found');
    assert.equal(errorOf((await query(alice, { fields: { 'before-id': 'é' } })).answer), 'item-not-found');
    // Bob's archive, asked by alice: the same answer whether or not bob exists, and nothing sent.
    const theirs = await query(alice, { to: 'bob@localhost' });
    assert.equal(errorOf(theirs.answer), 'service-unavailable');
    assert.equal(theirs.results.length, 0);
    assert.equal(errorOf((await query(alice, { to: 'nobody@localhost' })).answer), 'service-unavailable');
  });

  test('preferences: default never with carol always; bob still archives his side', async () => {
    const initial = await iq(alice, 'get', xml('prefs', { xmlns: MAM }));
    assert.equal(initial.getChild('prefs', MAM)?.attrs.default, 'always');
    const set = await iq(
      alice,
      'set',
      xml(
        'prefs',
        { xmlns: MAM, default: 'never' },
        xml('always', {}, xml('jid', {}, 'carol@localhost')),
        xml('never'),
      ),
    );
    assert.equal(set.attrs.type, 'result');
    assert.deepEqual(
      set
        .getChild('prefs', MAM)
        ?.getChild('always')
        ?.getChildren('jid')
        .map((jid) => jid.getText()),
      ['carol@localhost'],
    );
    await alice.xmpp.send(chat('bob@localhost', 'p1', 'off the record'));
    await waitForStanza(alice.stanzas, isAckFor('p1'));
    await alice.xmpp.send(chat('carol@localhost', 'p2', 'on the record'));
    await waitForStanza(alice.stanzas, isAckFor('p2'));
    const mine = (await query(alice)).bodies;
    assert.ok(!mine.includes('off the record'));
    assert.ok(mine.includes('on the record'));
    assert.ok((await query(bob)).bodies.includes('off the record'));
    const bad = await iq(alice, 'set', xml('prefs', { xmlns: MAM, default: 'sometimes' }));
    assert.equal(errorOf(bad), 'bad-request');
    // Back to the default for the tests below.
    await iq(alice, 'set', xml('prefs', { xmlns: MAM, default: 'always' }));
  });

  test('preferences: roster archives only contacts in the roster', async () => {
    await befriend(sys(), 'alice@localhost', 'carol@localhost');
    assert.equal(
      (await iq(alice, 'set', xml('prefs', { xmlns: MAM, default: 'roster' }))).attrs.type,
      'result',
    );
    await alice.xmpp.send(chat('bob@localhost', 'r1', 'bob is no contact'));
    await waitForStanza(alice.stanzas, isAckFor('r1'));
    await alice.xmpp.send(chat('carol@localhost', 'r2', 'carol is a contact'));
    await waitForStanza(alice.stanzas, isAckFor('r2'));
    const mine = (await query(alice)).bodies;
    assert.ok(!mine.includes('bob is no contact'));
    assert.ok(mine.includes('carol is a contact'));
    await iq(alice, 'set', xml('prefs', { xmlns: MAM, default: 'always' }));
  });

  test('a hint keeps a message out; chat states are not archived', async () => {
    await alice.xmpp.send(
      xml(
        'message',
        { type: 'chat', to: 'bob@localhost', id: 'h1' },
        xml('body', {}, 'forget me'),
        xml('no-store', { xmlns: 'urn:xmpp:hints' }),
      ),
    );
    await waitForStanza(bob.stanzas, isBody('forget me'));
    await alice.xmpp.send(
      xml(
        'message',
        { type: 'chat', to: 'bob@localhost' },
        xml('composing', { xmlns: 'http://jabber.org/protocol/chatstates' }),
      ),
    );
    await alice.xmpp.send(chat('bob@localhost', 'h2', 'remember me'));
    await waitForStanza(bob.stanzas, isBody('remember me'));
    const theirs = (await query(bob)).bodies;
    assert.ok(!theirs.includes('forget me'));
    assert.equal(theirs[theirs.length - 1], 'remember me');
  });

  test('a new account of a removed name sees nothing of the old one’s archive', async () => {
    const dora = await goOnline(sys(), 'dora@localhost', 'pw');
    await dora.xmpp.send(chat('eve@localhost', 'd1', 'secret of the first dora'));
    await waitForStanza(dora.stanzas, isAckFor('d1'));
    assert.equal((await query(dora)).bodies.length, 1);
    // Removed from the store (as `npm run users -- delete` does) while her session is still open.
    await sys().context.store.purgeAccount('dora@localhost');
    // The same name registered again, a moment later.
    await addUser(sys(), 'dora@localhost', 'pw2');
    // The old session reads nothing, not even the new account's archive.
    assert.equal(errorOf((await query(dora)).answer), 'service-unavailable');
    await dora.xmpp.stop();
    await sys().api.idle();
    const second = await goOnline(sys(), 'dora@localhost', 'pw2');
    const result = await query(second);
    assert.deepEqual(result.bodies, []);
    assert.ok(result.complete);
    await second.xmpp.stop();
  });

  test('room archive: queried at the room, members-only rooms for members, off when configured', async () => {
    const room = `history@${SERVICE}`;
    const join = async (session: Session, nick: string) => {
      await session.xmpp.send(xml('presence', { to: `${room}/${nick}` }, xml('x', { xmlns: MUC })));
      await waitForStanza(
        session.stanzas,
        (stanza) =>
          stanza.name === 'message' &&
          stanza.attrs.from?.startsWith(room) &&
          stanza.getChild('subject') !== undefined,
      );
    };
    await join(alice, 'al');
    const configured = await iq(
      alice,
      'set',
      xml('query', { xmlns: MUC_OWNER }, xml('x', { xmlns: 'jabber:x:data', type: 'submit' })),
      room,
    );
    assert.equal(configured.attrs.type, 'result');
    await join(bob, 'bo');
    for (const [session, body] of [
      [alice, 'room one'],
      [bob, 'room two'],
      [alice, 'room three'],
    ] as const) {
      await session.xmpp.send(xml('message', { to: room, type: 'groupchat' }, xml('body', {}, body)));
      await waitForStanza(
        alice.stanzas,
        (stanza) => stanza.attrs.type === 'groupchat' && stanza.getChildText('body') === body,
      );
    }
    const info = await iq(bob, 'get', xml('query', { xmlns: DISCO_INFO }), room);
    assert.ok(
      info
        .getChild('query')
        ?.getChildren('feature')
        .some((f) => f.attrs.var === MAM),
    );

    const all = await query(bob, { to: room });
    assert.deepEqual(all.bodies, ['room one', 'room two', 'room three']);
    assert.equal(all.results[0]?.attrs.from, room);
    assert.equal(forwarded(all.results[0] as Element)?.attrs.from, `${room}/al`);
    const byAl = await query(bob, { to: room, fields: { with: `${room}/al` } });
    assert.deepEqual(byAl.bodies, ['room one', 'room three']);
    const lastOne = await query(bob, { to: room, max: 1, before: '' });
    assert.deepEqual(lastOne.bodies, ['room three']);

    // A non-member may read an open room's archive, not a members-only one's.
    const carol = await goOnline(sys(), 'carol@localhost', 'pw', 'tablet');
    assert.equal((await query(carol, { to: room })).bodies.length, 3);
    const form = (fields: Record<string, string>) =>
      xml(
        'query',
        { xmlns: MUC_OWNER },
        xml(
          'x',
          { xmlns: 'jabber:x:data', type: 'submit' },
          ...Object.entries(fields).map(([name, value]) =>
            xml('field', { var: name }, xml('value', {}, value)),
          ),
        ),
      );
    assert.equal(
      (await iq(alice, 'set', form({ 'muc#roomconfig_membersonly': '1' }), room)).attrs.type,
      'result',
    );
    assert.equal(errorOf((await query(carol, { to: room })).answer), 'forbidden');
    assert.equal(
      (await iq(alice, 'set', form({ 'muc#roomconfig_enablearchiving': '0' }), room)).attrs.type,
      'result',
    );
    assert.equal(errorOf((await query(alice, { to: room })).answer), 'service-unavailable');
    const offInfo = await iq(alice, 'get', xml('query', { xmlns: DISCO_INFO }), room);
    assert.ok(
      !offInfo
        .getChild('query')
        ?.getChildren('feature')
        .some((f) => f.attrs.var === MAM),
    );
    await carol.xmpp.stop();
  });

  test('teardown', async () => {
    await alice.xmpp.stop();
    await sys().api.idle();
    await bob.xmpp.stop();
  });
});

describe('the archive turned off (archiveDays 0)', () => {
  const system = useLocalSystem({ config: { archiveDays: 0 } });

  test('not advertised, queries refused, messages still flow', async () => {
    await addUser(system(), 'quiet@localhost', 'pw');
    await addUser(system(), 'other@localhost', 'pw');
    const quiet = await goOnline(system(), 'quiet@localhost', 'pw');
    const other = await goOnline(system(), 'other@localhost', 'pw');
    const info = await iq(quiet, 'get', xml('query', { xmlns: DISCO_INFO }), 'quiet@localhost');
    assert.ok(
      !info
        .getChild('query')
        ?.getChildren('feature')
        .some((f) => f.attrs.var === MAM),
    );
    await quiet.xmpp.send(chat('other@localhost', 'x1', 'not kept'));
    await waitForStanza(other.stanzas, isBody('not kept'));
    assert.equal(errorOf((await query(quiet)).answer), 'service-unavailable');
    await quiet.xmpp.stop();
    await system().api.idle();
    await other.xmpp.stop();
  });
});
