// XEP-0357 pieces that need no system: the PUSH_SERVICES setting, what counts as a room
// mention, the §5 publish a notification carries, and its signature.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import { parse } from 'ltx';
import { configFromEnv, defaultConfig, parsePushServices } from '../../lib/config.ts';
import { pushSignature } from '../../lib/gateway/push-delivery.ts';
import { mentions } from '../../lib/muc/mentions.ts';
import type { Context } from '../../lib/ports.ts';
import { publishStanza } from '../../lib/push.ts';

test('PUSH_SERVICES: jid=url pairs separated by commas or spaces; JIDs in lower case; bad entries refused', () => {
  assert.deepEqual(
    [...parsePushServices('Push.Example.com=https://a.example/p, app@push.example.org=http://127.0.0.1:8/x')],
    [
      ['push.example.com', 'https://a.example/p'],
      ['app@push.example.org', 'http://127.0.0.1:8/x'],
    ],
  );
  assert.equal(parsePushServices('').size, 0);
  for (const bad of [
    'push.example.com',
    '=https://a',
    'push.example.com=ftp://a',
    'a/b=https://a',
    'x=nope',
  ]) {
    assert.throws(() => parsePushServices(bad), Error, bad);
  }
  const config = configFromEnv({
    PUSH_SERVICES: 'push.localhost=http://127.0.0.1:1/p',
    PUSH_INCLUDE_BODY: 'true',
  });
  assert.equal(config.pushServices.get('push.localhost'), 'http://127.0.0.1:1/p');
  assert.equal(config.pushIncludeBody, true);
  assert.equal(configFromEnv({}).pushServices.size, 0);
  assert.throws(() => configFromEnv({ PUSH_INCLUDE_BODY: 'yes' }));
});

test('a mention is the nick as a whole word, in any case, in any script', () => {
  assert.ok(mentions('are you there, bobby?', 'Bobby'));
  assert.ok(mentions('Bobby', 'bobby'));
  assert.ok(mentions('@bobby: look', 'bobby'));
  assert.ok(mentions('你好 张三!', '张三'));
  assert.ok(mentions('ping c++ folks', 'c++'));
  assert.equal(mentions('Bobbyfoo is here', 'bobby'), false);
  assert.equal(mentions('foobobby', 'bobby'), false);
  assert.equal(mentions('anything', ''), false);
});

test('the publish: an iq from the user to the service, the summary form, the node and the publish-options', () => {
  const ctx = { config: { ...defaultConfig(), pushIncludeBody: false } } as unknown as Context;
  const pending = {
    service: 'push.example.com',
    node: 'node-1',
    options: '<x xmlns="jabber:x:data" type="submit"><field var="secret"><value>s3</value></field></x>',
    pending: 2,
    count: 7,
    sender: 'alice@localhost/desk',
    body: 'private words',
  };
  const iq = parse(publishStanza(ctx, 'bob@localhost', pending));
  assert.equal(iq.attrs.type, 'set');
  assert.equal(iq.attrs.from, 'bob@localhost');
  assert.equal(iq.attrs.to, 'push.example.com');
  const pubsub = iq.getChild('pubsub', 'http://jabber.org/protocol/pubsub');
  assert.equal(pubsub?.getChild('publish')?.attrs.node, 'node-1');
  const form = pubsub
    ?.getChild('publish')
    ?.getChild('item')
    ?.getChild('notification', 'urn:xmpp:push:0')
    ?.getChild('x');
  const fields = new Map(
    form?.getChildren('field').map((field) => [field.attrs.var, field.getChildText('value')]),
  );
  assert.deepEqual(Object.fromEntries(fields), {
    FORM_TYPE: 'urn:xmpp:push:summary',
    'message-count': '7',
    'last-message-sender': 'alice@localhost/desk',
  });
  assert.equal(
    pubsub?.getChild('publish-options')?.getChild('x')?.getChild('field')?.getChildText('value'),
    's3',
  );
  const withBody = { config: { ...defaultConfig(), pushIncludeBody: true } } as unknown as Context;
  assert.match(publishStanza(withBody, 'bob@localhost', pending), /last-message-body"><value>private words</);
});

test('the signature: sha256= and the hex HMAC-SHA256 of the exact body', () => {
  const body = '<iq type="set"/>';
  assert.equal(
    pushSignature('key', body),
    `sha256=${createHmac('sha256', 'key').update(body).digest('hex')}`,
  );
});
