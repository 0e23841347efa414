// Offline delivery: when a session becomes available, everything still undelivered for
// the user is pushed to it, oldest first, in storage order, each with a XEP-0203 delay.
// Read a page at a time; after `drainPerInvocation` messages the rest is handed to the
// next invocation through the connection's FIFO group (docs/architecture.md, "Drain").
import { forgetConnection } from './link.ts';
import { deliverable } from './message.ts';
import type { Context, SessionRecord, StoredMessage } from './ports.ts';

type DrainTarget = Pick<SessionRecord, 'connectionId' | 'user' | 'resource'>;

export async function drain(ctx: Context, session: DrainTarget, after?: string): Promise<void> {
  const { pageSize, perInvocation } = {
    pageSize: ctx.config.drainPageSize,
    perInvocation: ctx.config.drainPerInvocation,
  };
  let cursor = after;
  let pushed = 0;
  for (;;) {
    if (pushed >= perInvocation) {
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
      const result = await ctx.gateway.post(session.connectionId, deliverable(ctx, message, true));
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
    if (!page.next) break;
    cursor = page.next;
  }
  await ctx.store.resetOfflineCount(session.user);
  ctx.metrics?.count('MessagesDrained', pushed);
  if (pushed > 0)
    ctx.logger.info('drained', { connectionId: session.connectionId, user: session.user, pushed });
}
