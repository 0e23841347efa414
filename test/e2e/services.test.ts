// After binding: XEP-0199 ping, XEP-0030 disco, and service-unavailable for the rest.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { xml } from '@xmpp/client';
import type { Element } from 'ltx';
import { addUser, connectClient, useLocalSystem } from '../helpers.ts';

let session: Awaited<ReturnType<typeof connectClient>>;
const request = (element: Element) => session.xmpp.iqCaller.request(element) as Promise<Element>;

describe('server services', () => {
  // Hooks inside the suite: Node 20 runs top-level hooks out of order with suites.
  const system = useLocalSystem();
  before(async () => {
    await addUser(system(), 'alice@localhost', 'secret');
    session = await connectClient(system(), 'alice@localhost', 'secret', 'desk');
  });
  after(async () => session.xmpp.stop());

  test('XEP-0199: the server answers a ping', async () => {
    const result = await request(
      xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })),
    );
    assert.equal(result.attrs.type, 'result');
    assert.equal(result.attrs.from, 'localhost');
    assert.equal(result.attrs.to, 'alice@localhost/desk');
  });

  test('XEP-0030: disco#info names a server/im identity and only implemented features', async () => {
    const result = await request(
      xml(
        'iq',
        { type: 'get', to: 'localhost' },
        xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }),
      ),
    );
    const query = result.getChild('query', 'http://jabber.org/protocol/disco#info');
    const identity = query?.getChild('identity');
    assert.equal(identity?.attrs.category, 'server');
    assert.equal(identity?.attrs.type, 'im');
    const features = query?.getChildren('feature').map((feature) => feature.attrs.var) ?? [];
    for (const feature of [
      'http://jabber.org/protocol/disco#info',
      'http://jabber.org/protocol/disco#items',
      'urn:xmpp:ping',
      'urn:xmpp:carbons:2',
    ]) {
      assert.ok(features.includes(feature), feature);
    }
    for (const never of ['urn:xmpp:sm:3', 'urn:xmpp:sasl:2']) assert.ok(!features.includes(never), never);
  });

  test('XEP-0030: disco#items answers, and an unknown node is item-not-found', async () => {
    const items = await request(
      xml(
        'iq',
        { type: 'get', to: 'localhost' },
        xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' }),
      ),
    );
    assert.ok(items.getChild('query', 'http://jabber.org/protocol/disco#items'));
    await assert.rejects(
      request(
        xml(
          'iq',
          { type: 'get', to: 'localhost' },
          xml('query', { xmlns: 'http://jabber.org/protocol/disco#info', node: 'x' }),
        ),
      ),
      (error: Error & { condition?: string }) => error.condition === 'item-not-found',
    );
  });

  test('disco#info on the own account answers account/registered', async () => {
    const result = await request(
      xml(
        'iq',
        { type: 'get', to: 'alice@localhost' },
        xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }),
      ),
    );
    assert.equal(result.getChild('query')?.getChild('identity')?.attrs.category, 'account');
  });

  test('any other iq get or set gets service-unavailable, never silence', async () => {
    for (const [type, payload] of [
      ['get', xml('query', { xmlns: 'jabber:iq:version' })],
      ['set', xml('query', { xmlns: 'urn:example:unknown' })],
      ['get', xml('vCard', { xmlns: 'vcard-temp' })],
    ] as const) {
      await assert.rejects(
        request(xml('iq', { type, to: 'localhost' }, payload)),
        (error: Error & { condition?: string; element?: Element }) => {
          assert.equal(error.condition, 'service-unavailable');
          assert.equal(error.element?.attrs.type, 'cancel');
          return true;
        },
      );
    }
  });
});
