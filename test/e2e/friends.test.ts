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
  sleep,
  useLocalSystem,
  waitForStanza,
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
    await sleep(100);
    await carol.xmpp.stop();
    await erin.xmpp.stop();
  });
});
