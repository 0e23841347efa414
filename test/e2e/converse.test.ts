// What a person sees (#14): the page npm start serves, Converse.js in Debian's Chromium
// (playwright-core, nothing downloaded), against the local system. A new account is registered
// on the page; it adds an xmpp.js user, who approves; they chat both ways with receipts; the
// browser user joins a room and talks; the page is reloaded and the room is back, with what
// was said meanwhile. Then the browser user logs in from a fresh browser profile: the chat with
// the xmpp.js user is back from the message archive (XEP-0313); with both browsers open, what
// one sends shows in the other (carbons, XEP-0280) and what the xmpp.js user sends to the bare
// JID shows in both. Every request of the pages stays on this machine (the page's CSP, and a
// check below).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { describe, test } from 'node:test';
import { xml } from '@xmpp/client';
import { type Element, parse } from 'ltx';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { addUser, goOnline, useLocalSystem, WAIT_MS, waitForStanza } from '../helpers.ts';

const CHROMIUM = '/usr/bin/chromium';
const ROOM = 'lounge@conference.localhost';
const MUC = 'http://jabber.org/protocol/muc';
const MAM = 'urn:xmpp:mam:2';
const CARBONS = 'urn:xmpp:carbons:2';
const FORWARD = 'urn:xmpp:forward:0';
/** Where the test leaves its screenshot (the README's picture is a copy of one). */
export const SCREENSHOT_DIR = 'test-results';

const isBody = (body: string) => (stanza: Element) => stanza.getChildText('body') === body;

/** The message a XEP-0313 result or a XEP-0280 copy forwards, if `stanza` is one. */
const forwarded = (stanza: Element, name: 'result' | 'sent' | 'received', xmlns: string) =>
  stanza.getChild(name, xmlns)?.getChild('forwarded', FORWARD)?.getChild('message');

/** Every element the page's WebSocket receives (RFC 7395: one element a frame), from its first connection. */
function framesOf(page: Page): Element[] {
  const frames: Element[] = [];
  page.on('websocket', (socket) =>
    socket.on('framereceived', ({ payload }) => {
      frames.push(parse(payload.toString()));
    }),
  );
  return frames;
}

describe('Converse.js in Chromium, on the page npm start serves', () => {
  const system = useLocalSystem({ config: { registration: true } });
  let browser: Browser;
  let page: Page;
  let pageFrames: Element[];
  /** The browser user's second browser, a fresh profile (its own storage). */
  let second: BrowserContext | undefined;
  let secondPage: Page;
  let secondFrames: Element[];
  let bob: Awaited<ReturnType<typeof goOnline>>;
  const offHost: string[] = [];
  const base = () =>
    system()
      .url.replace(/^ws:/, 'http:')
      .replace(/\/xmpp-websocket$/, '/');
  // Requests the page's policy blocks get no response: only those that went out count.
  const keepOnHost = (on: Page) =>
    on.on('response', (response) => {
      const request = response.request();
      const url = new URL(request.url());
      if (
        !['127.0.0.1', 'localhost'].includes(url.hostname) &&
        url.protocol !== 'data:' &&
        url.protocol !== 'blob:'
      ) {
        offHost.push(request.url());
      }
    });

  test('setup: Chromium and an xmpp.js user who approves requests and returns receipts', async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: .ci/run installs Debian's chromium package`);
    await addUser(system(), 'bob@localhost', 'bob password');
    bob = await goOnline(system(), 'bob@localhost', 'bob password', 'laptop');
    bob.xmpp.on('stanza', (stanza: Element) => {
      if (stanza.name === 'presence' && stanza.attrs.type === 'subscribe') {
        void bob.xmpp.send(xml('presence', { to: stanza.attrs.from, type: 'subscribed' }));
      }
      if (
        stanza.name === 'message' &&
        stanza.attrs.type === 'chat' &&
        stanza.getChild('request', 'urn:xmpp:receipts')
      ) {
        void bob.xmpp.send(
          xml(
            'message',
            { to: stanza.attrs.from },
            xml('received', { xmlns: 'urn:xmpp:receipts', id: stanza.attrs.id }),
          ),
        );
      }
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(WAIT_MS);
    keepOnHost(page);
    pageFrames = framesOf(page);
  });

  test('register a new account on the page; Converse logs in with it', async () => {
    await page.goto(base());
    await page.click('a.register-account');
    await page.fill('form#converse-register input[name=username]', 'carol');
    await page.fill('form#converse-register input[name=password]', 'carol password');
    await page.click('form#converse-register input[type=submit]');
    await page.waitForSelector('converse-user-profile .username:has-text("carol@localhost")');
    assert.ok(await system().context.store.getUser('carol@localhost'));
  });

  test('add the xmpp.js user as a contact; he approves and shows online', async () => {
    await page.click('.dropdown--contacts button.dropdown-toggle');
    await page.click('.dropdown--contacts .add-contact');
    await page.fill('form.add-xmpp-contact input[name=jid]', 'bob@localhost');
    await page.fill('form.add-xmpp-contact input[name=name]', 'Bob');
    await page.click('form.add-xmpp-contact button[type=submit]');
    await waitForStanza(bob.stanzas, (s) => s.name === 'presence' && s.attrs.type === 'subscribe');
    await page.waitForSelector('converse-roster .current-xmpp-contact:has-text("Bob")');
    const item = await system().context.store.getRosterItem('carol@localhost', 'bob@localhost');
    assert.ok(item?.subscription === 'to' || item?.subscription === 'both', JSON.stringify(item));
  });

  test('chat both ways, with receipts both ways', async () => {
    await page.click('converse-roster .current-xmpp-contact:has-text("Bob") a.open-chat');
    await page.fill('converse-chat textarea.chat-textarea', 'Hello Bob, from the browser');
    await page.press('converse-chat textarea.chat-textarea', 'Enter');
    await waitForStanza(bob.stanzas, isBody('Hello Bob, from the browser'));
    // Bob's receipt marks the message delivered on the page.
    await page.waitForSelector('.chat-msg:has-text("Hello Bob, from the browser") .chat-msg__receipt');

    const id = 'from-bob-1';
    await bob.xmpp.send(
      xml(
        'message',
        { to: 'carol@localhost', type: 'chat', id },
        xml('body', {}, 'Hi Carol, from xmpp.js'),
        xml('request', { xmlns: 'urn:xmpp:receipts' }),
      ),
    );
    await page.waitForSelector('converse-chat .chat-msg__text:has-text("Hi Carol, from xmpp.js")');
    await waitForStanza(bob.stanzas, (s) => s.getChild('received', 'urn:xmpp:receipts')?.attrs.id === id);
  });

  test('send a picture: Converse uploads it (XEP-0363), the xmpp.js user gets its link and the same bytes', async () => {
    // A 1×1 PNG.
    const png = Buffer.from(
      'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
      'base64',
    );
    await page.setInputFiles('converse-chat input.fileupload', {
      name: 'pixel.png',
      mimeType: 'image/png',
      buffer: png,
    });
    const link = /^http:\/\/127\.0\.0\.1:\d+\/[A-Za-z0-9_-]{22}\/pixel\.png$/;
    const message = await waitForStanza(bob.stanzas, (s) => link.test(s.getChildText('body') ?? ''));
    const url = message.getChildText('body') as string;
    assert.equal(message.getChild('x', 'jabber:x:oob')?.getChildText('url'), url);
    const response = await fetch(url);
    assert.equal(response.headers.get('content-type'), 'image/png');
    assert.deepEqual(Buffer.from(await response.arrayBuffer()), png);
    // The sender's page shows it inline, loaded from the GET URL.
    await page.waitForSelector(`converse-chat img.chat-image[src="${url}"]`);
    assert.deepEqual(offHost, [], 'the upload stayed on this machine');
  });

  test('join a room and talk with the xmpp.js user there', async () => {
    await bob.xmpp.send(xml('presence', { to: `${ROOM}/Bob` }, xml('x', { xmlns: MUC })));
    await waitForStanza(bob.stanzas, (s) => s.name === 'message' && s.getChild('subject') !== undefined);
    await bob.xmpp.iqCaller.request(
      xml(
        'iq',
        { type: 'set', to: ROOM },
        xml('query', { xmlns: `${MUC}#owner` }, xml('x', { xmlns: 'jabber:x:data', type: 'submit' })),
      ),
    );
    await page.click('#chatrooms converse-dropdown button.dropdown-toggle');
    await page.click('#chatrooms .show-add-muc-modal');
    await page.fill('converse-add-muc-modal input[name=chatroom]', ROOM);
    const nickname = page.locator('converse-add-muc-modal input[name=nickname]');
    if (await nickname.count()) await nickname.fill('Carol');
    await page.click('converse-add-muc-modal [type=submit]');
    await waitForStanza(
      bob.stanzas,
      (s) => s.name === 'presence' && s.attrs.from?.startsWith(`${ROOM}/`) && s.attrs.from !== `${ROOM}/Bob`,
    );
    await page.fill('converse-muc textarea.chat-textarea', 'Hello room');
    await page.press('converse-muc textarea.chat-textarea', 'Enter');
    await waitForStanza(
      bob.stanzas,
      (s) => s.attrs.type === 'groupchat' && s.getChildText('body') === 'Hello room',
    );
    await bob.xmpp.send(
      xml('message', { to: ROOM, type: 'groupchat' }, xml('body', {}, 'Hello Carol, in the room')),
    );
    await page.waitForSelector('converse-muc .chat-msg__text:has-text("Hello Carol, in the room")');
  });

  test('reload: the room is rejoined, with what was said while the page was away', async () => {
    await page.goto('about:blank');
    // Carol's session ends with the page: the room sees her leave.
    await waitForStanza(
      bob.stanzas,
      (s) => s.name === 'presence' && s.attrs.type === 'unavailable' && s.attrs.from?.startsWith(`${ROOM}/`),
    );
    await bob.xmpp.send(
      xml('message', { to: ROOM, type: 'groupchat' }, xml('body', {}, 'Said while you were away')),
    );
    await page.goto(base());
    // Converse logs in again by itself on a trusted device; otherwise it shows the form.
    const login = page.locator('form#converse-login');
    await page.waitForSelector('form#converse-login, converse-muc');
    if (await login.isVisible()) {
      await page.fill('form#converse-login input[name=jid]', 'carol');
      await page.fill('form#converse-login input[name=password]', 'carol password');
      await page.click('form#converse-login button[type=submit]');
    }
    await page.waitForSelector('converse-muc .chat-msg__text:has-text("Said while you were away")');
    // What the page showed before the reload shows once, not again from the room's history.
    assert.equal(
      await page.locator('converse-muc .chat-msg__text:has-text("Hello Carol, in the room")').count(),
      1,
    );
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    await page.screenshot({ path: `${SCREENSHOT_DIR}/converse-room.png` });
    assert.deepEqual(offHost, [], 'every request of the page stayed on this machine');
  });

  test('a fresh browser profile: the chat with the xmpp.js user is back, from the archive', async () => {
    second = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    secondPage = await second.newPage();
    secondPage.setDefaultTimeout(WAIT_MS);
    keepOnHost(secondPage);
    secondFrames = framesOf(secondPage);
    await secondPage.goto(base());
    await secondPage.fill('form#converse-login input[name=jid]', 'carol');
    await secondPage.fill('form#converse-login input[name=password]', 'carol password');
    await secondPage.click('form#converse-login button[type=submit]');
    await secondPage.click('converse-roster .current-xmpp-contact:has-text("Bob") a.open-chat');
    // Nothing of the chat is in this profile: what it shows, the archive gave.
    await secondPage.waitForSelector(
      'converse-chat .chat-msg__content--me .chat-msg__text:has-text("Hello Bob, from the browser")',
    );
    await secondPage.waitForSelector(
      'converse-chat .chat-msg__content--them .chat-msg__text:has-text("Hi Carol, from xmpp.js")',
    );
    for (const body of ['Hello Bob, from the browser', 'Hi Carol, from xmpp.js']) {
      await waitForStanza(secondFrames, (s) => {
        const message = forwarded(s, 'result', MAM);
        return message !== undefined && isBody(body)(message);
      });
    }
  });

  test('two browsers of one user: what one sends shows in the other, what comes in shows in both', async () => {
    await page.click('converse-roster .current-xmpp-contact:has-text("Bob") a.open-chat');
    await page.waitForSelector('converse-chat textarea.chat-textarea');
    await secondPage.fill('converse-chat textarea.chat-textarea', 'Sent from the second browser');
    await secondPage.press('converse-chat textarea.chat-textarea', 'Enter');
    await waitForStanza(bob.stanzas, isBody('Sent from the second browser'));
    await waitForStanza(pageFrames, (s) => {
      const message = forwarded(s, 'sent', CARBONS);
      return message !== undefined && isBody('Sent from the second browser')(message);
    });
    await page.waitForSelector(
      'converse-chat .chat-msg__content--me .chat-msg__text:has-text("Sent from the second browser")',
    );

    await bob.xmpp.send(
      xml('message', { to: 'carol@localhost', type: 'chat' }, xml('body', {}, 'To both of your browsers')),
    );
    for (const on of [page, secondPage]) {
      await on.waitForSelector(
        'converse-chat .chat-msg__content--them .chat-msg__text:has-text("To both of your browsers")',
      );
    }
    assert.deepEqual(offHost, [], 'every request of the pages stayed on this machine');
  });

  test('teardown', async () => {
    await second?.close();
    await browser?.close();
    await bob?.xmpp.stop();
  });
});
