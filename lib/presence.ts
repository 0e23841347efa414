// RFC 6121 §4: presence. A session becomes available with its initial presence: the
// server broadcasts it to the contacts who may see it, probes the contacts the user may
// see (their last presence, read in batches), re-delivers subscription requests still
// unanswered, then drains the messages that waited. Updates are broadcast; unavailable
// presence — sent, or implied when the session ends — goes to the same contacts and to
// everyone the session sent directed presence to. Available presence skips sessions that
// said they are inactive (XEP-0352, csi.ts); they get the current state when active again.
import { blockedError, blockVerdict } from './blocks.ts';
import { awake, drainLease, pushToSessions, selectSessions } from './delivery.ts';
import { StanzaError } from './errors.ts';
import { bare } from './jid.ts';
import type { Link } from './link.ts';
import { leaveAllRooms } from './muc/room.ts';
import { NS } from './ns.ts';
import { drain } from './offline.ts';
import type { Account, Context, PresenceEntry, RosterItem } from './ports.ts';
import type { Target } from './router.ts';
import { receivesPresenceFrom, sendsPresenceTo } from './subscription.ts';
import { type Element, parseStored, xml } from './xml.ts';

/** RFC 6121 §4.7.2.3: an integer from -128 to 127, 0 when absent. */
function priorityOf(presence: Element): number {
  const text = presence.getChildText('priority');
  if (text === null || text === undefined || text.trim() === '') return 0;
  const value = Number(text.trim());
  if (!Number.isInteger(value) || value < -128 || value > 127) {
    throw new StanzaError('bad-request', 'priority is -128 to 127');
  }
  return value;
}

/** A stored presence, addressed to one recipient. */
function addressedElement(stanza: string, to: string): Element {
  const element = parseStored(stanza);
  element.attrs.to = to;
  return element;
}

const addressed = (stanza: string, to: string) => addressedElement(stanza, to).toString();

const unavailable = (from: string, to: string) =>
  xml('presence', { xmlns: NS.client, type: 'unavailable', from, to });

/** Posts one frame per available resource of each user in `targets` (read at `routedAt`). */
async function toResources(
  ctx: Context,
  targets: ReadonlyMap<string, readonly PresenceEntry[]>,
  frame: (to: string) => string,
  routedAt?: number,
): Promise<void> {
  const sessions = [...targets].flatMap(([user, entries]) =>
    entries.map((entry) => ({ user, resource: entry.resource, connectionId: entry.connectionId })),
  );
  await pushToSessions(
    ctx,
    sessions.map((session) => ({ ...session, available: true, priority: 0, expiresAt: 0 })),
    (session) => frame(`${session.user}/${session.resource}`),
    routedAt,
  );
}

/** The entries of `users`; `keep` leaves some resources out (inactive ones, for available presence). */
function pick(
  presences: ReadonlyMap<string, PresenceEntry[]>,
  users: Iterable<string>,
  keep: (entry: PresenceEntry) => boolean = () => true,
) {
  const picked = new Map<string, PresenceEntry[]>();
  for (const user of users) picked.set(user, (presences.get(user) ?? []).filter(keep));
  return picked;
}

/** The contact now sees the user: every available resource's last presence (RFC 6121 §3.1.5). */
export async function sendAvailablePresence(ctx: Context, user: string, contact: string): Promise<void> {
  const presences = await ctx.store.getPresences([user, contact]);
  // One element per WebSocket message (RFC 7395 §3.3.3): one post per resource.
  for (const entry of presences.get(user) ?? []) {
    await toResources(ctx, pick(presences, [contact], awake), (to) => addressed(entry.stanza, to));
  }
}

/** The contact no longer sees the user (RFC 6121 §3.2.2, §3.3.3). */
export async function sendUnavailablePresence(ctx: Context, user: string, contact: string): Promise<void> {
  const presences = await ctx.store.getPresences([user, contact]);
  const own = presences.get(user) ?? [];
  for (const entry of own) {
    await toResources(ctx, pick(presences, [contact]), (to) =>
      unavailable(`${user}/${entry.resource}`, to).toString(),
    );
  }
}

async function contactsOf(ctx: Context, user: string) {
  const roster = await ctx.store.getRoster(user);
  return {
    items: roster.items,
    watchers: roster.items.filter(sendsPresenceTo).map((item) => item.contact),
    watched: roster.items.filter(receivesPresenceFrom).map((item) => item.contact),
  };
}

/** Nobody blocked either way sees the user's presence or is probed (XEP-0191 §3.3). */
const unblockedBy = (account: Account) => (contact: string) =>
  !account.blocks.has(contact) && !account.blockedBy.has(contact);

/**
 * The answers to the probes (§4.3): the last presence of each contact the user sees and of
 * the user's other resources, posted to the link's session, one post each (RFC 7395 §3.3.3).
 */
async function sendProbeAnswers(
  link: Link,
  presences: ReadonlyMap<string, PresenceEntry[]>,
  watched: readonly string[],
): Promise<void> {
  const { user, resource } = link.record;
  const full = `${user}/${resource}`;
  const others = (presences.get(user as string) ?? []).filter((entry) => entry.resource !== resource);
  const seen = [...watched.flatMap((contact) => presences.get(contact) ?? []), ...others];
  for (const entry of seen) await link.send(addressedElement(entry.stanza, full));
}

/**
 * XEP-0352: an inactive session became active again (csi.ts). Instead of the updates it
 * missed, it gets what the probes of initial presence bring: the current presence.
 */
export async function sendCurrentPresence(link: Link, account: Account): Promise<void> {
  const { ctx } = link;
  const user = link.record.user as string;
  const watched = (await contactsOf(ctx, user)).watched.filter(unblockedBy(account));
  await sendProbeAnswers(link, await ctx.store.getPresences([user, ...watched]), watched);
}

async function becomeAvailable(link: Link, presence: Element): Promise<void> {
  const { ctx, record } = link;
  const user = record.user as string;
  const resource = record.resource as string;
  const full = `${user}/${resource}`;
  const priority = priorityOf(presence);
  const account = await ctx.store.getAccount(user);
  const session = account.sessions.find((candidate) => candidate.connectionId === record.connectionId);
  if (!session) return;
  const initial = !session.available;
  const unblocked = unblockedBy(account);
  const contacts = await contactsOf(ctx, user);
  const { items } = contacts;
  const watchers = contacts.watchers.filter(unblocked);
  const watched = contacts.watched.filter(unblocked);
  const presences = await ctx.store.getPresences([user, ...watchers, ...(initial ? watched : [])]);
  const previous = (presences.get(user) ?? []).find((entry) => entry.resource === resource);

  const stanza = xml('presence', { xmlns: NS.client, from: full }, ...presence.getChildElements());
  // Initial presence that starts the drain closes the drain gate in the same write (offline.ts).
  const drains = initial && priority >= 0;
  const lease = drains ? drainLease(ctx) : undefined;
  await ctx.store.updateSession(user, resource, record.connectionId, {
    available: true,
    priority,
    ...(lease ? { drainingUntil: lease } : {}),
  });
  await ctx.store.setPresence(user, {
    resource,
    connectionId: record.connectionId,
    priority,
    stanza: stanza.toString(),
    expiresAt: record.expiresAt,
    directed: previous?.directed ?? [],
    ...(awake(session) ? {} : { inactive: true }),
  });
  // Broadcast to the contacts subscribed to the user, and to the user's other resources,
  // except the inactive ones (XEP-0352).
  const audience = pick(presences, [...watchers, user], awake);
  audience.set(
    user,
    (audience.get(user) ?? []).filter((entry) => entry.resource !== resource),
  );
  await toResources(ctx, audience, (to) => addressed(stanza.toString(), to));
  if (!initial) return;
  // Probes (§4.3), unless the session is inactive already (it asks at <active/>); then
  // requests still waiting for an answer (§3.1.3).
  if (awake(session)) await sendProbeAnswers(link, presences, watched);
  for (const item of items.filter(
    (candidate: RosterItem) => candidate.pendingIn && unblocked(candidate.contact),
  )) {
    await link.send(xml('presence', { xmlns: NS.client, type: 'subscribe', from: item.contact, to: user }));
  }
  // Initial presence (§4.2) with a non-negative priority starts the offline drain.
  if (drains) await drain(ctx, { ...session, lease });
}

/**
 * The session is no longer available: explicit unavailable presence, or the end of the
 * session (session.ts). Contacts never see a ghost. The departure is announced while the
 * presence entry still exists and the entry is removed after, so an end retried after a
 * failure announces again (presence is state: a second unavailable is harmless).
 */
export async function becomeUnavailable(
  ctx: Context,
  session: { user: string; resource: string; connectionId: string },
  presence?: Element,
): Promise<void> {
  const { watchers } = await contactsOf(ctx, session.user);
  const routedAt = ctx.now();
  const presences = await ctx.store.getPresences([session.user, ...watchers]);
  const own = presences.get(session.user) ?? [];
  let entry = own.find(
    (candidate) => candidate.resource === session.resource && candidate.connectionId === session.connectionId,
  );
  // The batched read is eventually consistent: an entry written a moment ago may be missing
  // from it. The conditional remove sees it; then the announcement comes after the removal.
  const removedFirst = entry
    ? undefined
    : await ctx.store.removePresence(session.user, session.resource, session.connectionId);
  entry ??= removedFirst;
  if (!entry) return;
  const directed = entry.directed.filter((contact) => !presences.has(contact));
  if (directed.length > 0) {
    for (const [contact, entries] of await ctx.store.getPresences(directed)) presences.set(contact, entries);
  }
  const audience = pick(presences, [...watchers, ...entry.directed]);
  audience.set(
    session.user,
    own.filter((other) => other.resource !== session.resource),
  );
  const full = `${session.user}/${session.resource}`;
  const status = presence?.getChildElements() ?? [];
  await toResources(
    ctx,
    audience,
    (to) => xml('presence', { xmlns: NS.client, type: 'unavailable', from: full, to }, ...status).toString(),
    routedAt,
  );
  if (!removedFirst) await ctx.store.removePresence(session.user, session.resource, session.connectionId);
}

/** RFC 6121 §4.6: presence sent to one contact or to someone outside the roster. */
async function directedPresence(link: Link, presence: Element, target: Extract<Target, { kind: 'user' }>) {
  const { ctx, record } = link;
  const user = record.user as string;
  const to = bare(target.jid);
  if (target.jid.domain !== ctx.config.domain || !target.jid.local) return;
  const account = await ctx.store.getAccount(to, { consistent: false });
  if (!account.exists) return;
  const verdict = blockVerdict(account, user);
  if (verdict === 'sender-blocks') throw blockedError();
  if (verdict === 'recipient-blocks') return;
  const frame = presence.toString();
  await pushToSessions(ctx, selectSessions(account.sessions, target.jid.resource), () => frame);
  // Remember it, so that the recipient gets unavailable presence when the session ends.
  const type = presence.attrs.type;
  const own = (await ctx.store.getPresences([user]))
    .get(user)
    ?.find((entry) => entry.resource === record.resource);
  if (!own) return;
  const directed = new Set(own.directed);
  if (type === undefined) directed.add(to);
  else if (type === 'unavailable') directed.delete(to);
  else return;
  await ctx.store.setPresence(user, { ...own, directed: [...directed] });
}

export async function handlePresence(link: Link, presence: Element, target: Target): Promise<void> {
  const { ctx, record } = link;
  const { user, resource } = record;
  if (!user || !resource) return;
  const type = presence.attrs.type;
  if (target.kind === 'remote') throw new StanzaError('remote-server-not-found');
  if (target.kind === 'user') {
    if (type === undefined || type === 'unavailable') await directedPresence(link, presence, target);
    return;
  }
  if (type === 'unavailable') {
    await ctx.store.updateSession(user, resource, record.connectionId, { available: false, priority: 0 });
    await becomeUnavailable(ctx, { user, resource, connectionId: record.connectionId }, presence);
    // RFC 6121 §4.6.3 / XEP-0045 §7.14: going unavailable leaves every room of the session.
    await leaveAllRooms(ctx, { user, resource, connectionId: record.connectionId });
    return;
  }
  if (type === undefined) await becomeAvailable(link, presence);
  // probe and error from a client to the server need nothing
}
