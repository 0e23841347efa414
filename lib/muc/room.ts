// XEP-0045 rooms: join (create), leave, talk, private messages, subject, history and the
// rejoin drain. Design and what is supported: docs/muc.md. Keys: store/rooms.ts.
import { StanzaError } from '../errors.ts';
import { sequenceFloor, sequenceId } from '../ids.ts';
import { bare, type Jid } from '../jid.ts';
import type { Link } from '../link.ts';
import { NS } from '../ns.ts';
import type { Affiliation, Context, Occupant, Role, RoomConfig, RoomMessage, RoomRecord } from '../ports.ts';
import { type Element, parseStored, xml } from '../xml.ts';
import { FANOUT_WINDOW_MS, fanOut, sessionOf } from './fanout.ts';
import { mediatedInvite } from './invite.ts';
import { keepMemberNick, mentionsWanted, notifyMentioned } from './mentions.ts';

const DAY_SECONDS = 24 * 60 * 60;

/** XEP-0045 §7.2.15: what a new occupant gets when it asks for nothing. */
export const DEFAULT_HISTORY = 20;
/** The most a room keeps for history and the rejoin drain (and pushes in one invocation). */
export const MAX_HISTORY_LENGTH = 1000;

/** A marker below every sequence id (ids.ts: base-36 time first). */
const BEFORE_ANY_MESSAGE = '0';

export const DEFAULT_ROOM_CONFIG: RoomConfig = {
  name: '',
  description: '',
  // Members come back: rooms outlive their last occupant unless configured otherwise.
  persistent: true,
  membersOnly: false,
  public: true,
  maxUsers: 1000,
  historyLength: MAX_HISTORY_LENGTH,
};

export const occupantJid = (occupant: Pick<Occupant, 'room' | 'nick'>) => `${occupant.room}/${occupant.nick}`;

export const roleFor = (affiliation: Affiliation): Role =>
  affiliation === 'owner' || affiliation === 'admin' ? 'moderator' : 'participant';

/** The room's view of an occupant, as `to` sees it (semi-anonymous: real JIDs to moderators). */
export function occupantPresence(
  occupant: Occupant,
  to: Pick<Occupant, 'jid' | 'role'>,
  options: { type?: 'unavailable'; codes?: readonly string[]; extra?: readonly Element[] } = {},
): Element {
  const self = to.jid === occupant.jid;
  const codes = [...(options.codes ?? [])];
  if (self) codes.push('110');
  const role = options.type === 'unavailable' ? 'none' : occupant.role;
  return xml(
    'presence',
    { xmlns: NS.client, from: occupantJid(occupant), to: to.jid, type: options.type },
    ...(options.extra ?? []),
    xml(
      'x',
      { xmlns: NS.mucUser },
      xml('item', {
        affiliation: occupant.affiliation,
        role,
        jid: self || to.role === 'moderator' ? occupant.jid : undefined,
      }),
      ...codes.map((code) => xml('status', { code })),
    ),
  );
}

/** A stored room message as pushed from history: addressed, with a delay from the room. */
function historyFrame(message: RoomMessage, to: string): string {
  const stanza = parseStored(message.stanza);
  stanza.attrs.to = to;
  stanza.cnode(
    xml('delay', { xmlns: NS.delay, from: message.room, stamp: new Date(message.postedAt).toISOString() }),
  );
  return stanza.toString();
}

function subjectMessage(record: RoomRecord, to: string): Element {
  return xml(
    'message',
    { xmlns: NS.client, type: 'groupchat', from: record.subjectFrom ?? record.room, to },
    xml('subject', {}, record.subject ?? ''),
  );
}

// Join ---------------------------------------------------------------------------------

interface HistoryRequest {
  maxstanzas?: number;
  maxchars?: number;
  seconds?: number;
  since?: number;
}

function nonNegative(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0) throw new StanzaError('bad-request', 'bad history attribute');
  return number;
}

function historyRequest(join: Element | undefined): HistoryRequest | undefined {
  const history = join?.getChild('history');
  if (!history) return undefined;
  const since = history.attrs.since === undefined ? undefined : Date.parse(history.attrs.since);
  if (since !== undefined && Number.isNaN(since)) throw new StanzaError('bad-request', 'bad since');
  return {
    maxstanzas: nonNegative(history.attrs.maxstanzas),
    maxchars: nonNegative(history.attrs.maxchars),
    seconds: nonNegative(history.attrs.seconds),
    since,
  };
}

/**
 * XEP-0045 §7.2.15: every limit given applies (the smallest set that satisfies them all):
 * the newest messages, no older than `seconds` or `since`, and at most `maxchars`
 * characters of stanzas in total, counting from the newest.
 */
async function selectHistory(
  ctx: Context,
  room: string,
  historyLength: number,
  request: HistoryRequest,
  to: string,
): Promise<string[]> {
  const limit = Math.min(request.maxstanzas ?? historyLength, historyLength);
  if (limit === 0 || request.maxchars === 0) return [];
  const newest = await ctx.store.roomHistory(room, limit);
  const oldest = Math.max(
    request.seconds === undefined ? 0 : ctx.now() - request.seconds * 1000,
    request.since ?? 0,
  );
  const frames: string[] = [];
  let chars = 0;
  for (const message of newest) {
    if (message.postedAt < oldest) break;
    const frame = historyFrame(message, to);
    chars += frame.length;
    if (request.maxchars !== undefined && chars > request.maxchars) break;
    frames.push(frame);
  }
  return frames.reverse();
}

/** No <history/>: a member coming back gets what was posted since the last push to them. */
async function rejoinHistory(
  ctx: Context,
  room: string,
  user: string,
  historyLength: number,
  to: string,
): Promise<string[]> {
  const marker = await ctx.store.getPushedMarker(room, user);
  const limit = marker ? historyLength : Math.min(DEFAULT_HISTORY, historyLength);
  const messages = await ctx.store.roomHistory(room, limit, marker);
  return messages.reverse().map((message) => historyFrame(message, to));
}

const presenceExtras = (presence: Element) =>
  presence
    .getChildElements()
    .filter((child) => child.attrs.xmlns !== NS.muc && child.attrs.xmlns !== NS.mucUser);

async function join(link: Link, presence: Element, room: string, nick: string): Promise<void> {
  const { ctx, record } = link;
  const user = record.user as string;
  const jid = link.jid as string;
  let state = await ctx.store.getRoomState(room);
  const mine = state.occupants.find((occupant) => occupant.jid === jid);
  if (mine && mine.connectionId === record.connectionId) {
    if (mine.nick !== nick) throw new StanzaError('not-acceptable', 'nick changes are not supported');
    return; // already in the room: a presence update needs nothing more here
  }
  const codes: string[] = [];
  const now = ctx.now();
  if (!state.room) {
    const created: RoomRecord = { room, config: DEFAULT_ROOM_CONFIG, locked: true, createdAt: now };
    if (await ctx.store.createRoom(created)) {
      await ctx.store.setAffiliation(room, user, 'owner');
      codes.push('201');
      ctx.logger.info('room created', { room, owner: user });
    }
    state = await ctx.store.getRoomState(room);
  }
  const roomRecord = state.room;
  if (!roomRecord) throw new StanzaError('item-not-found');
  const affiliation = state.affiliations.get(user) ?? 'none';
  // §10.1.1: a locked room admits its owner only, until it is configured.
  if (roomRecord.locked && affiliation !== 'owner')
    throw new StanzaError('item-not-found', 'the room is locked');
  if (affiliation === 'outcast') throw new StanzaError('forbidden', 'you are banned from this room');
  if (roomRecord.config.membersOnly && affiliation === 'none')
    throw new StanzaError('registration-required', 'this room is for members only');
  // §7.2.9: a nick belongs to one user; that user's several resources may share it.
  if (state.occupants.some((occupant) => occupant.nick === nick && bare(asJid(occupant.jid)) !== user))
    throw new StanzaError('conflict', 'that nickname is in use');
  const others = state.occupants.filter((occupant) => occupant.jid !== jid);
  const privileged = affiliation === 'owner' || affiliation === 'admin';
  if (!privileged && others.length >= roomRecord.config.maxUsers)
    throw new StanzaError('service-unavailable', 'the room is full');

  const occupant: Occupant = {
    room,
    jid,
    nick,
    connectionId: record.connectionId,
    role: roleFor(affiliation),
    affiliation,
    expiresAt: record.expiresAt,
  };
  await ctx.store.putOccupant(occupant);
  await ctx.store.addJoinedRoom(record.connectionId, room, record.expiresAt);

  // §7.2.3 order: others' presence, then self-presence, then history, then the subject.
  for (const other of others) await link.send(occupantPresence(other, occupant));
  const extra = presenceExtras(presence);
  await link.send(occupantPresence(occupant, occupant, { codes, extra }));
  await fanOut(ctx, others, (other) => occupantPresence(occupant, other, { extra }).toString());
  const request = historyRequest(presence.getChild('x', NS.muc));
  const historyLength = Math.min(roomRecord.config.historyLength, MAX_HISTORY_LENGTH);
  const frames = request
    ? await selectHistory(ctx, room, historyLength, request, jid)
    : await rejoinHistory(ctx, room, user, historyLength, jid);
  for (const frame of frames) {
    if (link.closed) return;
    await ctx.gateway.post(record.connectionId, frame);
  }
  await link.send(subjectMessage(roomRecord, jid));
}

function asJid(text: string): Jid {
  const slash = text.indexOf('/');
  const address = slash === -1 ? text : text.slice(0, slash);
  const at = address.indexOf('@');
  return { local: at === -1 ? undefined : address.slice(0, at), domain: address.slice(at + 1) };
}

// Leave --------------------------------------------------------------------------------

/**
 * Takes one session out of a room. The others are told first and the occupant is removed
 * after, so a leave retried after a failure announces again (presence is state).
 *
 * The member's marker (where the rejoin drain starts) is written by the leave that removed
 * the occupant: the room's newest message when the leave began, so that a message posted
 * meanwhile is drained at the next join rather than lost (at worst it comes twice, with the
 * same stanza-id). When messages from `notPushedFrom` (a seq, or a sequenceFloor) on may not
 * have reached the session, the marker ends up before them, whoever removed the occupant:
 * another leave that came first (a parallel fan-out, the end of the session, the other TTL
 * record) may have set a later one, which is then lowered.
 */
export async function leaveRoom(
  ctx: Context,
  session: { connectionId: string; user: string; resource: string },
  room: string,
  options: DepartureOptions & LeaveOptions & { notifySelf?: boolean } = {},
): Promise<void> {
  const jid = `${session.user}/${session.resource}`;
  const last = await ctx.store.lastRoomSeq(room, options.notPushedFrom);
  const routedAt = ctx.now();
  const occupants = await ctx.store.getOccupants(room);
  const seen = occupants.find(
    (occupant) => occupant.jid === jid && occupant.connectionId === session.connectionId,
  );
  const others = occupants.filter((occupant) => occupant !== seen);
  if (seen) await tellDeparture(ctx, seen, others, { ...options, routedAt });
  const removed = await ctx.store.removeOccupant(room, jid, session.connectionId);
  await ctx.store.removeJoinedRoom(session.connectionId, room);
  if (!removed) {
    if (options.notPushedFrom)
      await ctx.store.lowerPushedMarker(room, session.user, last ?? BEFORE_ANY_MESSAGE);
    return;
  }
  // The marker says "was here": before any message, it sorts below every seq.
  await Promise.all([
    ctx.store.setPushedMarker(room, session.user, last ?? BEFORE_ANY_MESSAGE),
    keepMemberNick(ctx, removed),
  ]);
  // The occupant list is read eventually consistently: one who joined a moment ago may be
  // missing from it, and is announced now that it is removed.
  if (!seen) await tellDeparture(ctx, removed, others, options);
  if (others.length === 0) await closeIfTemporary(ctx, room);
}

/**
 * An occupant item that DynamoDB's TTL deleted: its connection ended without a word
 * (server.ts onExpired). Everything a leave does after the removal. Messages posted since
 * it expired were not pushed to it (reads skip expired occupants), so the marker stays
 * before them, whenever this runs and however often.
 */
export async function occupantExpired(ctx: Context, occupant: Occupant): Promise<void> {
  const last = await ctx.store.lastRoomSeq(occupant.room, sequenceFloor(occupant.expiresAt * 1000));
  await Promise.all([
    ctx.store.setPushedMarker(occupant.room, sessionOf(occupant).user, last ?? BEFORE_ANY_MESSAGE),
    keepMemberNick(ctx, occupant),
  ]);
  const others = await ctx.store.getOccupants(occupant.room);
  await tellDeparture(ctx, occupant, others, {});
  if (others.length === 0) await closeIfTemporary(ctx, occupant.room);
}

export interface LeaveOptions {
  /** Room messages from this seq on were not pushed to the session. */
  notPushedFrom?: string;
}

interface DepartureOptions {
  codes?: readonly string[];
  extra?: readonly Element[];
}

const departure = (removed: Occupant, options: DepartureOptions) => (to: Occupant) =>
  occupantPresence(removed, to, {
    type: 'unavailable',
    codes: options.codes,
    extra: options.extra,
  }).toString();

/** XEP-0045 §7.14: the occupant's unavailable presence, to itself when asked and to the others. */
async function tellDeparture(
  ctx: Context,
  leaving: Occupant,
  others: readonly Occupant[],
  options: DepartureOptions & { notifySelf?: boolean; routedAt?: number },
): Promise<void> {
  if (options.notifySelf) await ctx.gateway.post(leaving.connectionId, departure(leaving, options)(leaving));
  // Another resource of the same user still holds the nick: the occupant has not left.
  if (!others.some((occupant) => occupant.nick === leaving.nick))
    await fanOut(ctx, others, departure(leaving, options), { routedAt: options.routedAt });
}

/** A temporary room ends with its last occupant (XEP-0045 §10.1.3). */
async function closeIfTemporary(ctx: Context, room: string): Promise<void> {
  const state = await ctx.store.getRoomState(room);
  if (state.room && !state.room.config.persistent && state.occupants.length === 0)
    await ctx.store.deleteRoom(room);
}

/** The session ended or went unavailable: it leaves every room of its pool. */
export async function leaveAllRooms(
  ctx: Context,
  session: { connectionId: string; user: string; resource: string },
  options: LeaveOptions = {},
): Promise<void> {
  const rooms = await ctx.store.getJoinedRooms(session.connectionId);
  for (const room of rooms) await leaveRoom(ctx, session, room, options);
  if (rooms.length > 0) await ctx.store.deleteJoinedRooms(session.connectionId);
}

// Presence and messages to the service -------------------------------------------------

export async function handleRoomPresence(link: Link, presence: Element, to: Jid): Promise<void> {
  const { user, resource } = link.record;
  if (!user || !resource) return;
  const type = presence.attrs.type;
  if (type !== undefined && type !== 'unavailable') return; // subscriptions and probes: nothing
  if (!to.local) {
    if (type === undefined) throw new StanzaError('jid-malformed', 'join room@service/nick');
    return;
  }
  const room = bare(to);
  if (type === 'unavailable') {
    await leaveRoom(link.ctx, { connectionId: link.connectionId, user, resource }, room, {
      notifySelf: true,
      extra: presenceExtras(presence),
    });
    return;
  }
  if (!to.resource) throw new StanzaError('jid-malformed', 'a nickname is required');
  await join(link, presence, room, to.resource);
}

/** XEP-0184 receipts, XEP-0333 markers and chat states: reflected, never history. */
const isTransient = (stanza: Element) =>
  stanza.getChild('body') === undefined && stanza.getChild('subject') === undefined;

export async function handleRoomMessage(link: Link, stanza: Element, to: Jid): Promise<void> {
  const { ctx } = link;
  const type = stanza.attrs.type ?? 'normal';
  if (type === 'error') return;
  if (!to.local) throw new StanzaError('service-unavailable');
  const room = bare(to);
  if (to.resource) return privateMessage(link, stanza, room, to.resource);
  if (type !== 'groupchat') {
    const invite = stanza.getChild('x', NS.mucUser)?.getChild('invite');
    if (invite) return mediatedInvite(link, room, invite);
    throw new StanzaError('bad-request', 'send groupchat messages to the room');
  }
  const routedAt = ctx.now();
  // Where push mentions are on, the affiliations come along in the same query (mentions.ts).
  const body = stanza.getChildText('body');
  const state = body && mentionsWanted(ctx) ? await ctx.store.getRoomState(room) : undefined;
  const occupants = state?.occupants ?? (await ctx.store.getOccupants(room));
  const sender = occupants.find((occupant) => occupant.jid === link.jid);
  if (!sender) throw new StanzaError('not-acceptable', 'join the room first');
  if (sender.role === 'visitor') throw new StanzaError('forbidden');

  const reflected = xml('message', { ...stanza.attrs, from: occupantJid(sender), to: undefined });
  for (const child of stanza.getChildElements()) {
    if (child.name === 'stanza-id' && child.attrs.xmlns === NS.stanzaId && child.attrs.by === room) continue;
    reflected.cnode(child);
  }
  if (isTransient(stanza)) {
    await fanOut(ctx, occupants, (occupant) => addressedTo(reflected, occupant.jid), { routedAt });
    return;
  }
  const subject = stanza.getChild('subject');
  if (subject && stanza.getChild('body') === undefined) {
    const state = await ctx.store.getRoomState(room);
    if (!state.room) throw new StanzaError('item-not-found');
    await ctx.store.saveRoom({ ...state.room, subject: subject.getText(), subjectFrom: occupantJid(sender) });
    await fanOut(ctx, occupants, (occupant) => addressedTo(reflected, occupant.jid), { routedAt });
    return;
  }
  const now = ctx.now();
  const seq = sequenceId(now);
  reflected.cnode(xml('stanza-id', { xmlns: NS.stanzaId, by: room, id: seq }));
  // Kept for history and, as long as the archive keeps messages, as the room's XEP-0313
  // archive (lib/muc/admin.ts): the same item, no second write.
  const keptDays = Math.max(ctx.config.retentionDays, ctx.config.archiveDays);
  await ctx.store.storeRoomMessage(
    {
      room,
      seq,
      stanza: reflected.toString(),
      postedAt: now,
      expiresAt: Math.floor(now / 1000) + keptDays * DAY_SECONDS,
    },
    occupantJid(sender),
  );
  ctx.metrics?.count('MessagesStored');
  // A gone occupant's session has ended (session.ts), which left this room with the marker at
  // the newest message. It is lowered to before every message of the fan-out window: this
  // one, and those parallel fan-outs of the room may have failed to push too.
  const notPushedFrom = sequenceFloor(now - FANOUT_WINDOW_MS);
  await Promise.all([
    fanOut(ctx, occupants, (occupant) => addressedTo(reflected, occupant.jid), {
      routedAt,
      onGone: (occupant) => leaveRoom(ctx, sessionOf(occupant), room, { notPushedFrom }),
    }),
    state && body && notifyMentioned(ctx, state, body, occupantJid(sender)),
  ]);
}

/** Serialises with `to` set; synchronous, so one element serves a whole fan-out. */
function addressedTo(stanza: Element, to: string): string {
  stanza.attrs.to = to;
  return stanza.toString();
}

/** §7.5: a private message to room@service/nick, from the sender's occupant JID. */
async function privateMessage(link: Link, stanza: Element, room: string, nick: string): Promise<void> {
  const { ctx } = link;
  if (stanza.attrs.type === 'groupchat') throw new StanzaError('bad-request', 'groupchat goes to the room');
  const occupants = await ctx.store.getOccupants(room);
  const sender = occupants.find((occupant) => occupant.jid === link.jid);
  if (!sender) throw new StanzaError('not-acceptable', 'join the room first');
  const recipients = occupants.filter((occupant) => occupant.nick === nick);
  if (recipients.length === 0) throw new StanzaError('item-not-found', 'no such occupant');
  const message = xml(
    'message',
    { ...stanza.attrs, from: occupantJid(sender) },
    ...stanza.getChildElements(),
  );
  message.cnode(xml('x', { xmlns: NS.mucUser }));
  await fanOut(ctx, recipients, (occupant) => addressedTo(message, occupant.jid));
}
