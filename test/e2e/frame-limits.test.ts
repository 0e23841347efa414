// API Gateway's WebSocket limits, as the emulator reproduces them: a frame over 32 KB closes
// the connection with 1009, a message split into frames may reach 128 KB, and a stanza over
// maxStanzaBytes (at most 32 KB) gets the stream error policy-violation.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Element } from 'ltx';
import { MAX_FRAME_BYTES } from '../../lib/config.ts';
import { addUser, RawClient, useLocalSystem } from '../helpers.ts';

const STREAMS = 'urn:ietf:params:xml:ns:xmpp-streams';

async function expectStreamError(client: RawClient, condition: string): Promise<Element> {
  const error = await client.next((element) => element.name === 'stream:error', 15_000);
  assert.ok(error.getChild(condition, STREAMS), `expected ${condition}, got ${error}`);
  await client.closed;
  return error;
}

const chat = (to: string, id: string, body: string) =>
  `<message xmlns="jabber:client" type="chat" to="${to}" id="${id}"><body>${body}</body></message>`;

/** Sends one message as frames of at most `frameBytes` (continuation frames, RFC 6455 §5.4). */
function sendFragmented(client: RawClient, message: string, frameBytes: number): void {
  const bytes = Buffer.from(message, 'utf8');
  for (let offset = 0; offset < bytes.length; offset += frameBytes) {
    const fin = offset + frameBytes >= bytes.length;
    client.socket.send(bytes.subarray(offset, offset + frameBytes), { binary: false, fin });
  }
}

describe('frame limits (defaults: 32 KB frames, maxStanzaBytes 32768)', () => {
  const system = useLocalSystem();

  async function bound(user: string): Promise<RawClient> {
    await addUser(system(), `${user}@localhost`, 'pw');
    const client = await RawClient.connect(system().url);
    await client.login(`${user}@localhost`, 'pw');
    return client;
  }

  test('maxStanzaBytes defaults to the frame limit', () => {
    assert.equal(system().config.maxStanzaBytes, MAX_FRAME_BYTES);
    assert.equal(MAX_FRAME_BYTES, 32768);
  });

  test('a 40 KB frame closes the connection with 1009; another connection is unaffected', async () => {
    const bystander = await bound('frame-bystander');
    const client = await bound('frame-big');
    client.send(chat('frame-bystander@localhost', 'big', 'x'.repeat(40 * 1024)));
    assert.equal(await client.closed, 1009);
    bystander.send('<iq xmlns="jabber:client" type="get" id="p1"><ping xmlns="urn:xmpp:ping"/></iq>');
    const pong = await bystander.next((element) => element.attrs.id === 'p1', 15_000);
    assert.equal(pong.attrs.type, 'result');
    // The big message never reached anyone.
    assert.equal(
      bystander.received.some((element) => element.name === 'message' && element.getChild('body')),
      false,
    );
    bystander.close();
  });

  test('a message with a 30 KB body (one frame under 32 KB) is delivered', async () => {
    const bob = await bound('frame-bob');
    bob.send('<presence xmlns="jabber:client"/>');
    const alice = await bound('frame-alice');
    const body = 'b'.repeat(30 * 1024);
    const frame = chat('frame-bob@localhost', 'm30', body);
    assert.ok(Buffer.byteLength(frame) < MAX_FRAME_BYTES);
    alice.send(frame);
    const ack = await alice.next((element) => element.getChild('ack') !== undefined, 15_000);
    assert.equal(ack.getChild('ack')?.attrs.id, 'm30');
    const received = await bob.next((element) => element.attrs.id === 'm30', 15_000);
    assert.equal(received.getChildText('body'), body);
    alice.close();
    bob.close();
  });

  test('a message split into frames of 10 KB is reassembled and handled', async () => {
    const bob = await bound('frag-bob');
    bob.send('<presence xmlns="jabber:client"/>');
    const alice = await bound('frag-alice');
    const body = 'f'.repeat(24 * 1024);
    sendFragmented(alice, chat('frag-bob@localhost', 'frag', body), 10 * 1024);
    const received = await bob.next((element) => element.attrs.id === 'frag', 15_000);
    assert.equal(received.getChildText('body'), body);
    alice.close();
    bob.close();
  });

  test('a 40 KB message in frames of 20 KB passes API Gateway but gets policy-violation', async () => {
    const client = await bound('frag-big');
    sendFragmented(client, chat('frag-bob@localhost', 'frag40', 'y'.repeat(40 * 1024)), 20 * 1024);
    const error = await expectStreamError(client, 'policy-violation');
    assert.match(error.getChildText('text', STREAMS) ?? '', /32768 bytes/);
    // The server closed the stream itself: a normal close, not 1009.
    assert.equal(client.closeCode, 1000);
  });

  test('a message over 128 KB closes with 1009 even in frames of 30 KB', async () => {
    const client = await bound('frag-huge');
    sendFragmented(client, chat('frag-bob@localhost', 'huge', 'z'.repeat(130 * 1024)), 30 * 1024);
    assert.equal(await client.closed, 1009);
  });
});

describe('a lower maxStanzaBytes', () => {
  const system = useLocalSystem({ config: { maxStanzaBytes: 16384 } });

  test('a 20 KB stanza (under the frame limit, over maxStanzaBytes) gets policy-violation', async () => {
    await addUser(system(), 'low@localhost', 'pw');
    const client = await RawClient.connect(system().url);
    await client.login('low@localhost', 'pw');
    client.send(chat('someone@localhost', 'low', 'x'.repeat(20 * 1024)));
    const error = await expectStreamError(client, 'policy-violation');
    assert.match(error.getChildText('text', STREAMS) ?? '', /16384 bytes/);
  });
});
