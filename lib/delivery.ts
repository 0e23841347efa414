// RFC 6121 §8.5: which of a user's sessions get a stanza, and the pushes themselves.
// A push that meets a gone connection (410) forgets that connection and does not count.
import { forgetConnection } from './link.ts';
import type { Context, SessionRecord } from './ports.ts';

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

/** Posts a frame to each session; returns the sessions that took it. */
export async function pushToSessions(
  ctx: Context,
  sessions: readonly SessionRecord[],
  frame: (session: SessionRecord) => string,
): Promise<SessionRecord[]> {
  const results = await Promise.all(
    sessions.map(async (session) => {
      const result = await ctx.gateway.post(session.connectionId, frame(session));
      if (result === 'ok') return session;
      // Too large, or failed after retries: not delivered, and the session lives on.
      if (result !== 'gone') return undefined;
      ctx.metrics?.count('GoneConnections');
      ctx.logger.info('push met a gone connection', {
        connectionId: session.connectionId,
        user: session.user,
      });
      await forgetConnection(ctx, session);
      return undefined;
    }),
  );
  return results.filter((session): session is SessionRecord => session !== undefined);
}
