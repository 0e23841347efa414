// Abuse limits (lib/limits.ts), with lowered limits so that the tests stay short: a flood of
// frames or bytes ends the stream with policy-violation, a sender under the limit is served,
// a user's sessions are bounded (resource-constraint at bind), and a connection that does not
// authenticate in time is closed by the deadline the local system plays with a timer.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Element } from 'ltx';
import { BURST_SECONDS } from '../../lib/limits.ts';
import { addUser, eventually, RawClient, sleep, useLocalSystem } from '../helpers.ts';

const STREAMS = 'urn:ietf:params:xml:ns:xmpp-streams';
const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

/** Expects the stream error, then <close/>, then the socket closed by the server. */
async function expectStreamError(client: RawClient, condition: string): Promise<Element> {
  const error = await client.next((element) => element.name === 'stream:error', 20_000);
  assert.ok(error.getChild(condition, STREAMS), `expected ${condition}, got ${error}`);
  await client.next((element) => element.name === 'close', 20_000);
  await client.closed;
  return error;
}

const ping = (id: string) =>
  `<iq xmlns="jabber:client" type="get" id="${id}" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`;

const isResult = (id: string) => (element: Element) => element.name === 'iq' && element.attrs.id === id;

const FRAMES_PER_SECOND = 10;
const BYTES_PER_SECOND = 40_000;
const SESSIONS = 3;

describe('limits per connection and per user', () => {
  const system = useLocalSystem({
    config: {
      maxFramesPerSecond: FRAMES_PER_SECOND,
      maxBytesPerSecond: BYTES_PER_SECOND,
      maxSessionsPerUser: SESSIONS,
    },
  });

  async function bound(user: string, resource?: string): Promise<RawClient> {
    await addUser(system(), `${user}@localhost`, 'pw');
    const client = await RawClient.connect(system().url);
    await client.login(`${user}@localhost`, 'pw', resource);
    return client;
  }

  test('a flood of frames gets policy-violation and is closed; what it queued is dropped', async () => {
    const flooder = await bound('flooder');
    const bystander = await bound('bystander');
    const sent = FRAMES_PER_SECOND * BURST_SECONDS * 5;
    for (let index = 0; index < sent; index++) flooder.send(ping(`f${index}`));
    const error = await expectStreamError(flooder, 'policy-violation');
    assert.match(error.getChildText('text', STREAMS) ?? '', /frames/);
    const answered = flooder.received.filter((element) => element.name === 'iq').length;
    // The burst and what the rate refilled meanwhile, never the whole flood.
    assert.ok(answered < sent / 2, `${answered} of ${sent} pings answered`);
    // Other connections are not affected.
    bystander.send(ping('b1'));
    await bystander.next(isResult('b1'), 20_000);
    bystander.close();
  });

  test('a flood of bytes in few frames gets policy-violation and is closed', async () => {
    const flooder = await bound('bytes');
    const body = 'x'.repeat(30_000);
    const frames = Math.ceil((BYTES_PER_SECOND * BURST_SECONDS * 2) / body.length);
    assert.ok(frames < FRAMES_PER_SECOND * BURST_SECONDS, 'few frames: only the bytes are over');
    for (let index = 0; index < frames; index++) {
      flooder.send(
        `<message xmlns="jabber:client" type="chat" to="bytes@localhost" id="m${index}"><body>${body}</body></message>`,
      );
    }
    await expectStreamError(flooder, 'policy-violation');
  });

  test('a sender under the limit is served in full, a burst within the bucket included', async () => {
    const client = await bound('steady');
    // A burst up to the bucket's size, at once.
    const burst = FRAMES_PER_SECOND * BURST_SECONDS - 5;
    for (let index = 0; index < burst; index++) client.send(ping(`burst${index}`));
    for (let index = 0; index < burst; index++) await client.next(isResult(`burst${index}`), 20_000);
    // Then a steady half of the rate for a while: pacing the sender is what is tested here.
    const paced = FRAMES_PER_SECOND * 2;
    for (let index = 0; index < paced; index++) {
      client.send(ping(`steady${index}`));
      await sleep(2000 / FRAMES_PER_SECOND);
    }
    for (let index = 0; index < paced; index++) await client.next(isResult(`steady${index}`), 20_000);
    assert.equal(
      client.received.filter((element) => element.name === 'stream:error').length,
      0,
      'no stream error',
    );
    assert.equal(client.closeCode, undefined);
    client.close();
  });

  /** Logs in up to the bind, and returns the bind's answer. */
  async function bind(user: string, resource: string): Promise<{ client: RawClient; answer: Element }> {
    const client = await RawClient.connect(system().url);
    await client.open();
    const local = user.split('@')[0];
    client.send(
      `<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${Buffer.from(`\0${local}\0pw`).toString('base64')}</auth>`,
    );
    assert.equal((await client.next(undefined, 20_000)).name, 'success');
    await client.open();
    client.send(
      `<iq xmlns="jabber:client" type="set" id="bind"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>${resource}</resource></bind></iq>`,
    );
    return { client, answer: await client.next(isResult('bind'), 20_000) };
  }

  test(`a user has at most ${SESSIONS} sessions: resource-constraint beyond, a replaced one does not count`, async () => {
    const user = 'many@localhost';
    await addUser(system(), user, 'pw');
    const sessions: RawClient[] = [];
    for (let index = 1; index <= SESSIONS; index++) {
      const { client, answer } = await bind(user, `r${index}`);
      assert.equal(answer.attrs.type, 'result');
      sessions.push(client);
    }

    const { client: extra, answer: refused } = await bind(user, 'one-too-many');
    assert.equal(refused.attrs.type, 'error');
    const error = refused.getChild('error');
    assert.equal(error?.attrs.type, 'wait');
    assert.ok(error?.getChild('resource-constraint', STANZAS), `${refused}`);
    // Not bound, and still connected: it may try again later.
    extra.send(ping('unbound'));
    await expectStreamError(extra, 'not-authorized');

    // The same full JID again replaces the session: not a new one.
    const { client: replacement, answer: replaced } = await bind(user, 'r1');
    assert.equal(replaced.attrs.type, 'result');
    await expectStreamError(sessions[0] as RawClient, 'conflict');

    // Once a session ends, there is room for another.
    (sessions[1] as RawClient).close();
    await eventually(async () => (await system().context.store.getSessions(user)).length < SESSIONS, 20_000);
    const { client: next, answer: admitted } = await bind(user, 'r4');
    assert.equal(admitted.attrs.type, 'result');
    for (const client of [replacement, sessions[2] as RawClient, next]) client.close();
  });
});

describe('authentication deadline', () => {
  const system = useLocalSystem({ config: { authTimeoutSeconds: 2 } });

  test('a connection that does not authenticate in time gets policy-violation and is closed', async () => {
    const idle = await RawClient.connect(system().url);
    await idle.open();
    const error = await expectStreamError(idle, 'policy-violation');
    assert.match(error.getChildText('text', STREAMS) ?? '', /authentication must complete within 2 seconds/);
  });

  test('so does one that never opens the stream: the server opens it to say why', async () => {
    const silent = await RawClient.connect(system().url);
    await silent.next((element) => element.name === 'open', 20_000);
    await expectStreamError(silent, 'policy-violation');
  });

  test('an authenticated connection outlives its deadline', async () => {
    await addUser(system(), 'prompt@localhost', 'pw');
    const client = await RawClient.connect(system().url);
    await client.login('prompt@localhost', 'pw');
    // Wait for its deadline to have been handled (a counter, not a time), then use the stream.
    await eventually(() => system().deadlines.pending === 0, 20_000);
    await system().api.idle();
    client.send(ping('after'));
    await client.next(isResult('after'), 20_000);
    client.close();
  });
});
