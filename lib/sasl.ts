// RFC 6120 §6: SASL negotiation with SCRAM-SHA-256, SCRAM-SHA-1 (RFC 5802, RFC 7677)
// and PLAIN (RFC 4616; acceptable because API Gateway only speaks wss://).
import type { Link } from './link.ts';
import { NS } from './ns.ts';
import type { Context } from './ports.ts';
import {
  decoyKeys,
  finishExchange,
  parseClientFirst,
  ScramError,
  type ScramHash,
  type ScramKeys,
  startExchange,
  verifyPassword,
} from './scram.ts';
import { type Element, xml } from './xml.ts';

export const MECHANISMS = ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'] as const;
type Mechanism = (typeof MECHANISMS)[number];

/** RFC 6120 §6.4.5: a few retries, then the stream is closed. */
const MAX_FAILURES = 5;

type FailureCondition =
  | 'aborted'
  | 'incorrect-encoding'
  | 'invalid-authzid'
  | 'invalid-mechanism'
  | 'malformed-request'
  | 'not-authorized'
  | 'temporary-auth-failure';

export const mechanismsFeature = () =>
  xml('mechanisms', { xmlns: NS.sasl }, ...MECHANISMS.map((name) => xml('mechanism', {}, name)));

const scramHash = (mechanism: Mechanism): ScramHash | undefined =>
  mechanism === 'SCRAM-SHA-1' ? 'SHA-1' : mechanism === 'SCRAM-SHA-256' ? 'SHA-256' : undefined;

class SaslFailure extends Error {
  constructor(readonly condition: FailureCondition) {
    super(condition);
  }
}

/** RFC 6120 §6.4.2: base64 payload, "=" for an empty one. */
function decodePayload(element: Element): string | undefined {
  const text = element.getText().trim();
  if (text === '') return undefined;
  if (text === '=') return '';
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0)
    throw new SaslFailure('incorrect-encoding');
  return Buffer.from(text, 'base64').toString('utf8');
}

const encode = (text: string) => Buffer.from(text, 'utf8').toString('base64');

/** A SASL name is the localpart or the bare JID on this domain. */
function userFromName(ctx: Context, name: string): string | undefined {
  const [local, domain, ...rest] = name.split('@');
  if (!local || rest.length > 0 || (domain !== undefined && domain !== ctx.config.domain)) return undefined;
  if (/[\s"&'/:<>@]/.test(local) || local.length > 1023) return undefined;
  return `${local.toLowerCase()}@${ctx.config.domain}`;
}

async function keysFor(
  ctx: Context,
  name: string,
  hash: ScramHash,
): Promise<{ user?: string; keys: ScramKeys }> {
  const user = userFromName(ctx, name);
  const record = user ? await ctx.store.getUser(user) : undefined;
  if (record && user) return { user, keys: record.scram[hash] };
  const secret = await ctx.store.getServerSecret();
  return { keys: decoyKeys(hash, name, secret, ctx.config.scramIterations) };
}

async function plain(link: Link, payload: string | undefined): Promise<string> {
  if (payload === undefined) throw new SaslFailure('malformed-request');
  const parts = payload.split('\0');
  if (parts.length !== 3) throw new SaslFailure('malformed-request');
  const [authzid = '', authcid = '', password = ''] = parts;
  if (!authcid || !password) throw new SaslFailure('malformed-request');
  const { user, keys } = await keysFor(link.ctx, authcid, 'SHA-256');
  // The decoy is checked the same way, so unknown users cost the same time.
  const valid = verifyPassword('SHA-256', keys, password);
  if (!user || !valid) throw new SaslFailure('not-authorized');
  if (authzid && authzid !== user) throw new SaslFailure('invalid-authzid');
  return user;
}

async function scramFirst(link: Link, hash: ScramHash, payload: string): Promise<void> {
  let clientFirst: ReturnType<typeof parseClientFirst>;
  try {
    clientFirst = parseClientFirst(payload);
  } catch (error) {
    if (error instanceof ScramError) throw new SaslFailure('malformed-request');
    throw error;
  }
  if (clientFirst.authzid && clientFirst.authzid !== userFromName(link.ctx, clientFirst.username)) {
    throw new SaslFailure('invalid-authzid');
  }
  const { keys } = await keysFor(link.ctx, clientFirst.username, hash);
  const exchange = startExchange(hash, clientFirst, keys);
  link.update({ state: 'authenticating', sasl: exchange });
  await link.send(xml('challenge', { xmlns: NS.sasl }, encode(exchange.serverFirst)));
}

async function succeed(link: Link, user: string, additionalData?: string): Promise<void> {
  link.update({ state: 'authenticated', user, sasl: undefined, saslFailures: 0 });
  await link.send(
    xml('success', { xmlns: NS.sasl }, additionalData === undefined ? '' : encode(additionalData)),
  );
  link.ctx.logger.info('authenticated', { connectionId: link.connectionId, user });
}

async function fail(link: Link, condition: FailureCondition): Promise<void> {
  const failures = (link.record.saslFailures ?? 0) + 1;
  link.update({ state: 'opened', sasl: undefined, saslFailures: failures });
  link.ctx.metrics?.count('SaslFailures');
  await link.send(xml('failure', { xmlns: NS.sasl }, xml(condition)));
  link.ctx.logger.info('sasl failure', { connectionId: link.connectionId, condition, failures });
  if (failures >= MAX_FAILURES) await link.fail('policy-violation', 'too many authentication failures');
}

async function onAuth(link: Link, element: Element): Promise<void> {
  const mechanism = element.attrs.mechanism as Mechanism;
  if (!MECHANISMS.includes(mechanism)) throw new SaslFailure('invalid-mechanism');
  const payload = decodePayload(element);
  const hash = scramHash(mechanism);
  if (!hash) {
    await succeed(link, await plain(link, payload));
    return;
  }
  if (payload === undefined) {
    // No initial response: ask for it with an empty challenge (RFC 6120 §6.4.2).
    link.update({ state: 'authenticating', sasl: undefined, saslMechanism: mechanism });
    await link.send(xml('challenge', { xmlns: NS.sasl }, '='));
    return;
  }
  await scramFirst(link, hash, payload);
}

async function onResponse(link: Link, element: Element): Promise<void> {
  if (link.record.state !== 'authenticating') throw new SaslFailure('malformed-request');
  const payload = decodePayload(element) ?? '';
  const exchange = link.record.sasl;
  if (!exchange) {
    const hash = scramHash(link.record.saslMechanism as Mechanism);
    if (!hash) throw new SaslFailure('malformed-request');
    await scramFirst(link, hash, payload);
    return;
  }
  let serverFinal: string;
  try {
    serverFinal = finishExchange(exchange, payload);
  } catch (error) {
    if (error instanceof ScramError)
      throw new SaslFailure(error.condition === 'not-authorized' ? 'not-authorized' : 'malformed-request');
    throw error;
  }
  const user = userFromName(link.ctx, exchange.username);
  if (!user) throw new SaslFailure('not-authorized');
  await succeed(link, user, serverFinal);
}

/** Handles <auth/>, <response/> and <abort/>; anything else is not SASL. */
export async function handleSasl(link: Link, element: Element): Promise<void> {
  try {
    if (element.name === 'auth') await onAuth(link, element);
    else if (element.name === 'response') await onResponse(link, element);
    else if (element.name === 'abort') throw new SaslFailure('aborted');
    else throw new SaslFailure('malformed-request');
  } catch (error) {
    if (!(error instanceof SaslFailure)) throw error;
    await fail(link, error.condition);
  }
}
