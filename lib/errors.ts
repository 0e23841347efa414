// RFC 6120 §4.9 stream errors and §8.3 stanza errors, built in this one place.
import { NS } from './ns.ts';
import { cloneElement, type Element, xml } from './xml.ts';

export type StreamErrorCondition =
  | 'bad-format'
  | 'conflict'
  | 'connection-timeout'
  | 'host-unknown'
  | 'internal-server-error'
  | 'invalid-from'
  | 'invalid-namespace'
  | 'not-authorized'
  | 'not-well-formed'
  | 'policy-violation'
  | 'reset'
  | 'resource-constraint'
  | 'restricted-xml'
  | 'system-shutdown'
  | 'unsupported-encoding'
  | 'unsupported-stanza-type'
  | 'unsupported-version';

export function streamError(condition: StreamErrorCondition, text?: string): Element {
  // RFC 7395 §3.6.1: the stream prefix is declared on the element itself.
  return xml(
    'stream:error',
    { 'xmlns:stream': NS.stream },
    xml(condition, { xmlns: NS.streams }),
    text && xml('text', { xmlns: NS.streams, 'xml:lang': 'en' }, text),
  );
}

export type StanzaErrorType = 'auth' | 'cancel' | 'continue' | 'modify' | 'wait';

export type StanzaErrorCondition =
  | 'bad-request'
  | 'conflict'
  | 'feature-not-implemented'
  | 'forbidden'
  | 'internal-server-error'
  | 'item-not-found'
  | 'jid-malformed'
  | 'not-acceptable'
  | 'not-allowed'
  | 'not-authorized'
  | 'policy-violation'
  | 'recipient-unavailable'
  | 'registration-required'
  | 'remote-server-not-found'
  | 'resource-constraint'
  | 'service-unavailable'
  | 'subscription-required'
  | 'undefined-condition'
  | 'unexpected-request';

/** The type RFC 6120 §8.3.3 gives each condition. */
const DEFAULT_TYPE: Record<StanzaErrorCondition, StanzaErrorType> = {
  'bad-request': 'modify',
  conflict: 'cancel',
  'feature-not-implemented': 'cancel',
  forbidden: 'auth',
  'internal-server-error': 'cancel',
  'item-not-found': 'cancel',
  'jid-malformed': 'modify',
  'not-acceptable': 'modify',
  'not-allowed': 'cancel',
  'not-authorized': 'auth',
  'policy-violation': 'modify',
  'recipient-unavailable': 'wait',
  'registration-required': 'auth',
  'remote-server-not-found': 'cancel',
  'resource-constraint': 'wait',
  'service-unavailable': 'cancel',
  'subscription-required': 'auth',
  'undefined-condition': 'cancel',
  'unexpected-request': 'wait',
};

/** Thrown by a handler to answer the stanza with an error; the router builds the reply. */
export class StanzaError extends Error {
  readonly type: StanzaErrorType;
  constructor(
    readonly condition: StanzaErrorCondition,
    readonly text?: string,
    type?: StanzaErrorType,
    /** An application-specific condition (RFC 6120 §8.3.2), e.g. XEP-0191's <blocked/>. */
    readonly application?: Element,
  ) {
    super(text ?? condition);
    this.type = type ?? DEFAULT_TYPE[condition];
  }
}

/** XEP-0077 §3.3: an error never carries the password a registration request held. */
function withoutSecrets(payload: Element): Element {
  if (payload.attrs.xmlns === NS.register) {
    payload.children = payload.children.filter(
      (child) => typeof child === 'string' || child.name !== 'password',
    );
  }
  return payload;
}

/**
 * RFC 6120 §8.3.1: the error goes back to the sender, from the entity addressed, with
 * the same id; for an iq the original payload is kept so the client can match it.
 */
export function stanzaErrorReply(stanza: Element, error: StanzaError, from: string | undefined): Element {
  const reply = xml(stanza.name, {
    xmlns: NS.client,
    type: 'error',
    id: stanza.attrs.id,
    from,
    to: stanza.attrs.from,
  });
  if (stanza.name === 'iq') {
    const payload = stanza.getChildElements()[0];
    if (payload) reply.cnode(withoutSecrets(cloneElement(payload)));
  }
  reply.cnode(
    xml(
      'error',
      { type: error.type, by: undefined },
      xml(error.condition, { xmlns: NS.stanzas }),
      error.text && xml('text', { xmlns: NS.stanzas, 'xml:lang': 'en' }, error.text),
      error.application,
    ),
  );
  return reply;
}
