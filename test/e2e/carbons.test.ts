// XEP-0280 Message Carbons with real xmpp.js clients: alice has a laptop and a phone with
// carbons on and a tablet without; bob writes to her and she to him.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { xml } from '@xmpp/client';
import type { Element } from 'ltx';
import type { LocalSystem } from '../../infra/local/system.ts';
import { addUser, goOnline, roundTrip, useLocalSystem, waitForStanza } from '../helpers.ts';

const CARBONS = 'urn:xmpp:carbons:2';
const FORWARD = 'urn:xmpp:forward:0';
const SID = 'urn:xmpp:sid:0';
const ACK = 'urn:serverless-xmpp:ack:0';
const RECEIPTS = 'urn:xmpp:receipts';
const DISCO_INFO = 'http://jabber.org/protocol/disco#info';

type Session = Awaited<ReturnType<typeof goOnline>>;

const chat = (to: string, id: string, body: string, ...extra: Element[]) =>
  xml('message', { type: 'chat', to, id }, xml('body', {}, body), ...extra);
const isBody = (body: string) => (stanza: Element) =>
  stanza.name === 'message' && stanza.getChildText('body') === body;
/** A carbon (`received` or `sent`) whose forwarded message has `body`. */
const isCarbon = (kind: 'received' | 'sent', body: string) => (stanza: Element) =>
  stanza.name === 'message' &&
  stanza
    .getChild(kind, CARBONS)
    ?.getChild('forwarded', FORWARD)
    ?.getChild('message')
    ?.getChildText('body') === body;
const carbonsOf = (session: Session) =>
  session.stanzas.filter(
    (stanza) => stanza.getChild('received', CARBONS) || stanza.getChild('sent', CARBONS),
  );
const mentions = (session: Session, text: string) =>
  session.stanzas.some((stanza) => stanza.toString().includes(text));

let counter = 0;
async function iq(session: Session, type: 'get' | 'set', payload: Element, to?: string): Promise<Element> {
  const id = `iq-${++counter}`;
  await session.xmpp.send(xml('iq', { type, id, to }, payload));
  return waitForStanza(session.stanzas, (stanza) => stanza.name === 'iq' && stanza.attrs.id === id);
}

describe('message carbons (XEP-0280)', () => {
  const system = useLocalSystem();
  const sys = (): LocalSystem => system();
  let laptop: Session;
  let phone: Session;
  let tablet: Session;
  let bob: Session;

  /** Everything sent so far has been handled, and everything posted has arrived. */
  const settle = async () => {
    await sys().api.idle();
    for (const session of [laptop, phone, tablet, bob]) await roundTrip(session);
  };

  test('setup: the server advertises carbons; the laptop and the phone enable them', async () => {
    await addUser(sys(), 'alice@localhost', 'pw');
    await addUser(sys(), 'bob@localhost', 'pw');
    laptop = await goOnline(sys(), 'alice@localhost', 'pw', 'laptop');
    phone = await goOnline(sys(), 'alice@localhost', 'pw', 'phone');
    tablet = await goOnline(sys(), 'alice@localhost', 'pw', 'tablet');
    bob = await goOnline(sys(), 'bob@localhost', 'pw', 'desk');
    const info = await iq(laptop, 'get', xml('query', { xmlns: DISCO_INFO }), 'localhost');
    assert.ok(
      info
        .getChild('query')
        ?.getChildren('feature')
        .some((f) => f.attrs.var === CARBONS),
    );
    for (const session of [laptop, phone]) {
      assert.equal((await iq(session, 'set', xml('enable', { xmlns: CARBONS }))).attrs.type, 'result');
    }
  });

  test('to one resource: the other sessions with carbons get a <received/> copy', async () => {
    await bob.xmpp.send(chat('alice@localhost/laptop', 'r1', 'for the laptop'));
    await waitForStanza(laptop.stanzas, isBody('for the laptop'));
    const copy = await waitForStanza(phone.stanzas, isCarbon('received', 'for the laptop'));
    assert.equal(copy.attrs.from, 'alice@localhost');
    assert.equal(copy.attrs.to, 'alice@localhost/phone');
    const inner = copy.getChild('received', CARBONS)?.getChild('forwarded', FORWARD)?.getChild('message');
    assert.equal(inner?.attrs.from, 'bob@localhost/desk');
    assert.equal(inner?.attrs.to, 'alice@localhost/laptop');
    assert.ok(inner?.getChild('stanza-id', SID), 'the copy carries the stanza-id the laptop got');
    await settle();
    assert.ok(!mentions(tablet, 'for the laptop'), 'no carbons without enabling them');
    assert.equal(carbonsOf(laptop).length, 0, 'the session that got the message gets no copy of it');
  });

  test('a copy carries the text as it was, `$&` and all', async () => {
    const tricky = "costs $& and $' and $$";
    await bob.xmpp.send(chat('alice@localhost/laptop', 'r0', tricky));
    await waitForStanza(laptop.stanzas, isBody(tricky));
    await waitForStanza(phone.stanzas, isCarbon('received', tricky));
  });

  test('to the bare JID: every available session gets the message itself, nobody a copy', async () => {
    await bob.xmpp.send(chat('alice@localhost', 'r2', 'for everyone'));
    for (const session of [laptop, phone, tablet])
      await waitForStanza(session.stanzas, isBody('for everyone'));
    await settle();
    for (const session of [laptop, phone, tablet])
      assert.ok(!session.stanzas.some(isCarbon('received', 'for everyone')));
  });

  test('sent from the laptop: the phone gets a <sent/> copy with the archive id', async () => {
    await laptop.xmpp.send(chat('bob@localhost', 's1', 'from my laptop'));
    const ack = await waitForStanza(
      laptop.stanzas,
      (stanza) => stanza.getChild('ack', ACK)?.attrs.id === 's1',
    );
    await waitForStanza(bob.stanzas, isBody('from my laptop'));
    const copy = await waitForStanza(phone.stanzas, isCarbon('sent', 'from my laptop'));
    const inner = copy.getChild('sent', CARBONS)?.getChild('forwarded', FORWARD)?.getChild('message');
    assert.equal(inner?.attrs.from, 'alice@localhost/laptop');
    assert.equal(inner?.attrs.to, 'bob@localhost');
    const sid = inner?.getChildren('stanza-id', SID).find((child) => child.attrs.by === 'alice@localhost');
    assert.equal(sid?.attrs.id, ack.getChild('stanza-id', SID)?.attrs.id);
    await settle();
    assert.ok(!laptop.stanzas.some(isCarbon('sent', 'from my laptop')));
    assert.ok(!mentions(tablet, 'from my laptop'));
  });

  test('a receipt to the laptop reaches the phone as a <received/> copy', async () => {
    await bob.xmpp.send(
      xml(
        'message',
        { to: 'alice@localhost/laptop', type: 'chat' },
        xml('received', { xmlns: RECEIPTS, id: 's1' }),
      ),
    );
    await waitForStanza(laptop.stanzas, (stanza) => stanza.getChild('received', RECEIPTS)?.attrs.id === 's1');
    await waitForStanza(
      phone.stanzas,
      (stanza) =>
        stanza
          .getChild('received', CARBONS)
          ?.getChild('forwarded', FORWARD)
          ?.getChild('message')
          ?.getChild('received', RECEIPTS)?.attrs.id === 's1',
    );
  });

  test('<private/> is not copied, and not passed on', async () => {
    await laptop.xmpp.send(
      chat(
        'bob@localhost',
        'p1',
        'just between us',
        xml('private', { xmlns: CARBONS }),
        xml('no-copy', { xmlns: 'urn:xmpp:hints' }),
      ),
    );
    const got = await waitForStanza(bob.stanzas, isBody('just between us'));
    assert.equal(got.getChild('private', CARBONS), undefined);
    await settle();
    assert.ok(!mentions(phone, 'just between us'));
  });

  test('disabled on the phone: no more copies', async () => {
    assert.equal((await iq(phone, 'set', xml('disable', { xmlns: CARBONS }))).attrs.type, 'result');
    await bob.xmpp.send(chat('alice@localhost/laptop', 'r3', 'laptop only now'));
    await waitForStanza(laptop.stanzas, isBody('laptop only now'));
    await laptop.xmpp.send(chat('bob@localhost', 's2', 'and no copy of this'));
    await waitForStanza(bob.stanzas, isBody('and no copy of this'));
    await settle();
    assert.ok(!mentions(phone, 'laptop only now'));
    assert.ok(!mentions(phone, 'and no copy of this'));
  });

  test('teardown', async () => {
    for (const session of [laptop, phone, tablet, bob]) {
      await session.xmpp.stop();
      await sys().api.idle();
    }
  });
});
