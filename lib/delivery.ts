// RFC 6121 §8.5: which of a user's sessions get a stanza, and the pushes themselves.
// A push that meets a gone connection (410) does not count (its session ends: session.ts).
import { NS } from './ns.ts';
import type { Context, SessionRecord, StoredMessage } from './ports.ts';
import { parseStored, xml } from './xml.ts';

/** How long a drain may hold live messages back (offline.ts): longer than one invocation, renewed by each continuation. */
export const DRAIN_LEASE_MS = 120_000;

export const drainLease = (ctx: Context) => ctx.now() + DRAIN_LEASE_MS;

/** The session's offline drain is under way: messages reach it through the drain, in order. */
export const isDraining = (ctx: Context, session: Pick<SessionRecord, 'drainingUntil'>) =>
  session.drainingUntil !== undefined && session.drainingUntil > ctx.now();

/** XEP-0352: a session (or its presence entry) that gets everything, not marked inactive (csi.ts). */
export const awake = (session: { readonly inactive?: boolean }) => session.inactive !== true;

/**
 * To a full JID: that resource if it is connected, else as if to the bare JID (§8.5.3.2.1
 * for messages). To a bare JID: every available resource with non-negative priority
 * (§8.5.2.1.1); a session that has not sent initial presence is not available.
 */
export function selectSessions(sessions: readonly SessionRecord[], resource?: string): SessionRecord[] {
  const exact = resource ? sessions.find((session) => session.resource === resource) : undefined;
  if (exact) return [exact];
  return sessions.filter((session) => session.available && session.priority >= 0);
}

/** Posts a frame to each session (read at `routedAt`, when known); returns those that took it. */
export async function pushToSessions(
  ctx: Context,
  sessions: readonly SessionRecord[],
  frame: (session: SessionRecord) => string,
  routedAt?: number,
): Promise<SessionRecord[]> {
  const results = await Promise.all(
    sessions.map(async (session) => {
      const result = await ctx.gateway.post(session.connectionId, frame(session), { routedAt });
      return result === 'ok' ? session : undefined;
    }),
  );
  return results.filter((session): session is SessionRecord => session !== undefined);
}

/** The copy a recipient's session gets: with our stanza-id, and a delay when drained. */
export function deliverable(ctx: Context, message: StoredMessage, delayed: boolean): string {
  const stanza = parseStored(message.stanza);
  stanza.cnode(xml('stanza-id', { xmlns: NS.stanzaId, by: message.recipient, id: message.seq }));
  if (delayed) {
    stanza.cnode(
      xml('delay', {
        xmlns: NS.delay,
        from: ctx.config.domain,
        stamp: new Date(message.storedAt).toISOString(),
      }),
    );
  }
  return stanza.toString();
}
