// The chat page and XEP-0156 host-meta on the local system's HTTP port, beside the WebSocket
// endpoint: http://127.0.0.1:5280/ (infra/web-page.ts says what the page is). The WebSocket URL
// the page and host-meta name is built from the request's Host header, so the page works on
// whichever address and port the system listens on.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { resolve, sep } from 'node:path';
import { HOST_META_HEADERS, hostMetaJrd, hostMetaXrd } from '../../lib/host-meta.ts';
import {
  CACHE,
  CONVERSE_DIST,
  configScript,
  contentType,
  DIST_PATH,
  INDEX_HTML,
  SITE_CSS,
  securityHeaders,
  type WebClientSettings,
  websocketOrigin,
} from '../web-page.ts';

export interface LocalWebOptions {
  /** The WebSocket path (the emulator's, /xmpp-websocket). */
  readonly websocketPath: string;
  readonly domain: string;
  readonly mucDomain: string;
  /** Whether XEP-0077 registration is open (read per request: a test may change it). */
  readonly registration: () => boolean;
}

/** Answers the page's requests; false for any other path (the emulator's own). */
export function localWeb(options: LocalWebOptions) {
  const serve = servePage(options);
  return async (request: IncomingMessage, response: ServerResponse): Promise<boolean> => {
    try {
      return await serve(request, response);
    } catch {
      // A malformed path (`%E0`) or Host header: the request's fault, never the server's end.
      if (!response.headersSent) response.writeHead(400, { 'content-type': 'text/plain' });
      response.end('bad request');
      return true;
    }
  };
}

function servePage(options: LocalWebOptions) {
  return async (request: IncomingMessage, response: ServerResponse): Promise<boolean> => {
    if (request.method !== 'GET' && request.method !== 'HEAD') return false;
    const url = new URL(request.url ?? '/', 'http://localhost');
    const host = request.headers.host ?? 'localhost';
    const websocketUrl = `ws://${host}${options.websocketPath}`;
    const settings: WebClientSettings = {
      websocketUrl,
      domain: options.domain,
      mucDomain: options.mucDomain,
      registration: options.registration(),
    };
    const send = (status: number, headers: Record<string, string>, body: string) => {
      response.writeHead(status, { ...headers, 'content-length': String(Buffer.byteLength(body)) });
      response.end(request.method === 'HEAD' ? undefined : body);
      return true;
    };
    const page = { ...securityHeaders(websocketOrigin(websocketUrl)), 'cache-control': CACHE.page };
    switch (url.pathname) {
      case '/':
      case '/index.html':
        return send(200, { ...page, 'content-type': contentType('.html') }, INDEX_HTML);
      case '/config.js':
        return send(200, { ...page, 'content-type': contentType('.js') }, configScript(settings));
      case '/site.css':
        return send(200, { ...page, 'content-type': contentType('.css') }, SITE_CSS);
      case '/.well-known/host-meta':
        return send(
          200,
          { ...HOST_META_HEADERS.xrd, 'cache-control': CACHE.page },
          hostMetaXrd(websocketUrl),
        );
      case '/.well-known/host-meta.json':
        return send(
          200,
          { ...HOST_META_HEADERS.jrd, 'cache-control': CACHE.page },
          hostMetaJrd(websocketUrl),
        );
    }
    if (!url.pathname.startsWith(DIST_PATH)) return false;
    const path = resolve(CONVERSE_DIST, decodeURIComponent(url.pathname.slice(DIST_PATH.length)));
    if (!path.startsWith(CONVERSE_DIST + sep)) return send(404, {}, 'not found');
    const found = await stat(path).catch(() => undefined);
    if (!found?.isFile()) return send(404, {}, 'not found');
    response.writeHead(200, {
      'content-type': contentType(path),
      'content-length': String(found.size),
      'cache-control': CACHE.dist,
      'last-modified': found.mtime.toUTCString(),
      'x-content-type-options': 'nosniff',
    });
    if (request.method === 'HEAD') response.end();
    else
      createReadStream(path)
        .on('error', () => response.destroy())
        .pipe(response);
    return true;
  };
}
