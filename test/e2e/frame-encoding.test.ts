// Frames SQS would refuse as they are: an empty one (a message body needs a character) and text
// with characters outside XML's set (InvalidMessageContents). The $default integration carries
// every frame base64-encoded (infra/ordered-route.ts), as the emulator does, so they reach the
// handler and get XMPP's answer instead of API Gateway's JSON error frame, the frame lost.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Element } from 'ltx';
import { frameText } from '../../functions/frames.ts';
import { sqsRefusal } from '../../infra/local/sqs.ts';
import { addUser, RawClient, useLocalSystem } from '../helpers.ts';

const STREAMS = 'urn:ietf:params:xml:ns:xmpp-streams';

async function expectStreamError(client: RawClient, condition: string): Promise<Element> {
  const error = await client.next((element) => element.name === 'stream:error', 20_000);
  assert.ok(error.getChild(condition, STREAMS), `expected ${condition}, got ${error}`);
  await client.next((element) => element.name === 'close', 20_000);
  await client.closed;
  return error;
}

describe('frames SQS refuses as they are', () => {
  const system = useLocalSystem();

  async function boundClient(user: string): Promise<RawClient> {
    await addUser(system(), `${user}@localhost`, 'pw');
    const client = await RawClient.connect(system().url);
    await client.login(`${user}@localhost`, 'pw');
    return client;
  }

  const ping = (id: string) =>
    `<iq xmlns="jabber:client" type="get" id="${id}" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`;

  test('SQS would refuse them unencoded; encoded it takes them, and the handler gets them back', () => {
    for (const frame of ['', '<message>\u0001</message>', '<message>\uFFFE</message>']) {
      assert.ok(sqsRefusal(frame), JSON.stringify(frame));
      const body = `b64:${Buffer.from(frame).toString('base64')}`;
      assert.equal(sqsRefusal(body), undefined);
      assert.equal(frameText(body), frame);
    }
    // A record the previous template queued (raw text) during a deployment still reads as it was.
    assert.equal(frameText('<presence/>'), '<presence/>');
  });

  test('an empty frame is no XML and no stanza: ignored, and the stream goes on', async () => {
    const client = await boundClient('empty');
    client.send('');
    client.send(ping('after-empty'));
    const pong = await client.next((element) => element.attrs.id === 'after-empty', 20_000);
    assert.equal(pong.attrs.type, 'result');
    // Nothing else came: not API Gateway's JSON error frame, not a stream error.
    assert.deepEqual(
      client.received.map((element) => element.toString()),
      [],
    );
    client.close();
  });

  for (const [name, character] of [
    ['a control character (U+0001)', '\u0001'],
    ['a noncharacter (U+FFFE)', '\uFFFE'],
  ] as const) {
    test(`${name}, outside XML's set: not-well-formed (RFC 6120 §4.9.3.13)`, async () => {
      const client = await boundClient(`char${character.charCodeAt(0)}`);
      client.send(
        `<message xmlns="jabber:client" to="localhost" type="chat"><body>${character}</body></message>`,
      );
      await expectStreamError(client, 'not-well-formed');
    });
  }
});
