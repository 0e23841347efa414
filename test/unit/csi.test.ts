// csi.ts: which messages inactive sessions do without, and what counts as an indication.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isCsi, isHeldBack } from '../../lib/csi.ts';
import { awake } from '../../lib/delivery.ts';
import { parseStored } from '../../lib/xml.ts';

const CHAT_STATES = 'http://jabber.org/protocol/chatstates';
const message = (inner: string, type = 'chat') =>
  parseStored(`<message xmlns="jabber:client" type="${type}" to="alice@localhost">${inner}</message>`);

describe('XEP-0352 client state indication', () => {
  test('a chat state alone is held back, with a thread, hints or an origin-id beside it', () => {
    assert.ok(isHeldBack(message(`<composing xmlns="${CHAT_STATES}"/>`)));
    assert.ok(isHeldBack(message(`<paused xmlns="${CHAT_STATES}"/>`, 'normal')));
    assert.ok(
      isHeldBack(
        message(
          `<active xmlns="${CHAT_STATES}"/><thread>t1</thread><no-store xmlns="urn:xmpp:hints"/>` +
            '<origin-id xmlns="urn:xmpp:sid:0" id="o1"/>',
        ),
      ),
    );
  });

  test('anything that says more is not: a body, a receipt, a marker, a call, an error', () => {
    assert.ok(!isHeldBack(message(`<body>hi</body><active xmlns="${CHAT_STATES}"/>`)));
    assert.ok(!isHeldBack(message(`<received xmlns="urn:xmpp:receipts" id="m1"/>`)));
    assert.ok(!isHeldBack(message(`<displayed xmlns="urn:xmpp:chat-markers:0" id="m1"/>`)));
    assert.ok(
      !isHeldBack(
        message(`<propose xmlns="urn:xmpp:jingle-message:0" id="c1"/><active xmlns="${CHAT_STATES}"/>`),
      ),
    );
    assert.ok(!isHeldBack(message(`<composing xmlns="${CHAT_STATES}"/>`, 'error')));
    assert.ok(!isHeldBack(message('')), 'an empty message is not a chat state');
    assert.ok(
      !isHeldBack(
        parseStored(`<presence xmlns="jabber:client"><composing xmlns="${CHAT_STATES}"/></presence>`),
      ),
    );
  });

  test('indications are <active/> and <inactive/> in urn:xmpp:csi:0 only', () => {
    assert.ok(isCsi(parseStored('<active xmlns="urn:xmpp:csi:0"/>')));
    assert.ok(isCsi(parseStored('<inactive xmlns="urn:xmpp:csi:0"/>')));
    assert.ok(!isCsi(parseStored('<csi xmlns="urn:xmpp:csi:0"/>')));
    assert.ok(!isCsi(parseStored(`<active xmlns="${CHAT_STATES}"/>`)));
  });

  test('a session is awake unless marked inactive', () => {
    assert.ok(awake({}));
    assert.ok(awake({ inactive: false }));
    assert.ok(!awake({ inactive: true }));
  });
});
