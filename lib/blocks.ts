// XEP-0191 §3.4–§3.5: what a block means for one stanza, either way. The blocklist itself
// and its commands are in blocking.ts; these rules are what the routing paths consult.
import { StanzaError } from './errors.ts';
import { NS } from './ns.ts';
import type { Account } from './ports.ts';
import { xml } from './xml.ts';

/** XEP-0191 §3.5: what the sender of a stanza to someone they block gets. */
export const blockedError = () =>
  new StanzaError(
    'not-acceptable',
    'you block this contact',
    undefined,
    xml('blocked', { xmlns: NS.blockingErrors }),
  );

/**
 * The verdict for a stanza from `sender` to the owner of `recipient`: 'recipient-blocks'
 * means it must not arrive (XEP-0191 §3.4); 'sender-blocks' that the sender blocks the
 * recipient and gets `blockedError` (§3.5).
 */
export function blockVerdict(
  recipient: Account,
  sender: string,
): 'recipient-blocks' | 'sender-blocks' | undefined {
  if (recipient.blocks.has(sender)) return 'recipient-blocks';
  if (recipient.blockedBy.has(sender)) return 'sender-blocks';
  return undefined;
}
