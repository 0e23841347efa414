// RFC 7395 and RFC 6120 stream negotiation, through the emulator, with real clients.
import assert from 'node:assert/strict';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { xml } from '@xmpp/client';
import { addUser, connectClient, eventually, RawClient, useLocalSystem, WAIT_MS } from '../helpers.ts';

const FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';
const SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';

const b64 = (text: string) => Buffer.from(text).toString('base64');

describe('stream negotiation', () => {
  const system = useLocalSystem();

  test('an @xmpp/client logs in with SCRAM-SHA-1 and binds the resource it asked for', async () => {
    await addUser(system(), 'alice@localhost', 'secret');
    const { xmpp, jid } = await connectClient(system(), 'alice@localhost', 'secret', 'phone');
    assert.equal(jid, 'alice@localhost/phone');
    await xmpp.stop();
  });

  test('the server answers <open/> with <open/> and features declaring xmlns:stream', async () => {
    const client = await RawClient.connect(system().url);
    client.send(`<open xmlns="${FRAMING}" to="localhost" version="1.0"/>`);
    const open = await client.next();
    assert.equal(open.name, 'open');
    assert.equal(open.attrs.xmlns, FRAMING);
    assert.equal(open.attrs.from, 'localhost');
    assert.equal(open.attrs.version, '1.0');
    assert.equal(open.attrs['xml:lang'], 'en');
    assert.ok(open.attrs.id);
    const features = await client.next();
    assert.equal(features.name, 'stream:features');
    assert.equal(features.attrs['xmlns:stream'], 'http://etherx.jabber.org/streams');
    const mechanisms = features
      .getChild('mechanisms', SASL)
      ?.getChildren('mechanism')
      .map((m) => m.getText());
    assert.deepEqual(mechanisms, ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN']);
    client.close();
  });

  test('the xmpp subprotocol is echoed, and a client that offers none still connects', async () => {
    const withProtocol = await RawClient.connect(system().url);
    assert.equal(withProtocol.socket.protocol, 'xmpp');
    withProtocol.close();
    const without = await RawClient.connect(system().url, []);
    assert.equal(without.socket.protocol, '');
    without.close();
  });

  test('PLAIN logs in; the server picks a resource when none is asked for', async () => {
    await addUser(system(), 'plain@localhost', 'pencil');
    const client = await RawClient.connect(system().url);
    const jid = await client.login('plain@localhost', 'pencil');
    assert.match(jid, /^plain@localhost\/.+/);
    client.close();
  });

  test('SCRAM-SHA-256 logs in and the server signature verifies', async () => {
    await addUser(system(), 'scram256@localhost', 'pencil');
    const client = await RawClient.connect(system().url);
    await client.open();
    const clientNonce = randomBytes(12).toString('base64');
    const clientFirstBare = `n=scram256,r=${clientNonce}`;
    client.send(`<auth xmlns="${SASL}" mechanism="SCRAM-SHA-256">${b64(`n,,${clientFirstBare}`)}</auth>`);
    const challenge = await client.next();
    assert.equal(challenge.name, 'challenge');
    const serverFirst = Buffer.from(challenge.getText(), 'base64').toString();
    const fields = Object.fromEntries(serverFirst.split(',').map((part) => [part[0], part.slice(2)]));
    assert.ok(fields.r?.startsWith(clientNonce));
    const salted = pbkdf2Sync(
      'pencil',
      Buffer.from(fields.s ?? '', 'base64'),
      Number(fields.i),
      32,
      'sha256',
    );
    const clientKey = createHmac('sha256', salted).update('Client Key').digest();
    const storedKey = createHash('sha256').update(clientKey).digest();
    const withoutProof = `c=biws,r=${fields.r}`;
    const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
    const signature = createHmac('sha256', storedKey).update(authMessage).digest();
    const proof = Buffer.from(clientKey.map((byte, index) => byte ^ (signature[index] ?? 0)));
    client.send(
      `<response xmlns="${SASL}">${b64(`${withoutProof},p=${proof.toString('base64')}`)}</response>`,
    );
    const success = await client.next();
    assert.equal(success.name, 'success');
    const serverKey = createHmac('sha256', salted).update('Server Key').digest();
    const expected = createHmac('sha256', serverKey).update(authMessage).digest('base64');
    assert.equal(Buffer.from(success.getText(), 'base64').toString(), `v=${expected}`);
    client.close();
  });

  test('a wrong password and an unknown user get the same not-authorized answer', async () => {
    await addUser(system(), 'carol@localhost', 'right');
    for (const [user, password] of [
      ['carol', 'wrong'],
      ['nobody', 'whatever'],
    ]) {
      const client = await RawClient.connect(system().url);
      await client.open();
      client.send(`<auth xmlns="${SASL}" mechanism="PLAIN">${b64(`\0${user}\0${password}`)}</auth>`);
      const failure = await client.next();
      assert.equal(failure.toString(), `<failure xmlns="${SASL}"><not-authorized/></failure>`);
      client.close();
    }
    const { client } = await import('@xmpp/client');
    for (const username of ['carol', 'nobody']) {
      // WAIT_MS for each stream step, as connectClient: xmpp.js's 2 s can pass on a loaded machine.
      const xmpp = client({
        service: system().url,
        domain: 'localhost',
        username,
        password: 'wrong',
        timeout: WAIT_MS,
      } as Parameters<typeof client>[0]);
      xmpp.on('error', () => {});
      await assert.rejects(xmpp.start(), (error: Error & { condition?: string }) => {
        assert.equal(error.condition, 'not-authorized');
        return true;
      });
      await xmpp.stop().catch(() => {});
    }
  });

  test('SASL failures: invalid-mechanism, malformed-request, aborted, then a retry succeeds', async () => {
    await addUser(system(), 'dave@localhost', 'pw');
    const client = await RawClient.connect(system().url);
    await client.open();
    client.send(`<auth xmlns="${SASL}" mechanism="DIGEST-MD5"/>`);
    assert.ok((await client.next()).getChild('invalid-mechanism'));
    client.send(`<auth xmlns="${SASL}" mechanism="PLAIN">${b64('no-separators')}</auth>`);
    assert.ok((await client.next()).getChild('malformed-request'));
    client.send(`<auth xmlns="${SASL}" mechanism="SCRAM-SHA-1">${b64('n,,n=dave,r=abc')}</auth>`);
    assert.equal((await client.next()).name, 'challenge');
    client.send(`<abort xmlns="${SASL}"/>`);
    assert.ok((await client.next()).getChild('aborted'));
    client.send(`<auth xmlns="${SASL}" mechanism="SCRAM-SHA-1">${b64('p=tls-unique,,n=dave,r=abc')}</auth>`);
    assert.ok((await client.next()).getChild('malformed-request'));
    client.send(`<auth xmlns="${SASL}" mechanism="PLAIN">${b64('\0dave\0pw')}</auth>`);
    assert.equal((await client.next()).name, 'success');
    client.close();
  });

  test('stream restart, the legacy session IQ and <close/> are answered', async () => {
    await addUser(system(), 'erin@localhost', 'pw');
    const client = await RawClient.connect(system().url);
    await client.open();
    client.send(`<auth xmlns="${SASL}" mechanism="PLAIN">${b64('\0erin\0pw')}</auth>`);
    await client.next();
    const features = await client.open();
    assert.ok(features.getChild('bind', 'urn:ietf:params:xml:ns:xmpp-bind'));
    assert.ok(features.getChild('session', 'urn:ietf:params:xml:ns:xmpp-session')?.getChild('optional'));
    client.send(
      '<iq xmlns="jabber:client" type="set" id="b1"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></iq>',
    );
    await client.next();
    client.send(
      '<iq xmlns="jabber:client" type="set" id="s1"><session xmlns="urn:ietf:params:xml:ns:xmpp-session"/></iq>',
    );
    const session = await client.next();
    assert.equal(session.attrs.type, 'result');
    assert.equal(session.attrs.id, 's1');
    client.send(`<close xmlns="${FRAMING}"/>`);
    assert.equal((await client.next()).toString(), `<close xmlns="${FRAMING}"/>`);
    await client.closed;
  });

  test('a second bind of the same full JID replaces the old session with a conflict error', async () => {
    await addUser(system(), 'frank@localhost', 'pw');
    const first = await RawClient.connect(system().url);
    await first.login('frank@localhost', 'pw', 'laptop');
    const second = await connectClient(system(), 'frank@localhost', 'pw', 'laptop');
    assert.equal(second.jid, 'frank@localhost/laptop');
    const error = await first.next((element) => element.name === 'stream:error');
    assert.ok(error.getChild('conflict', 'urn:ietf:params:xml:ns:xmpp-streams'));
    assert.equal((await first.next()).name, 'close');
    await first.closed;
    const sessions = await system().context.store.getSessions('frank@localhost');
    assert.equal(sessions.length, 1);
    // The new session still works.
    await second.xmpp.iqCaller.request(
      xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })),
    );
    await second.xmpp.stop();
    await eventually(async () => (await system().context.store.getSessions('frank@localhost')).length === 0);
  });
});
