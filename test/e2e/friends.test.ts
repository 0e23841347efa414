// Friends, like the seed's WeChat flow: a request, an approval, then presence both ways
// (RFC 6121 §2–§4), scripted with real clients.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { xml } from '@xmpp/client';
import type { Element } from 'ltx';
import type { LocalSystem } from '../../infra/local/system.ts';
import {
  addUser,
  connectClient,
  eventually,
  RawClient,
  roundTrip,
  useLocalSystem,
  waitForStanza,
  waiting,
} from '../helpers.ts';

const ROSTER = 'jabber:iq:roster';
type Session = Awaited<ReturnType<typeof connectClient>>;

/** Like a real client: asks for the roster, then sends initial presence. */
async function login(
  system: LocalSystem,
  user: string,
  resource = 'phone',
): Promise<Session & { roster: Element }> {
  const session = await connectClient(system, user, 'pw', resource);
  const roster = (await session.xmpp.iqCaller.request(
    xml('iq', { type: 'get' }, xml('query', { xmlns: ROSTER })),
  )) as Element;
  await session.xmpp.send(xml('presence', {}, xml('status', {}, `${user} here`)));
  await eventually(async () =>
    (await system.context.store.getAccount(user)).sessions.some(
      (s) => s.resource === resource && s.available,
    ),
  );
  return { ...session, roster };
}

const rosterPush = (contact: string, subscription: string) => (stanza: Element) =>
  stanza.name === 'iq' &&
  stanza.attrs.type === 'set' &&
  stanza.getChild('query', ROSTER)?.getChild('item')?.attrs.jid === contact &&
  stanza.getChild('query', ROSTER)?.getChild('item')?.attrs.subscription === subscription;
const presenceFrom = (from: string, type?: string) => (stanza: Element) =>
  stanza.name === 'presence' && stanza.attrs.from?.startsWith(from) && stanza.attrs.type === type;

async function rosterOf(session: Session): Promise<Element> {
  return (await session.xmpp.iqCaller.request(
    xml('iq', { type: 'get' }, xml('query', { xmlns: ROSTER })),
  )) as Element;
}
const itemFor = (roster: Element, contact: string) =>
  roster
    .getChild('query', ROSTER)
    ?.getChildren('item')
    .find((item) => item.attrs.jid === contact);

describe('friends', () => {
  const system = useLocalSystem();

  test('setup', async () => {
    for (const user of ['alice', 'bob', 'carol', 'dave', 'erin'])
      await addUser(system(), `${user}@localhost`, 'pw');
  });

  test('a request while the other is offline, approval later, both rosters converge to both, presence both ways', async () => {
    const alice = await login(system(), 'alice@localhost');
    assert.equal(itemFor(alice.roster, 'bob@localhost'), undefined);
    await alice.xmpp.send(xml('presence', { to: 'bob@localhost', type: 'subscribe' }));
    const pending = await waitForStanza(alice.stanzas, rosterPush('bob@localhost', 'none'));
    assert.equal(pending.getChild('query')?.getChild('item')?.attrs.ask, 'subscribe');

    // Bob was offline: the request waits and arrives with his next session.
    const bob = await login(system(), 'bob@localhost');
    const request = await waitForStanza(bob.stanzas, presenceFrom('alice@localhost', 'subscribe'));
    assert.equal(request.attrs.from, 'alice@localhost');
    assert.equal(itemFor(bob.roster, 'alice@localhost'), undefined, 'a pending request is not a roster item');

    await bob.xmpp.send(xml('presence', { to: 'alice@localhost', type: 'subscribed' }));
    await waitForStanza(bob.stanzas, rosterPush('alice@localhost', 'from'));
    await waitForStanza(alice.stanzas, rosterPush('bob@localhost', 'to'));
    await waitForStanza(alice.stanzas, presenceFrom('bob@localhost', 'subscribed'));
    const bobsPresence = await waitForStanza(alice.stanzas, presenceFrom('bob@localhost/phone'));
    assert.equal(bobsPresence.getChildText('status'), 'bob@localhost here');

    // And the other way round: Bob asks, Alice approves.
    await bob.xmpp.send(xml('presence', { to: 'alice@localhost', type: 'subscribe' }));
    await waitForStanza(alice.stanzas, presenceFrom('bob@localhost', 'subscribe'));
    await alice.xmpp.send(xml('presence', { to: 'bob@localhost', type: 'subscribed' }));
    await waitForStanza(alice.stanzas, rosterPush('bob@localhost', 'both'));
    await waitForStanza(bob.stanzas, rosterPush('alice@localhost', 'both'));
    await waitForStanza(bob.stanzas, presenceFrom('alice@localhost/phone'));
    assert.equal(itemFor(await rosterOf(alice), 'bob@localhost')?.attrs.subscription, 'both');
    assert.equal(itemFor(await rosterOf(bob), 'alice@localhost')?.attrs.subscription, 'both');

    // Presence changes are broadcast.
    await bob.xmpp.send(xml('presence', {}, xml('show', {}, 'away')));
    await waitForStanza(
      alice.stanzas,
      (s) => presenceFrom('bob@localhost/phone')(s) && s.getChildText('show') === 'away',
    );
    await alice.xmpp.stop();
    await bob.xmpp.stop();
  });

  test('logging in shows which contacts are online (probes), and a killed socket shows unavailable', async () => {
    const bob = await RawClient.connect(system().url);
    await bob.login('bob@localhost', 'pw', 'laptop');
    bob.send('<presence xmlns="jabber:client"><show>dnd</show></presence>');
    await eventually(async () =>
      (await system().context.store.getAccount('bob@localhost')).sessions.some((s) => s.available),
    );
    const alice = await login(system(), 'alice@localhost');
    const probed = await waitForStanza(alice.stanzas, presenceFrom('bob@localhost/laptop'));
    assert.equal(probed.getChildText('show'), 'dnd');
    // Bob's network vanishes: no close frame, the socket is just gone.
    bob.socket.terminate();
    await waitForStanza(alice.stanzas, presenceFrom('bob@localhost/laptop', 'unavailable'));
    await alice.xmpp.stop();
  });

  test('a clean logout shows unavailable to contacts', async () => {
    const alice = await login(system(), 'alice@localhost');
    const bob = await login(system(), 'bob@localhost', 'tablet');
    await waitForStanza(alice.stanzas, presenceFrom('bob@localhost/tablet'));
    await bob.xmpp.stop();
    await waitForStanza(alice.stanzas, presenceFrom('bob@localhost/tablet', 'unavailable'));
    await alice.xmpp.stop();
  });

  test('directed presence to a non-contact is delivered, and unavailable follows when the session ends', async () => {
    const dave = await login(system(), 'dave@localhost', 'desk');
    const erin = await login(system(), 'erin@localhost', 'desk');
    await dave.xmpp.send(xml('presence', { to: 'erin@localhost' }, xml('status', {}, 'hello stranger')));
    const directed = await waitForStanza(erin.stanzas, presenceFrom('dave@localhost/desk'));
    assert.equal(directed.getChildText('status'), 'hello stranger');
    await dave.xmpp.stop();
    await waitForStanza(erin.stanzas, presenceFrom('dave@localhost/desk', 'unavailable'));
    await erin.xmpp.stop();
  });

  test('roster versioning: the current version gets an empty result, an old one the whole roster', async () => {
    const alice = await login(system(), 'alice@localhost');
    const ver = alice.roster.getChild('query', ROSTER)?.attrs.ver;
    assert.ok(ver);
    const same = (await alice.xmpp.iqCaller.request(
      xml('iq', { type: 'get' }, xml('query', { xmlns: ROSTER, ver })),
    )) as Element;
    assert.equal(same.getChild('query'), undefined);
    const old = (await alice.xmpp.iqCaller.request(
      xml('iq', { type: 'get' }, xml('query', { xmlns: ROSTER, ver: '0' })),
    )) as Element;
    assert.ok(itemFor(old, 'bob@localhost'));
    await alice.xmpp.iqCaller.request(
      xml(
        'iq',
        { type: 'set' },
        xml(
          'query',
          { xmlns: ROSTER },
          xml('item', { jid: 'carol@localhost', name: 'Carol' }, xml('group', {}, 'Work')),
        ),
      ),
    );
    const push = await waitForStanza(alice.stanzas, rosterPush('carol@localhost', 'none'));
    assert.ok(Number(push.getChild('query')?.attrs.ver) > Number(ver));
    assert.equal(push.getChild('query')?.getChild('item')?.getChildText('group'), 'Work');
    await alice.xmpp.stop();
  });

  test('invalid roster sets get the RFC’s errors', async () => {
    const dave = await login(system(), 'dave@localhost');
    const set = (...items: Element[]) =>
      dave.xmpp.iqCaller.request(xml('iq', { type: 'set' }, xml('query', { xmlns: ROSTER }, ...items)));
    const rejects = (promise: Promise<unknown>, condition: string) =>
      assert.rejects(promise, (error: Error & { condition?: string }) => error.condition === condition);
    await rejects(
      set(xml('item', { jid: 'a@localhost' }), xml('item', { jid: 'b@localhost' })),
      'bad-request',
    );
    await rejects(set(xml('item', { jid: 'not a jid@@' })), 'bad-request');
    await rejects(set(xml('item', { jid: 'dave@localhost' })), 'bad-request');
    await rejects(
      set(xml('item', { jid: 'a@localhost' }, xml('group', {}, 'x'), xml('group', {}, 'x'))),
      'bad-request',
    );
    await rejects(set(xml('item', { jid: 'a@localhost', name: 'n'.repeat(2000) })), 'not-acceptable');
    await rejects(set(xml('item', { jid: 'a@localhost' }, xml('group', {}, ''))), 'not-acceptable');
    await rejects(set(xml('item', { jid: 'nobody@localhost', subscription: 'remove' })), 'item-not-found');
    await dave.xmpp.stop();
  });

  test('removing a contact cancels both subscriptions and the contact sees it', async () => {
    const carol = await login(system(), 'carol@localhost');
    const erin = await login(system(), 'erin@localhost');
    await carol.xmpp.send(xml('presence', { to: 'erin@localhost', type: 'subscribe' }));
    await waitForStanza(erin.stanzas, presenceFrom('carol@localhost', 'subscribe'));
    await erin.xmpp.send(xml('presence', { to: 'carol@localhost', type: 'subscribed' }));
    await waitForStanza(carol.stanzas, rosterPush('erin@localhost', 'to'));
    await carol.xmpp.iqCaller.request(
      xml(
        'iq',
        { type: 'set' },
        xml('query', { xmlns: ROSTER }, xml('item', { jid: 'erin@localhost', subscription: 'remove' })),
      ),
    );
    await waitForStanza(carol.stanzas, rosterPush('erin@localhost', 'remove'));
    await waitForStanza(erin.stanzas, presenceFrom('carol@localhost', 'unsubscribe'));
    await waitForStanza(erin.stanzas, rosterPush('carol@localhost', 'none'));
    // The removal's other effects (pushes, presence) are handled before the sessions close.
    await system().api.idle();
    await carol.xmpp.stop();
    await erin.xmpp.stop();
  });
});

const BLOCKING = 'urn:xmpp:blocking';

async function chatError(session: Session, to: string, id: string): Promise<Element> {
  await session.xmpp.send(xml('message', { type: 'chat', to, id }, xml('body', {}, 'hi')));
  return waitForStanza(session.stanzas, (s) => s.attrs.id === id && s.attrs.type === 'error');
}

describe('friends-only policy', () => {
  const system = useLocalSystem({ config: { messagePolicy: 'roster', rosterLimit: 2 } });

  test('a chat to someone who has not approved the sender is refused; requests and receipts pass', async () => {
    for (const user of ['amy', 'ben']) await addUser(system(), `${user}@localhost`, 'pw');
    const amy = await login(system(), 'amy@localhost');
    const ben = await login(system(), 'ben@localhost');
    const refused = await chatError(amy, 'ben@localhost', 'p1');
    assert.ok(refused.getChild('error')?.getChild('subscription-required'));
    assert.equal(refused.getChild('error')?.attrs.type, 'auth');
    assert.equal(await waiting(system(), 'ben@localhost'), 0);
    await roundTrip(ben); // the refused chat was handled with its error: had it been pushed, it is here
    assert.equal(ben.stanzas.filter((s) => s.getChildText('body') === 'hi').length, 0);

    await amy.xmpp.send(xml('presence', { to: 'ben@localhost', type: 'subscribe' }));
    await waitForStanza(ben.stanzas, presenceFrom('amy@localhost', 'subscribe'));
    await ben.xmpp.send(xml('presence', { to: 'amy@localhost', type: 'subscribed' }));
    await waitForStanza(amy.stanzas, rosterPush('ben@localhost', 'to'));
    await amy.xmpp.send(
      xml(
        'message',
        { type: 'chat', to: 'ben@localhost', id: 'p2' },
        xml('body', {}, 'approved'),
        xml('request', { xmlns: 'urn:xmpp:receipts' }),
      ),
    );
    const got = await waitForStanza(ben.stanzas, (s) => s.getChildText('body') === 'approved');
    // Ben has not been approved by Amy: his chat is refused, his receipt is not.
    assert.ok(
      (await chatError(ben, 'amy@localhost', 'p3')).getChild('error')?.getChild('subscription-required'),
    );
    await ben.xmpp.send(
      xml(
        'message',
        { to: got.attrs.from, type: 'chat' },
        xml('received', { xmlns: 'urn:xmpp:receipts', id: 'p2' }),
      ),
    );
    await waitForStanza(amy.stanzas, (s) => s.getChild('received')?.attrs.id === 'p2');
    await amy.xmpp.stop();
    await ben.xmpp.stop();
  });
});

describe('roster limit', () => {
  const system = useLocalSystem({ config: { rosterLimit: 2 } });

  test('a roster over the limit refuses the next contact with resource-constraint', async () => {
    await addUser(system(), 'kay@localhost', 'pw');
    const kay = await login(system(), 'kay@localhost');
    const add = (jid: string) =>
      kay.xmpp.iqCaller.request(
        xml('iq', { type: 'set' }, xml('query', { xmlns: ROSTER }, xml('item', { jid }))),
      );
    await add('one@localhost');
    await add('two@localhost');
    await add('two@localhost'); // changing an item is not adding one
    await assert.rejects(add('three@localhost'), (error: Error & { condition?: string }) => {
      assert.equal(error.condition, 'resource-constraint');
      return true;
    });
    await kay.xmpp.stop();
  });
});

describe('blocking (XEP-0191)', () => {
  const system = useLocalSystem();

  test('blocked senders reach nobody, the blocker cannot write to them, unblock restores it', async () => {
    for (const user of ['gus', 'hal']) await addUser(system(), `${user}@localhost`, 'pw');
    const gus = await login(system(), 'gus@localhost');
    const hal = await login(system(), 'hal@localhost');
    const other = await connectClient(system(), 'gus@localhost', 'pw', 'desk');
    await other.xmpp.iqCaller.request(xml('iq', { type: 'get' }, xml('blocklist', { xmlns: BLOCKING })));

    await gus.xmpp.iqCaller.request(
      xml('iq', { type: 'set' }, xml('block', { xmlns: BLOCKING }, xml('item', { jid: 'hal@localhost' }))),
    );
    const push = await waitForStanza(other.stanzas, (s) => s.getChild('block', BLOCKING) !== undefined);
    assert.equal(push.getChild('block')?.getChild('item')?.attrs.jid, 'hal@localhost');
    const list = (await gus.xmpp.iqCaller.request(
      xml('iq', { type: 'get' }, xml('blocklist', { xmlns: BLOCKING })),
    )) as Element;
    assert.deepEqual(
      list
        .getChild('blocklist')
        ?.getChildren('item')
        .map((item) => item.attrs.jid),
      ['hal@localhost'],
    );

    const fromBlocked = await chatError(hal, 'gus@localhost', 'b1');
    assert.ok(fromBlocked.getChild('error')?.getChild('service-unavailable'));
    const toBlocked = await chatError(gus, 'hal@localhost', 'b2');
    assert.ok(toBlocked.getChild('error')?.getChild('not-acceptable'));
    assert.ok(toBlocked.getChild('error')?.getChild('blocked', 'urn:xmpp:blocking:errors'));
    await hal.xmpp.send(xml('presence', { to: 'gus@localhost', type: 'subscribe' }));
    await roundTrip(hal); // the request is handled
    await roundTrip(gus); // had it been pushed, it is here
    assert.equal(gus.stanzas.filter(presenceFrom('hal@localhost', 'subscribe')).length, 0);
    assert.equal(await waiting(system(), 'gus@localhost'), 0);

    await gus.xmpp.iqCaller.request(xml('iq', { type: 'set' }, xml('unblock', { xmlns: BLOCKING })));
    await waitForStanza(other.stanzas, (s) => s.getChild('unblock', BLOCKING) !== undefined);
    await hal.xmpp.send(
      xml('message', { type: 'chat', to: 'gus@localhost', id: 'b3' }, xml('body', {}, 'again')),
    );
    await waitForStanza(gus.stanzas, (s) => s.getChildText('body') === 'again');
    await gus.xmpp.stop();
    await other.xmpp.stop();
    await hal.xmpp.stop();
  });

  test('the domain advertises urn:xmpp:blocking', async () => {
    await addUser(system(), 'ian@localhost', 'pw');
    const ian = await connectClient(system(), 'ian@localhost', 'pw');
    const info = (await ian.xmpp.iqCaller.request(
      xml(
        'iq',
        { type: 'get', to: 'localhost' },
        xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }),
      ),
    )) as Element;
    assert.ok(
      info
        .getChild('query')
        ?.getChildren('feature')
        .some((f) => f.attrs.var === BLOCKING),
    );
    await ian.xmpp.stop();
  });
});
