// Offline delivery (XEP-0160 behaviour over RFC 6121 §8.5): when a session becomes
// available, everything still undelivered for the user is pushed to it, oldest first, in
// storage order, each with a XEP-0203 delay. Read a page at a time; after
// `drainPerInvocation` messages, or when the invocation runs short of time, the rest is
// handed to the next invocation through the connection's FIFO group (docs/architecture.md,
// "Drain").
//
// The drain gate: while the drain runs, the session carries a lease (`drainingUntil`, set
// with its initial presence, renewed by each continuation) and messages sent to it are
// stored but not pushed live (message.ts), so they cannot overtake the backlog: the drain
// brings them, in order. When the backlog is exhausted the lease is removed and the inbox
// read once more, for what was stored while it held. A drain that died (a crashed
// invocation) holds nothing back once its lease has run out; what it did not push waits
// for the next session.
import { deliverable, drainLease } from './delivery.ts';
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
  const { user, resource, connectionId } = session;
  const { drainPageSize: pageSize, drainPerInvocation: perInvocation } = ctx.config;
  const openGate = () => ctx.store.setDraining(user, resource, connectionId, undefined);
  // A continuation: the drain goes on, and so does the lease. A first invocation lists what
  // was pushed live to an earlier session but never acknowledged (message.ts stores such
  // messages unlisted), so that the pages below, in storage order, bring it too.
  if (after) await ctx.store.setDraining(user, resource, connectionId, drainLease(ctx));
  else await ctx.store.listUnlisted(user);
  let cursor = after;
  let pushed = 0;
  let gateOpen = false;
  /** Short of time, or a post failed after its retries: the next invocation goes on after `cursor`. */
  let handOn = false;
  let stopped = false;
  for (;;) {
    if (handOn || pushed >= perInvocation) {
      if (cursor) await ctx.continuations.continueDrain(connectionId, cursor);
      ctx.metrics?.count('MessagesDrained', pushed);
      ctx.logger.info('drain continues in the next invocation', { connectionId, pushed });
      return;
    }
    const page = await ctx.store.undelivered(user, Math.min(pageSize, perInvocation - pushed), cursor);
    const deliveredNow: StoredMessage[] = [];
    for (const message of page.messages) {
      // Every invocation pushes at least one message, so that handing on always progresses.
      if (pushed > 0 && shortOfTime(ctx)) {
        handOn = true;
        break;
      }
      const result = await ctx.gateway.post(connectionId, deliverable(ctx, message, true));
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
        // The session has ended (session.ts). What was pushed without a receipt request
        // counts; the rest waits for the next session.
        ctx.metrics?.count('MessagesDrained', pushed);
        await ctx.store.markAllDelivered(deliveredNow);
        return;
      }
      pushed++;
      cursor = message.seq;
      if (!message.receiptRequested) deliveredNow.push(message);
    }
    await ctx.store.markAllDelivered(deliveredNow);
    if (handOn) continue;
    if (stopped) {
      ctx.logger.warn('drain stopped: a push failed; the rest waits for the next session', { connectionId });
      await openGate();
      return;
    }
    if (page.next) {
      cursor = page.next;
      continue;
    }
    if (gateOpen) break;
    // The backlog is exhausted: live pushes resume, and one more pass brings what senders
    // stored while the gate was closed (they saw the lease before it was removed).
    await openGate();
    gateOpen = true;
  }
  await ctx.store.resetOfflineCount(user);
  ctx.metrics?.count('MessagesDrained', pushed);
  if (pushed > 0) ctx.logger.info('drained', { connectionId, user, pushed });
}
