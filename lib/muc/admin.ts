// XEP-0045 iqs: disco on the service and its rooms, the owner's configuration form (instant
// room and real form), affiliations, kick and ban, and the room's XEP-0313 archive (its
// messages, queried at the room's bare JID). Mediated invitations: invite.ts.
import { answerQuery, archiveFloor, metadata, queryForm } from '../archive.ts';
import { StanzaError } from '../errors.ts';
import { bare, type Jid, parseJid } from '../jid.ts';
import type { Link } from '../link.ts';
import { NS } from '../ns.ts';
import type { Affiliation, Context, Occupant, RoomConfig, RoomRecord, RoomState } from '../ports.ts';
import type { IqHandlers, StanzaRequest } from '../router.ts';
import { type Element, xml } from '../xml.ts';
import { fanOut, sessionOf } from './fanout.ts';
import { leaveRoom, MAX_HISTORY_LENGTH, occupantPresence, roleFor } from './room.ts';

function mucJid(request: StanzaRequest): Jid {
  if (request.target.kind !== 'user') throw new StanzaError('service-unavailable');
  return request.target.jid;
}

async function existingRoom(ctx: Context, jid: Jid): Promise<RoomState & { room: RoomRecord }> {
  if (!jid.local || jid.resource) throw new StanzaError('service-unavailable');
  const state = await ctx.store.getRoomState(bare(jid));
  if (!state.room) throw new StanzaError('item-not-found');
  return state as RoomState & { room: RoomRecord };
}

const requesterAffiliation = (link: Link, state: RoomState): Affiliation =>
  state.affiliations.get(link.record.user as string) ?? 'none';

// Disco --------------------------------------------------------------------------------

function roomFeatures(config: RoomConfig): string[] {
  return [
    NS.muc,
    config.persistent ? 'muc_persistent' : 'muc_temporary',
    config.membersOnly ? 'muc_membersonly' : 'muc_open',
    config.public ? 'muc_public' : 'muc_hidden',
    'muc_semianonymous',
    'muc_unmoderated',
    'muc_unsecured',
    ...(archiving(config) ? [NS.mam, NS.mamExtended, NS.stanzaId] : []),
  ];
}

/** The archive is on unless the owner turned it off (rooms made before it existed: on). */
const archiving = (config: RoomConfig) => config.archive !== false;

async function discoInfo(request: StanzaRequest): Promise<Element> {
  const jid = mucJid(request);
  if (request.payload.attrs.node) throw new StanzaError('item-not-found');
  if (!jid.local) {
    return xml(
      'query',
      { xmlns: NS.discoInfo },
      xml('identity', { category: 'conference', type: 'text', name: 'Chatrooms' }),
      ...[NS.discoInfo, NS.discoItems, NS.muc].map((feature) => xml('feature', { var: feature })),
    );
  }
  const state = await existingRoom(request.link.ctx, jid);
  return xml(
    'query',
    { xmlns: NS.discoInfo },
    xml('identity', { category: 'conference', type: 'text', name: state.room.config.name || jid.local }),
    ...roomFeatures(state.room.config).map((feature) => xml('feature', { var: feature })),
  );
}

async function discoItems(request: StanzaRequest): Promise<Element> {
  const jid = mucJid(request);
  if (request.payload.attrs.node) throw new StanzaError('item-not-found');
  if (jid.local) {
    await existingRoom(request.link.ctx, jid);
    return xml('query', { xmlns: NS.discoItems }); // occupants are not listed (semi-anonymous)
  }
  const rooms = await request.link.ctx.store.listPublicRooms();
  return xml(
    'query',
    { xmlns: NS.discoItems },
    ...rooms.map(({ room, name }) => xml('item', { jid: room, name: name || room.split('@')[0] })),
  );
}

// Owner: configuration (§10.1.2 instant room, §10.1.3 reserved room) ------------------

const field = (type: string, variable: string, label: string, value: string | number | boolean) =>
  xml(
    'field',
    { type, var: variable, label },
    xml('value', {}, typeof value === 'boolean' ? (value ? '1' : '0') : String(value)),
  );

function configForm(config: RoomConfig): Element {
  return xml(
    'x',
    { xmlns: NS.dataForms, type: 'form' },
    xml('title', {}, 'Room configuration'),
    field('hidden', 'FORM_TYPE', '', 'http://jabber.org/protocol/muc#roomconfig'),
    field('text-single', 'muc#roomconfig_roomname', 'Name', config.name),
    field('text-single', 'muc#roomconfig_roomdesc', 'Description', config.description),
    field('boolean', 'muc#roomconfig_persistentroom', 'Persistent', config.persistent),
    field('boolean', 'muc#roomconfig_membersonly', 'Members only', config.membersOnly),
    field('boolean', 'muc#roomconfig_publicroom', 'Listed in the directory', config.public),
    field('text-single', 'muc#roomconfig_maxusers', 'Maximum occupants', config.maxUsers),
    field('text-single', 'muc#maxhistoryfetch', 'History length', config.historyLength),
    field('boolean', 'muc#roomconfig_enablearchiving', 'Message archive (XEP-0313)', archiving(config)),
  );
}

function applyForm(config: RoomConfig, form: Element): RoomConfig {
  const values = new Map<string, string>();
  for (const item of form.getChildren('field')) {
    if (item.attrs.var) values.set(item.attrs.var, item.getChildText('value') ?? '');
  }
  const bool = (variable: string, fallback: boolean) => {
    const value = values.get(variable);
    if (value === undefined) return fallback;
    if (value === '1' || value === 'true') return true;
    if (value === '0' || value === 'false' || value === '') return false;
    throw new StanzaError('not-acceptable', `${variable} is a boolean`);
  };
  const int = (variable: string, fallback: number, max: number) => {
    const value = values.get(variable);
    if (value === undefined || value === '') return fallback;
    const number = Number(value);
    if (!Number.isInteger(number) || number < 1 || number > max)
      throw new StanzaError('not-acceptable', `${variable} is 1 to ${max}`);
    return number;
  };
  return {
    name: values.get('muc#roomconfig_roomname') ?? config.name,
    description: values.get('muc#roomconfig_roomdesc') ?? config.description,
    persistent: bool('muc#roomconfig_persistentroom', config.persistent),
    membersOnly: bool('muc#roomconfig_membersonly', config.membersOnly),
    public: bool('muc#roomconfig_publicroom', config.public),
    maxUsers: int('muc#roomconfig_maxusers', config.maxUsers, 10_000),
    historyLength: int('muc#maxhistoryfetch', config.historyLength, MAX_HISTORY_LENGTH),
    archive: bool('muc#roomconfig_enablearchiving', archiving(config)),
  };
}

async function ownerGet(request: StanzaRequest): Promise<Element> {
  const state = await existingRoom(request.link.ctx, mucJid(request));
  if (requesterAffiliation(request.link, state) !== 'owner') throw new StanzaError('forbidden');
  return xml('query', { xmlns: NS.mucOwner }, configForm(state.room.config));
}

async function ownerSet(request: StanzaRequest): Promise<undefined> {
  const { ctx } = request.link;
  const state = await existingRoom(ctx, mucJid(request));
  if (requesterAffiliation(request.link, state) !== 'owner') throw new StanzaError('forbidden');
  const form = request.payload.getChild('x', NS.dataForms);
  if (!form) throw new StanzaError('feature-not-implemented', 'only the configuration form is supported');
  if (form.attrs.type === 'cancel') {
    // §10.1.3: cancelling the initial configuration destroys the locked room.
    if (state.room.locked) {
      for (const occupant of state.occupants)
        await leaveRoom(ctx, sessionOf(occupant), state.room.room, { notifySelf: true });
      await ctx.store.deleteRoom(state.room.room);
    }
    return undefined;
  }
  if (form.attrs.type !== 'submit') throw new StanzaError('bad-request', 'submit or cancel the form');
  const config = applyForm(state.room.config, form);
  await ctx.store.saveRoom({ ...state.room, config, locked: false });
  ctx.logger.info('room configured', { room: state.room.room });
  return undefined;
}

// Admin: affiliations (§9, §10), kick (§8.2) and ban (§9.1) ----------------------------

const AFFILIATIONS = new Set<Affiliation>(['owner', 'admin', 'member', 'outcast', 'none']);
const RANK: Record<Affiliation, number> = { outcast: 0, none: 1, member: 2, admin: 3, owner: 4 };

async function adminGet(request: StanzaRequest): Promise<Element> {
  const state = await existingRoom(request.link.ctx, mucJid(request));
  const mine = requesterAffiliation(request.link, state);
  if (mine !== 'owner' && mine !== 'admin') throw new StanzaError('forbidden');
  const wanted = request.payload.getChild('item')?.attrs.affiliation as Affiliation | undefined;
  if (!wanted || !AFFILIATIONS.has(wanted)) throw new StanzaError('bad-request', 'ask for one affiliation');
  return xml(
    'query',
    { xmlns: NS.mucAdmin },
    ...[...state.affiliations]
      .filter(([, affiliation]) => affiliation === wanted)
      .map(([jid, affiliation]) => xml('item', { affiliation, jid })),
  );
}

async function adminSet(request: StanzaRequest): Promise<undefined> {
  const { link } = request;
  const { ctx } = link;
  const state = await existingRoom(ctx, mucJid(request));
  const room = state.room.room;
  const mine = requesterAffiliation(link, state);
  const me = state.occupants.find((occupant) => occupant.jid === link.jid);
  const affiliations = new Map(state.affiliations);
  for (const item of request.payload.getChildren('item')) {
    if (item.attrs.role !== undefined) {
      if (item.attrs.role !== 'none') throw new StanzaError('feature-not-implemented', 'only kicking');
      // Kick: moderators only, never someone of a higher affiliation.
      if (me?.role !== 'moderator') throw new StanzaError('forbidden');
      const victims = state.occupants.filter((occupant) => occupant.nick === item.attrs.nick);
      if (victims.length === 0) throw new StanzaError('item-not-found');
      if (victims.some((victim) => RANK[victim.affiliation] >= RANK[mine] && victim.affiliation !== 'none'))
        throw new StanzaError('not-allowed');
      for (const victim of victims)
        await leaveRoom(ctx, sessionOf(victim), room, { codes: ['307'], notifySelf: true });
      continue;
    }
    const affiliation = item.attrs.affiliation as Affiliation | undefined;
    const target = parseJid(item.attrs.jid ?? '');
    if (!affiliation || !AFFILIATIONS.has(affiliation) || !target?.local)
      throw new StanzaError('bad-request', 'an item needs a jid and an affiliation');
    const user = bare(target);
    const current = affiliations.get(user) ?? 'none';
    // Owners change anything; admins only between none, member and outcast, below themselves.
    const allowed =
      mine === 'owner' || (mine === 'admin' && RANK[current] < RANK.admin && RANK[affiliation] < RANK.admin);
    if (!allowed) throw new StanzaError('forbidden');
    if (user === link.record.user && mine === 'owner' && affiliation !== 'owner') {
      const owners = [...affiliations.values()].filter((value) => value === 'owner').length;
      if (owners <= 1) throw new StanzaError('conflict', 'a room keeps at least one owner');
    }
    await ctx.store.setAffiliation(room, user, affiliation);
    affiliations.set(user, affiliation);
    await applyAffiliation(ctx, state, user, affiliation);
  }
  return undefined;
}

/** Occupants of a user whose affiliation changed: banned (301), removed (321) or updated. */
async function applyAffiliation(
  ctx: Context,
  state: RoomState & { room: RoomRecord },
  user: string,
  affiliation: Affiliation,
): Promise<void> {
  const theirs = state.occupants.filter((occupant) => sessionOf(occupant).user === user);
  const room = state.room.room;
  for (const occupant of theirs) {
    if (affiliation === 'outcast') {
      await leaveRoom(ctx, sessionOf(occupant), room, { codes: ['301'], notifySelf: true });
    } else if (affiliation === 'none' && state.room.config.membersOnly) {
      await leaveRoom(ctx, sessionOf(occupant), room, { codes: ['321'], notifySelf: true });
    } else {
      const updated: Occupant = { ...occupant, affiliation, role: roleFor(affiliation) };
      await ctx.store.putOccupant(updated);
      const everyone = (await ctx.store.getOccupants(room)).map((other) =>
        other.jid === updated.jid ? updated : other,
      );
      await fanOut(ctx, everyone, (to) => occupantPresence(updated, to).toString());
    }
  }
}

// Archive: XEP-0313 on the room (§5.1.2 MUC archives) -------------------------------------

/**
 * The room's archive, when it is on and the requester may read it: in a members-only room its
 * members (and admins and owners), in others anyone who may join (not outcasts).
 */
async function readableArchive(request: StanzaRequest): Promise<RoomState & { room: RoomRecord }> {
  const { ctx } = request.link;
  const state = await existingRoom(ctx, mucJid(request));
  if (ctx.config.archiveDays === 0 || !archiving(state.room.config))
    throw new StanzaError('service-unavailable', 'the room keeps no archive');
  const mine = requesterAffiliation(request.link, state);
  if (mine === 'outcast') throw new StanzaError('forbidden');
  if (state.room.config.membersOnly && mine === 'none')
    throw new StanzaError('forbidden', 'only members read this archive');
  return state;
}

/** A room's messages are kept for archiveDays, or retentionDays if longer (room.ts). */
const roomFloor = (ctx: Context, room: RoomRecord) =>
  archiveFloor(ctx, room.createdAt, Math.max(ctx.config.archiveDays, ctx.config.retentionDays));

const roomArchiveHandlers: IqHandlers = {
  [`muc get query ${NS.mam}`]: async (request) => {
    await readableArchive(request);
    return queryForm();
  },
  [`muc set query ${NS.mam}`]: async (request) => {
    const state = await readableArchive(request);
    const room = state.room.room;
    return answerQuery(
      request.link,
      request.payload,
      { room },
      {
        floor: roomFloor(request.link.ctx, state.room),
        archiveJid: room,
      },
    );
  },
  [`muc get metadata ${NS.mam}`]: async (request) => {
    const state = await readableArchive(request);
    return metadata(request.link.ctx, { room: state.room.room }, roomFloor(request.link.ctx, state.room));
  },
};

export const mucIqHandlers: IqHandlers = {
  ...roomArchiveHandlers,
  [`muc get query ${NS.discoInfo}`]: discoInfo,
  [`muc get query ${NS.discoItems}`]: discoItems,
  [`muc get query ${NS.mucOwner}`]: ownerGet,
  [`muc set query ${NS.mucOwner}`]: ownerSet,
  [`muc get query ${NS.mucAdmin}`]: adminGet,
  [`muc set query ${NS.mucAdmin}`]: adminSet,
};
