// The end of a session, in one place: RFC 6120 §4.4 and RFC 7395 §3.6 (closing the stream),
// RFC 6120 §7.7.2.2 (a session replaced by a new one of the same full JID), RFC 6121 §4.5.3
// (contacts get unavailable presence when a session ends) and XEP-0045 §7.14 (an occupant
// whose session ends leaves its rooms). Every way a session ends comes here: the client's
// <close/>, a stream error, a replaced resource, $disconnect, a post that meets 410 Gone,
// and DynamoDB's TTL deleting what a lost $disconnect left behind.
//
// Order matters (docs/architecture.md, "The end of a session"):
// 1. The session item goes first, so messages sent from now on are stored for the next
//    session instead of being pushed here.
// 2. Presence and rooms announce the departure while their items still exist, then remove
//    them. A retried end finds them again and announces again (presence is state), so an
//    end that failed halfway is still announced.
// 3. Only then the <close/> is posted and the socket is closed: nothing that reads the
//    routing paths from now on can reach it. A stream error (and the <open/> a stream that
//    was never opened needs to carry it) is the answer to a bad frame and goes out as soon
//    as the session item is gone (step 1), before the announcements: RFC 6120 §4.9.1.1 asks
//    for the error, then the close, and only the close must wait for the fence below.
// 4. The connection item goes last: while it exists, a retry ends the session again.
//
// The close fence (RFC 7395 §3.6: nothing after <close/>). Another invocation may have read
// a routing path a moment before it changed and still be posting from what it read (a room
// fan-out, a presence broadcast). So a stream that ends with frames of its own is marked
// `closingAt` on its connection item first, and its last frames wait until CLOSE_FENCE_MS
// after its routing was removed. Every invocation, in turn, posts to other connections from
// what it read only during the CLOSE_FENCE_MS after that read began (a fan-out names its read,
// `routedAt`; otherwise the invocation's start counts); a later post first reads the
// target's connection item (strongly consistent) and skips a connection that is ending. Either a
// post starts before the fence ends, or it sees the mark. Posts to the invocation's own
// connection need neither: its frames, its drain and its end run in its own FIFO group, one
// after another.
//
// This module sits above the features (presence, rooms) and below the entry points
// (server.ts): features never end sessions themselves. A post that meets 410 Gone is
// turned into an end here, by the gateway `withSessionEnds` gives them.
import { setTimeout as delay } from 'node:timers/promises';
import { leaveAllRooms } from './muc/room.ts';
import type { ConnectionRecord, Context, Gateway } from './ports.ts';
import { becomeUnavailable } from './presence.ts';
import type { Element } from './xml.ts';

/** How long a stream's last frames wait after its routing is gone, and how long posts trust a read. */
export const CLOSE_FENCE_MS = 1000;

type Connection = Pick<ConnectionRecord, 'connectionId' | 'user' | 'resource'>;

export interface EndOptions {
  /** Room messages from this seq on were not pushed to the session (muc/room.ts leaveRoom). */
  readonly notPushedFrom?: string;
  /**
   * The last frames to send before the socket is closed, ending with <close/> (absent when it
   * is gone already). Those before the <close/> (a stream error) go out once the session
   * item is gone, before the announcements.
   */
  readonly lastFrames?: readonly Element[];
  /** The connection is marked as ending already (connectionGone claimed it). */
  readonly claimed?: boolean;
}

/** Ends the session of `connection` and forgets the connection, in the order above. */
export async function endSession(
  ctx: Context,
  connection: Connection,
  options: EndOptions = {},
): Promise<void> {
  const { connectionId, user, resource } = connection;
  const routable = Boolean(user && resource);
  // Straight to the API: these frames are the end the fence is kept for.
  const gateway = unfenced.get(ctx) ?? ctx.gateway;
  const answer = options.lastFrames?.slice(0, -1) ?? [];
  const closing = options.lastFrames?.at(-1);
  let reachable = true;
  const sendAnswer = async () => {
    for (const frame of answer) {
      if ((await gateway.post(connectionId, frame.toString())) === 'gone') {
        reachable = false;
        return;
      }
    }
  };
  // Marked first: late posts skip it, and a post that finds it gone leaves its end to this one.
  if (routable && !options.claimed) await ctx.store.markClosing(connectionId, ctx.now());
  if (user && resource) {
    const session = { user, resource, connectionId };
    await ctx.store.deleteSession(user, resource, connectionId);
    // Messages routed from now on are stored for the next session, none is pushed after the
    // error to a client that stops reading at it; only fan-outs of earlier reads may follow.
    await sendAnswer();
    await becomeUnavailable(ctx, session);
    await leaveAllRooms(ctx, session, { notPushedFrom: options.notPushedFrom });
  } else {
    await sendAnswer();
  }
  if (closing) {
    // Posts from reads made before the routing went have had their time (the fence above).
    if (routable) await delay(CLOSE_FENCE_MS);
    if (reachable) await gateway.post(connectionId, closing.toString());
    await gateway.close(connectionId);
  }
  await ctx.store.deleteConnection(connectionId);
}

/** The API behind each invocation's fenced gateway, for the last frames of an end. */
const unfenced = new WeakMap<Context, Gateway>();

/**
 * The context the core runs with during one invocation, on behalf of connection `own` (if
 * any): a post that meets a gone connection (410) ends that connection's session here, once
 * per invocation, and reports 'gone' to the feature that posted (which counts it as not
 * delivered); a late post to another connection keeps the close fence (above).
 */
export function withSessionEnds(ctx: Context, own?: string): Context {
  const ended = new Set<string>();
  const started = ctx.now();
  const gateway: Gateway = {
    post: async (connectionId, frame, options) => {
      // Past the fence, what this invocation read may be stale: a connection that is ending
      // is skipped (the message stays undelivered; a room's rejoin drain brings it). The read
      // is the one the post names (`routedAt`), or else the invocation's start.
      const readAt = options?.routedAt ?? started;
      if (
        connectionId !== own &&
        ctx.now() - readAt > CLOSE_FENCE_MS &&
        (await ctx.store.isClosing(connectionId))
      ) {
        ctx.logger.debug('late post skipped: the connection is ending', { connectionId });
        return 'failed';
      }
      const result = await ctx.gateway.post(connectionId, frame);
      if (result === 'gone' && !ended.has(connectionId)) {
        ended.add(connectionId);
        ctx.metrics?.count('GoneConnections');
        ctx.logger.info('push met a gone connection', { connectionId });
        await connectionGone(routed, connectionId);
      }
      return result;
    },
    close: (connectionId) => ctx.gateway.close(connectionId),
  };
  const routed: Context = { ...ctx, gateway };
  unfenced.set(routed, ctx.gateway);
  return routed;
}

/**
 * How long an end's mark keeps others from ending the same session: longer than an end takes.
 * A mark older than this is an end that died, and a post that finds the connection gone ends it.
 */
const END_CLAIM_MS = 60_000;

/**
 * A post found the connection gone: its session ends, unless its own end (its $disconnect,
 * its <close/>) or another post's is under way. Without this claim every invocation that
 * meets a dead connection would announce its departure again: when a whole room disconnects
 * at once, each of N ends would end the N − 1 others.
 */
async function connectionGone(ctx: Context, connectionId: string): Promise<void> {
  const record = await ctx.store.getConnection(connectionId);
  if (!record) return;
  const now = ctx.now();
  if (!(await ctx.store.claimClosing(connectionId, now, now - END_CLAIM_MS))) return;
  await endSession(ctx, record, { claimed: true });
}
