// XEP-0199: XMPP Ping. The server answers pings addressed to it.
import { NS } from './ns.ts';
import type { IqHandlers } from './router.ts';

export const pingHandlers: IqHandlers = {
  [`get ping ${NS.ping}`]: async () => undefined,
};
