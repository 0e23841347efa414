// The chat page and XEP-0156 host-meta on the local system's HTTP port (infra/local/web.ts):
// what a browser gets, with which headers, and that nothing outside Converse's build is served.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parse } from 'ltx';
import { distFiles } from '../../infra/web-page.ts';
import { WEBSOCKET_LINK_RELATION } from '../../lib/host-meta.ts';
import { useLocalSystem } from '../helpers.ts';

describe('the chat page and host-meta', () => {
  const system = useLocalSystem({ config: { registration: true } });
  const base = () =>
    system()
      .url.replace(/^ws:/, 'http:')
      .replace(/\/xmpp-websocket$/, '');
  const get = (path: string, method = 'GET') => fetch(`${base()}${path}`, { method });

  test('the page loads Converse and its configuration, with a policy that allows nothing off the page', async () => {
    const page = await get('/');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.equal(page.headers.get('cache-control'), 'no-cache');
    const html = await page.text();
    assert.match(html, /<script type="module" src="\/dist\/converse\.min\.js">/);
    assert.match(html, /<script type="module" src="\/config\.js">/);
    const policy = page.headers.get('content-security-policy') ?? '';
    assert.match(policy, /default-src 'self'/);
    assert.ok(policy.includes(`connect-src 'self' ws://${new URL(base()).host}`), policy);
    assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
  });

  test('the configuration names this system: its WebSocket URL, domain, rooms and registration', async () => {
    const response = await get('/config.js');
    assert.match(response.headers.get('content-type') ?? '', /^text\/javascript/);
    const script = await response.text();
    const call = 'converse.initialize(';
    const options = JSON.parse(script.slice(script.indexOf(call) + call.length, script.lastIndexOf(')')));
    assert.equal(options.websocket_url, system().url);
    assert.equal(options.locked_domain, 'localhost');
    assert.equal(options.muc_domain, 'conference.localhost');
    assert.equal(options.allow_registration, true);
    assert.equal(options.discover_connection_methods, false);
  });

  test("Converse's files come from node_modules with a day's caching; nothing else is reachable", async () => {
    const files = distFiles();
    assert.ok(files.includes('converse.min.js') && files.includes('converse.min.css'));
    assert.ok(!files.some((file) => file.endsWith('.map')), 'no source maps');
    const script = await get('/dist/converse.min.js', 'HEAD');
    assert.equal(script.status, 200);
    assert.match(script.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.equal(script.headers.get('cache-control'), 'public, max-age=86400');
    assert.ok(Number(script.headers.get('content-length')) > 100_000);
    for (const path of [
      '/dist/%2e%2e/%2e%2e/package.json',
      '/dist/..%2f..%2fpackage.json',
      '/dist/nothing.js',
    ]) {
      assert.equal((await get(path)).status, 404, path);
    }
    assert.equal((await get('/package.json')).status, 404);
    // A path that is not valid percent-encoding is refused, and the server goes on.
    assert.equal((await get('/dist/%E0%A4%A')).status, 400);
    assert.equal((await get('/')).status, 200);
  });

  test('XEP-0156: host-meta names the WebSocket endpoint as XRD and JRD, readable from any origin', async () => {
    const xrd = await get('/.well-known/host-meta');
    assert.equal(xrd.status, 200);
    assert.match(xrd.headers.get('content-type') ?? '', /^application\/xrd\+xml/);
    assert.equal(xrd.headers.get('access-control-allow-origin'), '*');
    const document = parse(await xrd.text());
    assert.equal(document.attrs.xmlns, 'http://docs.oasis-open.org/ns/xri/xrd-1.0');
    const link = document.getChildren('Link').find((l) => l.attrs.rel === WEBSOCKET_LINK_RELATION);
    assert.equal(link?.attrs.href, system().url);

    const jrd = await get('/.well-known/host-meta.json');
    assert.match(jrd.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(jrd.headers.get('access-control-allow-origin'), '*');
    const json = (await jrd.json()) as { links: { rel: string; href: string }[] };
    assert.deepEqual(json.links, [{ rel: WEBSOCKET_LINK_RELATION, href: system().url }]);
  });
});
