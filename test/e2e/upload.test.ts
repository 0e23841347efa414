// XEP-0363 HTTP File Upload against the local system: xmpp.js asks the upload service for a
// slot, PUTs the bytes to the presigned URL (the local S3 checks signature, expiry, length and
// type), and the recipient GETs the same bytes with the headers CloudFront adds on AWS.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { xml } from '@xmpp/client';
import type { Element } from 'ltx';
import { PUT_EXPIRY_SECONDS } from '../../lib/upload-files.ts';
import { addUser, connectClient, goOnline, RawClient, useLocalSystem, waitForStanza } from '../helpers.ts';

const NS = 'urn:xmpp:http:upload:0';
const MAX = 2 * 1024 * 1024;
const QUOTA = 3 * 1024 * 1024;
const MB = 1024 * 1024;

type Session = Awaited<ReturnType<typeof connectClient>>;
type StanzaFailure = Error & { condition?: string; element?: Element };

function slotRequest(attrs: Record<string, string | undefined>): Element {
  return xml('iq', { type: 'get', to: 'upload.localhost' }, xml('request', { xmlns: NS, ...attrs }));
}

async function requestSlot(session: Session, attrs: Record<string, string>) {
  const result = (await session.xmpp.iqCaller.request(slotRequest(attrs))) as Element;
  const slot = result.getChild('slot', NS);
  const put = slot?.getChild('put')?.attrs.url as string;
  const get = slot?.getChild('get')?.attrs.url as string;
  assert.ok(put && get, result.toString());
  return { put, get };
}

/** The error answering a slot request: the <error/> element and the whole iq. */
async function refusal(session: Session, attrs: Record<string, string | undefined>) {
  try {
    await session.xmpp.iqCaller.request(slotRequest(attrs));
  } catch (failure) {
    const error = (failure as StanzaFailure).element;
    assert.ok(error, String(failure));
    const iq = session.stanzas.find((stanza) => stanza.getChild('error') === error);
    return { error, iq };
  }
  assert.fail('the slot request was not refused');
}

const put = (url: string, body: Buffer, type: string) =>
  fetch(url, { method: 'PUT', body: new Uint8Array(body), headers: { 'content-type': type } });

describe('XEP-0363 HTTP File Upload', () => {
  const system = useLocalSystem({
    config: { uploadMaxFileBytes: MAX, uploadQuotaBytesPerDay: QUOTA },
  });
  let alice: Session;
  let bob: Session;
  before(async () => {
    for (const user of ['alice', 'bob', 'carol', 'dave'])
      await addUser(system(), `${user}@localhost`, 'secret');
    alice = await connectClient(system(), 'alice@localhost', 'secret', 'phone');
    bob = await goOnline(system(), 'bob@localhost', 'secret', 'desk');
  });
  after(async () => {
    await alice?.xmpp.stop();
    await bob?.xmpp.stop();
  });

  test('the domain lists the upload service, whose disco#info has the feature and max-file-size', async () => {
    const items = (await alice.xmpp.iqCaller.request(
      xml(
        'iq',
        { type: 'get', to: 'localhost' },
        xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' }),
      ),
    )) as Element;
    const jids = items
      .getChild('query')
      ?.getChildren('item')
      .map((item) => item.attrs.jid);
    assert.ok(jids?.includes('upload.localhost'), items.toString());
    const info = (await alice.xmpp.iqCaller.request(
      xml(
        'iq',
        { type: 'get', to: 'upload.localhost' },
        xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }),
      ),
    )) as Element;
    const query = info.getChild('query');
    assert.deepEqual(query?.getChild('identity')?.attrs, {
      category: 'store',
      type: 'file',
      name: 'HTTP File Upload',
    });
    assert.ok(query?.getChildren('feature').some((feature) => feature.attrs.var === NS));
    const fields = query?.getChild('x', 'jabber:x:data')?.getChildren('field') ?? [];
    const value = (name: string) => fields.find((field) => field.attrs.var === name)?.getChildText('value');
    assert.equal(value('FORM_TYPE'), NS);
    assert.equal(value('max-file-size'), String(MAX));
  });

  test('Alice gets a slot, PUTs 1 MB, sends the link; Bob GETs identical bytes, served safely', async () => {
    const bytes = randomBytes(MB);
    const slot = await requestSlot(alice, {
      filename: 'holiday photo (1).jpg',
      size: String(MB),
      'content-type': 'image/jpeg',
    });
    // Capability URLs: 128 random bits, never the user's name; the name and its ending kept.
    const get = new URL(slot.get);
    assert.match(get.pathname, /^\/[A-Za-z0-9_-]{22}\/holiday%20photo%20%281%29\.jpg$/);
    assert.ok(!slot.get.includes('alice') && !slot.put.includes('alice'));
    const signed = new URL(slot.put).searchParams;
    assert.equal(signed.get('X-Amz-Expires'), String(PUT_EXPIRY_SECONDS));
    assert.equal(signed.get('X-Amz-SignedHeaders'), 'content-length;content-type;host');

    const stored = await put(slot.put, bytes, 'image/jpeg');
    assert.equal(stored.status, 200, await stored.text());
    assert.equal(stored.headers.get('access-control-allow-origin'), '*');

    await alice.xmpp.send(
      xml(
        'message',
        { type: 'chat', to: 'bob@localhost', id: 'photo-1' },
        xml('body', {}, slot.get),
        xml('x', { xmlns: 'jabber:x:oob' }, xml('url', {}, slot.get)),
      ),
    );
    const message = await waitForStanza(bob.stanzas, (stanza) => stanza.attrs.id === 'photo-1');
    const link = message.getChildText('body') as string;
    const response = await fetch(link);
    assert.equal(response.status, 200);
    assert.deepEqual(Buffer.from(await response.arrayBuffer()), bytes);
    assert.equal(response.headers.get('content-type'), 'image/jpeg');
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(response.headers.get('access-control-allow-origin'), '*');
    assert.equal(
      response.headers.get('content-disposition'),
      `inline; filename="holiday_photo__1_.jpg"; filename*=UTF-8''holiday%20photo%20%281%29.jpg`,
    );
    // The browser's CORS preflight for the PUT.
    const preflight = await fetch(slot.put, {
      method: 'OPTIONS',
      headers: { origin: 'http://example.test', 'access-control-request-method': 'PUT' },
    });
    assert.equal(preflight.status, 204);
    assert.match(preflight.headers.get('access-control-allow-methods') ?? '', /PUT/);
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /content-type/);
  });

  test('a file that could run in a browser is served as an attachment', async () => {
    const page = Buffer.from('<script>alert(1)</script>');
    const slot = await requestSlot(alice, {
      filename: 'a\u007fb.html',
      size: String(page.length),
      'content-type': 'text/html',
    }).catch(() => undefined);
    assert.equal(slot, undefined, 'a name with a control character is refused');
    const html = await requestSlot(alice, {
      filename: 'page"x.html',
      size: String(page.length),
      'content-type': 'text/html',
    });
    assert.equal((await put(html.put, page, 'text/html')).status, 200);
    const response = await fetch(html.get);
    assert.equal(
      response.headers.get('content-disposition'),
      `attachment; filename="page_x.html"; filename*=UTF-8''page%22x.html`,
    );
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    await response.arrayBuffer();
  });

  test('the PUT must match the slot: length, type, signature and expiry are checked', async () => {
    const bytes = randomBytes(1000);
    const slot = await requestSlot(alice, {
      filename: 'voice.ogg',
      size: '1000',
      'content-type': 'audio/ogg',
    });
    const status = async (response: Response) => {
      await response.arrayBuffer();
      return response.status;
    };
    // Another length or type than the slot's.
    assert.equal(await status(await put(slot.put, randomBytes(999), 'audio/ogg')), 403);
    assert.equal(await status(await put(slot.put, bytes, 'text/html')), 403);
    // A tampered signature, or the URL for another file.
    const tampered = new URL(slot.put);
    const signature = tampered.searchParams.get('X-Amz-Signature') as string;
    tampered.searchParams.set(
      'X-Amz-Signature',
      `${signature.startsWith('0') ? '1' : '0'}${signature.slice(1)}`,
    );
    const forged = await put(tampered.toString(), bytes, 'audio/ogg');
    assert.equal(forged.status, 403);
    assert.match(await forged.text(), /SignatureDoesNotMatch/);
    const elsewhere = new URL(slot.put);
    elsewhere.pathname = elsewhere.pathname.replace(/voice\.ogg$/, 'other.ogg');
    assert.equal(await status(await put(elsewhere.toString(), bytes, 'audio/ogg')), 403);
    // Nothing was stored by those.
    assert.equal((await fetch(slot.get)).status, 404);
    // After the slot's expiry (the local S3's clock moved on past it).
    const uploads = system().uploads;
    const realNow = uploads.now;
    uploads.now = () => realNow() + (PUT_EXPIRY_SECONDS + 1) * 1000;
    try {
      const late = await put(slot.put, bytes, 'audio/ogg');
      assert.equal(late.status, 403);
      assert.match(await late.text(), /Request has expired/);
    } finally {
      uploads.now = realNow;
    }
    assert.equal(await status(await put(slot.put, bytes, 'audio/ogg')), 200);
    assert.deepEqual(Buffer.from(await (await fetch(slot.get)).arrayBuffer()), bytes);
    // The key alone does not give another name, and the file goes after the retention time.
    assert.equal(await status(await fetch(slot.get.replace(/voice\.ogg$/, 'voice.html'))), 404);
    uploads.now = () => realNow() + (system().config.uploadRetentionDays * 24 + 1) * 3_600_000;
    try {
      assert.ok((await uploads.sweep()) >= 1);
    } finally {
      uploads.now = realNow;
    }
    assert.equal(await status(await fetch(slot.get)), 404);
  });

  test('too large: not-acceptable with <file-too-large><max-file-size/>', async () => {
    const { error: stanzaError, iq } = await refusal(alice, {
      filename: 'film.mp4',
      size: String(MAX + 1),
      'content-type': 'video/mp4',
    });
    assert.equal(stanzaError?.attrs.type, 'modify');
    assert.ok(stanzaError?.getChild('not-acceptable', 'urn:ietf:params:xml:ns:xmpp-stanzas'));
    assert.equal(stanzaError?.getChild('file-too-large', NS)?.getChildText('max-file-size'), String(MAX));
    // XEP-0363 §6: the request comes back with the error.
    assert.equal(iq?.getChild('request', NS)?.attrs.filename, 'film.mp4');
  });

  test('bad filename, size or content-type: bad-request', async () => {
    for (const attrs of <Record<string, string>[]>[
      { size: '10' },
      { filename: '', size: '10' },
      { filename: '../x', size: '10' },
      { filename: 'a\\b', size: '10' },
      { filename: '..', size: '10' },
      { filename: 'x'.repeat(256), size: '10' },
      { filename: 'x.txt' },
      { filename: 'x.txt', size: '-1' },
      { filename: 'x.txt', size: '1e3' },
      { filename: 'x.txt', size: '99999999999999999999' },
      { filename: 'x.txt', size: '10', 'content-type': 'not a type' },
    ]) {
      const { error } = await refusal(alice, attrs);
      assert.ok(error.getChild('bad-request', 'urn:ietf:params:xml:ns:xmpp-stanzas'), JSON.stringify(attrs));
    }
    // Only the service itself gives slots.
    const elsewhere = await alice.xmpp.iqCaller
      .request(
        xml(
          'iq',
          { type: 'get', to: 'x@upload.localhost' },
          xml('request', { xmlns: NS, filename: 'a', size: '1' }),
        ),
      )
      .catch((error: StanzaFailure) => error.condition);
    assert.equal(elsewhere, 'service-unavailable');
  });

  test('only authenticated users get slots: before SASL a slot request ends the stream', async () => {
    const raw = await RawClient.connect(system().url);
    try {
      await raw.open();
      raw.send(
        `<iq xmlns="jabber:client" type="get" id="s1" to="upload.localhost"><request xmlns="${NS}" filename="a.jpg" size="10"/></iq>`,
      );
      const error = await raw.next((element) => element.name === 'stream:error');
      assert.ok(error.getChild('not-authorized'), error.toString());
    } finally {
      raw.close();
    }
  });

  test("over the day's quota: resource-constraint with a retry stamp at the next UTC midnight", async () => {
    const carol = await connectClient(system(), 'carol@localhost', 'secret', 'tablet');
    const dave = await connectClient(system(), 'dave@localhost', 'secret', 'tablet');
    try {
      await requestSlot(carol, { filename: 'a.bin', size: String(MAX) });
      await requestSlot(carol, { filename: 'b.bin', size: String(QUOTA - MAX) });
      const { error: stanzaError } = await refusal(carol, { filename: 'c.bin', size: '1' });
      assert.equal(stanzaError?.attrs.type, 'wait');
      assert.ok(stanzaError?.getChild('resource-constraint', 'urn:ietf:params:xml:ns:xmpp-stanzas'));
      const stamp = stanzaError?.getChild('retry', NS)?.attrs.stamp as string;
      const midnight = new Date();
      midnight.setUTCHours(24, 0, 0, 0);
      assert.equal(stamp, midnight.toISOString().replace('.000Z', 'Z'));
      // Another user's quota is their own.
      await requestSlot(dave, { filename: 'd.bin', size: String(MAX) });
    } finally {
      await carol.xmpp.stop();
      await dave.xmpp.stop();
    }
  });
});
