// RFC 6121 §4: the part of presence this server acts on so far: a session becomes
// available with its initial presence (and then gets what waited for it), changes its
// priority, and becomes unavailable again. Subscriptions and broadcast come with the roster.
import { StanzaError } from './errors.ts';
import type { Link } from './link.ts';
import { drain } from './offline.ts';
import type { Target } from './router.ts';
import type { Element } from './xml.ts';

/** RFC 6121 §4.7.2.3: an integer from -128 to 127, 0 when absent. */
function priorityOf(presence: Element): number {
  const text = presence.getChildText('priority');
  if (text === null || text === undefined || text.trim() === '') return 0;
  const value = Number(text.trim());
  if (!Number.isInteger(value) || value < -128 || value > 127)
    throw new StanzaError('bad-request', 'priority is -128 to 127');
  return value;
}

export async function handlePresence(link: Link, presence: Element, target: Target): Promise<void> {
  const { ctx, record } = link;
  const { user, resource } = record;
  if (!user || !resource) return;
  const broadcast = target.kind === 'server' || target.kind === 'account' || presence.attrs.to === undefined;
  if (!broadcast) return;
  const type = presence.attrs.type;
  if (type === 'unavailable') {
    await ctx.store.updateSession(user, resource, record.connectionId, { available: false, priority: 0 });
    return;
  }
  if (type !== undefined) return;
  const priority = priorityOf(presence);
  const account = await ctx.store.getAccount(user);
  const session = account.sessions.find((candidate) => candidate.connectionId === record.connectionId);
  if (!session) return;
  await ctx.store.updateSession(user, resource, record.connectionId, { available: true, priority });
  // Initial presence (§4.2) with a non-negative priority starts the offline drain.
  if (!session.available && priority >= 0) await drain(ctx, session);
}
