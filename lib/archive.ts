// XEP-0313: Message Archive Management (urn:xmpp:mam:2, with #extended), paged with
// XEP-0059 Result Set Management, preferences as XEP-0313 §6 / XEP-0441.
//
// What goes into a user's archive (archiveEntries): every chat or normal message with a
// body between two local users, once for each side, under one id: the XEP-0359 stanza-id
// the recipient gets and the sender's server receipt carries. Chat states, receipts,
// errors, the server's own acks and messages with a XEP-0334 no-store or no-permanent-store
// hint are not archived. A room's archive is the room's messages themselves (lib/muc/).
//
// Queries (answerQuery) take the form fields with, start, end, before-id, after-id and ids,
// and RSM max/after/before (an empty before: the last page) and flip-page. A page holds at
// most MAX_PAGE messages whatever max asks (XEP-0313 §5.1.1 lets the server limit it; the
// fin then says complete='false'). <count/> is given only when the whole result is one page
// (counting more would read it all). An archive starts at the account's creation: messages
// an earlier account of the same name kept are never shown (they expire by TTL).
import { StanzaError } from './errors.ts';
import { sequenceFloor } from './ids.ts';
import { bare, parseJid } from './jid.ts';
import type { Link } from './link.ts';
import { NS } from './ns.ts';
import type { Account, ArchivedMessage, ArchiveOwner, ArchivePrefs, ArchiveRange, Context } from './ports.ts';
import type { IqHandlers } from './router.ts';
import { type Element, parseStored, xml } from './xml.ts';

/** The most messages one page holds, whatever RSM max asks. */
export const MAX_PAGE = 250;
/** A page size when the query gives none. */
const DEFAULT_PAGE = 50;
const MAX_IDS = 100;

const DAY_SECONDS = 24 * 60 * 60;

const FIELDS = ['FORM_TYPE', 'with', 'start', 'end', 'before-id', 'after-id', 'ids'] as const;

const DEFAULT_PREFS: ArchivePrefs = { default: 'always', always: [], never: [] };

/** The id format of lib/ids.ts sequenceId: anything else is not in any archive. */
const ARCHIVE_ID = /^[0-9a-z]{13}[0-9a-f]{8}$/;

/** XEP-0334 hints that keep a message out of archives. */
const noStore = (stanza: Element) =>
  stanza.getChild('no-store', NS.hints) !== undefined ||
  stanza.getChild('no-permanent-store', NS.hints) !== undefined;

/** XEP-0313 §5.1.1 / §6: whether `owner`'s archive takes a message with `peer` under `prefs`. */
export function archives(
  prefs: ArchivePrefs | undefined,
  peer: string,
  inRoster: () => Promise<boolean>,
): Promise<boolean> | boolean {
  const { default: mode, always, never } = prefs ?? DEFAULT_PREFS;
  if (never.includes(peer)) return false;
  if (always.includes(peer)) return true;
  if (mode === 'always') return true;
  if (mode === 'never') return false;
  return inRoster();
}

/** A one-to-one message worth keeping: chat or normal, with a body, not hinted away. */
export function archivable(stanza: Element): boolean {
  const type = stanza.attrs.type ?? 'normal';
  return (type === 'chat' || type === 'normal') && stanza.getChild('body') !== undefined && !noStore(stanza);
}

/** The archive expiry of a message stored at `now` (epoch seconds). */
export const archiveExpiry = (ctx: Context, now: number) =>
  Math.floor(now / 1000) + ctx.config.archiveDays * DAY_SECONDS;

/**
 * The entries for both sides of a message sender → recipient, as their preferences allow.
 * Each account is the one the message path read already (no extra read, except a roster
 * item when a preference is `roster`).
 */
export async function archiveEntries(
  ctx: Context,
  message: { sender: Account & { user: string }; recipient: Account & { user: string } },
  stanza: Element,
  id: string,
  at: number,
): Promise<{ user: string; message: ArchivedMessage }[]> {
  if (ctx.config.archiveDays === 0 || !archivable(stanza)) return [];
  const text = stanza.toString();
  const from = parseJid(stanza.attrs.from ?? '');
  const to = parseJid(stanza.attrs.to ?? '');
  const sides = [
    { owner: message.sender, peer: message.recipient.user, resource: to?.resource },
    { owner: message.recipient, peer: message.sender.user, resource: from?.resource },
  ];
  // A note to oneself (another resource, or the bare JID) is one message in one archive.
  if (message.sender.user === message.recipient.user) sides.pop();
  const entries = [];
  for (const { owner, peer, resource } of sides) {
    const inRoster = async () => (await ctx.store.getRosterItem(owner.user, peer))?.listed === true;
    if (!(await archives(owner.archivePrefs, peer, inRoster))) continue;
    entries.push({
      user: owner.user,
      message: { id, with: peer, withResource: resource || undefined, stanza: text, at },
    });
  }
  return entries;
}

/** The query form (XEP-0313 §4.1.1), answered to `get query`. */
export function queryForm(): Element {
  const field = (name: string, type: string) => xml('field', { var: name, type });
  return xml(
    'query',
    { xmlns: NS.mam },
    xml(
      'x',
      { xmlns: NS.dataForms, type: 'form' },
      xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, NS.mam)),
      field('with', 'jid-single'),
      field('start', 'text-single'),
      field('end', 'text-single'),
      field('before-id', 'text-single'),
      field('after-id', 'text-single'),
      field('ids', 'list-multi'),
    ),
  );
}

/** XEP-0082 date-time to epoch ms; bad-request when it is not one. */
function timestamp(value: string): number {
  // Date.parse alone takes many forms; XEP-0082 asks for the profile of ISO 8601 below.
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(value))
    throw new StanzaError('bad-request', `not a XEP-0082 date-time: ${value}`);
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new StanzaError('bad-request', `not a date-time: ${value}`);
  return ms;
}

interface ParsedQuery {
  readonly range: ArchiveRange;
  readonly ids?: string[];
  readonly queryId?: string;
  readonly flip: boolean;
  /** An RSM after/before id: it must exist (XEP-0313 §5.1.2). */
  readonly cursor?: string;
}

function parseQuery(query: Element, floor: string): ParsedQuery {
  const values = new Map<string, string[]>();
  const form = query.getChild('x', NS.dataForms);
  if (form) {
    for (const field of form.getChildren('field')) {
      const name = field.attrs.var ?? '';
      if (!(FIELDS as readonly string[]).includes(name))
        throw new StanzaError('feature-not-implemented', `unknown field: ${name}`);
      values.set(
        name,
        field.getChildren('value').map((value) => value.getText().trim()),
      );
    }
    const formType = values.get('FORM_TYPE')?.[0];
    if (formType !== undefined && formType !== NS.mam) throw new StanzaError('bad-request', 'FORM_TYPE');
  }
  const one = (name: string) => values.get(name)?.[0] || undefined;

  let withJid: string | undefined;
  let withResource: string | undefined;
  const withText = one('with');
  if (withText !== undefined) {
    const jid = parseJid(withText);
    if (!jid) throw new StanzaError('jid-malformed', 'with');
    withJid = bare(jid);
    withResource = jid.resource;
  }
  const start = one('start');
  const end = one('end');
  const set = query.getChild('set', NS.rsm);
  const maxText = set?.getChildText('max');
  const max = maxText === null || maxText === undefined ? DEFAULT_PAGE : Number(maxText);
  if (!Number.isInteger(max) || max < 0) throw new StanzaError('bad-request', 'max');
  const rsmAfter = set?.getChild('after')?.getText().trim();
  const rsmBefore = set?.getChild('before');
  const beforeText = rsmBefore?.getText().trim();
  const afterId = one('after-id');
  const beforeId = one('before-id');
  for (const id of [afterId, beforeId])
    if (id !== undefined && !ARCHIVE_ID.test(id))
      throw new StanzaError('item-not-found', 'no such id in the archive');
  const ids = values.get('ids');
  if (ids && ids.length > MAX_IDS) throw new StanzaError('policy-violation', `at most ${MAX_IDS} ids`);

  const startFloor = start === undefined ? undefined : sequenceFloor(timestamp(start));
  const from = startFloor !== undefined && startFloor > floor ? startFloor : floor;
  const until = end === undefined ? undefined : sequenceFloor(timestamp(end) + 1);
  const after = [rsmAfter, afterId].filter(Boolean).sort().pop();
  const before = [beforeText, beforeId].filter(Boolean).sort().shift();
  return {
    range: {
      from,
      until,
      after,
      before,
      with: withJid,
      withResource,
      max: Math.min(max, MAX_PAGE),
      // An empty <before/> asks for the last page; so does a before id.
      last: rsmBefore !== undefined && !rsmAfter,
    },
    ids,
    queryId: query.attrs.queryid,
    flip: query.getChild('flip-page') !== undefined,
    cursor: rsmAfter || beforeText || undefined,
  };
}

/** The <result/> message for one archived message (XEP-0313 §4.2). */
function resultMessage(
  link: Link,
  archiveJid: string | undefined,
  message: ArchivedMessage,
  queryId: string | undefined,
): Element {
  return xml(
    'message',
    { xmlns: NS.client, to: link.jid, from: archiveJid },
    xml(
      'result',
      { xmlns: NS.mam, queryid: queryId, id: message.id },
      xml(
        'forwarded',
        { xmlns: NS.forward },
        xml('delay', { xmlns: NS.delay, stamp: new Date(message.at).toISOString() }),
        parseStored(message.stanza),
      ),
    ),
  );
}

/**
 * Answers a XEP-0313 query on `owner`'s archive: the result messages, then the <fin/> the
 * iq result carries. `floor`: nothing older is shown (the account's creation).
 */
export async function answerQuery(
  link: Link,
  query: Element,
  owner: ArchiveOwner,
  options: { floor: string; archiveJid?: string },
): Promise<Element> {
  const { ctx } = link;
  const parsed = parseQuery(query, options.floor);
  const { range } = parsed;
  if (parsed.cursor !== undefined) {
    const known =
      ARCHIVE_ID.test(parsed.cursor) &&
      parsed.cursor >= options.floor &&
      (await ctx.store.getArchived(owner, [parsed.cursor])).length > 0;
    if (!known) throw new StanzaError('item-not-found', 'no such id in the archive');
  }
  let messages: ArchivedMessage[];
  let complete: boolean;
  if (parsed.ids) {
    const wanted = parsed.ids.filter((id) => ARCHIVE_ID.test(id) && id >= options.floor);
    if (wanted.length < parsed.ids.length)
      throw new StanzaError('item-not-found', 'no such id in the archive');
    messages = await ctx.store.getArchived(owner, wanted);
    if (messages.length < wanted.length) throw new StanzaError('item-not-found', 'no such id in the archive');
    complete = true;
  } else if (range.max === 0) {
    messages = [];
    complete = false;
  } else {
    ({ messages, complete } = await ctx.store.queryArchive(owner, range));
  }
  const ordered = parsed.flip ? [...messages].reverse() : messages;
  // One stanza per WebSocket message (RFC 7395 §3.3.3), in order: one after another.
  for (const message of ordered) {
    await link.send(resultMessage(link, options.archiveJid, message, parsed.queryId));
  }
  const first = messages[0];
  const last = messages[messages.length - 1];
  const whole = complete && !range.after && !range.before && !parsed.ids;
  return xml(
    'fin',
    { xmlns: NS.mam, complete: complete ? 'true' : undefined },
    xml(
      'set',
      { xmlns: NS.rsm },
      first && xml('first', {}, first.id),
      last && xml('last', {}, last.id),
      whole && xml('count', {}, String(messages.length)),
    ),
  );
}

/** XEP-0313 §7 (#extended): the first and last message of the archive. */
export async function metadata(ctx: Context, owner: ArchiveOwner, floor: string): Promise<Element> {
  const [oldest, newest] = await Promise.all([
    ctx.store.queryArchive(owner, { from: floor, max: 1, last: false }),
    ctx.store.queryArchive(owner, { from: floor, max: 1, last: true }),
  ]);
  const edge = (name: string, message: ArchivedMessage | undefined) =>
    message && xml(name, { id: message.id, timestamp: new Date(message.at).toISOString() });
  return xml(
    'metadata',
    { xmlns: NS.mam },
    edge('start', oldest.messages[0]),
    edge('end', newest.messages[0]),
  );
}

/** XEP-0441: preferences as an element. */
function prefsElement(prefs: ArchivePrefs): Element {
  const list = (name: string, jids: readonly string[]) =>
    xml(name, {}, ...jids.map((jid) => xml('jid', {}, jid)));
  return xml(
    'prefs',
    { xmlns: NS.mam, default: prefs.default },
    list('always', prefs.always),
    list('never', prefs.never),
  );
}

/** Preferences are read with every message (the account's query): kept small. */
const MAX_PREF_JIDS = 100;

function parsePrefs(element: Element): ArchivePrefs {
  const mode = element.attrs.default;
  if (mode !== 'always' && mode !== 'never' && mode !== 'roster')
    throw new StanzaError('bad-request', 'default must be always, never or roster');
  const jids = (name: string) =>
    (element.getChild(name)?.getChildren('jid') ?? []).map((child) => {
      const jid = parseJid(child.getText().trim());
      if (!jid) throw new StanzaError('jid-malformed', child.getText());
      return bare(jid);
    });
  const always = [...new Set(jids('always'))];
  const never = [...new Set(jids('never'))];
  if (always.length + never.length > MAX_PREF_JIDS)
    throw new StanzaError('policy-violation', `at most ${MAX_PREF_JIDS} JIDs`);
  return { default: mode, always, never };
}

/**
 * Where an archive starts: its account's (or room's) creation, or the oldest message that has
 * not expired, whichever is later. DynamoDB's TTL deletes expired items up to days late and
 * a query's Limit counts them: without this, a page could read nothing but them.
 */
export function archiveFloor(ctx: Context, createdAt: number, keptDays: number): string {
  const oldest = ctx.now() - keptDays * DAY_SECONDS * 1000;
  return sequenceFloor(Math.max(createdAt, oldest));
}

/** The user's own archive: the account read gives its start and its preferences. */
async function ownArchive(link: Link): Promise<{ user: string; account: Account; floor: string }> {
  const { ctx } = link;
  if (ctx.config.archiveDays === 0) throw new StanzaError('service-unavailable', 'the archive is off');
  const user = link.record.user as string;
  const account = await ctx.store.getAccount(user, { consistent: false });
  // A session of a removed account (its sessions are gone) reads nothing, not even the archive
  // of a new account of the same name.
  if (!account.exists || !account.sessions.some((session) => session.connectionId === link.connectionId))
    throw new StanzaError('service-unavailable', 'the account has ended');
  return { user, account, floor: archiveFloor(ctx, account.createdAt ?? 0, ctx.config.archiveDays) };
}

export const archiveHandlers: IqHandlers = {
  [`get query ${NS.mam}`]: async ({ link }) => {
    await ownArchive(link);
    return queryForm();
  },
  [`set query ${NS.mam}`]: async ({ link, payload }) => {
    const { user, floor } = await ownArchive(link);
    return answerQuery(link, payload, { user }, { floor });
  },
  [`get metadata ${NS.mam}`]: async ({ link }) => {
    const { user, floor } = await ownArchive(link);
    return metadata(link.ctx, { user }, floor);
  },
  [`get prefs ${NS.mam}`]: async ({ link }) => {
    const { account } = await ownArchive(link);
    return prefsElement(account.archivePrefs ?? DEFAULT_PREFS);
  },
  [`set prefs ${NS.mam}`]: async ({ link, payload }) => {
    const { user } = await ownArchive(link);
    const prefs = parsePrefs(payload);
    await link.ctx.store.setArchivePrefs(user, prefs);
    return prefsElement(prefs);
  },
};
