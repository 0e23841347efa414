import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  StanzaError,
  type StanzaErrorCondition,
  type StanzaErrorType,
  stanzaErrorReply,
  streamError,
} from '../../lib/errors.ts';
import { type Element, parseFrame } from '../../lib/xml.ts';

const STREAM = 'http://etherx.jabber.org/streams';
const STREAMS = 'urn:ietf:params:xml:ns:xmpp-streams';
const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

function element(text: string): Element {
  const frame = parseFrame(text);
  assert.equal(frame.kind, 'elements');
  const first = frame.kind === 'elements' ? frame.elements[0] : undefined;
  assert.ok(first);
  return first;
}

describe('streamError', () => {
  test('condition only', () => {
    assert.equal(
      streamError('not-well-formed').toString(),
      `<stream:error xmlns:stream="${STREAM}"><not-well-formed xmlns="${STREAMS}"/></stream:error>`,
    );
  });

  test('with text', () => {
    assert.equal(
      streamError('policy-violation', 'too fast & too big').toString(),
      `<stream:error xmlns:stream="${STREAM}"><policy-violation xmlns="${STREAMS}"/>` +
        `<text xmlns="${STREAMS}" xml:lang="en">too fast &amp; too big</text></stream:error>`,
    );
  });

  test('the output is itself a valid frame', () => {
    const error = streamError('restricted-xml', 'no comments');
    assert.equal(element(error.toString()).toString(), error.toString());
  });
});

describe('stanzaErrorReply', () => {
  test('an iq error swaps addressing, keeps the id and the payload', () => {
    const iq = element(
      '<iq xmlns="jabber:client" type="get" id="q1" from="alice@example.com/phone" to="example.com">' +
        '<query xmlns="jabber:iq:version"/></iq>',
    );
    const reply = stanzaErrorReply(iq, new StanzaError('service-unavailable'), 'example.com');
    assert.equal(
      reply.toString(),
      '<iq xmlns="jabber:client" type="error" id="q1" from="example.com" to="alice@example.com/phone">' +
        `<query xmlns="jabber:iq:version"/><error type="cancel"><service-unavailable xmlns="${STANZAS}"/>` +
        '</error></iq>',
    );
  });

  test('the kept payload is a copy; the original stanza is untouched', () => {
    const text =
      '<iq xmlns="jabber:client" type="set" id="q2" from="a@b/c"><query xmlns="x"><item n="1"/></query></iq>';
    const iq = element(text);
    const reply = stanzaErrorReply(iq, new StanzaError('bad-request'), 'b');
    assert.equal(iq.toString(), text);
    const payload = reply.getChild('query', 'x');
    assert.ok(payload);
    assert.equal(payload.parent, reply);
    assert.notEqual(payload, iq.getChild('query', 'x'));
  });

  test('a message error has the text and no original payload', () => {
    const message = element(
      '<message xmlns="jabber:client" type="chat" id="m1" from="alice@example.com/phone" to="bob@example.com">' +
        '<body>hello</body></message>',
    );
    const reply = stanzaErrorReply(
      message,
      new StanzaError('not-authorized', 'log in first'),
      'bob@example.com',
    );
    assert.equal(
      reply.toString(),
      '<message xmlns="jabber:client" type="error" id="m1" from="bob@example.com" to="alice@example.com/phone">' +
        `<error type="auth"><not-authorized xmlns="${STANZAS}"/>` +
        `<text xmlns="${STANZAS}" xml:lang="en">log in first</text></error></message>`,
    );
  });

  test('a presence error; missing id, from and original from drop out', () => {
    const presence = element('<presence xmlns="jabber:client" to="room@example.com"/>');
    const reply = stanzaErrorReply(presence, new StanzaError('bad-request'), undefined);
    assert.equal(
      reply.toString(),
      `<presence xmlns="jabber:client" type="error"><error type="modify"><bad-request xmlns="${STANZAS}"/>` +
        '</error></presence>',
    );
  });

  test('an explicit type overrides the default', () => {
    const iq = element(
      '<iq xmlns="jabber:client" type="get" id="q3" from="a@b/c"><ping xmlns="urn:xmpp:ping"/></iq>',
    );
    const error = new StanzaError('service-unavailable', undefined, 'wait');
    assert.equal(error.type, 'wait');
    const reply = stanzaErrorReply(iq, error, 'b');
    assert.equal(reply.getChild('error')?.attrs.type, 'wait');
  });
});

describe('StanzaError default types (RFC 6120 §8.3.3)', () => {
  const defaults: readonly [StanzaErrorCondition, StanzaErrorType][] = [
    ['bad-request', 'modify'],
    ['conflict', 'cancel'],
    ['feature-not-implemented', 'cancel'],
    ['forbidden', 'auth'],
    ['internal-server-error', 'cancel'],
    ['item-not-found', 'cancel'],
    ['jid-malformed', 'modify'],
    ['not-acceptable', 'modify'],
    ['not-allowed', 'cancel'],
    ['not-authorized', 'auth'],
    ['recipient-unavailable', 'wait'],
    ['registration-required', 'auth'],
    ['remote-server-not-found', 'cancel'],
    ['resource-constraint', 'wait'],
    ['service-unavailable', 'cancel'],
    ['subscription-required', 'auth'],
  ];
  for (const [condition, type] of defaults) {
    test(`${condition} → ${type}`, () => {
      const error = new StanzaError(condition);
      assert.equal(error.type, type);
      assert.equal(error.message, condition);
      const iq = element('<iq xmlns="jabber:client" type="get" id="x" from="a@b/c"/>');
      assert.equal(
        stanzaErrorReply(iq, error, 'b').toString(),
        `<iq xmlns="jabber:client" type="error" id="x" from="b" to="a@b/c"><error type="${type}">` +
          `<${condition} xmlns="${STANZAS}"/></error></iq>`,
      );
    });
  }
});
