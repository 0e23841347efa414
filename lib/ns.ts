// XML namespaces used across the server, named once.
export const NS = {
  framing: 'urn:ietf:params:xml:ns:xmpp-framing', // RFC 7395
  stream: 'http://etherx.jabber.org/streams', // RFC 6120 §4
  streams: 'urn:ietf:params:xml:ns:xmpp-streams', // RFC 6120 §4.9
  sasl: 'urn:ietf:params:xml:ns:xmpp-sasl', // RFC 6120 §6
  bind: 'urn:ietf:params:xml:ns:xmpp-bind', // RFC 6120 §7
  session: 'urn:ietf:params:xml:ns:xmpp-session', // RFC 3921 §3, kept for old clients
  stanzas: 'urn:ietf:params:xml:ns:xmpp-stanzas', // RFC 6120 §8.3
  client: 'jabber:client',
  ping: 'urn:xmpp:ping', // XEP-0199
  discoInfo: 'http://jabber.org/protocol/disco#info', // XEP-0030
  discoItems: 'http://jabber.org/protocol/disco#items', // XEP-0030
  receipts: 'urn:xmpp:receipts', // XEP-0184
  stanzaId: 'urn:xmpp:sid:0', // XEP-0359
  delay: 'urn:xmpp:delay', // XEP-0203
  roster: 'jabber:iq:roster', // RFC 6121 §2
  rosterVersioning: 'urn:xmpp:features:rosterver', // RFC 6121 §2.6
  blocking: 'urn:xmpp:blocking', // XEP-0191
  blockingErrors: 'urn:xmpp:blocking:errors', // XEP-0191
  muc: 'http://jabber.org/protocol/muc', // XEP-0045
  mucUser: 'http://jabber.org/protocol/muc#user', // XEP-0045
  mucOwner: 'http://jabber.org/protocol/muc#owner', // XEP-0045
  mucAdmin: 'http://jabber.org/protocol/muc#admin', // XEP-0045
  dataForms: 'jabber:x:data', // XEP-0004
  register: 'jabber:iq:register', // XEP-0077
  registerFeature: 'http://jabber.org/features/iq-register', // XEP-0077 §8
  chatMarkers: 'urn:xmpp:chat-markers:0', // XEP-0333
  chatStates: 'http://jabber.org/protocol/chatstates', // XEP-0085
  mam: 'urn:xmpp:mam:2', // XEP-0313
  mamExtended: 'urn:xmpp:mam:2#extended', // XEP-0313 §7, §4.1.x (ids, before-id, after-id, metadata)
  rsm: 'http://jabber.org/protocol/rsm', // XEP-0059
  forward: 'urn:xmpp:forward:0', // XEP-0297
  hints: 'urn:xmpp:hints', // XEP-0334
  carbons: 'urn:xmpp:carbons:2', // XEP-0280
  csi: 'urn:xmpp:csi:0', // XEP-0352
  httpUpload: 'urn:xmpp:http:upload:0', // XEP-0363
  /** The project's own server receipt (see README, "Server receipts"). */
  ack: 'urn:serverless-xmpp:ack:0',
} as const;
