// RFC 7395 framing and RFC 6120 stream negotiation: <open/>, features, SASL, restart,
// resource binding (§7), the legacy session IQ (RFC 3921 §3) and <close/>. Client state
// indications (XEP-0352) are offered with bind; csi.ts handles them.
import { randomBytes } from 'node:crypto';
import { csiFeature } from './csi.ts';
import { streamError } from './errors.ts';
import { validResource } from './jid.ts';
import { sessionLimitReached } from './limits.ts';
import { closeElement, type Link, openElement } from './link.ts';
import { NS } from './ns.ts';
import type { SessionRecord } from './ports.ts';
import { handleRegistration, isRegistrationIq, registerFeature } from './register.ts';
import { handleSasl, mechanismsFeature } from './sasl.ts';
import { endSession } from './session.ts';
import { type Element, xml } from './xml.ts';

const newId = () => randomBytes(12).toString('base64url');

function features(link: Link): Element {
  const authenticated = link.record.state === 'authenticated' || link.record.state === 'restarted';
  return xml(
    'stream:features',
    { 'xmlns:stream': NS.stream },
    ...(authenticated
      ? [
          xml('bind', { xmlns: NS.bind }),
          xml('session', { xmlns: NS.session }, xml('optional')),
          xml('ver', { xmlns: NS.rosterVersioning }),
          csiFeature(),
        ]
      : [mechanismsFeature(), ...(link.ctx.config.registration ? [registerFeature()] : [])]),
  );
}

/** RFC 7395 §3.4 and RFC 6120 §4.7: checks the client's <open/> and answers it. */
export async function handleOpen(link: Link, open: Element): Promise<void> {
  const { state } = link.record;
  const streamId = newId();
  link.update({ streamId });
  if (open.attrs.xmlns !== NS.framing) return link.fail('invalid-namespace');
  if (open.attrs.version !== '1.0') return link.fail('unsupported-version', 'version 1.0 is required');
  if ((open.attrs.to ?? '').toLowerCase() !== link.ctx.config.domain) {
    return link.fail('host-unknown', `this server serves ${link.ctx.config.domain}`);
  }
  if (state === 'bound' || state === 'restarted')
    return link.fail('policy-violation', 'stream already negotiated');
  if (state === 'authenticating')
    return link.fail('policy-violation', 'stream restart during authentication');
  link.update({ state: state === 'authenticated' ? 'restarted' : 'opened' });
  await link.send(openElement(link.ctx, streamId));
  await link.send(features(link));
}

/**
 * RFC 7395 §3.6: <close/> is answered with <close/>, then the socket is closed; the session
 * leaves every routing path before the answer goes out (session.ts).
 */
export function handleClose(link: Link): void {
  link.end([closeElement()]);
}

/** RFC 6120 §7.6: binds a resource; a second bind of the same full JID replaces the old session. */
async function bind(link: Link, iq: Element, request: Element): Promise<void> {
  const { ctx, record } = link;
  const user = record.user;
  if (!user) return link.fail('not-authorized');
  const requested = request.getChildText('resource')?.trim();
  if (requested !== undefined && requested !== '' && !validResource(requested)) {
    await link.send(iqError(iq, 'modify', 'bad-request'));
    return;
  }
  const resource = requested ? requested.normalize('NFKC') : newId();
  // RFC 6120 §7.6.2.1: the account has as many sessions as it may have.
  if (await sessionLimitReached(ctx, user, resource)) {
    await link.send(iqError(iq, 'wait', 'resource-constraint'));
    return;
  }
  const session: SessionRecord = {
    user,
    resource,
    connectionId: record.connectionId,
    available: false,
    priority: 0,
    // XEP-0352: <inactive/> sent before bind (csi.ts).
    ...(record.inactive ? { inactive: true } : {}),
    expiresAt: record.expiresAt,
  };
  const replaced = await ctx.store.putSession(session);
  link.update({ state: 'bound', resource });
  await link.send(
    xml(
      'iq',
      { xmlns: NS.client, type: 'result', id: iq.attrs.id },
      xml('bind', { xmlns: NS.bind }, xml('jid', {}, `${user}/${resource}`)),
    ),
  );
  ctx.logger.info('bound', { connectionId: record.connectionId, jid: `${user}/${resource}` });
  // The new session's next frame (its initial presence) waits for this one in its FIFO
  // group: the old session has left presence and rooms before it comes.
  if (replaced && replaced.connectionId !== record.connectionId) await evict(link, replaced);
}

/**
 * RFC 6120 §7.7.2.2: the older session ends with a <conflict/> stream error. Its session item
 * is the new connection's already; its presence entry and room occupants still name it and go.
 */
async function evict(link: Link, replaced: SessionRecord): Promise<void> {
  link.ctx.logger.info('session replaced', { connectionId: replaced.connectionId, by: link.connectionId });
  await endSession(link.ctx, replaced, {
    lastFrames: [streamError('conflict', 'replaced by a new session'), closeElement()],
  });
}

function iqError(iq: Element, type: string, condition: string): Element {
  return xml(
    'iq',
    { xmlns: NS.client, type: 'error', id: iq.attrs.id },
    xml('error', { type }, xml(condition, { xmlns: NS.stanzas })),
  );
}

const isSessionIq = (iq: Element) =>
  iq.name === 'iq' && iq.attrs.type === 'set' && !!iq.getChild('session', NS.session);

/** RFC 3921 §3: the legacy session IQ is a no-op, answered for the clients that send it. */
export async function handleSessionIq(link: Link, iq: Element): Promise<void> {
  await link.send(xml('iq', { xmlns: NS.client, type: 'result', id: iq.attrs.id }));
}

/**
 * Every element before the resource is bound. Anything out of place closes the
 * stream: RFC 6120 §6.4.1 and §7.1 (no stanzas before authentication and binding).
 */
export async function handleNegotiation(link: Link, element: Element): Promise<void> {
  const { state } = link.record;
  const isSasl = element.attrs.xmlns === NS.sasl && ['auth', 'response', 'abort'].includes(element.name);
  if (state === 'connected') return link.fail('not-authorized', 'the stream must be opened first');
  if ((state === 'opened' || state === 'authenticating') && isSasl) return handleSasl(link, element);
  if (state === 'opened' && isRegistrationIq(element)) return handleRegistration(link, element);
  if (state === 'restarted' && element.name === 'iq') {
    const request = element.getChild('bind', NS.bind);
    if (element.attrs.type === 'set' && request) return bind(link, element, request);
    if (isSessionIq(element)) return handleSessionIq(link, element);
  }
  if (state === 'authenticated')
    return link.fail('not-authorized', 'restart the stream after authentication');
  if (isSasl) return link.fail('policy-violation', 'already authenticated');
  return link.fail('not-authorized', 'authenticate and bind a resource first');
}
