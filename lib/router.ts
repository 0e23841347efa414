// RFC 6120 §8 and §10: what happens to each stanza a bound client sends. The routing
// table is in docs/routing.md. Handlers return an element or throw a StanzaError;
// error replies are built here only.
import { StanzaError, stanzaErrorReply } from './errors.ts';
import { bare, type Jid, parseJid } from './jid.ts';
import type { Link } from './link.ts';
import { NS } from './ns.ts';
import { type Element, xml } from './xml.ts';

/** Where a stanza is addressed, from the server's point of view. */
export type Target =
  | { kind: 'server' } // no `to`, or the server's domain
  | { kind: 'account' } // the sender's own bare JID: handled by the server for the account
  | { kind: 'user'; jid: Jid } // another address on this domain
  | { kind: 'remote'; jid: Jid }; // another domain: no federation

export interface StanzaRequest {
  readonly link: Link;
  readonly stanza: Element;
  /** The first child of an iq get/set. */
  readonly payload: Element;
  readonly target: Target;
}

/** Keyed `${type} ${payload name} ${payload namespace}`, e.g. `get ping urn:xmpp:ping`. */
export type IqHandlers = Record<string, (request: StanzaRequest) => Promise<Element | undefined>>;

export interface StanzaHandlers {
  readonly iq: IqHandlers;
  readonly message?: (link: Link, stanza: Element, target: Target) => Promise<void>;
  readonly presence?: (link: Link, stanza: Element, target: Target) => Promise<void>;
}

function resolveTarget(link: Link, to: string | undefined): Target {
  if (to === undefined || to === '') return { kind: 'server' };
  const jid = parseJid(to);
  if (!jid) throw new StanzaError('jid-malformed');
  const { domain } = link.ctx.config;
  if (jid.domain === domain && !jid.local && !jid.resource) return { kind: 'server' };
  if (jid.domain === domain && !jid.resource && bare(jid) === link.record.user) return { kind: 'account' };
  if (jid.domain === domain || jid.domain === link.ctx.config.mucDomain) return { kind: 'user', jid };
  // XEP-0363: the upload service answers its iqs (handlers keyed `upload …`); messages and
  // presence to it find nobody, as to any unknown address of the domain.
  if (jid.domain === link.ctx.config.uploadDomain) return { kind: 'user', jid };
  return { kind: 'remote', jid };
}

async function routeIq(link: Link, handlers: IqHandlers, iq: Element, target: Target): Promise<void> {
  const type = iq.attrs.type;
  if (type === 'result' || type === 'error') return; // answers to the server need nothing
  if (!iq.attrs.id) throw new StanzaError('bad-request', 'an iq needs an id');
  if (type !== 'get' && type !== 'set')
    throw new StanzaError('bad-request', 'type must be get, set, result or error');
  const children = iq.getChildElements();
  const payload = children[0];
  if (!payload || children.length !== 1)
    throw new StanzaError('bad-request', 'an iq get or set has one child');
  if (target.kind === 'remote') throw new StanzaError('remote-server-not-found');
  const key = `${type} ${payload.name} ${payload.attrs.xmlns ?? ''}`;
  // The MUC service (lib/muc/) answers iqs to itself and its rooms: handlers keyed `muc …`.
  const muc = target.kind === 'user' && target.jid.domain === link.ctx.config.mucDomain;
  const upload = target.kind === 'user' && target.jid.domain === link.ctx.config.uploadDomain;
  const handler =
    target.kind !== 'user'
      ? handlers[key]
      : muc
        ? handlers[`muc ${key}`]
        : upload
          ? handlers[`upload ${key}`]
          : undefined;
  if (!handler) throw new StanzaError('service-unavailable');
  const result = await handler({ link, stanza: iq, payload, target });
  await link.send(
    xml('iq', { xmlns: NS.client, type: 'result', id: iq.attrs.id, from: iq.attrs.to, to: link.jid }, result),
  );
}

const STANZAS = new Set(['iq', 'message', 'presence']);

export async function routeStanza(link: Link, handlers: StanzaHandlers, stanza: Element): Promise<void> {
  if (!STANZAS.has(stanza.name))
    return link.fail('unsupported-stanza-type', `<${stanza.name}/> is not a stanza`);
  const xmlns = stanza.attrs.xmlns;
  if (xmlns !== undefined && xmlns !== NS.client) return link.fail('invalid-namespace');
  // RFC 6120 §8.1.2.1: the server stamps the sender's full JID, whatever the client wrote.
  stanza.attrs.xmlns = NS.client;
  stanza.attrs.from = link.jid;
  try {
    const target = resolveTarget(link, stanza.attrs.to);
    if (stanza.name === 'iq') await routeIq(link, handlers.iq, stanza, target);
    else if (stanza.name === 'message') await (handlers.message ?? refuse)(link, stanza, target);
    else await (handlers.presence ?? ignore)(link, stanza, target);
  } catch (error) {
    if (!(error instanceof StanzaError)) throw error;
    // RFC 6120 §8.3.1: never answer an error with an error.
    if (stanza.attrs.type === 'error') return;
    const from = stanza.attrs.to || undefined;
    await link.send(stanzaErrorReply(stanza, error, from));
  }
}

const refuse = async () => {
  throw new StanzaError('service-unavailable');
};
const ignore = async () => {};
