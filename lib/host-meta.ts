// XEP-0156 (Discovering Alternative XMPP Connection Methods), §3: a web client that knows only
// the domain finds the WebSocket endpoint in the domain's host-meta, as XRD (RFC 6415) at
// /.well-known/host-meta and as JRD (RFC 6415 §3, JSON) at /.well-known/host-meta.json. Both
// name the endpoint with the link relation urn:xmpp:alt-connections:websocket. A page on
// another origin reads them too: they are served with `Access-Control-Allow-Origin: *`.
// The same documents are served locally (infra/local/web.ts) and deployed beside the web client
// (infra/web-client.ts).

export const WEBSOCKET_LINK_RELATION = 'urn:xmpp:alt-connections:websocket';

/** The response headers both documents are served with. */
export const HOST_META_HEADERS = {
  xrd: { 'content-type': 'application/xrd+xml; charset=utf-8', 'access-control-allow-origin': '*' },
  jrd: { 'content-type': 'application/json; charset=utf-8', 'access-control-allow-origin': '*' },
} as const;

const escapeAttribute = (value: string) =>
  value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');

/** /.well-known/host-meta: the XRD document. */
export function hostMetaXrd(websocketUrl: string): string {
  return [
    "<?xml version='1.0' encoding='utf-8'?>",
    "<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>",
    `  <Link rel="${WEBSOCKET_LINK_RELATION}" href="${escapeAttribute(websocketUrl)}"/>`,
    '</XRD>',
    '',
  ].join('\n');
}

/** /.well-known/host-meta.json: the JRD document. */
export function hostMetaJrd(websocketUrl: string): string {
  return `${JSON.stringify({ links: [{ rel: WEBSOCKET_LINK_RELATION, href: websocketUrl }] }, null, 2)}\n`;
}
