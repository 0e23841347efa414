// The chat page: Converse.js (npm `converse.js`, its ready `dist/`) with a configuration for
// this system. `npm start` serves it (infra/local/web.ts) and the stack deploys the same files
// behind CloudFront (infra/web-client.ts, context webClient=true). Nothing on the page comes
// from another host: the Content-Security-Policy lets the browser load only the page's own
// files and connect only to the system's WebSocket endpoint, so Converse's sponsor logos
// (its full-screen login view links them from the project's web site) are never fetched, and
// the page's stylesheet hides the empty space they would take.
import { readdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What the page needs to know of the system it is served by. */
export interface WebClientSettings {
  /** ws:// or wss:// URL of the XMPP WebSocket endpoint (RFC 7395). */
  readonly websocketUrl: string;
  /** The XMPP domain users log in to. */
  readonly domain: string;
  /** The XEP-0045 service. */
  readonly mucDomain: string;
  /** XEP-0077 registration is open: the page offers "create an account". */
  readonly registration: boolean;
}

/** Converse's build, as the npm package ships it. */
export const CONVERSE_DIST = resolve(fileURLToPath(import.meta.url), '../../node_modules/converse.js/dist');

/** The page's files are served under this path; Converse's own `assets_path`. */
export const DIST_PATH = '/dist/';

/**
 * The files of Converse's build the page uses: the minified script and style sheet, the
 * chunks it loads on demand (translations), fonts, images, sounds, emoji data and the
 * OMEMO library. Source maps, unminified copies and the project web site's styles are left out.
 */
export function distFiles(dir = CONVERSE_DIST): string[] {
  const skipped = /(\.map$|^converse\.js$|^converse\.css$|^website|^manifest\.json$)/;
  const walk = (at: string): string[] =>
    readdirSync(at, { withFileTypes: true }).flatMap((entry) => {
      const path = join(at, entry.name);
      if (entry.isDirectory()) return walk(path);
      return skipped.test(entry.name) ? [] : [relative(dir, path)];
    });
  return walk(dir).sort();
}

export const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Chat</title>
  <link rel="icon" href="${DIST_PATH}images/favicon.ico">
  <link rel="stylesheet" href="${DIST_PATH}converse.min.css">
  <link rel="stylesheet" href="/site.css">
</head>
<body class="converse-fullscreen">
  <noscript>This chat page needs JavaScript.</noscript>
  <script type="module" src="${DIST_PATH}converse.min.js"></script>
  <script type="module" src="/config.js"></script>
</body>
</html>
`;

/** Hides what would link off the page (the sponsors' block of the login view). */
export const SITE_CSS = `.sponsors { display: none !important; }
`;

/** /config.js: starts Converse for this system. */
export function configScript(settings: WebClientSettings): string {
  const options = {
    websocket_url: settings.websocketUrl,
    // The URL is given; discovery (XEP-0156) is for clients that only know the domain.
    discover_connection_methods: false,
    view_mode: 'fullscreen',
    assets_path: DIST_PATH,
    locked_domain: settings.domain,
    registration_domain: settings.domain,
    allow_registration: settings.registration,
    muc_domain: settings.mucDomain,
    // Converse asks a room for no history on join (<history maxstanzas='0'/>) and catches up
    // from the room's message archive (XEP-0313), which a room's owner may turn off: the last
    // messages of the room's history come too, those it already shows once (stanza-id).
    muc_history_max_stanzas: 50,
    auto_reconnect: true,
    // Stream management (XEP-0198) is not offered; no need to ask.
    enable_smacks: false,
    use_system_emojis: true,
    i18n: 'en',
    loglevel: 'warn',
  };
  return `// Written by the server for this system (infra/web-page.ts).
converse.initialize(${JSON.stringify(options, null, 2)});
`;
}

/**
 * Headers every response of the page carries. `connectOrigin` is where the WebSocket
 * endpoint lives (its scheme, host and port); `uploadOrigins`, where XEP-0363 files are PUT
 * and read when that is not the page's own origin (S3 and CloudFront on AWS).
 */
export function securityHeaders(
  connectOrigin: string,
  uploadOrigins?: { readonly put: string; readonly get: string },
): Record<string, string> {
  const files = uploadOrigins ? ` ${uploadOrigins.get}` : '';
  const puts = uploadOrigins ? ` ${uploadOrigins.put}${files}` : '';
  return {
    'content-security-policy': [
      "default-src 'self'",
      `connect-src 'self' ${connectOrigin}${puts}`,
      `img-src 'self' data: blob:${files}`,
      `media-src 'self' data: blob:${files}`,
      // Lit (inside Converse) sets style attributes; the OMEMO library is WebAssembly.
      "style-src 'self' 'unsafe-inline'",
      "script-src 'self' 'wasm-unsafe-eval'",
      "worker-src 'self' blob:",
      "object-src 'none'",
      "base-uri 'self'",
      "frame-ancestors 'none'",
    ].join('; '),
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  };
}

/** The origin (scheme://host[:port]) a ws:// or wss:// URL connects to. */
export function websocketOrigin(websocketUrl: string): string {
  const url = new URL(websocketUrl);
  return `${url.protocol}//${url.host}`;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.ttf': 'font/ttf',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ico': 'image/x-icon',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.gif': 'image/gif',
  '.mp3': 'audio/mpeg',
  '.ogg': 'audio/ogg',
};

export function contentType(path: string): string {
  const dot = path.lastIndexOf('.');
  return TYPES[path.slice(dot)] ?? 'application/octet-stream';
}

/**
 * Cache-Control: Converse's files change only with its pinned version, so browsers keep them
 * for a day (without it Converse fetches its WebAssembly again and again); the page and its
 * configuration are checked on every load.
 */
export const CACHE = {
  dist: 'public, max-age=86400',
  page: 'no-cache',
} as const;
