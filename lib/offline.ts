// Offline delivery (XEP-0160 behaviour over RFC 6121 §8.5): when a session becomes
// available, everything still undelivered for the user is pushed to it, oldest first, in
// storage order, each with a XEP-0203 delay. Read a page at a time; after
// `drainPerInvocation` messages, or when the invocation runs short of time, the rest is
// handed to the next invocation through the connection's FIFO group (docs/architecture.md,
// "Drain").
//
// The drain gate: while the drain runs, the session carries a lease (`drainingUntil`, set
// with its initial presence, renewed by each continuation). A sender that finds the lease
// stores its message unlisted and then holds it for the drain: it appends the message to the
// session's `held` list, only while the lease still runs (message.ts). If the gate has opened
// meanwhile, the sender pushes the message itself. Once the backlog is exhausted, the drain
// brings what was held, in the order it was held, and opens the gate only when nothing more was
// held since it last looked (both are conditional writes on the session item, so each held
// message is either brought by the drain before the gate opens or pushed by its sender after).
// So nothing stored while the gate was closed waits for the next session, and nothing sent after
// it opened overtakes what was held before. A drain that died (a crashed invocation) holds
// nothing back once its lease has run out; what it did not push waits for the next session
// (held messages are unlisted, and a drain's start lists them).
import { deliverable, drainLease } from './delivery.ts';
import type { Context, SessionRecord, StoredMessage } from './ports.ts';

type DrainTarget = Pick<SessionRecord, 'connectionId' | 'user' | 'resource'> & {
  /** The lease the initial presence set (its first `drainingUntil`): which drain this is. */
  readonly lease?: number;
};

/**
 * The drain hands on to the next invocation when less than this is left of the current one
 * (Context.remainingMs), whatever it pushed: the rest of the batch needs time too
 * (functions/frames.ts starts no record with less than 5 s left).
 */
export const DRAIN_TIME_MARGIN_MS = 8_000;

const shortOfTime = (ctx: Context) =>
  ctx.remainingMs !== undefined && ctx.remainingMs() < DRAIN_TIME_MARGIN_MS;

/**
 * A continuation's cursor: its drain's id (the first lease's value, which renewals keep), so that
 * a continuation of an earlier drain on the same connection (a second initial presence started
 * another) is told apart, then where it goes on. A cursor without one (queued before ids were
 * carried) renews any lease.
 */
const continuation = (drain: number | undefined, position: string) =>
  drain === undefined ? position : `${drain}/${position}`;
function parseContinuation(after: string): { drain?: number; position: string } {
  const match = /^(\d+)\/(.*)$/s.exec(after);
  return match ? { drain: Number(match[1]), position: match[2] as string } : { position: after };
}

/** A continuation's position once the backlog is done: how many held messages were handled. */
const HELD_CURSOR = '#held:';
const heldCursor = (handled: number) => `${HELD_CURSOR}${handled}`;
const handledBefore = (after?: string) =>
  after?.startsWith(HELD_CURSOR) ? Number(after.slice(HELD_CURSOR.length)) : undefined;

/** One message, whichever way the drain found it (a page, or the held list). */
const messageKey = (message: Pick<StoredMessage, 'sender' | 'id'>) => `${message.sender} ${message.id}`;

export async function drain(ctx: Context, session: DrainTarget, after?: string): Promise<void> {
  const { user, resource, connectionId } = session;
  const { drainPageSize: pageSize, drainPerInvocation: perInvocation } = ctx.config;
  const openGate = () => ctx.store.setDraining(user, resource, connectionId, undefined);
  // A continuation: the drain goes on, and so does the lease. A first invocation lists what
  // was pushed live to an earlier session but never acknowledged (message.ts stores such
  // messages unlisted), so that the pages below, in storage order, bring it too.
  let drainId = session.lease;
  let position: string | undefined;
  if (after) {
    const resumed = parseContinuation(after);
    position = resumed.position;
    drainId = resumed.drain;
    // A continuation replayed after its drain ended (the gate is open), or one of an earlier
    // drain that a new initial presence replaced, has nothing to do. One retried after a
    // failure resumes: the drain's id does not change with its lease.
    if (!(await ctx.store.setDraining(user, resource, connectionId, drainLease(ctx), drainId))) return;
  } else await ctx.store.listUnlisted(user);
  let handled = handledBefore(position);
  let cursor = handled === undefined ? position : undefined;
  let pushed = 0;
  /** Pushed by this invocation: a held message a page brought already is not pushed twice. */
  const pushedHere = new Set<string>();
  const deliveredNow: StoredMessage[] = [];
  const push = async (message: StoredMessage): Promise<'pushed' | 'skipped' | 'failed' | 'gone'> => {
    const result = await ctx.gateway.post(connectionId, deliverable(ctx, message, true));
    // Too large: it can never be pushed; it stays undelivered (nothing marks it), the drain goes on.
    if (result === 'too-large') return 'skipped';
    // Throttled or refused after retries: it stays undelivered.
    if (result === 'failed') return 'failed';
    // The session has ended (session.ts): the rest waits for the next session.
    if (result === 'gone') return 'gone';
    pushed++;
    pushedHere.add(messageKey(message));
    if (!message.receiptRequested) deliveredNow.push(message);
    return 'pushed';
  };
  const markDelivered = async () => {
    await ctx.store.markAllDelivered(deliveredNow.splice(0));
  };
  const gone = async () => {
    // What was pushed without a receipt request counts; the rest waits for the next session.
    await markDelivered();
    ctx.metrics?.count('MessagesDrained', pushed);
  };
  const handOn = async (next: string | undefined) => {
    await markDelivered();
    if (next) await ctx.continuations.continueDrain(connectionId, continuation(drainId, next));
    ctx.metrics?.count('MessagesDrained', pushed);
    ctx.logger.info('drain continues in the next invocation', { connectionId, pushed });
  };
  const stop = async () => {
    // The next invocation retries from here, unless this one pushed nothing (then the next
    // session does: what was held is unlisted, and its drain's start lists it).
    if (pushed > 0) return handOn(handled === undefined ? cursor : heldCursor(handled));
    await markDelivered();
    ctx.logger.warn('drain stopped: a push failed; the rest waits for the next session', { connectionId });
    await openGate();
  };
  // Every invocation pushes at least one message, so that handing on always progresses.
  const mustHandOn = () => pushed >= perInvocation || (pushed > 0 && shortOfTime(ctx));

  // The backlog, page by page in storage order.
  while (handled === undefined) {
    if (mustHandOn()) return handOn(cursor);
    const page = await ctx.store.undelivered(user, Math.min(pageSize, perInvocation - pushed), cursor);
    for (const message of page.messages) {
      if (mustHandOn()) return handOn(cursor);
      const result = await push(message);
      if (result === 'failed') return stop();
      if (result === 'gone') return gone();
      cursor = message.seq;
    }
    await markDelivered();
    if (page.next) cursor = page.next;
    else handled = 0;
  }
  // The backlog is exhausted: what senders held meanwhile, until the gate opens with nothing
  // more held.
  for (;;) {
    const answer = await ctx.store.openDrainGate(user, resource, connectionId, handled);
    if (answer === 'gone') return gone();
    if (answer === 'open') break;
    if (answer.length <= handled) {
      // Not the list this drain counted (it cannot shrink while this drain's lease holds):
      // count from its length, so that the next try opens unless more is held.
      handled = answer.length;
      continue;
    }
    const held = answer.slice(handled);
    const messages = await ctx.store.heldMessages(user, held);
    for (const message of messages) {
      if (mustHandOn()) return handOn(heldCursor(handled));
      // Delivered meanwhile, or brought by a page (a message stored while nobody was available,
      // then held when the session turned out to be draining).
      if (message && !pushedHere.has(messageKey(message))) {
        const result = await push(message);
        if (result === 'failed') return stop();
        if (result === 'gone') return gone();
      }
      handled++;
    }
    await markDelivered();
  }
  await ctx.store.resetOfflineCount(user);
  ctx.metrics?.count('MessagesDrained', pushed);
  if (pushed > 0) ctx.logger.info('drained', { connectionId, user, pushed });
}
