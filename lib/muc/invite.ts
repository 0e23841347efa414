// XEP-0045 §7.8.2: mediated invitations. The room sends the invitation in its own name;
// an invitee who is offline gets it at the next login (stored like a message), and in a
// members-only room the invitation grants membership.
import { deliverable, pushToSessions, selectSessions } from '../delivery.ts';
import { StanzaError } from '../errors.ts';
import { sequenceId, stanzaId } from '../ids.ts';
import { bare, parseJid } from '../jid.ts';
import type { Link } from '../link.ts';
import { NS } from '../ns.ts';
import type { StoredMessage } from '../ports.ts';
import { type Element, xml } from '../xml.ts';

const DAY_SECONDS = 24 * 60 * 60;

export async function mediatedInvite(link: Link, room: string, invite: Element): Promise<void> {
  const { ctx } = link;
  const state = await ctx.store.getRoomState(room);
  if (!state.room) throw new StanzaError('item-not-found');
  const sender = state.occupants.find((occupant) => occupant.jid === link.jid);
  if (!sender) throw new StanzaError('not-acceptable', 'join the room first');
  const invitee = parseJid(invite.attrs.to ?? '');
  if (!invitee?.local || invitee.domain !== ctx.config.domain) throw new StanzaError('jid-malformed');
  const recipient = bare(invitee);
  const account = await ctx.store.getAccount(recipient, { consistent: false });
  if (!account.exists) throw new StanzaError('item-not-found', 'no such user');
  if (state.affiliations.get(recipient) === 'outcast') throw new StanzaError('forbidden');
  // In a members-only room an invitation grants membership.
  if (state.room.config.membersOnly && (state.affiliations.get(recipient) ?? 'none') === 'none') {
    await ctx.store.setAffiliation(room, recipient, 'member');
  }
  const reason = invite.getChildText('reason');
  const id = stanzaId();
  const stanza = xml(
    'message',
    { xmlns: NS.client, from: room, to: recipient, id },
    xml(
      'x',
      { xmlns: NS.mucUser },
      xml(
        'invite',
        { from: link.record.user },
        reason !== null && reason !== undefined && xml('reason', {}, reason),
      ),
    ),
    xml('x', { xmlns: 'jabber:x:conference', jid: room, reason: reason ?? undefined }),
  );
  const now = ctx.now();
  const message: StoredMessage = {
    recipient,
    sender: room,
    id,
    seq: sequenceId(now),
    stanza: stanza.toString(),
    storedAt: now,
    receiptRequested: false,
    expiresAt: Math.floor(now / 1000) + ctx.config.retentionDays * DAY_SECONDS,
  };
  const targets = selectSessions(account.sessions);
  if (targets.length === 0 && !(await ctx.store.reserveOfflineSlot(recipient, ctx.config.offlineQuota)))
    throw new StanzaError('resource-constraint');
  await ctx.store.storeMessage(message, { listed: targets.length === 0 });
  const pushed = await pushToSessions(ctx, targets, () => deliverable(ctx, message, false));
  if (pushed.length > 0) await ctx.store.markDelivered(recipient, room, id);
  else if (targets.length > 0) await ctx.store.listForDrain(message);
}

/** Keyed like IqHandlers, prefixed `muc `: the router uses them for the MUC service. */
