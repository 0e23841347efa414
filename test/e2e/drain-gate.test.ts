// The drain gate (lib/offline.ts): while a backlog is drained over several invocations,
// messages sent to the session meanwhile wait behind it and arrive after it, in order.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { xml } from '@xmpp/client';
import type { Element } from 'ltx';
import { sequenceId } from '../../lib/ids.ts';
import type { Context, Store } from '../../lib/ports.ts';
import {
  addUser,
  connectClient,
  eventually,
  goOnline,
  roundTrip,
  useLocalSystem,
  waitForStanza,
  waiting,
} from '../helpers.ts';

const BACKLOG = 2500;
const LIVE = 20;
const ACK = 'urn:serverless-xmpp:ack:0';

const bodiesOf = (stanzas: readonly Element[]) =>
  stanzas
    .filter((stanza) => stanza.name === 'message' && stanza.getChild('body'))
    .map((s) => s.getChildText('body'));

describe('the drain gate', () => {
  // The defaults: 100 a page, 1,000 an invocation, so 2,500 take three invocations. The
  // test holds the first continuation until the live messages are stored, so that they are
  // certainly sent while the drain is under way.
  const held: Array<() => Promise<void>> = [];
  let holding = true;
  const system = useLocalSystem({
    wrapContext: (context) => ({
      ...context,
      continuations: {
        continueDrain: async (connectionId, after) => {
          if (!holding) return context.continuations.continueDrain(connectionId, after);
          held.push(() => context.continuations.continueDrain(connectionId, after));
        },
      },
    }),
  });

  test(`live messages sent during a drain of ${BACKLOG} arrive after it, in order, once`, async () => {
    await addUser(system(), 'oldnews@localhost', 'pw');
    await addUser(system(), 'reader@localhost', 'pw');
    await addUser(system(), 'writer@localhost', 'pw');
    const { store } = system().context;
    const start = Date.now() - 60_000;
    for (let first = 0; first < BACKLOG; first += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, offset) => {
          const index = first + offset;
          return store.storeMessage(
            {
              recipient: 'reader@localhost',
              sender: 'oldnews@localhost',
              id: `old-${index}`,
              seq: sequenceId(start + index),
              stanza: `<message xmlns="jabber:client" type="chat" from="oldnews@localhost/x" to="reader@localhost" id="old-${index}"><body>old ${index}</body></message>`,
              storedAt: start + index,
              receiptRequested: false,
              expiresAt: Math.floor(Date.now() / 1000) + 3600,
            },
            { listed: true },
          );
        }),
      );
    }
    const writer = await goOnline(system(), 'writer@localhost', 'pw');
    // Initial presence starts the drain; the test does not wait for it to end (goOnline would).
    const reader = await connectClient(system(), 'reader@localhost', 'pw');
    await reader.xmpp.send(xml('presence'));
    // The first invocation's share has arrived; the rest of the drain waits to be continued.
    await eventually(() => held.length === 1, 60_000);
    await eventually(() => bodiesOf(reader.stanzas).length >= 1000, 60_000);
    for (let index = 0; index < LIVE; index++) {
      await writer.xmpp.send(
        xml(
          'message',
          { to: 'reader@localhost', type: 'chat', id: `live-${index}` },
          xml('body', {}, `live ${index}`),
        ),
      );
    }
    // Each is stored (its server receipt came) while the drain still runs.
    await waitForStanza(
      writer.stanzas,
      (stanza) => stanza.getChild('ack', ACK)?.attrs.id === `live-${LIVE - 1}`,
      30_000,
    );
    await system().api.idle();
    assert.equal(bodiesOf(reader.stanzas).length, 1000, 'nothing live overtook the backlog');
    holding = false;
    await held[0]?.();
    await eventually(() => bodiesOf(reader.stanzas).length >= BACKLOG + LIVE, 120_000);
    await system().api.idle();
    assert.deepEqual(bodiesOf(reader.stanzas), [
      ...Array.from({ length: BACKLOG }, (_, index) => `old ${index}`),
      ...Array.from({ length: LIVE }, (_, index) => `live ${index}`),
    ]);
    // Afterwards live messages flow at once again.
    await writer.xmpp.send(
      xml('message', { to: 'reader@localhost', type: 'chat', id: 'after' }, xml('body', {}, 'after')),
    );
    await waitForStanza(reader.stanzas, (stanza) => stanza.getChildText('body') === 'after', 30_000);
    // The push reaches the reader before the writer's handler marks it delivered: wait for it.
    await system().api.idle();
    assert.equal(await waiting(system(), 'reader@localhost'), 0);
    await writer.xmpp.stop();
    await system().api.idle();
    await reader.xmpp.stop();
  });
});

describe('the drain gate, from the sender side', () => {
  // The race the gate alone leaves open: a sender reads the lease, the drain then opens the gate
  // and makes its last pass, and only then is the message stored, behind a gate already open.
  // The hooks below force that order: the drain's first page waits until the sender has read
  // the lease and reached its write, and the write waits until the drain has ended.
  let senderAtWrite: () => void = () => {};
  const senderReadTheLease = new Promise<void>((resolve) => {
    senderAtWrite = resolve;
  });
  let drainEnded: () => void = () => {};
  const drainDone = new Promise<void>((resolve) => {
    drainEnded = resolve;
  });
  const system = useLocalSystem({
    wrapContext: hookStore({
      async undelivered(original, ...args) {
        if (args[0] === 'late@localhost') await senderReadTheLease;
        return original(...args);
      },
      async storeMessage(original, ...args) {
        if (args[0].id === 'race-1') {
          senderAtWrite();
          await drainDone;
        }
        return original(...args);
      },
      async resetOfflineCount(original, user) {
        await original(user);
        if (user === 'late@localhost') drainEnded();
      },
    }),
  });

  test('a message stored behind a gate that opened meanwhile is pushed at once, before the next one', async () => {
    await addUser(system(), 'late@localhost', 'pw');
    await addUser(system(), 'early@localhost', 'pw');
    const sender = await goOnline(system(), 'early@localhost', 'pw', 'desk');
    const chat = (id: string) =>
      xml('message', { to: 'late@localhost', id, type: 'chat' }, xml('body', {}, id));
    await sender.xmpp.send(chat('backlog-1'));
    await waitForStanza(sender.stanzas, (stanza) => stanza.getChild('ack', ACK)?.attrs.id === 'backlog-1');

    const reader = await connectClient(system(), 'late@localhost', 'pw', 'phone');
    // Initial presence: the lease, then a drain that waits at its first page (the hook above).
    await reader.xmpp.send(xml('presence'));
    await untilDraining(system, 'late@localhost');
    await sender.xmpp.send(chat('race-1'));
    await waitForStanza(sender.stanzas, (stanza) => stanza.getChild('ack', ACK)?.attrs.id === 'race-1');
    await sender.xmpp.send(chat('race-2'));
    await waitForStanza(reader.stanzas, (stanza) => stanza.getChildText('body') === 'race-2');
    await system().api.idle();
    assert.deepEqual(
      bodiesOf(reader.stanzas).filter((body) => body !== null),
      ['backlog-1', 'race-1', 'race-2'],
    );
    await sender.xmpp.stop();
    await reader.xmpp.stop();
  });
});

/** A promise and the function that resolves it: the hooks below use them to force an order. */
function signal(): { done: Promise<void>; fire: () => void } {
  let fire: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    fire = resolve;
  });
  return { done, fire };
}

type StoreHooks = {
  [K in keyof Store]?: Store[K] extends (...args: infer A) => infer R
    ? (original: (...args: A) => R, ...args: A) => R
    : never;
};

/**
 * A context whose store runs each hook instead of the method it names, with the method itself
 * as its first argument: how these tests make the system wait for, or fail at, a named point.
 */
function hookStore(hooks: StoreHooks) {
  return (context: Context): Context => ({
    ...context,
    store: new Proxy(context.store, {
      get(target, name, receiver) {
        const original = Reflect.get(target, name, receiver);
        const hook = hooks[name as keyof Store] as ((...args: unknown[]) => unknown) | undefined;
        if (!hook || typeof original !== 'function') return original;
        return (...args: unknown[]) => hook(original.bind(target), ...args);
      },
    }),
  });
}

/** Until the user's session holds a drain lease: its initial presence got that far. */
async function untilDraining(system: () => { context: Context }, user: string): Promise<void> {
  await eventually(async () => {
    const { sessions } = await system().context.store.getAccount(user);
    return sessions.some((session) => (session.drainingUntil ?? 0) > Date.now());
  });
}

/**
 * Store hooks shared by the two races below. `reader` is the draining user; `late` the message
 * whose gate check the drain's gate opening waits for. Each hook is keyed by the user or the
 * message id, so the rest of the system runs unhooked.
 */
function gateHooks(reader: string, late: string) {
  const hooks = {
    /** The drain's first page waits for this. */
    beforeFirstPage: Promise.resolve(),
    firstPageRead: signal(),
    /** The late message's write waits for this. */
    beforeLateWrite: Promise.resolve(),
    lateAtWrite: signal(),
    /** The late message's sender has checked the gate after its write. */
    lateChecked: signal(),
    /** Pages read once the gate is open wait for this. */
    afterOpen: Promise.resolve(),
    onStored: new Map<string, () => void>(),
  };
  let pages = 0;
  let lateWritten = false;
  let opened = false;
  const wrap = hookStore({
    async undelivered(original, ...args) {
      if (args[0] !== reader) return original(...args);
      if (opened) await hooks.afterOpen;
      if (pages++ === 0) await hooks.beforeFirstPage;
      const page = await original(...args);
      if (pages === 1) hooks.firstPageRead.fire();
      return page;
    },
    async storeMessage(original, ...args) {
      const { id } = args[0];
      if (id === late) {
        hooks.lateAtWrite.fire();
        await hooks.beforeLateWrite;
      }
      const result = await original(...args);
      if (id === late) lateWritten = true;
      hooks.onStored.get(id)?.();
      return result;
    },
    // The sender's check of the gate after its write, whichever way the code makes it.
    async getAccount(original, ...args) {
      const result = await original(...args);
      if (args[0] === reader && lateWritten) hooks.lateChecked.fire();
      return result;
    },
    async holdForDrain(original, ...args) {
      const result = await original(...args);
      if (args[1].id === late) hooks.lateChecked.fire();
      return result;
    },
    // Opening the gate waits for that check.
    async setDraining(original, ...args) {
      const opening = args[0] === reader && args[3] === undefined;
      if (opening) await hooks.lateChecked.done;
      const result = await original(...args);
      if (opening) opened = true;
      return result;
    },
    async openDrainGate(original, ...args) {
      const opening = args[0] === reader;
      if (opening) await hooks.lateChecked.done;
      const result = await original(...args);
      if (opening) opened = true;
      return result;
    },
  });
  return { hooks, wrap };
}

describe('the drain gate, two senders racing its pages', () => {
  // A message's server id (its place in the drain's order) is taken before it is written. So a
  // slow sender's message can be written after the drain has read past its place, by a page that
  // brought a faster sender's later message. The hooks force that: the slow sender reaches its
  // write, the fast one's message is stored, the drain reads its first page, then the slow write
  // and its check of the gate (still closed), then the gate opens.
  const { hooks, wrap } = gateHooks('pages@localhost', 'slow-1');
  const fastStored = signal();
  const fastHandled = signal();
  hooks.beforeFirstPage = fastStored.done;
  // The fast sender's frame is handled whole first, so that only the slow one checks the gate
  // after the slow write.
  hooks.beforeLateWrite = Promise.all([hooks.firstPageRead.done, fastHandled.done]).then(() => {});
  hooks.onStored.set('fast-1', fastStored.fire);
  const system = useLocalSystem({ wrapContext: wrap });

  test('the slow sender’s message, older than one the drain pushed, still arrives', async () => {
    for (const user of ['pages', 'slow', 'fast']) await addUser(system(), `${user}@localhost`, 'pw');
    const slow = await goOnline(system(), 'slow@localhost', 'pw');
    const fast = await goOnline(system(), 'fast@localhost', 'pw');
    const chat = (id: string) =>
      xml('message', { to: 'pages@localhost', id, type: 'chat' }, xml('body', {}, id));
    const acked = (client: typeof slow, id: string) =>
      waitForStanza(client.stanzas, (stanza) => stanza.getChild('ack', ACK)?.attrs.id === id);
    await fast.xmpp.send(chat('backlog-1'));
    await acked(fast, 'backlog-1');

    const reader = await connectClient(system(), 'pages@localhost', 'pw');
    await reader.xmpp.send(xml('presence'));
    await slow.xmpp.send(chat('slow-1'));
    await hooks.lateAtWrite.done;
    await fast.xmpp.send(chat('fast-1'));
    await acked(fast, 'fast-1');
    await roundTrip(fast);
    fastHandled.fire();
    await acked(slow, 'slow-1');
    await system().api.idle();
    const bodies = bodiesOf(reader.stanzas);
    assert.equal(bodies[0], 'backlog-1', 'the backlog first');
    assert.deepEqual([...bodies].sort(), ['backlog-1', 'fast-1', 'slow-1'], 'each message once');
    assert.equal(await waiting(system(), 'pages@localhost'), 0);
    for (const client of [slow, fast, reader]) await client.xmpp.stop();
  });
});

describe('the drain gate, the next message after a held one', () => {
  // A message stored while the gate is closed is held for the drain. The sender's next message may
  // find the gate open: it must not reach the client before the held one. The hooks: the held
  // message is written after the drain's first page and checks the gate before it opens; pages
  // read after the opening wait until the next message has been handled.
  const { hooks, wrap } = gateHooks('order@localhost', 'held-1');
  const nextHandled = signal();
  hooks.beforeFirstPage = hooks.lateAtWrite.done;
  hooks.beforeLateWrite = hooks.firstPageRead.done;
  hooks.afterOpen = nextHandled.done;
  const system = useLocalSystem({ wrapContext: wrap });

  test('the held message arrives before the next one', async () => {
    for (const user of ['order', 'solo']) await addUser(system(), `${user}@localhost`, 'pw');
    const solo = await goOnline(system(), 'solo@localhost', 'pw');
    const chat = (id: string) =>
      xml('message', { to: 'order@localhost', id, type: 'chat' }, xml('body', {}, id));
    const acked = (id: string) =>
      waitForStanza(solo.stanzas, (stanza) => stanza.getChild('ack', ACK)?.attrs.id === id);
    await solo.xmpp.send(chat('backlog-1'));
    await acked('backlog-1');

    const reader = await connectClient(system(), 'order@localhost', 'pw');
    await reader.xmpp.send(xml('presence'));
    await untilDraining(system, 'order@localhost');
    await solo.xmpp.send(chat('held-1'));
    await acked('held-1');
    // One connection's frames are handled in order: this one after held-1's check of the gate.
    await solo.xmpp.send(chat('next-1'));
    await acked('next-1');
    await waitForStanza(reader.stanzas, (stanza) => stanza.getChildText('body') === 'next-1');
    nextHandled.fire();
    await system().api.idle();
    assert.deepEqual(bodiesOf(reader.stanzas), ['backlog-1', 'held-1', 'next-1']);
    assert.equal(await waiting(system(), 'order@localhost'), 0);
    for (const client of [solo, reader]) await client.xmpp.stop();
  });
});

describe('the drain gate, a continuation replayed after the drain ended', () => {
  // SQS delivers a record again when its batch failed after the record was handled. A drain's
  // continuation replayed once the gate is open must neither close it again nor loop waiting
  // for a held list that is gone.
  const system = useLocalSystem();

  test('changes nothing: the gate stays open, live messages flow, nothing is dead-lettered', async () => {
    for (const user of ['replay', 'friend']) await addUser(system(), `${user}@localhost`, 'pw');
    const reader = await goOnline(system(), 'replay@localhost', 'pw');
    const friend = await goOnline(system(), 'friend@localhost', 'pw');
    const [session] = (await system().context.store.getAccount('replay@localhost')).sessions;
    assert.ok(session && session.drainingUntil === undefined, 'the drain has ended');
    for (const after of ['#held:3', '#held:0', sequenceId(Date.now())])
      await system().context.continuations.continueDrain(session.connectionId, after);
    await system().api.idle();
    const [after] = (await system().context.store.getAccount('replay@localhost')).sessions;
    assert.equal(after?.drainingUntil, undefined, 'the gate is still open');
    assert.equal(system().api.deadLetters.length, 0);
    await friend.xmpp.send(
      xml('message', { to: 'replay@localhost', type: 'chat', id: 'live-1' }, xml('body', {}, 'live-1')),
    );
    await waitForStanza(reader.stanzas, (stanza) => stanza.getChildText('body') === 'live-1');
    for (const client of [reader, friend]) await client.xmpp.stop();
  });
});

describe('the drain gate, a frame retried between its write and its hold', () => {
  // The first try stores the message (unlisted, as for any draining recipient) and fails before
  // holding it; SQS retries the frame. The retry finds the message stored: it must hold it
  // again, or the drain under way would never bring it.
  const heldOnRetry = signal();
  let holds = 0;
  const system = useLocalSystem({
    wrapContext: hookStore({
      async undelivered(original, ...args) {
        if (args[0] === 'retried@localhost') await heldOnRetry.done;
        return original(...args);
      },
      async holdForDrain(original, ...args) {
        if (args[1].id !== 'crash-1') return original(...args);
        if (++holds === 1) throw new Error('injected: the invocation stops here');
        const held = await original(...args);
        heldOnRetry.fire();
        return held;
      },
    }),
  });

  test('the retry holds the stored message again, and the drain brings it', async () => {
    for (const user of ['retried', 'sender']) await addUser(system(), `${user}@localhost`, 'pw');
    const sender = await goOnline(system(), 'sender@localhost', 'pw');
    const reader = await connectClient(system(), 'retried@localhost', 'pw');
    await reader.xmpp.send(xml('presence'));
    await untilDraining(system, 'retried@localhost');
    await sender.xmpp.send(
      xml('message', { to: 'retried@localhost', type: 'chat', id: 'crash-1' }, xml('body', {}, 'crash-1')),
    );
    await waitForStanza(reader.stanzas, (stanza) => stanza.getChildText('body') === 'crash-1');
    await system().api.idle();
    assert.equal(holds, 2, 'held again by the retry');
    assert.deepEqual(bodiesOf(reader.stanzas), ['crash-1']);
    for (const client of [reader, sender]) await client.xmpp.stop();
  });
});

describe('the drain gate, a frame retried after the gate opened', () => {
  // As above, but the drain ends before SQS retries the frame. The retry does not push (a retry
  // may be a client's resend of a message already pushed): the message waits, unlisted, for the
  // next session, whose drain's start lists it.
  const gateOpened = signal();
  let holds = 0;
  let writes = 0;
  const firstTryFailed = signal();
  const system = useLocalSystem({
    wrapContext: hookStore({
      // The drain waits for the first try's failure, so that the message is stored behind it.
      async undelivered(original, ...args) {
        if (args[0] === 'reopened@localhost') await firstTryFailed.done;
        return original(...args);
      },
      async openDrainGate(original, ...args) {
        const answer = await original(...args);
        if (args[0] === 'reopened@localhost' && answer === 'open') gateOpened.fire();
        return answer;
      },
      async storeMessage(original, ...args) {
        if (args[0].id === 'crash-2' && ++writes === 2) await gateOpened.done;
        return original(...args);
      },
      async holdForDrain(original, ...args) {
        if (args[1].id === 'crash-2' && ++holds === 1) {
          firstTryFailed.fire();
          throw new Error('injected: the invocation stops here');
        }
        return original(...args);
      },
    }),
  });

  test('the retry does not push it; the next session gets it, once', async () => {
    for (const user of ['reopened', 'sender']) await addUser(system(), `${user}@localhost`, 'pw');
    const sender = await goOnline(system(), 'sender@localhost', 'pw');
    const reader = await connectClient(system(), 'reopened@localhost', 'pw');
    await reader.xmpp.send(xml('presence'));
    await untilDraining(system, 'reopened@localhost');
    await sender.xmpp.send(
      xml('message', { to: 'reopened@localhost', type: 'chat', id: 'crash-2' }, xml('body', {}, 'crash-2')),
    );
    await waitForStanza(sender.stanzas, (stanza) => stanza.getChild('ack', ACK)?.attrs.id === 'crash-2');
    await system().api.idle();
    assert.equal(writes, 2, 'the frame was retried');
    assert.equal(await waiting(system(), 'reopened@localhost'), 1);
    assert.deepEqual(bodiesOf(reader.stanzas), [], 'not pushed by the retry');
    await reader.xmpp.stop();
    const next = await goOnline(system(), 'reopened@localhost', 'pw');
    await waitForStanza(next.stanzas, (stanza) => stanza.getChildText('body') === 'crash-2');
    await system().api.idle();
    assert.deepEqual(bodiesOf([...reader.stanzas, ...next.stanzas]), ['crash-2']);
    for (const client of [next, sender]) await client.xmpp.stop();
  });
});

describe('the drain gate, a continuation of a drain that a new initial presence replaced', () => {
  // The client goes unavailable and available again while its first drain waits for its
  // continuation. The second drain brings the backlog; the first drain's continuation, run
  // while the second still holds its lease, must not take the second's lease over.
  const BACKLOG_OF = 30;
  const held: Array<() => Promise<void>> = [];
  let holdNext = true;
  const system = useLocalSystem({
    config: { drainPerInvocation: 10, drainPageSize: 10 },
    wrapContext: (context) => ({
      ...context,
      continuations: {
        continueDrain: async (connectionId, after) => {
          if (!holdNext) return context.continuations.continueDrain(connectionId, after);
          holdNext = false;
          held.push(() => context.continuations.continueDrain(connectionId, after));
        },
      },
    }),
  });

  test('the earlier continuation ends at once; the later drain brings the rest, each message once', async () => {
    for (const user of ['twice', 'sender']) await addUser(system(), `${user}@localhost`, 'pw');
    const sender = await goOnline(system(), 'sender@localhost', 'pw');
    for (let index = 0; index < BACKLOG_OF; index++) {
      await sender.xmpp.send(
        xml(
          'message',
          { to: 'twice@localhost', type: 'chat', id: `old-${index}` },
          xml('body', {}, `old ${index}`),
        ),
      );
    }
    await waitForStanza(
      sender.stanzas,
      (stanza) => stanza.getChild('ack', ACK)?.attrs.id === `old-${BACKLOG_OF - 1}`,
    );
    const reader = await connectClient(system(), 'twice@localhost', 'pw');
    await reader.xmpp.send(xml('presence'));
    // The first drain's first invocation: 10 messages, then its continuation, held here.
    await eventually(() => held.length === 1);
    await reader.xmpp.send(xml('presence', { type: 'unavailable' }));
    // The second drain holds its own continuation back too, then the first one is released.
    holdNext = true;
    await reader.xmpp.send(xml('presence'));
    await eventually(() => held.length === 2);
    await held[0]?.();
    await system().api.idle();
    // The first drain's continuation pushed nothing: the first drain brought 10 (and marked them
    // delivered), the second drain the next 10, and the second's continuation waits.
    assert.equal(bodiesOf(reader.stanzas).length, 20);
    await held[1]?.();
    await system().api.idle();
    assert.deepEqual(
      bodiesOf(reader.stanzas),
      Array.from({ length: BACKLOG_OF }, (_, index) => `old ${index}`),
    );
    const [session] = (await system().context.store.getAccount('twice@localhost')).sessions;
    assert.equal(session?.drainingUntil, undefined, 'the gate is open');
    assert.equal(system().api.deadLetters.length, 0);
    for (const client of [reader, sender]) await client.xmpp.stop();
  });
});

describe('the drain gate, a continuation retried after a failure', () => {
  // A continuation's first try renews the lease, then fails (a store call throws): SQS delivers
  // it again, and the retry must resume the drain rather than take itself for a stale one.
  let failed = false;
  const system = useLocalSystem({
    config: { drainPerInvocation: 10, drainPageSize: 10 },
    wrapContext: hookStore({
      async undelivered(original, ...args) {
        if (args[0] === 'resumed@localhost' && args[2] !== undefined && !failed) {
          failed = true;
          throw new Error('injected: the continuation fails after renewing the lease');
        }
        return original(...args);
      },
    }),
  });

  test('the retry resumes the drain: every message arrives, in order', async () => {
    for (const user of ['resumed', 'sender']) await addUser(system(), `${user}@localhost`, 'pw');
    const sender = await goOnline(system(), 'sender@localhost', 'pw');
    for (let index = 0; index < 25; index++) {
      await sender.xmpp.send(
        xml(
          'message',
          { to: 'resumed@localhost', type: 'chat', id: `old-${index}` },
          xml('body', {}, `old ${index}`),
        ),
      );
    }
    await waitForStanza(sender.stanzas, (stanza) => stanza.getChild('ack', ACK)?.attrs.id === 'old-24');
    const reader = await goOnline(system(), 'resumed@localhost', 'pw');
    await eventually(() => bodiesOf(reader.stanzas).length >= 25);
    await system().api.idle();
    assert.ok(failed, 'a continuation failed once');
    assert.deepEqual(
      bodiesOf(reader.stanzas),
      Array.from({ length: 25 }, (_, index) => `old ${index}`),
    );
    const [session] = (await system().context.store.getAccount('resumed@localhost')).sessions;
    assert.equal(session?.drainingUntil, undefined, 'the gate is open');
    for (const client of [reader, sender]) await client.xmpp.stop();
  });
});

describe('the drain gate, a message to two sessions, one of them draining', () => {
  // Without a receipt request a message counts as delivered once pushed; but a session whose
  // drain holds it must still get it from that drain.
  const senderDone = signal();
  let blocking = false;
  const system = useLocalSystem({
    wrapContext: hookStore({
      async undelivered(original, ...args) {
        if (args[0] === 'dual@localhost' && blocking) await senderDone.done;
        return original(...args);
      },
    }),
  });

  test('the live session gets it at once, the draining one from its drain', async () => {
    for (const user of ['dual', 'sender']) await addUser(system(), `${user}@localhost`, 'pw');
    const sender = await goOnline(system(), 'sender@localhost', 'pw');
    const desk = await goOnline(system(), 'dual@localhost', 'pw', 'desk');
    blocking = true;
    const phone = await connectClient(system(), 'dual@localhost', 'pw', 'phone');
    await phone.xmpp.send(xml('presence'));
    await untilDraining(system, 'dual@localhost');
    await sender.xmpp.send(
      xml('message', { to: 'dual@localhost', type: 'chat', id: 'both-1' }, xml('body', {}, 'both-1')),
    );
    await waitForStanza(desk.stanzas, (stanza) => stanza.getChildText('body') === 'both-1');
    await roundTrip(sender); // the sender's frame is handled whole
    senderDone.fire();
    await waitForStanza(phone.stanzas, (stanza) => stanza.getChildText('body') === 'both-1');
    await system().api.idle();
    assert.deepEqual(bodiesOf(desk.stanzas), ['both-1']);
    assert.deepEqual(bodiesOf(phone.stanzas), ['both-1']);
    assert.equal(await waiting(system(), 'dual@localhost'), 0, 'marked delivered by the drain');
    for (const client of [desk, phone, sender]) await client.xmpp.stop();
  });
});
