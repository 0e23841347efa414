// XEP-0280: Message Carbons (urn:xmpp:carbons:2). A session that enabled carbons gets a
// <received/> copy of each eligible message to its user that went to another session, and a
// <sent/> copy of each one its user sent from another session.
//
// Costs posts, not reads: the recipient's sessions come from the account read the message
// path makes anyway; the sender's from one eventually consistent read of their own account,
// made only for messages with a body (so a receipt or a chat state gets <received/> copies
// but no <sent/> ones: see README, "Several devices").
import { pushToSessions } from './delivery.ts';
import type { Link } from './link.ts';
import { NS } from './ns.ts';
import type { Context, SessionRecord } from './ports.ts';
import type { IqHandlers } from './router.ts';
import { type Element, xml } from './xml.ts';

/** §6.1: which messages are copied (ask before withoutPrivate takes the <private/> out). */
export function eligible(stanza: Element): boolean {
  if (isPrivate(stanza)) return false;
  const type = stanza.attrs.type ?? 'normal';
  if (type === 'chat') return true;
  if (type !== 'normal') return false;
  return (
    stanza.getChild('body') !== undefined ||
    stanza.getChild('received', NS.receipts) !== undefined ||
    stanza.getChildByAttr('xmlns', NS.chatStates) !== undefined ||
    stanza.getChildByAttr('xmlns', NS.chatMarkers) !== undefined
  );
}

/** §7: the sender asked for no copies (<private/>, normally with a no-copy hint). */
const isPrivate = (stanza: Element) => stanza.getChild('private', NS.carbons) !== undefined;

/** §7: the <private/> element is not passed on to the recipient. */
export function withoutPrivate(stanza: Element): Element {
  stanza.children = stanza.children.filter(
    (child) => typeof child === 'string' || child.name !== 'private' || child.attrs.xmlns !== NS.carbons,
  );
  return stanza;
}

/** The sessions that want copies: carbons on, available, not among `except`. */
function copyTargets(sessions: readonly SessionRecord[], except: (session: SessionRecord) => boolean) {
  return sessions.filter((session) => session.carbons === true && session.available && !except(session));
}

function wrapped(kind: 'received' | 'sent', user: string, session: SessionRecord, message: string): string {
  // The forwarded message is spliced in as text: it is already serialised, with its xmlns.
  const to = `${user}/${session.resource}`;
  return (
    xml(
      'message',
      { xmlns: NS.client, from: user, to, type: 'chat' },
      xml(kind, { xmlns: NS.carbons }, xml('forwarded', { xmlns: NS.forward }, '\u0000')),
    )
      .toString()
      // A function, not a string: a replacement string would expand `$&` and the like in the text.
      .replace('\u0000', () => message)
  );
}

/**
 * §6: <received/> copies of `message` (as delivered) for the recipient's sessions that
 * enabled carbons and did not get it; `copyable`: what `eligible` said of the stanza.
 */
export async function sendReceivedCopies(
  ctx: Context,
  recipient: string,
  sessions: readonly SessionRecord[],
  reached: readonly SessionRecord[],
  copyable: boolean,
  message: string,
): Promise<void> {
  if (!copyable) return;
  const got = new Set(reached.map((session) => session.connectionId));
  const targets = copyTargets(sessions, (session) => got.has(session.connectionId));
  if (targets.length === 0) return;
  await pushToSessions(ctx, targets, (session) => wrapped('received', recipient, session, message));
}

/** §6: <sent/> copies of what the link's session sent, for its user's other sessions with carbons. */
export async function sendSentCopies(
  link: Link,
  sessions: readonly SessionRecord[],
  copyable: boolean,
  message: string,
): Promise<void> {
  if (!copyable) return;
  const user = link.record.user as string;
  const targets = copyTargets(sessions, (session) => session.connectionId === link.connectionId);
  if (targets.length === 0) return;
  await pushToSessions(link.ctx, targets, (session) => wrapped('sent', user, session, message));
}

async function setCarbons(link: Link, enabled: boolean): Promise<undefined> {
  const { user, resource } = link.record;
  await link.ctx.store.setCarbons(user as string, resource as string, link.connectionId, enabled);
  return undefined;
}

export const carbonsHandlers: IqHandlers = {
  [`set enable ${NS.carbons}`]: ({ link }) => setCarbons(link, true),
  [`set disable ${NS.carbons}`]: ({ link }) => setCarbons(link, false),
};
