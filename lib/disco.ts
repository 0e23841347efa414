// XEP-0030: Service Discovery for the server domain and for the user's own account.
import { StanzaError } from './errors.ts';
import { NS } from './ns.ts';
import type { IqHandlers } from './router.ts';
import { xml } from './xml.ts';

/** Only what is implemented is advertised (never XEP-0198 or SASL2 before they work). */
export const SERVER_FEATURES = [
  NS.discoInfo,
  NS.discoItems,
  NS.ping,
  NS.blocking,
  NS.register, // password change and account removal (lib/register.ts)
  'msgoffline',
] as const;

export const discoHandlers: IqHandlers = {
  [`get query ${NS.discoInfo}`]: async ({ payload, target }) => {
    if (payload.attrs.node) throw new StanzaError('item-not-found');
    if (target.kind === 'account') {
      return xml(
        'query',
        { xmlns: NS.discoInfo },
        xml('identity', { category: 'account', type: 'registered' }),
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
    return xml('query', { xmlns: NS.discoItems }, service);
  },
};
