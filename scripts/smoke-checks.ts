// The smoke test of a running stack (`npm run smoke`): two temporary users and real
// @xmpp/client clients check what the service promises — login, a burst of frames in order,
// a message with its server receipt (urn:serverless-xmpp:ack:0) and XEP-0184 delivery
// receipt, an offline message drained at login with a XEP-0203 delay, and a XEP-0045 room
// with history. The users are deleted afterwards, whatever happened. Every wait has a
// timeout and the whole run a deadline, so it always ends.
import { randomBytes } from 'node:crypto';
import type { Element } from 'ltx';
import { WebSocket } from 'ws';
import { DEFAULTS } from '../lib/config.ts';
import type { Store } from '../lib/ports.ts';
import { setPassword } from './accounts.ts';

// @xmpp/client uses the global WebSocket (Node 20 has none).
(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;

const NS = {
  ack: 'urn:serverless-xmpp:ack:0',
  receipts: 'urn:xmpp:receipts',
  delay: 'urn:xmpp:delay',
  stanzaId: 'urn:xmpp:sid:0',
  ping: 'urn:xmpp:ping',
  muc: 'http://jabber.org/protocol/muc',
  mucUser: 'http://jabber.org/protocol/muc#user',
  mucOwner: 'http://jabber.org/protocol/muc#owner',
  dataForms: 'jabber:x:data',
} as const;

export const BURST_SIZE = 50;
const ROOM_HISTORY_SIZE = 3;
/** The smoke file (left in the bucket until its lifecycle rule deletes it: nobody may delete files). */
const UPLOAD_BYTES = 64 * 1024;

export interface SmokeOptions {
  /** The WebSocket URL (the stack's WebSocketUrl output, or the local system's). */
  readonly url: string;
  readonly domain: string;
  /** Default conference.<domain>. */
  readonly mucDomain?: string;
  /** The XEP-0363 upload service; default upload.<domain>. */
  readonly uploadDomain?: string;
  /** The table the temporary users are created in and deleted from. */
  readonly store: Pick<Store, 'getUser' | 'putUser' | 'deleteUser'>;
  /** Longest wait for any one answer (default 20 s: a cold Lambda behind a queue is slow). */
  readonly waitMs?: number;
  /** Deadline of the whole run, cleanup excepted (default 180 s). */
  readonly totalMs?: number;
  /** Told each check's result as it ends. */
  readonly progress?: (result: CheckResult) => void;
}

export interface CheckResult {
  readonly check: string;
  readonly result: 'ok' | 'failed' | 'skipped';
  readonly ms: number;
  /** Why it failed. */
  readonly detail?: string;
}

type XmppClient = ReturnType<typeof import('@xmpp/client').client>;

/** A deadline for the whole run; each wait is bounded by it and by the per-wait timeout. */
class Clock {
  private readonly deadline: number;
  constructor(
    readonly waitMs: number,
    totalMs: number,
  ) {
    this.deadline = Date.now() + totalMs;
  }
  /** How long the next wait may take. */
  budget(): number {
    return Math.max(0, Math.min(this.waitMs, this.deadline - Date.now()));
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * What a client received, in arrival order; `take` waits for a stanza without polling. No
 * stanza of a healthy run is an error, so an error stanza ends the wait at once. A waiting
 * `take` removes one stanza: those that arrive in the same tick as it (several frames from
 * one socket read) stay for the next `take`.
 */
export class Inbox {
  private readonly stanzas: Element[] = [];
  private readonly waiters = new Set<() => void>();

  push(stanza: Element): void {
    this.stanzas.push(stanza);
    for (const wake of this.waiters) wake();
  }

  /** Removes and returns the first stanza that matches, waiting at most `ms`. */
  async take(match: (stanza: Element) => boolean, ms: number, what: string): Promise<Element> {
    const found = () => {
      const error = this.stanzas.findIndex((stanza) => stanza.attrs.type === 'error');
      if (error !== -1)
        throw new Error(`waiting for ${what}, got an error: ${this.stanzas.splice(error, 1)[0]}`);
      const index = this.stanzas.findIndex(match);
      return index === -1 ? undefined : this.stanzas.splice(index, 1)[0];
    };
    const now = found();
    if (now) return now;
    let wake = () => {};
    const arrived = new Promise<Element>((resolve, reject) => {
      wake = () => {
        try {
          const stanza = found();
          if (!stanza) return;
          this.waiters.delete(wake);
          resolve(stanza);
        } catch (error) {
          this.waiters.delete(wake);
          reject(error);
        }
      };
      this.waiters.add(wake);
    });
    try {
      return await withTimeout(arrived, ms, what);
    } finally {
      this.waiters.delete(wake);
    }
  }
}

interface Account {
  readonly user: string;
  readonly password: string;
  readonly nick: string;
}

interface Session {
  readonly xmpp: XmppClient;
  readonly inbox: Inbox;
}

const isAckFor = (id: string) => (stanza: Element) => stanza.getChild('ack', NS.ack)?.attrs.id === id;
const isReceiptFor = (id: string) => (stanza: Element) =>
  stanza.name === 'message' && stanza.getChild('received', NS.receipts)?.attrs.id === id;
const isMessage = (id: string) => (stanza: Element) =>
  stanza.name === 'message' && stanza.attrs.id === id && stanza.getChild('body') !== undefined;

export async function runSmoke(options: SmokeOptions): Promise<CheckResult[]> {
  const clock = new Clock(options.waitMs ?? 20_000, options.totalMs ?? 180_000);
  const { xml, client } = await import('@xmpp/client');
  const mucDomain = options.mucDomain ?? `conference.${options.domain}`;
  const tag = randomBytes(4).toString('hex');
  const account = (letter: string): Account => ({
    user: `smoke-${tag}-${letter}@${options.domain}`,
    password: randomBytes(18).toString('base64url'),
    nick: letter.toUpperCase(),
  });
  const alice = account('a');
  const bob = account('b');
  const sessions = new Map<Account, Session>();
  const results: CheckResult[] = [];
  let failed = false;

  /** Runs one check, timed; after a failure the rest are skipped. */
  async function check(name: string, body: () => Promise<void>): Promise<void> {
    const started = performance.now();
    let result: CheckResult;
    if (failed) result = { check: name, result: 'skipped', ms: 0 };
    else {
      try {
        await body();
        result = { check: name, result: 'ok', ms: Math.round(performance.now() - started) };
      } catch (error) {
        failed = true;
        const detail = error instanceof Error ? error.message : String(error);
        result = { check: name, result: 'failed', ms: Math.round(performance.now() - started), detail };
      }
    }
    results.push(result);
    options.progress?.(result);
  }

  const send = (who: Account, stanza: Element) => sessionOf(who).xmpp.send(stanza);
  const take = (who: Account, match: (stanza: Element) => boolean, what: string) =>
    sessionOf(who).inbox.take(match, clock.budget(), what);
  function sessionOf(who: Account): Session {
    const session = sessions.get(who);
    if (!session) throw new Error(`${who.user} is not connected`);
    return session;
  }

  /** Logs in (SASL, bind), sends initial presence and waits until the server handled it. */
  async function goOnline(who: Account): Promise<void> {
    const inbox = new Inbox();
    const xmpp = client({
      service: options.url,
      domain: options.domain,
      username: who.user.split('@')[0],
      password: who.password,
      resource: 'smoke',
      timeout: clock.waitMs,
    });
    // xmpp.js 0.14 throws, uncaught, on a frame that arrives after the server's </close>
    // (its parser is gone by then): such a frame is dropped instead of ending the process.
    const connection = xmpp as unknown as { parser: unknown; _onData(data: unknown): void };
    const onData = connection._onData.bind(xmpp);
    connection._onData = (data) => {
      if (connection.parser) onData(data);
    };
    // A connection that drops is a failure to see, not one to hide by reconnecting.
    xmpp.reconnect.stop();
    xmpp.on('stanza', (stanza: Element) => inbox.push(stanza));
    xmpp.on('error', () => {});
    sessions.set(who, { xmpp, inbox });
    await withTimeout(xmpp.start(), clock.budget(), `login of ${who.user}`);
    await xmpp.send(xml('presence'));
    // Frames of one connection are handled in order: the answer to a ping sent after the
    // presence means the presence (and the drain of what waited) was handled.
    await xmpp.iqCaller.request(xml('iq', { type: 'get' }, xml('ping', { xmlns: NS.ping })), clock.budget());
  }

  async function goOffline(who: Account): Promise<void> {
    const session = sessions.get(who);
    if (!session) return;
    sessions.delete(who);
    // Its socket is gone already (a stream error, a refused login): nothing to close.
    if (session.xmpp.status === 'disconnect' || session.xmpp.status === 'offline') return;
    await withTimeout(session.xmpp.stop(), clock.waitMs, `end of the session of ${who.user}`);
  }

  const chat = (to: Account, id: string, body: string, receipt: boolean) =>
    xml(
      'message',
      { type: 'chat', to: to.user, id },
      xml('body', {}, body),
      ...(receipt ? [xml('request', { xmlns: NS.receipts })] : []),
    );
  const receiptFor = (message: Element) =>
    xml('message', { to: message.attrs.from }, xml('received', { xmlns: NS.receipts, id: message.attrs.id }));

  const room = `smoke-${tag}@${mucDomain}`;
  const occupant = (who: Account) => `${room}/${who.nick}`;
  const isSelfPresence = (who: Account, type?: string) => (stanza: Element) =>
    stanza.name === 'presence' &&
    stanza.attrs.from === occupant(who) &&
    stanza.attrs.type === type &&
    (stanza
      .getChild('x', NS.mucUser)
      ?.getChildren('status')
      .some((status) => status.attrs.code === '110') ??
      false);
  const isSubject = (stanza: Element) =>
    stanza.name === 'message' &&
    stanza.attrs.from?.startsWith(room) &&
    stanza.getChild('subject') !== undefined;
  const joined = new Set<Account>();
  async function join(who: Account): Promise<void> {
    await send(who, xml('presence', { to: occupant(who) }, xml('x', { xmlns: NS.muc })));
    await take(who, isSelfPresence(who), `self-presence in ${room}`);
    joined.add(who);
    await take(who, isSubject, `subject of ${room}`);
  }
  async function leave(who: Account, ms = clock.budget()): Promise<void> {
    if (!joined.delete(who)) return;
    await send(who, xml('presence', { to: occupant(who), type: 'unavailable' }));
    await sessionOf(who).inbox.take(isSelfPresence(who, 'unavailable'), ms, `leaving ${room}`);
  }

  try {
    await check('create two temporary users', async () => {
      for (const who of [alice, bob]) {
        if ((await setPassword(options.store, who.user, who.password, DEFAULTS.scramIterations)) !== 'added')
          throw new Error(`${who.user} existed already`);
      }
    });

    await check('login (SASL, bind, presence)', async () => {
      // Both settle before the check ends, so that neither is left half-way through its login.
      const logins = await Promise.allSettled([goOnline(alice), goOnline(bob)]);
      for (const login of logins) if (login.status === 'rejected') throw login.reason;
    });

    await check(`burst of ${BURST_SIZE} messages in order`, async () => {
      const ids = Array.from({ length: BURST_SIZE }, (_, index) => `burst-${tag}-${index + 1}`);
      for (const [index, id] of ids.entries()) await send(alice, chat(bob, id, `burst ${index + 1}`, false));
      const isBurst = (stanza: Element) => stanza.name === 'message' && ids.includes(stanza.attrs.id ?? '');
      for (const [index, id] of ids.entries()) {
        const got = await take(bob, isBurst, `burst message ${index + 1} of ${BURST_SIZE}`);
        if (got.attrs.id !== id) throw new Error(`message ${index + 1} of the burst was ${got.attrs.id}`);
      }
      for (const id of ids) await take(alice, isAckFor(id), `server receipt for ${id}`);
    });

    const receiptId = `receipt-${tag}`;
    await check('message and its server receipt', async () => {
      await send(alice, chat(bob, receiptId, 'with receipts', true));
      const ack = await take(alice, isAckFor(receiptId), 'server receipt');
      const serverId = ack.getChild('stanza-id', NS.stanzaId)?.attrs.id;
      if (!serverId) throw new Error(`the server receipt has no stanza-id: ${ack}`);
      const message = await take(bob, isMessage(receiptId), 'the message');
      const copyId = message.getChild('stanza-id', NS.stanzaId)?.attrs.id;
      if (copyId !== serverId) throw new Error(`the recipient's stanza-id ${copyId} is not ${serverId}`);
      await send(bob, receiptFor(message));
    });

    await check('delivery receipt (XEP-0184) back to the sender', async () => {
      await take(alice, isReceiptFor(receiptId), 'delivery receipt');
    });

    await check('offline message drained at login', async () => {
      await goOffline(bob);
      const id = `offline-${tag}`;
      await send(alice, chat(bob, id, 'while you were away', true));
      await take(alice, isAckFor(id), 'server receipt of the offline message');
      await goOnline(bob);
      const message = await take(bob, isMessage(id), 'the offline message');
      if (!message.getChild('delay', NS.delay)) throw new Error(`no XEP-0203 delay: ${message}`);
      await send(bob, receiptFor(message));
      await take(alice, isReceiptFor(id), 'delivery receipt of the offline message');
    });

    await check(`room with history (${ROOM_HISTORY_SIZE} messages)`, async () => {
      await join(alice);
      // A temporary, unlisted room: it goes with its last occupant and leaves nothing.
      const configure = xml(
        'iq',
        { type: 'set', to: room },
        xml(
          'query',
          { xmlns: NS.mucOwner },
          xml(
            'x',
            { xmlns: NS.dataForms, type: 'submit' },
            ...Object.entries({
              FORM_TYPE: 'http://jabber.org/protocol/muc#roomconfig',
              'muc#roomconfig_persistentroom': '0',
              'muc#roomconfig_publicroom': '0',
            }).map(([name, value]) => xml('field', { var: name }, xml('value', {}, value))),
          ),
        ),
      );
      await sessionOf(alice).xmpp.iqCaller.request(configure, clock.budget());
      const ids = Array.from({ length: ROOM_HISTORY_SIZE }, (_, index) => `room-${tag}-${index + 1}`);
      for (const [index, id] of ids.entries()) {
        await send(
          alice,
          xml('message', { to: room, type: 'groupchat', id }, xml('body', {}, `room ${index + 1}`)),
        );
        await take(alice, isMessage(id), `the room's reflection of ${id}`);
      }
      await join(bob);
      // History comes before the subject (XEP-0045 §7.2.3), so it is all in the inbox now.
      const isHistory = (stanza: Element) => stanza.name === 'message' && ids.includes(stanza.attrs.id ?? '');
      for (const [index, id] of ids.entries()) {
        const got = await take(bob, isHistory, `history message ${index + 1}`);
        if (got.attrs.id !== id) throw new Error(`history message ${index + 1} was ${got.attrs.id}`);
        if (!got.getChild('delay', NS.delay)) throw new Error(`history without a XEP-0203 delay: ${got}`);
      }
      await leave(bob);
      await leave(alice);
    });

    await check('file upload (XEP-0363): slot, PUT, link, GET', async () => {
      const NS_UPLOAD = 'urn:xmpp:http:upload:0';
      const bytes = randomBytes(UPLOAD_BYTES);
      const answer = await sessionOf(alice).xmpp.iqCaller.request(
        xml(
          'iq',
          { type: 'get', to: options.uploadDomain ?? `upload.${options.domain}` },
          xml('request', {
            xmlns: NS_UPLOAD,
            filename: `smoke-${tag}.bin`,
            size: String(bytes.length),
            'content-type': 'application/octet-stream',
          }),
        ),
        clock.budget(),
      );
      const slot = answer.getChild('slot', NS_UPLOAD);
      const putUrl = slot?.getChild('put')?.attrs.url;
      const getUrl = slot?.getChild('get')?.attrs.url;
      if (!putUrl || !getUrl) throw new Error(`no slot: ${answer}`);
      const stored = await fetch(putUrl, {
        method: 'PUT',
        body: new Uint8Array(bytes),
        headers: { 'content-type': 'application/octet-stream' },
        signal: AbortSignal.timeout(clock.budget()),
      });
      if (!stored.ok) throw new Error(`PUT answered ${stored.status}: ${await stored.text()}`);
      const id = `upload-${tag}`;
      await send(alice, xml('message', { to: bob.user, type: 'chat', id }, xml('body', {}, getUrl)));
      const link = (await take(bob, isMessage(id), 'the link')).getChildText('body') ?? '';
      const read = await fetch(link, { signal: AbortSignal.timeout(clock.budget()) });
      const got = Buffer.from(await read.arrayBuffer());
      if (read.status !== 200 || !got.equals(bytes))
        throw new Error(`GET answered ${read.status}, ${got.length} bytes`);
      if (read.headers.get('x-content-type-options') !== 'nosniff') throw new Error('GET without nosniff');
      if (!/^attachment;/.test(read.headers.get('content-disposition') ?? ''))
        throw new Error(`GET with Content-Disposition ${read.headers.get('content-disposition')}`);
    });
  } finally {
    // Whatever happened: out of the room, sessions ended one at a time, users deleted.
    const cleanup: string[] = [];
    const started = performance.now();
    for (const who of [bob, alice]) {
      try {
        // Leaving first: the other occupant's departure never reaches a session that is ending.
        await leave(who, clock.waitMs);
      } catch {}
    }
    for (const who of [bob, alice]) {
      try {
        await goOffline(who);
      } catch (error) {
        cleanup.push((error as Error).message);
      }
    }
    for (const who of [alice, bob]) {
      try {
        await withTimeout(options.store.deleteUser(who.user), clock.waitMs, `deletion of ${who.user}`);
      } catch (error) {
        cleanup.push(`${who.user} not deleted: ${(error as Error).message}`);
      }
    }
    const result: CheckResult = {
      check: 'delete the users',
      result: cleanup.length === 0 ? 'ok' : 'failed',
      ms: Math.round(performance.now() - started),
      ...(cleanup.length > 0 ? { detail: cleanup.join('; ') } : {}),
    };
    results.push(result);
    options.progress?.(result);
  }
  return results;
}

/** The results as a table: check | result | time ms, and why a check failed under it. */
export function formatResults(results: readonly CheckResult[]): string {
  const width = Math.max('check'.length, ...results.map((result) => result.check.length));
  const row = (check: string, result: string, ms: string) =>
    `${check.padEnd(width)}  ${result.padEnd(7)}  ${ms.padStart(7)}`;
  const lines = [row('check', 'result', 'time ms'), row('-'.repeat(width), '-'.repeat(7), '-'.repeat(7))];
  for (const result of results) {
    lines.push(row(result.check, result.result, result.result === 'skipped' ? '' : String(result.ms)));
    if (result.detail) lines.push(`  ${result.detail}`);
  }
  return lines.join('\n');
}

export const passed = (results: readonly CheckResult[]): boolean =>
  results.length > 0 && results.every((result) => result.result === 'ok');
