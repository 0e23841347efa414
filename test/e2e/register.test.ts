// XEP-0077 in-band registration (lib/register.ts): accounts made before login, stored as the
// users command stores them, the limits on names, passwords and attempts per address, and a
// logged-in user's password change and account removal, with what the contacts then see.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { xml } from '@xmpp/client';
import type { Element } from 'ltx';
import { makeCredentials } from '../../lib/scram.ts';
import {
  addUser,
  befriend,
  connectClient,
  goOnline,
  RawClient,
  roundTrip,
  useLocalSystem,
  waitForStanza,
} from '../helpers.ts';

const REGISTER = 'jabber:iq:register';
const FEATURE = 'http://jabber.org/features/iq-register';

let ids = 0;

/** Sends a jabber:iq:register get or set on a stream that is open but not authenticated. */
async function ask(client: RawClient, type: 'get' | 'set', children = ''): Promise<Element> {
  const id = `reg-${++ids}`;
  client.send(
    `<iq xmlns="jabber:client" type="${type}" id="${id}"><query xmlns="${REGISTER}">${children}</query></iq>`,
  );
  return client.next((element) => element.name === 'iq' && element.attrs.id === id);
}

const fields = (username: string, password: string) =>
  `<username>${username}</username><password>${password}</password>`;

const condition = (reply: Element) =>
  reply.attrs.type === 'error' ? reply.getChild('error')?.getChildElements()[0]?.name : reply.attrs.type;

describe('in-band registration (XEP-0077), open', () => {
  const system = useLocalSystem({ config: { registration: true, registrationsPerHour: 8 } });

  test('the stream offers it; the form asks for a username and a password', async () => {
    const client = await RawClient.connect(system().url);
    const features = await client.open();
    assert.ok(features.getChild('register', FEATURE), `register feature in ${features}`);
    const form = await ask(client, 'get');
    assert.equal(form.attrs.type, 'result');
    const query = form.getChild('query', REGISTER);
    assert.ok(query?.getChild('username') && query.getChild('password'));
    assert.match(query?.getChildText('instructions') ?? '', /at least 8 characters/);
    client.close();
  });

  test('a new account logs in with a real client and is stored as the users command stores it', async () => {
    const client = await RawClient.connect(system().url);
    await client.open();
    assert.equal(condition(await ask(client, 'set', fields('Newbie', 'long enough'))), 'result');
    client.close();
    const stored = await system().context.store.getUser('newbie@localhost');
    assert.ok(stored, 'stored under the normalised name');
    const byUsersCommand = makeCredentials('any password', 4096);
    assert.deepEqual(Object.keys(stored.scram).sort(), Object.keys(byUsersCommand).sort());
    for (const [mechanism, keys] of Object.entries(byUsersCommand))
      assert.deepEqual(
        Object.keys(stored.scram[mechanism as keyof typeof stored.scram]).sort(),
        Object.keys(keys).sort(),
      );
    assert.ok(!JSON.stringify(stored).includes('long enough'), 'never the password itself');
    const session = await connectClient(system(), 'newbie@localhost', 'long enough', 'pc');
    assert.equal(session.jid, 'newbie@localhost/pc');
    await session.xmpp.stop();
  });

  test('a taken name gets conflict; bad names and short passwords get not-acceptable', async () => {
    const client = await RawClient.connect(system().url);
    await client.open();
    assert.equal(condition(await ask(client, 'set', fields('newbie', 'another one'))), 'conflict');
    assert.equal(condition(await ask(client, 'set', fields('bad name', 'long enough'))), 'not-acceptable');
    assert.equal(
      condition(await ask(client, 'set', fields('x'.repeat(65), 'long enough'))),
      'not-acceptable',
    );
    assert.equal(
      condition(await ask(client, 'set', fields('other@elsewhere', 'long enough'))),
      'not-acceptable',
    );
    assert.equal(condition(await ask(client, 'set', fields('shorty', 'short'))), 'not-acceptable');
    assert.equal(condition(await ask(client, 'set', '<username>nopass</username>')), 'not-acceptable');
    assert.equal(condition(await ask(client, 'set', '<remove/>')), 'unexpected-request');
    const refused = await ask(client, 'set', fields('shorty', 'short'));
    assert.ok(!refused.toString().includes('short</password>'), 'the error does not echo the password');
    client.close();
    assert.equal(await system().context.store.getUser('shorty@localhost'), undefined);
  });

  test('attempts from one address are limited per hour (resource-constraint), refused ones too', async () => {
    const client = await RawClient.connect(system().url);
    await client.open();
    const { registrationsPerHour } = system().config;
    let refused: number | undefined;
    // One more than the limit: refused even if an hour began since the tests above.
    for (let attempt = 1; attempt <= registrationsPerHour + 1 && refused === undefined; attempt++) {
      const reply = condition(await ask(client, 'set', fields(`probe${attempt}`, 'long enough')));
      if (reply === 'resource-constraint') refused = attempt;
      else assert.equal(reply, 'result');
    }
    assert.ok(refused, `refused within ${registrationsPerHour} attempts (the tests above made some)`);
    assert.equal(await system().context.store.getUser(`probe${refused}@localhost`), undefined);
    assert.equal(condition(await ask(client, 'set', fields('later', 'long enough'))), 'resource-constraint');
    client.close();
  });

  test('a logged-in user reads the registration and changes the password', async () => {
    await addUser(system(), 'carol@localhost', 'old password');
    const carol = await connectClient(system(), 'carol@localhost', 'old password');
    const info = await carol.xmpp.iqCaller.request(
      xml('iq', { type: 'get' }, xml('query', { xmlns: REGISTER })),
    );
    const query = info.getChild('query', REGISTER);
    assert.ok(query?.getChild('registered'));
    assert.equal(query?.getChildText('username'), 'carol');
    assert.equal(query?.getChild('password'), undefined);

    const change = (username: string, password: string) =>
      carol.xmpp.iqCaller
        .request(
          xml(
            'iq',
            { type: 'set', to: 'localhost' },
            xml('query', { xmlns: REGISTER }, xml('username', {}, username), xml('password', {}, password)),
          ),
        )
        .then(
          () => 'result',
          (error: { condition?: string }) => error.condition,
        );
    assert.equal(await change('someone-else', 'new password'), 'bad-request');
    // Sent to another user the request is refused by the router: without the password either.
    const elsewhere = await carol.xmpp.iqCaller
      .request(
        xml(
          'iq',
          { type: 'set', to: 'nobody@localhost' },
          xml('query', { xmlns: REGISTER }, xml('username', {}, 'carol'), xml('password', {}, 'secret-123')),
        ),
      )
      .catch((error: { element?: Element }) => error.element);
    assert.ok(elsewhere && !elsewhere.toString().includes('secret-123'), `${elsewhere}`);
    assert.equal(await change('carol', ''), 'bad-request');
    assert.equal(await change('carol', 'short'), 'not-acceptable');
    assert.equal(await change('carol', 'new password'), 'result');
    await carol.xmpp.stop();
    const again = await connectClient(system(), 'carol@localhost', 'new password');
    await again.xmpp.stop();
  });

  test('removal: the sessions end with not-authorized, contacts are unsubscribed and told, the data goes', async () => {
    const { store } = system().context;
    await addUser(system(), 'dave@localhost', 'dave password');
    await addUser(system(), 'erin@localhost', 'erin password');
    await befriend(system(), 'dave@localhost', 'erin@localhost');
    await store.block('dave@localhost', ['spam@localhost']);
    const erin = await goOnline(system(), 'erin@localhost', 'erin password', 'desk');
    await erin.xmpp.iqCaller.request(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
    const phone = await RawClient.connect(system().url);
    await phone.login('dave@localhost', 'dave password', 'phone');
    phone.send('<presence xmlns="jabber:client"/>');
    await waitForStanza(
      erin.stanzas,
      (s) => s.name === 'presence' && s.attrs.from === 'dave@localhost/phone',
    );
    const laptop = await RawClient.connect(system().url);
    await laptop.login('dave@localhost', 'dave password', 'laptop');
    await roundTrip(laptop);

    laptop.send(
      `<iq xmlns="jabber:client" type="set" id="bye"><query xmlns="${REGISTER}"><remove/></query></iq>`,
    );
    const result = await laptop.next((element) => element.attrs.id === 'bye');
    assert.equal(result.attrs.type, 'result');
    for (const client of [laptop, phone]) {
      const error = await client.next((element) => element.name === 'stream:error');
      assert.ok(error.getChild('not-authorized'), `${error}`);
      await client.next((element) => element.name === 'close');
      await client.closed;
    }
    // Erin: Dave leaves her roster, with his subscription cancelled and his presence gone.
    await waitForStanza(erin.stanzas, (s) => s.name === 'presence' && s.attrs.type === 'unsubscribe');
    await waitForStanza(erin.stanzas, (s) => s.name === 'presence' && s.attrs.type === 'unsubscribed');
    await waitForStanza(
      erin.stanzas,
      (s) =>
        s.name === 'presence' && s.attrs.from === 'dave@localhost/phone' && s.attrs.type === 'unavailable',
    );
    await waitForStanza(
      erin.stanzas,
      (s) =>
        s.name === 'iq' &&
        s.getChild('query')?.getChild('item')?.attrs.jid === 'dave@localhost' &&
        s.getChild('query')?.getChild('item')?.attrs.subscription === 'remove',
    );
    await system().api.idle();
    assert.equal(await store.getRosterItem('erin@localhost', 'dave@localhost'), undefined);
    assert.equal(await store.getUser('dave@localhost'), undefined);
    assert.deepEqual(await store.getSessions('dave@localhost'), []);
    assert.deepEqual((await store.getRoster('dave@localhost')).items, []);
    assert.deepEqual(await store.getBlocklist('dave@localhost'), []);
    // The account is gone: its password no longer logs in (a raw client: xmpp.js would retry).
    const late = await RawClient.connect(system().url);
    await assert.rejects(late.login('dave@localhost', 'dave password'), /login failed/);
    late.close();
    await erin.xmpp.stop();
  });
});

describe('in-band registration (XEP-0077), closed', () => {
  const system = useLocalSystem({ config: { registration: false } });

  test('no register feature, and a registration attempt gets service-unavailable', async () => {
    const client = await RawClient.connect(system().url);
    const features = await client.open();
    assert.equal(features.getChild('register', FEATURE), undefined);
    assert.equal(condition(await ask(client, 'get')), 'service-unavailable');
    assert.equal(condition(await ask(client, 'set', fields('sneaky', 'long enough'))), 'service-unavailable');
    client.close();
    assert.equal(await system().context.store.getUser('sneaky@localhost'), undefined);
  });

  test('a logged-in user still changes the password', async () => {
    await addUser(system(), 'frank@localhost', 'frank password');
    const frank = await connectClient(system(), 'frank@localhost', 'frank password');
    await frank.xmpp.iqCaller.request(
      xml(
        'iq',
        { type: 'set' },
        xml(
          'query',
          { xmlns: REGISTER },
          xml('username', {}, 'frank'),
          xml('password', {}, 'changed password'),
        ),
      ),
    );
    await frank.xmpp.stop();
    const again = await connectClient(system(), 'frank@localhost', 'changed password');
    await again.xmpp.stop();
  });
});
