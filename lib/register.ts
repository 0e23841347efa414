// XEP-0077: In-Band Registration, for the server's own accounts.
// - §3.1 Before authentication, on a stream whose features carried
//   <register xmlns='http://jabber.org/features/iq-register'/> (only while registration is
//   open, config.registration): a get returns the fields (username, password), a set creates
//   the account, stored exactly as `npm run users -- add` stores it (SCRAM keys only, never
//   the password). Then the client authenticates on the same stream, or on a new one.
//   A taken name gets <conflict/>, a name that is no valid JID local part or a password
//   shorter than config.minPasswordLength gets <not-acceptable/>, and more than
//   config.registrationsPerHour attempts from one source address (API Gateway's sourceIp at
//   $connect) get <resource-constraint/>. Closed registration: <service-unavailable/>, as
//   §3.1 asks of a host without in-band registration.
// - §3.3 A logged-in user changes the password: <username/> (own local part or bare JID)
//   and a non-empty <password/>. Other sessions stay (they authenticated already).
// - §3.2 A logged-in user removes the account: the result goes back, every session of the
//   account ends with a <not-authorized/> stream error, its subscriptions are cancelled
//   both ways (contacts get unsubscribe, unsubscribed and unavailable) and it leaves its
//   contacts' rosters, and its credentials, roster, blocklist and inbox are deleted.
// Error replies never echo a password (§3.3; errors.ts strips it from every reply).
import { StanzaError, type StanzaErrorCondition, stanzaErrorReply, streamError } from './errors.ts';
import { parseJid } from './jid.ts';
import { closeElement, type Link } from './link.ts';
import { NS } from './ns.ts';
import type { Context } from './ports.ts';
import { becomeUnavailable } from './presence.ts';
import { forgetContacts } from './roster.ts';
import type { IqHandlers, StanzaRequest } from './router.ts';
import { makeCredentials } from './scram.ts';
import { endSession } from './session.ts';
import { type Element, xml } from './xml.ts';

/** Longest username accepted, in characters (RFC 7622 allows 1023 bytes; keys stay short). */
export const MAX_USERNAME_LENGTH = 64;

/** The stream feature, offered before authentication while registration is open. */
export const registerFeature = () => xml('register', { xmlns: NS.registerFeature });

const isRegisterQuery = (element: Element | undefined) =>
  element?.name === 'query' && element.attrs.xmlns === NS.register;

/** True for an iq the pre-authentication stream hands to `handleRegistration`. */
export const isRegistrationIq = (element: Element) =>
  element.name === 'iq' &&
  (element.attrs.type === 'get' || element.attrs.type === 'set') &&
  isRegisterQuery(element.getChildElements()[0]);

function reply(iq: Element, ...children: Element[]): Element {
  return xml('iq', { xmlns: NS.client, type: 'result', id: iq.attrs.id }, ...children);
}

/** The error answer to a pre-authentication request (errors.ts builds it, without the password). */
const refusal = (iq: Element, condition: StanzaErrorCondition, text: string): Element =>
  stanzaErrorReply(iq, new StanzaError(condition, text), undefined);

/** The username as the local part of an account on `domain`, or undefined when it is none. */
function accountOf(ctx: Context, username: string): string | undefined {
  const local = username.includes('@') ? username.slice(0, username.indexOf('@')) : username;
  const domain = username.includes('@') ? username.slice(username.indexOf('@') + 1) : ctx.config.domain;
  const jid = parseJid(`${local}@${domain}`);
  if (!jid?.local || jid.resource || jid.domain !== ctx.config.domain) return undefined;
  if ([...jid.local].length > MAX_USERNAME_LENGTH) return undefined;
  return `${jid.local}@${jid.domain}`;
}

const passwordTooShort = (ctx: Context, password: string) =>
  [...password].length < ctx.config.minPasswordLength;

/** §3.1: a get or set of jabber:iq:register on a stream that is not authenticated yet. */
export async function handleRegistration(link: Link, iq: Element): Promise<void> {
  const { ctx, record } = link;
  const query = iq.getChildElements()[0] as Element;
  if (!ctx.config.registration) {
    return link.send(refusal(iq, 'service-unavailable', 'registration is closed'));
  }
  if (iq.attrs.type === 'get') {
    return link.send(
      reply(
        iq,
        xml(
          'query',
          { xmlns: NS.register },
          xml(
            'instructions',
            {},
            `Choose a username and a password of at least ${ctx.config.minPasswordLength} characters.`,
          ),
          xml('username'),
          xml('password'),
        ),
      ),
    );
  }
  if (query.getChild('remove')) {
    return link.send(refusal(iq, 'unexpected-request', 'log in to remove an account'));
  }
  // Every attempt counts, a refused one too: names cannot be probed faster than accounts made.
  const address = record.sourceAddress ?? 'unknown';
  if (!(await ctx.store.countRegistration(address, ctx.config.registrationsPerHour, ctx.now()))) {
    ctx.logger.warn('registration limit reached', { connectionId: record.connectionId, address });
    return link.send(refusal(iq, 'resource-constraint', 'too many registrations, try again later'));
  }
  const username = query.getChildText('username')?.trim() ?? '';
  const password = query.getChildText('password') ?? '';
  if (!username || !password) {
    return link.send(refusal(iq, 'not-acceptable', 'a username and a password are required'));
  }
  const user = accountOf(ctx, username);
  if (!user) {
    return link.send(
      refusal(iq, 'not-acceptable', `not a valid username (at most ${MAX_USERNAME_LENGTH} characters)`),
    );
  }
  if (passwordTooShort(ctx, password)) {
    return link.send(
      refusal(iq, 'not-acceptable', `passwords have at least ${ctx.config.minPasswordLength} characters`),
    );
  }
  const created = await ctx.store.createUser({
    user,
    scram: makeCredentials(password, ctx.config.scramIterations),
    createdAt: ctx.now(),
  });
  if (!created) return link.send(refusal(iq, 'conflict', 'the username is taken'));
  ctx.logger.info('account registered', { connectionId: record.connectionId, user });
  await link.send(reply(iq));
}

/** §3.1 for a registered entity: the fields it registered with (never the password). */
async function registrationGet({ link }: StanzaRequest): Promise<Element> {
  const user = link.record.user as string;
  return xml(
    'query',
    { xmlns: NS.register },
    xml('registered'),
    xml('username', {}, user.slice(0, user.indexOf('@'))),
  );
}

/** §3.2 and §3.3: removal or a password change. */
async function registrationSet({ link, stanza, payload }: StanzaRequest): Promise<undefined> {
  const user = link.record.user as string;
  if (payload.getChild('remove')) {
    if (payload.getChildElements().length !== 1)
      throw new StanzaError('bad-request', '<remove/> must be the only child');
    // Answered here: the stream error that ends the session must come after the result,
    // and once the stream is ending the router sends nothing more.
    await link.send(
      xml('iq', {
        xmlns: NS.client,
        type: 'result',
        id: stanza.attrs.id,
        from: stanza.attrs.to,
        to: link.jid,
      }),
    );
    await removeAccount(link, user);
    return undefined;
  }
  const username = payload.getChildText('username')?.trim();
  const password = payload.getChildText('password') ?? '';
  if (!username || accountOf(link.ctx, username) !== user)
    throw new StanzaError('bad-request', 'the username must be your own');
  if (!password) throw new StanzaError('bad-request', 'the new password is empty');
  if (passwordTooShort(link.ctx, password)) {
    throw new StanzaError(
      'not-acceptable',
      `passwords have at least ${link.ctx.config.minPasswordLength} characters`,
    );
  }
  const existing = await link.ctx.store.getUser(user);
  // A session that outlived its account's removal must not bring the name back to life.
  if (!existing) throw new StanzaError('not-authorized', 'the account no longer exists');
  await link.ctx.store.putUser({
    user,
    scram: makeCredentials(password, link.ctx.config.scramIterations),
    createdAt: existing.createdAt,
  });
  link.ctx.logger.info('password changed', { connectionId: link.connectionId, user });
  return undefined;
}

/**
 * §3.2: the credentials go first (no new login can start), then the other sessions end, side
 * by side so that their close fences overlap (their contacts and rooms are told); this
 * session's presence goes too while its entry exists (directed presence included). Then the
 * subscriptions and the data go; this session ends last, after the frame (server.ts), so
 * that it is told why.
 */
async function removeAccount(link: Link, user: string): Promise<void> {
  const { ctx, record } = link;
  ctx.logger.info('account removed', { connectionId: link.connectionId, user });
  await ctx.store.deleteUser(user);
  const others = (await ctx.store.getSessions(user)).filter(
    (session) => session.connectionId !== link.connectionId,
  );
  await Promise.all(
    others.map((session) =>
      endSession(ctx, session, {
        lastFrames: [streamError('not-authorized', 'account removed'), closeElement()],
      }),
    ),
  );
  await becomeUnavailable(ctx, {
    user,
    resource: record.resource as string,
    connectionId: record.connectionId,
  });
  await forgetContacts(ctx, user);
  await ctx.store.purgeAccount(user);
  await link.fail('not-authorized', 'account removed');
}

export const registerHandlers: IqHandlers = {
  [`get query ${NS.register}`]: registrationGet,
  [`set query ${NS.register}`]: registrationSet,
};
