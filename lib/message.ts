// Messages between users: RFC 6121 §8 routing, the project's server receipt, storage
// before delivery, XEP-0184 delivery receipts and XEP-0359 stanza ids (DESIGN.md §3).
import { archiveEntries, archiveExpiry } from './archive.ts';
import { blockedError, blockVerdict } from './blocks.ts';
import { eligible, sendReceivedCopies, sendSentCopies, withoutPrivate } from './carbons.ts';
import { isHeldBack } from './csi.ts';
import { awake, deliverable, isDraining, pushToSessions, selectSessions } from './delivery.ts';
import { StanzaError } from './errors.ts';
import { sequenceId, stanzaId } from './ids.ts';
import { bare, type Jid, parseJid } from './jid.ts';
import type { Link } from './link.ts';
import { handleRoomMessage } from './muc/room.ts';
import { NS } from './ns.ts';
import type { Account, Context, SenderRoute, SessionRecord, StoredMessage } from './ports.ts';
import { tellPush } from './push.ts';
import type { Target } from './router.ts';
import { cloneElement, type Element, xml } from './xml.ts';

const DAY_SECONDS = 24 * 60 * 60;

/** Kept until acknowledged: chat and normal messages with a body, and delivery receipts. */
function isStorable(stanza: Element): boolean {
  const type = stanza.attrs.type ?? 'normal';
  if (type !== 'chat' && type !== 'normal') return false;
  return stanza.getChild('body') !== undefined || isReceipt(stanza);
}

const isReceipt = (stanza: Element) => stanza.getChild('received', NS.receipts) !== undefined;
const asksForReceipt = (stanza: Element) => stanza.getChild('request', NS.receipts) !== undefined;

/** XEP-0359 §3.1: a stanza-id claiming to be ours, sent by a client, is removed. */
function stripOurStanzaIds(ctx: Context, stanza: Element): void {
  stanza.children = stanza.children.filter((child) => {
    if (typeof child === 'string' || child.name !== 'stanza-id' || child.attrs.xmlns !== NS.stanzaId)
      return true;
    const by = parseJid(child.attrs.by ?? '');
    return by?.domain !== ctx.config.domain;
  });
}

/** The project's server receipt: "the server has it" (README, "Server receipts"). */
export function serverAck(ctx: Context, link: Link, id: string, serverId: string): Element {
  return xml(
    'message',
    { xmlns: NS.client, from: ctx.config.domain, to: link.jid, id: stanzaId() },
    xml('ack', { xmlns: NS.ack, id }),
    xml('stanza-id', { xmlns: NS.stanzaId, by: link.record.user, id: serverId }),
  );
}

export async function handleMessage(link: Link, stanza: Element, target: Target): Promise<void> {
  const { ctx } = link;
  if (target.kind === 'remote') throw new StanzaError('remote-server-not-found');
  if (target.kind === 'server') {
    if (stanza.getChild('body')) throw new StanzaError('service-unavailable');
    return; // chat states and the like addressed to the server need nothing
  }
  const to: Jid = target.kind === 'account' ? (parseJid(link.record.user ?? '') as Jid) : target.jid;
  if (to.domain === ctx.config.mucDomain) return handleRoomMessage(link, stanza, to);
  if (to.domain !== ctx.config.domain) throw new StanzaError('service-unavailable');
  const recipient = bare(to);
  if (isReceipt(stanza)) {
    const route = await acknowledgeDelivery(link, stanza, recipient);
    if (route && (await receiptStraightBack(link, stanza, to, route))) return;
  }
  if (!isStorable(stanza)) return routeLive(link, stanza, recipient, to.resource);
  await storeAndPush(link, stanza, recipient, to.resource);
}

/**
 * XEP-0184 §5: the recipient's client got the message; the sender learns it. Returns where
 * the sender was when the message was stored, when it was stored with that.
 */
async function acknowledgeDelivery(
  link: Link,
  receipt: Element,
  originalSender: string,
): Promise<SenderRoute | undefined> {
  const id = receipt.getChild('received', NS.receipts)?.attrs.id;
  const me = link.record.user;
  if (!id || !me) return undefined;
  const marked = await link.ctx.store.markDelivered(me, originalSender, id);
  if (!marked) return undefined;
  link.ctx.metrics?.count('MessagesDelivered');
  link.ctx.logger.debug('delivered', { recipient: me, sender: originalSender, id });
  return marked.route;
}

/**
 * A receipt to the very session that sent the message, when no other session of its user
 * wanted carbons then, is posted straight to that session's connection: the account read that
 * routing would make is saved (one request of the three a message with its receipt costs,
 * docs/costs.md). Anything else (a bare JID, another resource, a body, a connection gone or
 * ending) goes the usual way. A session that turned carbons on since the message was sent
 * gets no copy of this receipt (README, "Several devices").
 */
async function receiptStraightBack(
  link: Link,
  receipt: Element,
  to: Jid,
  route: SenderRoute,
): Promise<boolean> {
  const type = receipt.attrs.type ?? 'normal';
  if (type !== 'chat' && type !== 'normal') return false;
  if (!route.alone || to.resource !== route.resource || receipt.getChild('body')) return false;
  const result = await link.ctx.gateway.post(route.connectionId, withoutPrivate(receipt).toString(), {
    routedAt: route.at,
  });
  if (result !== 'ok') return false;
  link.ctx.metrics?.count('ReceiptsRouted');
  return true;
}

/**
 * Headlines, errors and body-less messages (chat states) go to live sessions only; a chat
 * state alone skips inactive ones (XEP-0352, csi.ts), their copies included.
 */
async function routeLive(link: Link, stanza: Element, recipient: string, resource?: string): Promise<void> {
  const account = await link.ctx.store.getAccount(recipient, { consistent: false });
  const quiet = stanza.attrs.type === 'error' || stanza.attrs.type === 'headline';
  if (!account.exists) {
    if (quiet) return;
    throw new StanzaError('service-unavailable');
  }
  const verdict = blockVerdict(account, link.record.user as string);
  if (verdict === 'sender-blocks') throw blockedError();
  if (verdict === 'recipient-blocks') {
    if (quiet) return;
    throw new StanzaError('service-unavailable');
  }
  const copyable = eligible(stanza);
  const frame = withoutPrivate(stanza).toString();
  const wanted = isHeldBack(stanza) ? awake : () => true;
  const targets = selectSessions(account.sessions, resource).filter(wanted);
  const reached = await pushToSessions(link.ctx, targets, () => frame);
  await sendReceivedCopies(link.ctx, recipient, account.sessions.filter(wanted), reached, copyable, frame);
}

/** The friends-only policy: the recipient lets the sender see their presence (from or both). */
async function approvedBy(ctx: Context, recipient: string, sender: string): Promise<boolean> {
  const item = await ctx.store.getRosterItem(recipient, sender);
  return item?.subscription === 'from' || item?.subscription === 'both';
}

async function storeAndPush(
  link: Link,
  stanza: Element,
  recipient: string,
  resource?: string,
): Promise<void> {
  const { ctx } = link;
  const sender = link.record.user as string;
  // Receipts are stored only when nobody is there to take them (see README).
  const receiptOnly = isReceipt(stanza) && !stanza.getChild('body');
  // With the recipient's account, in the same request, the sender's own: their archive
  // preferences and the sessions that get <sent/> carbons. A receipt needs neither.
  const [account, senderAccount] = receiptOnly
    ? [await ctx.store.getAccount(recipient, { consistent: false }), undefined]
    : await ctx.store.getAccounts([recipient, sender]);
  if (!account.exists) throw new StanzaError('service-unavailable');
  // XEP-0191 §3.4–§3.5: nothing passes a block, either way.
  const verdict = blockVerdict(account, sender);
  if (verdict === 'sender-blocks') throw blockedError();
  if (verdict === 'recipient-blocks') throw new StanzaError('service-unavailable');
  if (!receiptOnly && ctx.config.messagePolicy === 'roster' && !(await approvedBy(ctx, recipient, sender))) {
    throw new StanzaError('subscription-required', 'the recipient has not approved you as a contact');
  }
  const copyable = eligible(stanza);
  withoutPrivate(stanza);
  let targets = selectSessions(account.sessions, resource);
  if (receiptOnly && targets.length > 0) {
    const frame = stanza.toString();
    const reached = await pushToSessions(ctx, targets, () => frame);
    if (reached.length > 0) {
      ctx.metrics?.count('ReceiptsRouted');
      await sendReceivedCopies(ctx, recipient, account.sessions, reached, copyable, frame);
      return;
    }
  }

  stanza.attrs.id ||= stanzaId();
  stripOurStanzaIds(ctx, stanza);
  const now = ctx.now();
  const message: StoredMessage = {
    recipient,
    sender,
    id: stanza.attrs.id,
    seq: sequenceId(now),
    stanza: stanza.toString(),
    storedAt: now,
    receiptRequested: asksForReceipt(stanza),
    expiresAt: Math.floor(now / 1000) + ctx.config.retentionDays * DAY_SECONDS,
    ...(asksForReceipt(stanza) && senderAccount ? { route: senderRoute(link, senderAccount, now) } : {}),
  };
  const waiting =
    targets.length === 0 ? await ctx.store.reserveOfflineSlot(recipient, ctx.config.offlineQuota) : 0;
  if (waiting === false) {
    throw new StanzaError('resource-constraint', 'the recipient has too many messages waiting');
  }
  // A session whose drain is under way gets the message from the drain, after the backlog.
  let live = targets.filter((session) => !isDraining(ctx, session));
  // A message about to be pushed, or held for a drain, is not listed for the drain (no index
  // entry: half the writes); it is listed only if the push fails, or by the next drain's start.
  // With no session available it is listed at once, for the next one.
  const listed = targets.length === 0;
  const result = await ctx.store.storeMessage(message, { listed });
  const kept = result.stored ? message : result.existing;
  // A tombstone written before it kept `storedAt` has none: the retry's time stands in.
  const storedAt = kept.storedAt ?? now;
  const archived =
    receiptOnly || !senderAccount
      ? []
      : await archiveEntries(
          ctx,
          { sender: { ...senderAccount, user: sender }, recipient: { ...account, user: recipient } },
          stanza,
          kept.seq,
          storedAt,
        );
  // Before the server receipt: what it acknowledges is in both archives. A retry writes the
  // same items again (same keys), in case the first try stopped between the two writes, even
  // when a drain has delivered the message meanwhile.
  if (archived.length > 0) await ctx.store.archive(archived, archiveExpiry(ctx, storedAt));
  if (result.stored) ctx.metrics?.count(receiptOnly ? 'ReceiptsRouted' : 'MessagesStored');
  if (!receiptOnly) await link.send(serverAck(ctx, link, kept.id, kept.seq));
  // A retry (the client's resend after a lost server receipt, or SQS's after a crash) is
  // acknowledged again and not pushed again: the first copy is delivered or waits in the inbox
  // for the recipient's next session (whose drain's start lists it). But if the first try
  // stopped between its write and its hold, a drain still under way must bring it: it is held
  // again (a drain pushes a message held twice once per invocation).
  if (!result.stored) {
    if (!result.delivered) await holdForDrains(ctx, targets, live, kept);
    return;
  }
  // Nobody was available when we looked: look again now that the message is stored. A
  // session that became available in between either shows up here or finds the message
  // in its drain, which starts after it is marked available (presence.ts).
  let sessions = account.sessions;
  let latest: Account = account;
  if (targets.length === 0) {
    latest = await ctx.store.getAccount(recipient);
    sessions = latest.sessions;
    targets = selectSessions(sessions, resource);
    live = targets.filter((session) => !isDraining(ctx, session));
  }
  const frame = deliverable(ctx, kept, false);
  const { held, opened } = await holdForDrains(ctx, targets, live, kept);
  const pushed = await pushToSessions(ctx, [...live, ...opened], () => frame);
  if (pushed.length === 0 && held === 0 && !listed) await ctx.store.listForDrain(kept);
  // Pushed without a receipt request, it counts as delivered, unless a session still draining
  // holds it: that drain marks it once it has brought it there too.
  if (pushed.length > 0 && held === 0 && !kept.receiptRequested) {
    await ctx.store.markDelivered(recipient, sender, kept.id);
    ctx.metrics?.count('MessagesDelivered');
  }
  await Promise.all([
    sendReceivedCopies(ctx, recipient, sessions, pushed, copyable, frame),
    senderAccount && sendSentCopies(link, senderAccount.sessions, copyable, sentCopy(stanza, archived, kept)),
    !receiptOnly && pushed.length === 0 && held === 0 && notifyAway(link, recipient, latest, waiting, stanza),
  ]);
}

/**
 * XEP-0357: no session took a message with a body (none was available, or each push met a
 * gone connection), so the user's push registrations hear of it (push.ts). A session that is
 * draining gets it from the drain instead. The count is the offline counter's; a message that
 * met only gone connections is counted now (a write only for a user with registrations).
 */
async function notifyAway(
  link: Link,
  recipient: string,
  account: Pick<Account, 'push'>,
  waiting: number,
  stanza: Element,
): Promise<void> {
  const { ctx } = link;
  if (account.push.length === 0 || !ctx.pushJobs) return;
  try {
    const count = waiting || (await ctx.store.reserveOfflineSlot(recipient, ctx.config.offlineQuota));
    await tellPush(ctx, recipient, account, {
      count: count === false ? ctx.config.offlineQuota : count,
      sender: link.jid as string,
      body: stanza.getChildText('body') ?? undefined,
    });
  } catch (error) {
    // The message is stored and acknowledged; a retry of the frame would not come back here
    // (it is recognised as a retry), so the notification is given up, not the frame.
    ctx.logger.warn('push notification not queued', { recipient, error: String(error) });
  }
}

/**
 * The drain gate (offline.ts) from the sender's side: the message is stored, and each target
 * session whose drain was under way when the sender looked holds it for that drain, if the gate
 * is still closed. The drain then brings it, in the order it was held, before the gate opens.
 * A session whose gate has opened meanwhile (or whose lease ran out) gets it from the sender,
 * at once: it cannot be overtaken by the sender's next message, which finds the gate open too.
 */
async function holdForDrains(
  ctx: Context,
  targets: readonly SessionRecord[],
  live: readonly SessionRecord[],
  message: Pick<StoredMessage, 'sender' | 'id'>,
): Promise<{ held: number; opened: SessionRecord[] }> {
  const draining = targets.filter((session) => !live.includes(session));
  const holds = await Promise.all(
    draining.map((session) => ctx.store.holdForDrain(session, message, ctx.now())),
  );
  return {
    held: holds.filter(Boolean).length,
    opened: draining.filter((_, index) => !holds[index]),
  };
}

/** Where the receipt to this message can go back to (receiptStraightBack). */
function senderRoute(link: Link, senderAccount: Account, at: number): SenderRoute {
  const others = senderAccount.sessions.filter((session) => session.connectionId !== link.connectionId);
  return {
    connectionId: link.connectionId,
    resource: link.record.resource as string,
    alone: !others.some((session) => session.carbons === true && session.available),
    at,
  };
}

/** The <sent/> carbon's message: with the sender's stanza-id when it went into their archive. */
function sentCopy(stanza: Element, archived: readonly { user: string }[], kept: StoredMessage): string {
  if (!archived.some((entry) => entry.user === kept.sender)) return stanza.toString();
  const copy = cloneElement(stanza);
  copy.cnode(xml('stanza-id', { xmlns: NS.stanzaId, by: kept.sender, id: kept.seq }));
  return copy.toString();
}
