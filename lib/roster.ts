// RFC 6121 §2 (roster management, with §2.6 versioning) and §3 (subscriptions): the
// roster get/set handlers, roster pushes to interested resources, and the routing of
// subscribe / subscribed / unsubscribe / unsubscribed between two users of this domain.
import { blockedError, blockVerdict } from './blocks.ts';
import { pushToSessions, selectSessions } from './delivery.ts';
import { StanzaError } from './errors.ts';
import { stanzaId } from './ids.ts';
import { bare, parseJid } from './jid.ts';
import type { Link } from './link.ts';
import { NS } from './ns.ts';
import type { Context, RosterItem } from './ports.ts';
import { sendAvailablePresence, sendUnavailablePresence } from './presence.ts';
import type { IqHandlers, Target } from './router.ts';
import { inbound, NONE, outbound, type SubscriptionType } from './subscription.ts';
import { type Element, xml } from './xml.ts';

const MAX_NAME_LENGTH = 1023;

const SUBSCRIPTION_TYPES: readonly string[] = ['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed'];
export const isSubscriptionStanza = (presence: Element) =>
  SUBSCRIPTION_TYPES.includes(presence.attrs.type ?? '');

function itemElement(item: RosterItem, removed = false): Element {
  return xml(
    'item',
    {
      jid: item.contact,
      name: removed ? undefined : item.name,
      subscription: removed ? 'remove' : item.subscription,
      ask: !removed && item.askOut ? 'subscribe' : undefined,
    },
    ...(removed ? [] : item.groups.map((group) => xml('group', {}, group))),
  );
}

/** RFC 6121 §2.1.6: every change goes to each of the user's resources that asked for the roster. */
export async function pushRoster(
  ctx: Context,
  user: string,
  item: RosterItem,
  version: number,
  removed = false,
) {
  const { sessions } = await ctx.store.getAccount(user, { consistent: false });
  const interested = sessions.filter((session) => session.interested);
  await pushToSessions(ctx, interested, (session) =>
    xml(
      'iq',
      { xmlns: NS.client, type: 'set', id: stanzaId(), to: `${session.user}/${session.resource}` },
      xml('query', { xmlns: NS.roster, ver: String(version) }, itemElement(item, removed)),
    ).toString(),
  );
}

/** Saves an item that changed and pushes it; unlisted items (a pending request only) are not pushed. */
async function saveAndPush(ctx: Context, user: string, before: RosterItem | undefined, item: RosterItem) {
  const adds = item.listed && !before?.listed;
  const version = await ctx.store.saveRosterItem(user, item, { adds, limit: ctx.config.rosterLimit });
  if (version === 'full') throw new StanzaError('resource-constraint', 'the roster is full');
  if (item.listed) await pushRoster(ctx, user, item, version);
}

// Roster get and set ------------------------------------------------------------------------

function validatedItem(ctx: Context, user: string, query: Element): { contact: string; element: Element } {
  const items = query.getChildren('item');
  const element = items[0];
  if (!element || items.length !== 1)
    throw new StanzaError('bad-request', 'a roster set has exactly one item');
  const jid = parseJid(element.attrs.jid ?? '');
  if (!jid || jid.resource) throw new StanzaError('bad-request', 'the item needs a bare JID');
  const contact = bare(jid);
  if (contact === user) throw new StanzaError('bad-request', 'the roster does not hold the user’s own JID');
  if (jid.domain !== ctx.config.domain || !jid.local) {
    throw new StanzaError('item-not-found', 'only users of this domain can be contacts (no federation)');
  }
  const name = element.attrs.name;
  if (name !== undefined && name.length > MAX_NAME_LENGTH)
    throw new StanzaError('not-acceptable', 'name too long');
  const groups = element.getChildren('group').map((group) => group.getText());
  if (groups.some((group) => group.trim() === '' || group.length > MAX_NAME_LENGTH)) {
    throw new StanzaError('not-acceptable', 'a group name is empty or too long');
  }
  if (new Set(groups).size !== groups.length) throw new StanzaError('bad-request', 'duplicate group');
  return { contact, element };
}

async function rosterGet({ link, payload }: Parameters<IqHandlers[string]>[0]) {
  const { ctx, record } = link;
  const user = record.user as string;
  await ctx.store.markInterested(user, record.resource as string, record.connectionId);
  const roster = await ctx.store.getRoster(user);
  // RFC 6121 §2.6.3: a client with the current version gets an empty result; pushes follow.
  if (payload.attrs.ver !== undefined && payload.attrs.ver === String(roster.version)) return undefined;
  return xml(
    'query',
    { xmlns: NS.roster, ver: String(roster.version) },
    ...roster.items.filter((item) => item.listed).map((item) => itemElement(item)),
  );
}

async function rosterSet({ link, payload }: Parameters<IqHandlers[string]>[0]) {
  const { ctx, record } = link;
  const user = record.user as string;
  const { contact, element } = validatedItem(ctx, user, payload);
  const before = await ctx.store.getRosterItem(user, contact);
  if (element.attrs.subscription === 'remove') {
    if (!before?.listed) throw new StanzaError('item-not-found');
    await removeItem(ctx, user, before);
    return undefined;
  }
  const item: RosterItem = {
    ...(before ?? { ...NONE, contact }),
    contact,
    name: element.attrs.name || undefined,
    groups: element.getChildren('group').map((group) => group.getText()),
    listed: true,
  };
  await saveAndPush(ctx, user, before, item);
  return undefined;
}

/** RFC 6121 §2.5.2: removing a contact cancels the subscriptions both ways. */
async function removeItem(ctx: Context, user: string, item: RosterItem): Promise<void> {
  if (item.subscription === 'to' || item.subscription === 'both' || item.askOut) {
    await deliverInbound(ctx, user, item.contact, 'unsubscribe');
  }
  if (item.subscription === 'from' || item.subscription === 'both' || item.pendingIn) {
    await deliverInbound(ctx, user, item.contact, 'unsubscribed');
  }
  const version = await ctx.store.removeRosterItem(user, item.contact, { listed: item.listed });
  await pushRoster(ctx, user, item, version, true);
}

/**
 * The account of `user` is being removed (XEP-0077 §3.2): every subscription it had is
 * cancelled as if it removed each contact (its contacts get unsubscribe, unsubscribed and
 * unavailable presence, RFC 6121 §2.5.2), and it leaves its contacts' rosters (a roster push
 * removing it).
 */
export async function forgetContacts(ctx: Context, user: string): Promise<void> {
  const { items } = await ctx.store.getRoster(user);
  for (const item of items) {
    await removeItem(ctx, user, item);
    const entry = await ctx.store.getRosterItem(item.contact, user);
    if (!entry) continue;
    const version = await ctx.store.removeRosterItem(item.contact, user, { listed: entry.listed });
    if (entry.listed) await pushRoster(ctx, item.contact, entry, version, true);
  }
}

export const rosterHandlers: IqHandlers = {
  [`get query ${NS.roster}`]: rosterGet,
  [`set query ${NS.roster}`]: rosterSet,
};

// Subscriptions --------------------------------------------------------------------------------

const subscriptionStanza = (type: string, from: string, to: string) =>
  xml('presence', { xmlns: NS.client, type, from, to, id: stanzaId() });

/** Delivers a subscription stanza to the user's available resources. */
async function deliverToUser(ctx: Context, user: string, stanza: Element): Promise<number> {
  const { sessions } = await ctx.store.getAccount(user);
  const frame = stanza.toString();
  return (await pushToSessions(ctx, selectSessions(sessions), () => frame)).length;
}

/** The subscription stanza arrives for `contact` from `sender` (RFC 6121 §3.x.3). */
async function deliverInbound(ctx: Context, sender: string, contact: string, type: SubscriptionType) {
  const before = await ctx.store.getRosterItem(contact, sender);
  const state = before ?? { ...NONE, contact: sender, groups: [], listed: false };
  if (type === 'subscribe' && (state.subscription === 'from' || state.subscription === 'both')) {
    // Already approved: the server answers for the contact (RFC 6121 §3.1.3).
    await deliverInbound(ctx, contact, sender, 'subscribed');
    return;
  }
  const transition = inbound(state, type);
  const item: RosterItem = {
    ...state,
    ...transition.state,
    // A pending request alone does not put the sender in the roster (RFC 6121 §3.1.3).
    listed: state.listed || (transition.changed && type === 'subscribed'),
  };
  if (transition.changed) await saveAndPush(ctx, contact, before, item);
  if (transition.deliver || (type === 'subscribe' && state.pendingIn)) {
    await deliverToUser(ctx, contact, subscriptionStanza(type, sender, contact));
  }
  if (!transition.changed) return;
  if (type === 'subscribed') await sendAvailablePresence(ctx, sender, contact);
  if (type === 'unsubscribed') await sendUnavailablePresence(ctx, sender, contact);
  if (type === 'unsubscribe') await sendUnavailablePresence(ctx, contact, sender);
}

/** A subscription stanza from a bound client (RFC 6121 §3.x.2). */
export async function handleSubscription(link: Link, presence: Element, target: Target): Promise<void> {
  const { ctx, record } = link;
  const user = record.user as string;
  const type = presence.attrs.type as SubscriptionType;
  if (target.kind === 'remote') throw new StanzaError('remote-server-not-found');
  if (target.kind !== 'user' || !target.jid.local || target.jid.domain !== ctx.config.domain) return;
  const contact = bare(target.jid);
  const account = await ctx.store.getAccount(contact, { consistent: false });
  const verdict = account.exists ? blockVerdict(account, user) : undefined;
  if (verdict === 'sender-blocks') throw blockedError();
  if (verdict === 'recipient-blocks') return; // XEP-0191 §3.4: dropped without a word
  if (!account.exists) {
    // RFC 6121 §3.1.3: a request to nobody is answered as refused.
    if (type === 'subscribe')
      await deliverToUser(ctx, user, subscriptionStanza('unsubscribed', contact, user));
    return;
  }
  const before = await ctx.store.getRosterItem(user, contact);
  const state = before ?? { ...NONE, contact, groups: [], listed: false };
  const transition = outbound(state, type);
  const item: RosterItem = { ...state, ...transition.state, listed: state.listed || transition.changed };
  if (transition.changed) await saveAndPush(ctx, user, before, item);
  if (transition.deliver) await deliverInbound(ctx, user, contact, type);
}
