// XEP-0352: Client State Indication (urn:xmpp:csi:0). A client says whether its user is
// looking at it (`<active/>`, `<inactive/>`: top-level elements, never answered). Every post
// to a connection costs an API Gateway message, so while a session is inactive the server
// posts it no available presence from its contacts and no chat states; messages with a body,
// receipts, errors, subscription requests and unavailable presence still go at once. There is
// no queue: on <active/> the session gets the current presence of its contacts from the
// presence items, as at initial presence (presence.ts), and the chat states it missed are gone
// (the next one replaces them anyway).
//
// §5 lets the server choose what it holds back. Unavailable presence is not held back: the
// presence items say who is online, not who left, so a departure held back could not be told
// at <active/>. Body-less messages other than chat states (markers, reactions, call
// proposals, encrypted key transport) are not held back either: without a queue they would be
// lost. Room presence and room messages are unchanged (a room's roster needs every join and
// leave). Like Prosody, the state is accepted once the client has authenticated: sent between
// the stream restart and bind, it is kept on the connection and the bound session starts with
// it; before authentication it is a stream error like any other element out of place.
import { awake } from './delivery.ts';
import type { Link } from './link.ts';
import { NS } from './ns.ts';
import { sendCurrentPresence } from './presence.ts';
import { type Element, xml } from './xml.ts';

/** §4: offered with resource binding, after authentication. */
export const csiFeature = () => xml('csi', { xmlns: NS.csi });

/** A client state indication: `<active/>` or `<inactive/>` in the CSI namespace. */
export const isCsi = (element: Element) =>
  element.attrs.xmlns === NS.csi && (element.name === 'active' || element.name === 'inactive');

/** What may come with a chat state in a message that carries nothing else (XEP-0085 §5.4). */
const BESIDE_A_CHAT_STATE = new Set<string>([NS.hints, NS.stanzaId]);

/**
 * Held back from inactive sessions: a message that is only a chat state (XEP-0085), with
 * nothing else than a thread, processing hints and an origin-id.
 */
export function isHeldBack(stanza: Element): boolean {
  if (stanza.name !== 'message' || stanza.attrs.type === 'error') return false;
  const children = stanza.getChildElements();
  const isChatState = (child: Element) => child.attrs.xmlns === NS.chatStates;
  const isThread = (child: Element) =>
    child.name === 'thread' && (child.attrs.xmlns === undefined || child.attrs.xmlns === NS.client);
  return (
    children.some(isChatState) &&
    children.every(
      (child) => isChatState(child) || isThread(child) || BESIDE_A_CHAT_STATE.has(child.attrs.xmlns ?? ''),
    )
  );
}

/**
 * §5.1, §5.2: records the state. Bound, on the session (a change only: a repeated state
 * costs a read and nothing more), and back to active the session gets its contacts' current
 * presence. Between the restart and bind, on the connection, for bind (stream.ts).
 */
export async function handleCsi(link: Link, indication: Element): Promise<void> {
  const inactive = indication.name === 'inactive';
  const { ctx, record } = link;
  if (record.state !== 'bound') {
    link.update({ inactive });
    return;
  }
  const user = record.user as string;
  const resource = record.resource as string;
  const account = await ctx.store.getAccount(user);
  const session = account.sessions.find((candidate) => candidate.connectionId === record.connectionId);
  if (!session || awake(session) === !inactive) return;
  await ctx.store.setInactive(user, resource, record.connectionId, inactive);
  if (!inactive && session.available) await sendCurrentPresence(link, account);
}
