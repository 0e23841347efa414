// XEP-0352 Client State Indication with real xmpp.js clients: alice's phone goes inactive
// while bob, her contact, changes his presence and types; what reaches the phone, what
// waits for <active/>, and how many posts that saves.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { xml } from '@xmpp/client';
import type { Element } from 'ltx';
import type { LocalSystem } from '../../infra/local/system.ts';
import {
  addUser,
  befriend,
  goOnline,
  RawClient,
  roundTrip,
  useLocalSystem,
  waitForStanza,
} from '../helpers.ts';

const CSI = 'urn:xmpp:csi:0';
const CHAT_STATES = 'http://jabber.org/protocol/chatstates';
const RECEIPTS = 'urn:xmpp:receipts';
const SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';

type Session = Awaited<ReturnType<typeof goOnline>>;

const inactive = () => xml('inactive', { xmlns: CSI });
const active = () => xml('active', { xmlns: CSI });
const status = (text: string) => xml('presence', {}, xml('status', {}, text));
const composing = (to: string) =>
  xml('message', { to, type: 'chat' }, xml('composing', { xmlns: CHAT_STATES }));
const isBody = (body: string) => (stanza: Element) =>
  stanza.name === 'message' && stanza.getChildText('body') === body;
/** Available presence from `from` with this status text (any status when none is given). */
const isPresence = (from: string, text?: string) => (stanza: Element) =>
  stanza.name === 'presence' &&
  stanza.attrs.type === undefined &&
  stanza.attrs.from === from &&
  (text === undefined || stanza.getChildText('status') === text);
const isComposing = (stanza: Element) =>
  stanza.name === 'message' && stanza.getChild('composing', CHAT_STATES) !== undefined;

/** PLAIN, so that the test sees each step. */
const plain = (local: string, password: string) =>
  `<auth xmlns="${SASL}" mechanism="PLAIN">${Buffer.from(`\0${local}\0${password}`).toString('base64')}</auth>`;

describe('client state indication (XEP-0352)', () => {
  const system = useLocalSystem();
  const sys = (): LocalSystem => system();
  let phone: Session;
  let bob: Session;
  let carol: Session;

  /** Everything sent so far has been handled, and everything posted has arrived. */
  const settle = async () => {
    await sys().api.idle();
    for (const session of [phone, bob, carol]) await roundTrip(session);
  };

  test('setup: alice and bob are contacts, both online; carol is not their contact', async () => {
    for (const user of ['alice', 'bob', 'carol']) await addUser(sys(), `${user}@localhost`, 'pw');
    await befriend(sys(), 'alice@localhost', 'bob@localhost');
    bob = await goOnline(sys(), 'bob@localhost', 'pw', 'desk');
    phone = await goOnline(sys(), 'alice@localhost', 'pw', 'phone');
    carol = await goOnline(sys(), 'carol@localhost', 'pw', 'home');
    await waitForStanza(phone.stanzas, isPresence('bob@localhost/desk'));
  });

  test('the features after authentication offer csi beside bind; those before it do not', async () => {
    const raw = await RawClient.connect(sys().url);
    const before = await raw.open();
    assert.equal(before.getChild('csi', CSI), undefined);
    raw.send(plain('carol', 'pw'));
    assert.equal((await raw.next()).name, 'success');
    const after = await raw.open();
    assert.ok(after.getChild('bind', 'urn:ietf:params:xml:ns:xmpp-bind'));
    assert.equal(after.getChild('csi', CSI)?.toString(), `<csi xmlns="${CSI}"/>`);
    raw.close();
  });

  test('inactive: presence changes and chat states wait; a message and a receipt arrive at once', async () => {
    await phone.xmpp.send(inactive());
    await roundTrip(phone);
    await bob.xmpp.send(status('out to lunch'));
    await bob.xmpp.send(composing('alice@localhost'));
    await bob.xmpp.send(
      xml(
        'message',
        { to: 'alice@localhost', type: 'chat', id: 'b1' },
        xml('body', {}, 'are you there?'),
        xml('request', { xmlns: RECEIPTS }),
      ),
    );
    await waitForStanza(phone.stanzas, isBody('are you there?'));
    await phone.xmpp.send(
      xml(
        'message',
        { to: 'bob@localhost', type: 'chat', id: 'a1' },
        xml('body', {}, 'yes'),
        xml('request', { xmlns: RECEIPTS }),
      ),
    );
    await waitForStanza(bob.stanzas, isBody('yes'));
    await bob.xmpp.send(
      xml(
        'message',
        { to: 'alice@localhost/phone', type: 'chat' },
        xml('received', { xmlns: RECEIPTS, id: 'a1' }),
      ),
    );
    await waitForStanza(phone.stanzas, (stanza) => stanza.getChild('received', RECEIPTS)?.attrs.id === 'a1');
    await settle();
    assert.ok(!phone.stanzas.some(isPresence('bob@localhost/desk', 'out to lunch')));
    assert.ok(!phone.stanzas.some(isComposing));
  });

  test('inactive: unavailable presence and subscription requests still arrive', async () => {
    const laptop = await goOnline(sys(), 'bob@localhost', 'pw', 'laptop');
    await laptop.xmpp.stop();
    await waitForStanza(
      phone.stanzas,
      (stanza) => stanza.attrs.type === 'unavailable' && stanza.attrs.from === 'bob@localhost/laptop',
    );
    await carol.xmpp.send(xml('presence', { to: 'alice@localhost', type: 'subscribe' }));
    await waitForStanza(
      phone.stanzas,
      (stanza) => stanza.attrs.type === 'subscribe' && stanza.attrs.from === 'carol@localhost',
    );
    await settle();
    assert.ok(!phone.stanzas.some(isPresence('bob@localhost/laptop')), 'the laptop came and went unseen');
  });

  test('<active/>: bob’s current presence, not the updates in between; then updates flow again', async () => {
    await bob.xmpp.send(status('back at my desk'));
    await settle();
    assert.ok(!phone.stanzas.some(isPresence('bob@localhost/desk', 'back at my desk')));
    await phone.xmpp.send(active());
    await waitForStanza(phone.stanzas, isPresence('bob@localhost/desk', 'back at my desk'));
    await settle();
    assert.ok(!phone.stanzas.some(isPresence('bob@localhost/desk', 'out to lunch')), 'no queue');
    await bob.xmpp.send(status('typing'));
    await bob.xmpp.send(composing('alice@localhost'));
    await waitForStanza(phone.stanzas, isPresence('bob@localhost/desk', 'typing'));
    await waitForStanza(phone.stanzas, isComposing);
  });

  test('posts saved: three presence changes and three chat states cost the inactive phone nothing', async (t) => {
    const posts = () => sys().api.counters.posts;
    const run = async (round: string) => {
      await settle();
      const before = posts();
      for (let i = 0; i < 3; i++) {
        await bob.xmpp.send(status(`${round} ${i}`));
        await bob.xmpp.send(composing('alice@localhost'));
      }
      await settle();
      return posts() - before;
    };
    const whileActive = await run('active');
    await phone.xmpp.send(inactive());
    const whileInactive = await run('inactive');
    t.diagnostic(`posts: ${whileActive} with the phone active, ${whileInactive} with it inactive`);
    assert.equal(whileActive - whileInactive, 6);
    await phone.xmpp.send(active());
    await waitForStanza(phone.stanzas, isPresence('bob@localhost/desk', 'inactive 2'));
  });

  test('<inactive/> between the restart and bind: the session starts inactive, without probes', async () => {
    const tablet = await RawClient.connect(sys().url);
    await tablet.open();
    tablet.send(plain('alice', 'pw'));
    assert.equal((await tablet.next()).name, 'success');
    await tablet.open();
    tablet.send(`<inactive xmlns="${CSI}"/>`);
    tablet.send(
      '<iq xmlns="jabber:client" type="set" id="bind"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>tablet</resource></bind></iq>',
    );
    await tablet.next((element) => element.attrs.id === 'bind' && element.attrs.type === 'result');
    tablet.send('<presence xmlns="jabber:client"/>');
    await bob.xmpp.send(status('late news'));
    await settle();
    await roundTrip(tablet);
    // Carol's request, still unanswered, comes at initial presence all the same.
    assert.ok(tablet.received.some((element) => element.attrs.type === 'subscribe'));
    const available = tablet.received.filter(
      (element) => element.name === 'presence' && element.attrs.type === undefined,
    );
    assert.deepEqual(available, [], 'no probe answers, no broadcast');
    tablet.send(`<active xmlns="${CSI}"/>`);
    await tablet.next(isPresence('bob@localhost/desk', 'late news'));
    await tablet.next(isPresence('alice@localhost/phone'));
    tablet.send('<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>');
    await tablet.closed;
  });

  test('<inactive/> before authentication is out of place: a stream error', async () => {
    const raw = await RawClient.connect(sys().url);
    await raw.open();
    raw.send(`<inactive xmlns="${CSI}"/>`);
    const error = await raw.next((element) => element.name === 'stream:error');
    assert.ok(error.getChild('not-authorized'));
    await raw.closed;
  });

  test('teardown', async () => {
    for (const session of [phone, bob, carol]) {
      await session.xmpp.stop();
      await sys().api.idle();
    }
  });
});
