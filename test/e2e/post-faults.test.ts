// Errors of PostToConnection are settled one post at a time (lib/gateway/management-api.ts):
// a throttled post is retried within the invocation, a post that keeps failing leaves its
// message undelivered in the store without ending the session or failing the frame, an
// answer over 128 KB becomes an error, and a long drain hands on to the next invocation
// when the invocation runs short of time.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Element } from 'ltx';
import type { PostFault } from '../../infra/local/websocket-api.ts';
import { addUser, eventually, RawClient, useLocalSystem } from '../helpers.ts';

const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

const chat = (to: string, id: string, body: string) =>
  `<message xmlns="jabber:client" type="chat" to="${to}" id="${id}"><body>${body}</body></message>`;
const ping = (id: string) =>
  `<iq xmlns="jabber:client" type="get" id="${id}"><ping xmlns="urn:xmpp:ping"/></iq>`;
const isAck = (id: string) => (element: Element) => element.getChild('ack')?.attrs.id === id;

describe('post faults', () => {
  /** What the emulator answers each post with; the tests set it. */
  let fault: (connectionId: string, body: string) => PostFault | undefined = () => undefined;
  /** Context.remainingMs of every invocation (as Lambda's getRemainingTimeInMillis would say). */
  let remaining = () => 60_000;
  const system = useLocalSystem({
    // Lowered from AWS's 128 KB so that a modest roster exceeds it.
    api: { postFault: (connectionId, body) => fault(connectionId, body), maxMessageBytes: 16 * 1024 },
    wrapContext: (context) => {
      context.remainingMs = () => remaining();
      return context;
    },
  });

  async function online(user: string, resource?: string): Promise<RawClient> {
    const client = await RawClient.connect(system().url);
    await client.login(`${user}@localhost`, 'pw', resource);
    client.send('<presence xmlns="jabber:client"/>');
    client.send(ping('online'));
    await client.next((element) => element.attrs.id === 'online', 15_000);
    return client;
  }

  test('a throttled push (429 twice) is retried within the invocation and arrives once', async () => {
    await addUser(system(), 'thr-alice@localhost', 'pw');
    await addUser(system(), 'thr-bob@localhost', 'pw');
    const bob = await online('thr-bob');
    const alice = await online('thr-alice');
    let throttled = 2;
    fault = (_, body) => (body.includes('retry-me') && throttled-- > 0 ? 429 : undefined);
    const failedBefore = system().api.counters.failedPosts;
    alice.send(chat('thr-bob@localhost', 'r1', 'retry-me'));
    await alice.next(isAck('r1'), 15_000);
    const received = await bob.next((element) => element.attrs.id === 'r1', 15_000);
    assert.equal(received.getChildText('body'), 'retry-me');
    assert.equal(system().api.counters.failedPosts - failedBefore, 2);
    // Nothing arrives twice: the frame was not replayed.
    bob.send(ping('p1'));
    await bob.next((element) => element.attrs.id === 'p1', 15_000);
    assert.equal(bob.received.filter((element) => element.attrs.id === 'r1').length, 0);
    fault = () => undefined;
    alice.close();
    bob.close();
  });

  test('a push failing with 500 on every try: the message waits undelivered, the session lives on', async () => {
    await addUser(system(), 'err-alice@localhost', 'pw');
    await addUser(system(), 'err-bob@localhost', 'pw');
    const bob = await online('err-bob', 'phone');
    const alice = await online('err-alice');
    fault = (_, body) => (body.includes('never-arrives') ? 500 : undefined);
    const queuedBefore = system().api.counters.queuedRecords;
    alice.send(chat('err-bob@localhost', 'n1', 'never-arrives'));
    alice.send(chat('err-bob@localhost', 'n2', 'arrives'));
    // The sender's frames are handled, each once: both stored and acknowledged.
    await alice.next(isAck('n1'), 15_000);
    await alice.next(isAck('n2'), 15_000);
    // The recipient's connection was not forgotten: the next message reaches it.
    const arrived = await bob.next((element) => element.attrs.id === 'n2', 15_000);
    assert.equal(arrived.getChildText('body'), 'arrives');
    assert.equal(system().api.deadLetters.length, 0);
    assert.ok(system().api.counters.queuedRecords - queuedBefore <= 2, 'no frame was replayed');
    // Nothing marked it delivered: it waits in the inbox (n2 is marked once pushed).
    const waiting = await eventually(async () => {
      const { messages } = await system().context.store.undelivered('err-bob@localhost', 10);
      return messages.length === 1 ? messages : undefined;
    }, 15_000);
    assert.deepEqual(
      waiting.map((message) => message.id),
      ['n1'],
    );
    fault = () => undefined;
    // The next session drains it.
    bob.close();
    const laptop = await RawClient.connect(system().url);
    await laptop.login('err-bob@localhost', 'pw', 'laptop');
    laptop.send('<presence xmlns="jabber:client"/>');
    const drained = await laptop.next((element) => element.attrs.id === 'n1', 15_000);
    assert.equal(drained.getChildText('body'), 'never-arrives');
    assert.ok(drained.getChild('delay', 'urn:xmpp:delay'));
    alice.close();
    laptop.close();
  });

  test('a roster result over the message limit (413) becomes resource-constraint', async () => {
    const user = 'crowd@localhost';
    await addUser(system(), user, 'pw');
    const store = system().context.store;
    for (let i = 0; i < 200; i++) {
      await store.saveRosterItem(
        user,
        {
          contact: `contact-${String(i).padStart(4, '0')}@localhost`,
          name: `Contact number ${i} with a display name long enough to fill the roster`,
          groups: ['Friends'],
          subscription: 'both',
          askOut: false,
          pendingIn: false,
          listed: true,
        },
        { adds: true, limit: 1000 },
      );
    }
    const client = await RawClient.connect(system().url);
    await client.login(user, 'pw');
    client.send('<iq xmlns="jabber:client" type="get" id="roster1"><query xmlns="jabber:iq:roster"/></iq>');
    const answer = await client.next((element) => element.attrs.id === 'roster1', 15_000);
    assert.equal(answer.attrs.type, 'error');
    const error = answer.getChild('error');
    assert.equal(error?.attrs.type, 'wait');
    assert.ok(error?.getChild('resource-constraint', STANZAS), `got ${answer}`);
    assert.equal(answer.getChild('query'), undefined, 'the error does not carry the roster');
    // The connection lives on.
    client.send(ping('after-roster'));
    const pong = await client.next((element) => element.attrs.id === 'after-roster', 15_000);
    assert.equal(pong.attrs.type, 'result');
    client.close();
  });

  test('a drain short of time hands on to the next invocation; every message arrives, in order', async () => {
    await addUser(system(), 'slow-alice@localhost', 'pw');
    await addUser(system(), 'slow-bob@localhost', 'pw');
    const alice = await online('slow-alice');
    const count = 30;
    for (let i = 0; i < count; i++) alice.send(chat('slow-bob@localhost', `d${i}`, `backlog ${i}`));
    for (let i = 0; i < count; i++) await alice.next(isAck(`d${i}`), 15_000);

    // After 10 drained pushes the invocation reports 7 s left: under the drain's margin (8 s),
    // over the frames function's (5 s), so only the drain reacts.
    let drainedPosts = 0;
    fault = (_, body) => {
      if (body.includes('backlog') && body.includes('urn:xmpp:delay')) drainedPosts++;
      return undefined;
    };
    remaining = () => (drainedPosts >= 10 ? 7_000 : 60_000);
    const queuedBefore = system().api.counters.queuedRecords;
    const bob = await online('slow-bob');
    const received = await eventually(() => {
      const messages = bob.received.filter(
        (element) => element.name === 'message' && element.getChild('body'),
      );
      return messages.length >= count ? messages : undefined;
    }, 30_000);
    assert.deepEqual(
      received.map((element) => element.attrs.id),
      Array.from({ length: count }, (_, i) => `d${i}`),
    );
    // The first invocation pushed 10; each continuation then pushed one.
    assert.ok(system().api.counters.queuedRecords - queuedBefore >= count - 10);
    await eventually(async () => {
      const { messages } = await system().context.store.undelivered('slow-bob@localhost', 100);
      return messages.length === 0;
    }, 15_000);
    remaining = () => 60_000;
    fault = () => undefined;
    alice.close();
    bob.close();
  });
});
