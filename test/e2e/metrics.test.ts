// The core counts what the production dashboard shows (published as EMF on Lambda).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { xml } from '@xmpp/client';
import type { MetricName } from '../../lib/ports.ts';
import { addUser, eventually, goOnline, RawClient, useLocalSystem, waitForStanza } from '../helpers.ts';

describe('metrics', () => {
  const counts = new Map<MetricName, number>();
  const system = useLocalSystem({
    wrapContext: (context) => ({
      ...context,
      metrics: { count: (name, value = 1) => counts.set(name, (counts.get(name) ?? 0) + value) },
    }),
  });

  test('stored, delivered, receipts routed, drained, SASL failures and stanzas are counted', async () => {
    await addUser(system(), 'alice@localhost', 'pw');
    await addUser(system(), 'bob@localhost', 'pw');
    const alice = await goOnline(system(), 'alice@localhost', 'pw');
    await alice.xmpp.send(
      xml(
        'message',
        { type: 'chat', to: 'bob@localhost', id: 'x1' },
        xml('body', {}, 'hi'),
        xml('request', { xmlns: 'urn:xmpp:receipts' }),
      ),
    );
    await waitForStanza(alice.stanzas, (s) => s.getChild('ack') !== undefined);
    const bob = await goOnline(system(), 'bob@localhost', 'pw');
    const got = await waitForStanza(bob.stanzas, (s) => s.getChildText('body') === 'hi');
    await bob.xmpp.send(
      xml(
        'message',
        { to: got.attrs.from, type: 'chat' },
        xml('received', { xmlns: 'urn:xmpp:receipts', id: 'x1' }),
      ),
    );
    await waitForStanza(alice.stanzas, (s) => s.getChild('received') !== undefined);
    const wrong = await RawClient.connect(system().url);
    await wrong.open();
    wrong.send(
      `<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${Buffer.from('\0alice\0nope').toString('base64')}</auth>`,
    );
    await wrong.next();
    wrong.close();
    await eventually(() => counts.get('SaslFailures') === 1);
    assert.equal(counts.get('MessagesStored'), 1);
    assert.equal(counts.get('MessagesDrained'), 1);
    assert.equal(counts.get('MessagesDelivered'), 1);
    assert.equal(counts.get('ReceiptsRouted'), 1);
    assert.ok((counts.get('StanzasHandled') ?? 0) > 10);
    await alice.xmpp.stop();
    await bob.xmpp.stop();
  });
});
