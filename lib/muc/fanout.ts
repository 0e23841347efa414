// Posts to room occupants, with bounded concurrency. A post that meets a gone connection
// ends its session (session.ts: it leaves every room it was in); the fan-out reports it.
import type { Context, Occupant } from '../ports.ts';

/** Posts in flight at once for one fan-out. */
export const FANOUT_CONCURRENCY = 32;

/**
 * How long after a room message is stored its fan-out may still be posting: at most one
 * frames invocation (15 s on AWS), doubled for margin. Room messages of one room are fanned out by different
 * invocations at once, so when a post meets a gone connection, any message of this window
 * may have failed for it too (see leaveRoom).
 */
export const FANOUT_WINDOW_MS = 30_000;

/** The session behind an occupant: bare JID and resource of its real full JID. */
export function sessionOf(occupant: Pick<Occupant, 'jid' | 'connectionId'>) {
  const slash = occupant.jid.indexOf('/');
  return {
    connectionId: occupant.connectionId,
    user: occupant.jid.slice(0, slash),
    resource: occupant.jid.slice(slash + 1),
  };
}

export interface FanOutOptions {
  readonly concurrency?: number;
  /** When the read of `occupants` began (session.ts, the close fence). */
  readonly routedAt?: number;
  /** Runs for an occupant whose connection was gone, after its session ended. */
  readonly onGone?: (occupant: Occupant) => Promise<void>;
}

/** Posts `frame(occupant)` to each occupant; returns those whose connection was gone. */
export async function fanOut(
  ctx: Context,
  occupants: readonly Occupant[],
  frame: (occupant: Occupant) => string,
  { concurrency = FANOUT_CONCURRENCY, onGone, routedAt }: FanOutOptions = {},
): Promise<Occupant[]> {
  const gone: Occupant[] = [];
  let next = 0;
  const worker = async () => {
    while (next < occupants.length) {
      const occupant = occupants[next++] as Occupant;
      const result = await ctx.gateway.post(occupant.connectionId, frame(occupant), { routedAt });
      if (result !== 'gone') continue;
      gone.push(occupant);
      await onGone?.(occupant);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, occupants.length) }, worker));
  return gone;
}
