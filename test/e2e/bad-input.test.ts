// Bad input gets a clear stream error, the stream is closed, and nothing else breaks.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Element } from 'ltx';
import { addUser, RawClient, useLocalSystem } from '../helpers.ts';

const STREAMS = 'urn:ietf:params:xml:ns:xmpp-streams';

/** Expects stream error CONDITION, then <close/>, then the socket closed by the server. */
async function expectStreamError(client: RawClient, condition: string): Promise<Element> {
  const error = await client.next((element) => element.name === 'stream:error');
  assert.ok(error.getChild(condition, STREAMS), `expected ${condition}, got ${error}`);
  assert.equal(error.attrs['xmlns:stream'], 'http://etherx.jabber.org/streams');
  const close = await client.next((element) => element.name === 'close');
  assert.equal(close.attrs.xmlns, 'urn:ietf:params:xml:ns:xmpp-framing');
  await client.closed;
  return error;
}

describe('bad input', () => {
  const system = useLocalSystem({ config: { maxStanzaBytes: 4096 } });

  async function boundClient(): Promise<RawClient> {
    await addUser(system(), 'mallory@localhost', 'pw');
    const client = await RawClient.connect(system().url);
    await client.login('mallory@localhost', 'pw');
    return client;
  }

  test('malformed XML: not-well-formed, and another connection is unaffected', async () => {
    await addUser(system(), 'bystander@localhost', 'pw');
    const bystander = await RawClient.connect(system().url);
    await bystander.login('bystander@localhost', 'pw');
    const client = await boundClient();
    client.send('<message><body>unclosed</message>');
    await expectStreamError(client, 'not-well-formed');
    bystander.send(
      '<iq xmlns="jabber:client" type="get" id="p1" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>',
    );
    const pong = await bystander.next((element) => element.attrs.id === 'p1');
    assert.equal(pong.attrs.type, 'result');
    bystander.close();
  });

  test('a <message> as the very first frame: the server opens, sends not-authorized and closes', async () => {
    const client = await RawClient.connect(system().url);
    client.send('<message xmlns="jabber:client" to="alice@localhost"><body>hi</body></message>');
    const open = await client.next();
    assert.equal(open.name, 'open');
    await expectStreamError(client, 'not-authorized');
  });

  test('a stanza before authentication: not-authorized', async () => {
    const client = await RawClient.connect(system().url);
    await client.open();
    client.send('<iq xmlns="jabber:client" type="get" id="x"><ping xmlns="urn:xmpp:ping"/></iq>');
    await expectStreamError(client, 'not-authorized');
  });

  test('a stanza after authentication but before binding: not-authorized', async () => {
    await addUser(system(), 'unbound@localhost', 'pw');
    const client = await RawClient.connect(system().url);
    await client.open();
    client.send(
      `<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${Buffer.from('\0unbound\0pw').toString('base64')}</auth>`,
    );
    await client.next();
    await client.open();
    client.send('<message xmlns="jabber:client" to="alice@localhost"><body>hi</body></message>');
    await expectStreamError(client, 'not-authorized');
  });

  for (const [name, frame] of [
    ['a DOCTYPE', '<!DOCTYPE x [<!ENTITY a "b">]><message/>'],
    ['an entity declaration', '<!ENTITY a "b">'],
    ['a processing instruction', '<?evil?><message/>'],
    ['a comment', '<message xmlns="jabber:client"><!-- hi --></message>'],
    ['an undefined entity', '<message xmlns="jabber:client"><body>&lol;</body></message>'],
  ]) {
    test(`${name}: restricted-xml`, async () => {
      const client = await boundClient();
      client.send(frame as string);
      await expectStreamError(client, 'restricted-xml');
    });
  }

  test('a frame over the stanza limit: policy-violation', async () => {
    const client = await boundClient();
    client.send(`<message xmlns="jabber:client" to="a@localhost"><body>${'x'.repeat(5000)}</body></message>`);
    await expectStreamError(client, 'policy-violation');
  });

  test('a binary frame: unsupported-encoding', async () => {
    const client = await boundClient();
    client.send(Buffer.from('<message xmlns="jabber:client"/>'), true);
    await expectStreamError(client, 'unsupported-encoding');
  });

  test('a frame over API Gateway’s 128 KB message limit closes the socket with 1009', async () => {
    const client = await boundClient();
    client.send(`<message>${'x'.repeat(130 * 1024)}</message>`);
    assert.equal(await client.closed, 1009);
  });

  test('an unknown top-level element: unsupported-stanza-type', async () => {
    const client = await boundClient();
    client.send('<foo xmlns="jabber:client"/>');
    await expectStreamError(client, 'unsupported-stanza-type');
  });

  test('a stanza in a foreign namespace: invalid-namespace', async () => {
    const client = await boundClient();
    client.send('<message xmlns="jabber:server"/>');
    await expectStreamError(client, 'invalid-namespace');
  });

  test('an <open/> to another domain: host-unknown; a wrong version: unsupported-version', async () => {
    const wrongHost = await RawClient.connect(system().url);
    wrongHost.send('<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="example.org" version="1.0"/>');
    await expectStreamError(wrongHost, 'host-unknown');
    const wrongVersion = await RawClient.connect(system().url);
    wrongVersion.send('<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="localhost" version="0.9"/>');
    await expectStreamError(wrongVersion, 'unsupported-version');
  });

  test('an iq with a malformed to: jid-malformed; with two children: bad-request', async () => {
    const client = await boundClient();
    client.send('<iq xmlns="jabber:client" type="get" id="j1" to="a@b@"><ping xmlns="urn:xmpp:ping"/></iq>');
    const malformed = await client.next((element) => element.attrs.id === 'j1');
    assert.equal(malformed.attrs.type, 'error');
    assert.ok(malformed.getChild('error')?.getChild('jid-malformed'));
    client.send(
      '<iq xmlns="jabber:client" type="get" id="j2"><ping xmlns="urn:xmpp:ping"/><ping xmlns="urn:xmpp:ping"/></iq>',
    );
    const bad = await client.next((element) => element.attrs.id === 'j2');
    assert.ok(bad.getChild('error')?.getChild('bad-request'));
    client.close();
  });
});
