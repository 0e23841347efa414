// XEP-0030: Service Discovery for the server domain and for the user's own account.
import { StanzaError } from './errors.ts';
import { NS } from './ns.ts';
import { PUSH_NS, pushEnabled } from './push.ts';
import type { IqHandlers } from './router.ts';
import { xml } from './xml.ts';

/** Only what is implemented is advertised (never XEP-0198 or SASL2 before they work). */
export const SERVER_FEATURES = [
  NS.discoInfo,
  NS.discoItems,
  NS.ping,
  NS.blocking,
  NS.register, // password change and account removal (lib/register.ts)
  NS.carbons, // XEP-0280 §4: on the server
  'msgoffline',
] as const;

/** XEP-0313 §8 and XEP-0359 §5: on the account's bare JID, when the archive is on. */
const ACCOUNT_ARCHIVE_FEATURES = [NS.mam, NS.mamExtended, NS.stanzaId] as const;

export const discoHandlers: IqHandlers = {
  [`get query ${NS.discoInfo}`]: async ({ link, payload, target }) => {
    if (payload.attrs.node) throw new StanzaError('item-not-found');
    if (target.kind === 'account') {
      const archive = link.ctx.config.archiveDays > 0 ? ACCOUNT_ARCHIVE_FEATURES : [];
      // XEP-0357 §4.1: where the account may enable push (some push service is configured).
      const push = pushEnabled(link.ctx) ? [PUSH_NS] : [];
      return xml(
        'query',
        { xmlns: NS.discoInfo },
        xml('identity', { category: 'account', type: 'registered' }),
        ...[...archive, ...push].map((feature) => xml('feature', { var: feature })),
      );
    }
    return xml(
      'query',
      { xmlns: NS.discoInfo },
      xml('identity', { category: 'server', type: 'im', name: 'serverless-xmpp' }),
      ...SERVER_FEATURES.map((feature) => xml('feature', { var: feature })),
    );
  },
  [`get query ${NS.discoItems}`]: async ({ link, payload, target }) => {
    if (payload.attrs.node) throw new StanzaError('item-not-found');
    // XEP-0045 §6.1: the group chat service is found among the server's items.
    const service =
      target.kind === 'server' && xml('item', { jid: link.ctx.config.mucDomain, name: 'Chatrooms' });
    // XEP-0363 §3: the upload service too, where upload storage is configured.
    const upload =
      target.kind === 'server' &&
      link.ctx.uploads &&
      xml('item', { jid: link.ctx.config.uploadDomain, name: 'HTTP File Upload' });
    return xml('query', { xmlns: NS.discoItems }, service, upload);
  },
};
