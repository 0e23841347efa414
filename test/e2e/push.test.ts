// XEP-0357 push notifications with real xmpp.js clients and a real app server (an HTTP server
// in the test): enabling and disabling, the notification's payload and signature, coalescing,
// the app server's 404/410 and failures (retries, the dead-letter queue), and the source app's
// flow: the phone goes inactive, its socket dies, messages come, the app server is told, the
// phone comes back and drains them in order, and the receipts reach the sender.
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { xml } from '@xmpp/client';
import { type Element, parse } from 'ltx';
import type { LocalSystem } from '../../infra/local/system.ts';
import { SIGNATURE_HEADER } from '../../lib/gateway/push-delivery.ts';
import { DEFAULT_ROOM_CONFIG } from '../../lib/muc/room.ts';
import {
  abandon,
  addUser,
  eventually,
  goOnline,
  RawClient,
  roundTrip,
  useLocalSystem,
  waitForStanza,
  waiting,
} from '../helpers.ts';

const PUSH = 'urn:xmpp:push:0';
const RECEIPTS = 'urn:xmpp:receipts';
const CSI = 'urn:xmpp:csi:0';
const COALESCE_SECONDS = 2;

interface Notification {
  readonly path: string;
  readonly body: string;
  readonly signature: string;
  readonly iq: Element;
  readonly at: number;
}

/** The app server: records each POST, answers with the status its path was given (200 by default). */
class AppServer {
  readonly received: Notification[] = [];
  /** Path → the statuses to answer, one per request, the last one repeated. */
  readonly answers = new Map<string, number[]>();
  private server?: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer(async (request: IncomingMessage, response) => {
      const chunks: Buffer[] = [];
      for await (const chunk of request) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks).toString('utf8');
      const path = request.url ?? '/';
      this.received.push({
        path,
        body,
        signature: String(request.headers[SIGNATURE_HEADER] ?? ''),
        iq: parse(body) as Element,
        at: Date.now(),
      });
      const statuses = this.answers.get(path) ?? [200];
      const status = (statuses.length > 1 ? statuses.shift() : statuses[0]) as number;
      response.writeHead(status).end();
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server?.close(() => resolve()));
  }

  /** Notifications for one node (the publish's node attribute). */
  forNode(node: string): Notification[] {
    return this.received.filter((notification) => publishOf(notification)?.attrs.node === node);
  }
}

const publishOf = (notification: Notification) =>
  notification.iq.getChild('pubsub', 'http://jabber.org/protocol/pubsub')?.getChild('publish');

/** The summary form's fields. */
function summary(notification: Notification): Map<string, string> {
  const form = publishOf(notification)
    ?.getChild('item')
    ?.getChild('notification', PUSH)
    ?.getChild('x', 'jabber:x:data');
  return new Map(
    (form?.getChildren('field') ?? []).map((field) => [field.attrs.var, field.getChildText('value') ?? '']),
  );
}

function validSignature(secret: string, notification: Notification): boolean {
  const expected = Buffer.from(
    `sha256=${createHmac('sha256', secret).update(notification.body, 'utf8').digest('hex')}`,
  );
  const given = Buffer.from(notification.signature);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

type Session = Awaited<ReturnType<typeof goOnline>>;

const enable = (node: string, options?: Record<string, string>, jid = 'push.localhost') =>
  xml(
    'iq',
    { type: 'set' },
    xml(
      'enable',
      { xmlns: PUSH, jid, node },
      ...(options === undefined
        ? []
        : [
            xml(
              'x',
              { xmlns: 'jabber:x:data', type: 'submit' },
              xml(
                'field',
                { var: 'FORM_TYPE' },
                xml('value', {}, 'http://jabber.org/protocol/pubsub#publish-options'),
              ),
              ...Object.entries(options).map(([name, value]) =>
                xml('field', { var: name }, xml('value', {}, value)),
              ),
            ),
          ]),
    ),
  );
const disable = (jid: string, node?: string) =>
  xml('iq', { type: 'set' }, xml('disable', { xmlns: PUSH, jid, ...(node ? { node } : {}) }));

const chat = (to: string, id: string, body: string) =>
  xml('message', { to, id, type: 'chat' }, xml('body', {}, body), xml('request', { xmlns: RECEIPTS }));
const isBody = (body: string) => (stanza: Element) =>
  stanza.name === 'message' && stanza.getChildText('body') === body;
const isReceiptFor = (id: string) => (stanza: Element) =>
  stanza.name === 'message' && stanza.getChild('received', RECEIPTS)?.attrs.id === id;
const receiptFor = (message: Element) =>
  xml(
    'message',
    { to: message.attrs.from, id: `r-${message.attrs.id}` },
    xml('received', { xmlns: RECEIPTS, id: message.attrs.id }),
  );

/** The stanza error condition an iq request failed with. */
async function refusal(session: Session, request: ReturnType<typeof xml>): Promise<string> {
  try {
    await session.xmpp.iqCaller.request(request);
  } catch (error) {
    return (error as { condition?: string }).condition ?? String(error);
  }
  return 'result';
}

/** Ends the client's socket without `</close>`, as a phone's OS does: API Gateway sees it and $disconnect ends the session. */
async function dropSocket(system: LocalSystem, session: Session, user: string): Promise<void> {
  abandon(session);
  (session.xmpp as unknown as { socket: { socket: { close(): void } } }).socket.socket.close();
  await eventually(async () => (await system.context.store.getAccount(user)).sessions.length === 0);
}

const app = new AppServer();
await app.start();
after(() => app.stop());

describe('push notifications (XEP-0357)', () => {
  const system = useLocalSystem({
    config: {
      pushServices: new Map([
        ['push.localhost', `${app.url}/push`],
        ['gone.localhost', `${app.url}/gone`],
        ['flaky.localhost', `${app.url}/flaky`],
        ['down.localhost', `${app.url}/down`],
      ]),
      pushCoalesceSeconds: COALESCE_SECONDS,
      pushMaxRegistrations: 3,
      pushRetrySeconds: 1,
      pushMaxAttempts: 3,
    },
  });
  const sys = (): LocalSystem => system();
  let alice: Session;

  before(async () => {
    for (const user of ['alice', 'bob', 'carol', 'dave', 'erin', 'fay'])
      await addUser(sys(), `${user}@localhost`, 'pw');
  });

  test('setup: alice is online; the account advertises urn:xmpp:push:0', async () => {
    alice = await goOnline(sys(), 'alice@localhost', 'pw', 'desk');
    const info = await alice.xmpp.iqCaller.request(
      xml(
        'iq',
        { type: 'get', to: 'alice@localhost' },
        xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }),
      ),
    );
    const features = info
      .getChild('query')
      ?.getChildren('feature')
      .map((feature: Element) => feature.attrs.var);
    assert.ok(features?.includes(PUSH));
  });

  test('enable refuses an unknown service, a missing node or jid, another form, and a fourth registration', async () => {
    const carol = await goOnline(sys(), 'carol@localhost', 'pw', 'phone');
    assert.equal(await refusal(carol, enable('n1', undefined, 'push.example.org')), 'item-not-found');
    assert.equal(
      await refusal(carol, xml('iq', { type: 'set' }, xml('enable', { xmlns: PUSH, jid: 'push.localhost' }))),
      'bad-request',
    );
    assert.equal(
      await refusal(carol, xml('iq', { type: 'set' }, xml('enable', { xmlns: PUSH, node: 'n' }))),
      'bad-request',
    );
    const otherForm = xml(
      'iq',
      { type: 'set' },
      xml(
        'enable',
        { xmlns: PUSH, jid: 'push.localhost', node: 'n' },
        xml(
          'x',
          { xmlns: 'jabber:x:data', type: 'submit' },
          xml('field', { var: 'FORM_TYPE' }, xml('value', {}, 'urn:example')),
        ),
      ),
    );
    assert.equal(await refusal(carol, otherForm), 'bad-request');
    for (const node of ['n1', 'n2', 'n3']) assert.equal(await refusal(carol, enable(node)), 'result');
    assert.equal(await refusal(carol, enable('n4')), 'resource-constraint');
    // Enabling a known one again only changes its options.
    assert.equal(await refusal(carol, enable('n2', { secret: 's2' })), 'result');
    const account = await sys().context.store.getAccount('carol@localhost');
    assert.deepEqual(account.push.map((entry) => entry.node).sort(), ['n1', 'n2', 'n3']);
    assert.match(account.push.find((entry) => entry.node === 'n2')?.options ?? '', /s2/);

    assert.equal(await refusal(carol, disable('push.localhost', 'n1')), 'result');
    assert.deepEqual(
      (await sys().context.store.getAccount('carol@localhost')).push.map((entry) => entry.node).sort(),
      ['n2', 'n3'],
    );
    assert.equal(await refusal(carol, disable('push.localhost')), 'result');
    assert.deepEqual((await sys().context.store.getAccount('carol@localhost')).push, []);
    await carol.xmpp.stop();
  });

  test('the source flow: inactive, socket dies, three messages; the app server is told; the phone drains them in order', async () => {
    let bob = await goOnline(sys(), 'bob@localhost', 'pw', 'phone');
    await bob.xmpp.iqCaller.request(enable('bob-phone', { secret: 'app-token' }));
    await bob.xmpp.send(xml('inactive', { xmlns: CSI }));
    await roundTrip(bob);
    await dropSocket(sys(), bob, 'bob@localhost');

    for (const n of [1, 2, 3]) await alice.xmpp.send(chat('bob@localhost', `bg-${n}`, `background ${n}`));
    const last = await eventually(() =>
      app.forNode('bob-phone').find((note) => summary(note).get('message-count') === '3'),
    );
    const notes = app.forNode('bob-phone');
    const first = notes[0] as Notification;
    assert.equal(summary(first).get('FORM_TYPE'), 'urn:xmpp:push:summary');
    assert.equal(summary(first).get('last-message-sender'), alice.jid);
    // The body only where the deployment allows it (pushIncludeBody, off here).
    assert.equal(summary(first).has('last-message-body'), false);
    // At most one notification per coalescing period: the first at once, the rest in one more.
    assert.ok(notes.length <= 2, `${notes.length} notifications`);
    if (notes.length === 2) assert.ok(last.at - first.at >= COALESCE_SECONDS * 1000 - 50);
    for (const note of notes) {
      assert.ok(validSignature(sys().push?.secret as string, note), 'the signature checks out');
      assert.equal(note.iq.attrs.from, 'bob@localhost');
      assert.equal(note.iq.attrs.to, 'push.localhost');
      // The publish-options the client gave come back with every notification.
      const options = note.iq.getChild('pubsub')?.getChild('publish-options')?.getChild('x', 'jabber:x:data');
      assert.equal(
        options
          ?.getChildren('field')
          .find((field) => field.attrs.var === 'secret')
          ?.getChildText('value'),
        'app-token',
      );
    }
    assert.equal(await waiting(sys(), 'bob@localhost'), 3);

    bob = await goOnline(sys(), 'bob@localhost', 'pw', 'phone');
    const drained = await eventually(() => {
      const bodies = bob.stanzas.filter((stanza) => stanza.getChildText('body')?.startsWith('background'));
      return bodies.length === 3 ? bodies : undefined;
    });
    assert.deepEqual(
      drained.map((stanza) => stanza.getChildText('body')),
      ['background 1', 'background 2', 'background 3'],
    );
    for (const message of drained) await bob.xmpp.send(receiptFor(message));
    for (const n of [1, 2, 3]) await waitForStanza(alice.stanzas, isReceiptFor(`bg-${n}`));
    assert.equal(await waiting(sys(), 'bob@localhost'), 0);

    // Online again: a message reaches the session and tells the app server nothing.
    const told = app.forNode('bob-phone').length;
    await alice.xmpp.send(chat('bob@localhost', 'online-1', 'hello there'));
    await waitForStanza(bob.stanzas, isBody('hello there'));
    await sys().api.idle();
    await eventually(() => sys().push?.queue.idle());
    assert.equal(app.forNode('bob-phone').length, told);
    await bob.xmpp.stop();
  });

  test('a message pushed into a connection found gone (410) notifies, and is counted as waiting', async () => {
    await addUser(sys(), 'gus@localhost', 'pw');
    const before = new Set(sys().api.connectionIds);
    const raw = await RawClient.connect(sys().url);
    await raw.login('gus@localhost', 'pw', 'phone');
    raw.send('<presence xmlns="jabber:client"/>');
    raw.send(
      `<iq xmlns="jabber:client" type="set" id="e1"><enable xmlns="${PUSH}" jid="push.localhost" node="gus-phone"/></iq>`,
    );
    await raw.next((element) => element.attrs.id === 'e1');
    const connection = sys().api.connectionIds.find((id) => !before.has(id)) as string;
    // The phone's socket is dead and API Gateway knows it: posts meet 410 Gone.
    sys().api.killSilently(connection);
    sys().api.expire(connection);
    await alice.xmpp.send(chat('gus@localhost', 'gone-push-1', 'are you still there?'));
    const note = await eventually(() => app.forNode('gus-phone')[0]);
    assert.equal(summary(note).get('message-count'), '1');
    assert.equal(summary(note).get('last-message-sender'), alice.jid);
    assert.equal(await waiting(sys(), 'gus@localhost'), 1);
    raw.close();
  });

  test('an app server answering 410 (or 404) disables the registration', async () => {
    const dave = await goOnline(sys(), 'dave@localhost', 'pw', 'phone');
    await dave.xmpp.iqCaller.request(enable('dave-phone', undefined, 'gone.localhost'));
    await dave.xmpp.iqCaller.request(enable('dave-tablet', undefined, 'gone.localhost'));
    app.answers.set('/gone', [410, 404]);
    await dave.xmpp.stop();
    await eventually(
      async () => (await sys().context.store.getAccount('dave@localhost')).sessions.length === 0,
    );
    await alice.xmpp.send(chat('dave@localhost', 'gone-1', 'anyone?'));
    await eventually(async () => (await sys().context.store.getAccount('dave@localhost')).push.length === 0);
    assert.equal(app.received.filter((note) => note.path === '/gone').length, 2);
    // The message itself waits for dave as always.
    assert.equal(await waiting(sys(), 'dave@localhost'), 1);
  });

  test('failures are retried with backoff; after the last try the job goes to the dead-letter queue', async () => {
    const erin = await goOnline(sys(), 'erin@localhost', 'pw', 'phone');
    await erin.xmpp.iqCaller.request(enable('erin-phone', undefined, 'flaky.localhost'));
    app.answers.set('/flaky', [500, 503, 200]);
    const fay = await goOnline(sys(), 'fay@localhost', 'pw', 'phone');
    await fay.xmpp.iqCaller.request(enable('fay-phone', undefined, 'down.localhost'));
    app.answers.set('/down', [500]);
    await erin.xmpp.stop();
    await fay.xmpp.stop();
    await eventually(
      async () => (await sys().context.store.getAccount('fay@localhost')).sessions.length === 0,
    );

    await alice.xmpp.send(chat('erin@localhost', 'flaky-1', 'third time lucky'));
    await alice.xmpp.send(chat('fay@localhost', 'down-1', 'nobody home'));
    const flaky = await eventually(() => {
      const notes = app.received.filter((note) => note.path === '/flaky');
      return notes.length === 3 ? notes : undefined;
    });
    // The waits double: 1 s, then 2 s (pushRetrySeconds 1).
    assert.ok((flaky[1] as Notification).at - (flaky[0] as Notification).at >= 950);
    assert.ok((flaky[2] as Notification).at - (flaky[1] as Notification).at >= 1950);
    assert.deepEqual((await sys().context.store.getAccount('erin@localhost')).push.length, 1);

    const dead = await eventually(() =>
      sys()
        .push?.deadLetters()
        .find((message) => message.body.includes('fay-phone')),
    );
    assert.match(dead.body, /status 500/);
    assert.equal(app.received.filter((note) => note.path === '/down').length, 3);
    // Still enabled: a later message tries again.
    assert.equal((await sys().context.store.getAccount('fay@localhost')).push.length, 1);
  });
});

describe('push: room mentions, the body where allowed, and EventBridge events', () => {
  const ROOM = 'lounge@conference.localhost';
  const system = useLocalSystem({
    config: {
      pushServices: new Map([['push.localhost', `${app.url}/rooms`]]),
      pushCoalesceSeconds: 0,
      pushIncludeBody: true,
    },
    pushEvents: true,
  });
  const sys = (): LocalSystem => system();
  const isSubject = (stanza: Element) =>
    stanza.name === 'message' && stanza.getChild('subject') !== undefined;
  const joinRoom = async (session: Session, nick: string) => {
    await session.xmpp.send(
      xml('presence', { to: `${ROOM}/${nick}` }, xml('x', { xmlns: 'http://jabber.org/protocol/muc' })),
    );
    await waitForStanza(session.stanzas, isSubject);
  };
  const say = (session: Session, body: string) =>
    session.xmpp.send(xml('message', { to: ROOM, type: 'groupchat', id: body }, xml('body', {}, body)));

  test('an offline member is told only of messages that mention the nick they left with; the event carries the same', async () => {
    for (const user of ['alice', 'bob', 'carol']) await addUser(sys(), `${user}@localhost`, 'pw');
    await sys().context.store.createRoom({
      room: ROOM,
      config: { ...DEFAULT_ROOM_CONFIG, persistent: true, name: 'Lounge' },
      locked: false,
      createdAt: Date.now(),
    });
    await sys().context.store.setAffiliation(ROOM, 'bob@localhost', 'member');
    const bob = await goOnline(sys(), 'bob@localhost', 'pw', 'phone');
    await bob.xmpp.iqCaller.request(enable('bob-room-phone'));
    await joinRoom(bob, 'Bobby');
    await bob.xmpp.stop();
    await eventually(
      async () => (await sys().context.store.getAccount('bob@localhost')).sessions.length === 0,
    );
    // carol was in the room too, but is no member: mentions of her notify nobody.
    const carol = await goOnline(sys(), 'carol@localhost', 'pw', 'phone');
    await carol.xmpp.iqCaller.request(enable('carol-room-phone'));
    await joinRoom(carol, 'carol');
    await carol.xmpp.stop();

    const alice = await goOnline(sys(), 'alice@localhost', 'pw', 'desk');
    await joinRoom(alice, 'Al');
    const events: Record<string, unknown>[] = [];
    sys().push?.events.onEvent((event) => events.push(JSON.parse(event.Detail ?? '{}')));
    await say(alice, 'hello everyone');
    await say(alice, 'Bobbyfoo is not a mention, carol is not a member');
    await say(alice, 'are you there, bobby?');
    const note = await eventually(() => app.forNode('bob-room-phone')[0]);
    assert.equal(summary(note).get('last-message-sender'), `${ROOM}/Al`);
    // pushIncludeBody=true here.
    assert.equal(summary(note).get('last-message-body'), 'are you there, bobby?');
    await sys().api.idle();
    await eventually(() => sys().push?.queue.idle());
    assert.equal(app.forNode('bob-room-phone').length, 1);
    assert.equal(app.forNode('carol-room-phone').length, 0);
    const [event] = events;
    assert.deepEqual(event, {
      user: 'bob@localhost',
      service: 'push.localhost',
      node: 'bob-room-phone',
      messageCount: 1,
      lastMessageSender: `${ROOM}/Al`,
      lastMessageBody: 'are you there, bobby?',
    });
    assert.equal(sys().push?.events.events[0]?.Source, 'serverless-xmpp.push');
    await alice.xmpp.stop();
  });
});
