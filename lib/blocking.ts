// XEP-0191: Blocking Command. The blocklist is read together with the recipient's
// sessions (store: BLOCK# and BLOCKEDBY# entries in the user's partition), so checking
// "blocked either way" costs no extra request on the message path.

import { pushToSessions } from './delivery.ts';
import { StanzaError } from './errors.ts';
import { stanzaId } from './ids.ts';
import { bare, parseJid } from './jid.ts';
import { NS } from './ns.ts';
import type { Context } from './ports.ts';
import { sendAvailablePresence, sendUnavailablePresence } from './presence.ts';
import type { IqHandlers } from './router.ts';
import { type Element, xml } from './xml.ts';

function jidsOf(payload: Element): string[] {
  return payload.getChildren('item').map((item) => {
    const jid = parseJid(item.attrs.jid ?? '');
    if (!jid) throw new StanzaError('jid-malformed');
    return jid.resource ? `${bare(jid)}/${jid.resource}` : bare(jid);
  });
}

/** §3.3: each change goes to the user's resources that asked for the blocklist. */
async function pushChange(ctx: Context, user: string, change: Element) {
  const { sessions } = await ctx.store.getAccount(user, { consistent: false });
  await pushToSessions(
    ctx,
    sessions.filter((session) => session.blocklistInterested),
    (session) =>
      xml(
        'iq',
        { xmlns: NS.client, type: 'set', id: stanzaId(), to: `${session.user}/${session.resource}` },
        change,
      ).toString(),
  );
}

export const blockingHandlers: IqHandlers = {
  [`get blocklist ${NS.blocking}`]: async ({ link }) => {
    const { ctx, record } = link;
    const user = record.user as string;
    await ctx.store.markInterested(user, record.resource as string, record.connectionId, 'blocklist');
    const jids = await ctx.store.getBlocklist(user);
    return xml('blocklist', { xmlns: NS.blocking }, ...jids.map((jid) => xml('item', { jid })));
  },
  [`set block ${NS.blocking}`]: async ({ link, payload }) => {
    const { ctx } = link;
    const user = link.record.user as string;
    const jids = jidsOf(payload).filter((jid) => jid !== user);
    if (jids.length === 0) throw new StanzaError('bad-request', 'name at least one JID to block');
    await ctx.store.block(user, jids);
    await pushChange(
      ctx,
      user,
      xml('block', { xmlns: NS.blocking }, ...jids.map((jid) => xml('item', { jid }))),
    );
    // §3.3: a blocked contact stops seeing the user at once.
    for (const jid of jids) await sendUnavailablePresence(ctx, user, jid);
    return undefined;
  },
  [`set unblock ${NS.blocking}`]: async ({ link, payload }) => {
    const { ctx } = link;
    const user = link.record.user as string;
    const requested = jidsOf(payload);
    const unblocked = await ctx.store.unblock(user, requested.length > 0 ? requested : undefined);
    await pushChange(
      ctx,
      user,
      xml('unblock', { xmlns: NS.blocking }, ...unblocked.map((jid) => xml('item', { jid }))),
    );
    // §3.4: contacts who may see the user's presence get it again.
    const roster = await ctx.store.getRoster(user);
    for (const item of roster.items) {
      if (
        unblocked.includes(item.contact) &&
        (item.subscription === 'from' || item.subscription === 'both')
      ) {
        await sendAvailablePresence(ctx, user, item.contact);
      }
    }
    return undefined;
  },
};
