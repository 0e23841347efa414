// Offline delivery: when a session becomes available, everything still undelivered for
// the user is pushed to it, oldest first, in storage order, each with a XEP-0203 delay.
// Read a page at a time; after `drainPerInvocation` messages the rest is handed to the
// next invocation through the connection's FIFO group (docs/architecture.md, "Drain").
import { forgetConnection } from './link.ts';
import { deliverable } from './message.ts';
import type { Context, SessionRecord, StoredMessage } from './ports.ts';

type DrainTarget = Pick<SessionRecord, 'connectionId' | 'user' | 'resource'>;

/**
 * The drain hands on to the next invocation when less than this is left of the current one
 * (Context.remainingMs), whatever it pushed: the rest of the batch needs time too
 * (functions/frames.ts starts no record with less than 5 s left).
 */
export const DRAIN_TIME_MARGIN_MS = 8_000;

const shortOfTime = (ctx: Context) =>
  ctx.remainingMs !== undefined && ctx.remainingMs() < DRAIN_TIME_MARGIN_MS;

export async function drain(ctx: Context, session: DrainTarget, after?: string): Promise<void> {
  const { pageSize, perInvocation } = {
    pageSize: ctx.config.drainPageSize,
    perInvocation: ctx.config.drainPerInvocation,
  };
  let cursor = after;
  let pushed = 0;
  /** Short of time, or a post failed after its retries: the next invocation goes on after `cursor`. */
  let handOn = false;
  let stopped = false;
  for (;;) {
    if (handOn || pushed >= perInvocation) {
      if (cursor) await ctx.continuations.continueDrain(session.connectionId, cursor);
      ctx.metrics?.count('MessagesDrained', pushed);
      ctx.logger.info('drain continues in the next invocation', {
        connectionId: session.connectionId,
        pushed,
      });
      return;
    }
    const page = await ctx.store.undelivered(
      session.user,
      Math.min(pageSize, perInvocation - pushed),
      cursor,
    );
    const deliveredNow: StoredMessage[] = [];
    for (const message of page.messages) {
      // Every invocation pushes at least one message, so that handing on always progresses.
      if (pushed > 0 && shortOfTime(ctx)) {
        handOn = true;
        break;
      }
      const result = await ctx.gateway.post(session.connectionId, deliverable(ctx, message, true));
      if (result === 'too-large') {
        // It can never be pushed; it stays undelivered (nothing marks it), the drain goes on.
        cursor = message.seq;
        continue;
      }
      if (result === 'failed') {
        // Throttled or refused after retries: it stays undelivered. The next invocation
        // retries from it, unless this one pushed nothing (then the next session does).
        handOn = pushed > 0;
        stopped = !handOn;
        break;
      }
      if (result === 'gone') {
        ctx.metrics?.count('GoneConnections');
        ctx.metrics?.count('MessagesDrained', pushed);
        // What was pushed without a receipt request counts; the rest waits for the next session.
        await ctx.store.markAllDelivered(deliveredNow);
        await forgetConnection(ctx, session);
        return;
      }
      pushed++;
      cursor = message.seq;
      if (!message.receiptRequested) deliveredNow.push(message);
    }
    await ctx.store.markAllDelivered(deliveredNow);
    if (handOn) continue;
    if (stopped) {
      ctx.logger.warn('drain stopped: a push failed; the rest waits for the next session', {
        connectionId: session.connectionId,
      });
      return;
    }
    if (!page.next) break;
    cursor = page.next;
  }
  await ctx.store.resetOfflineCount(session.user);
  ctx.metrics?.count('MessagesDrained', pushed);
  if (pushed > 0)
    ctx.logger.info('drained', { connectionId: session.connectionId, user: session.user, pushed });
}
