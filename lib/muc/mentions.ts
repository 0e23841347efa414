// XEP-0357 for rooms: a room message that mentions an offline member's nick tells that member's
// push registrations (lib/push.ts); other room messages notify nobody, so a busy room does not
// wake every phone of its members. A member is a user affiliated with the room (member, admin
// or owner) who is not in it now; their nick is the one they last left the room with (kept on
// their affiliation item, store/rooms.ts), or their JID's localpart if they never left it. A
// mention is the nick as a word of the body, in any case. A member with an available session
// elsewhere is not notified (their client is online). Turned off with `pushRoomMentions`.
//
// Costs, only where push is deployed: the room message reads the room's state (room, affiliations
// and occupants in one query) instead of its occupants alone, and a mentioned member's account
// (one eventually consistent query); a member's leave writes their nick (1 WU).
import { parseJid } from '../jid.ts';
import type { Affiliation, Context, Occupant, RoomState } from '../ports.ts';
import { tellPush } from '../push.ts';

const MEMBERS: ReadonlySet<Affiliation> = new Set(['member', 'admin', 'owner']);

/** Whether room messages look for mentions here (push deployed, mentions on). */
export const mentionsWanted = (ctx: Context) => ctx.config.pushRoomMentions && ctx.pushJobs !== undefined;

/** The nick kept for a member who leaves, when they are a member. */
export async function keepMemberNick(ctx: Context, occupant: Occupant): Promise<void> {
  if (!mentionsWanted(ctx) || !MEMBERS.has(occupant.affiliation)) return;
  const user = occupant.jid.split('/')[0] as string;
  await ctx.store.noteMemberNick(occupant.room, user, occupant.nick);
}

const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The nick as a word of the body: not inside a longer word. */
export function mentions(body: string, nick: string): boolean {
  if (nick.trim() === '') return false;
  return new RegExp(`(^|[^\\p{L}\\p{N}_])${escaped(nick)}($|[^\\p{L}\\p{N}_])`, 'iu').test(body);
}

/** Notifies the offline members the body mentions. Never fails the message: it is stored already. */
export async function notifyMentioned(
  ctx: Context,
  state: RoomState,
  body: string,
  sender: string,
): Promise<void> {
  const present = new Set(state.occupants.map((occupant) => occupant.jid.split('/')[0]));
  const mentioned = [...state.affiliations]
    .filter(([user, affiliation]) => MEMBERS.has(affiliation) && !present.has(user))
    .filter(([user]) => mentions(body, state.memberNicks?.get(user) ?? parseJid(user)?.local ?? ''))
    .map(([user]) => user);
  await Promise.all(
    mentioned.map(async (user) => {
      try {
        const account = await ctx.store.getAccount(user, { consistent: false });
        if (account.push.length === 0 || account.sessions.some((session) => session.available)) return;
        await tellPush(ctx, user, account, { count: 1, sender, body });
      } catch (error) {
        ctx.logger.warn('room mention not queued for push', { user, error: String(error) });
      }
    }),
  );
}
