// The chaos load: pairs of users chatting both ways, every message with a XEP-0184 receipt
// request, each client behaving as the README asks of real clients: it resends a message
// with the same id until the server's receipt (`<ack/>`) arrives, returns a receipt for every
// message it gets (again for a second copy), and when its connection drops it reconnects,
// logs in again and sends initial presence (which drains what waited). At the end every user
// logs in once more, so that whatever is still undelivered is drained, and the run counts:
// sent, stored (acknowledged by the server), delivered (reached the recipient at least once),
// duplicated (further copies; each must carry the first copy's stanza-id) and lost.
import type { Element } from 'ltx';
import { stanzaErrorCondition, WireClient } from './wire.ts';

const NS_ACK = 'urn:serverless-xmpp:ack:0';
const NS_RECEIPTS = 'urn:xmpp:receipts';
const NS_SID = 'urn:xmpp:sid:0';

/** Once every message is acknowledged, the load phase ends after this long without a delivery. */
const QUIET_MS = 5_000;

export interface ChaosLoadOptions {
  readonly url: string;
  readonly domain: string;
  readonly password: string;
  /** Users `${prefix}a${i}` and `${prefix}b${i}` for i < pairs must exist. */
  readonly prefix: string;
  readonly pairs: number;
  /** Messages each user sends to its partner. */
  readonly messagesPerUser: number;
  /** Messages one user has out without a server receipt. */
  readonly window: number;
  /** A message without a server receipt after this long is sent again, with the same id. */
  readonly resendMs: number;
  /** The load phase ends after this long even if not everything arrived (then the final drain). */
  readonly timeoutMs: number;
  /** Called as server receipts come in (the crash scenario kills the system part-way). */
  readonly onAck?: (acked: number, total: number) => void;
  readonly log?: (message: string) => void;
}

export interface LoadCounts {
  readonly sent: number;
  /** Messages the server acknowledged (server receipt with a stanza-id). */
  readonly stored: number;
  /** Messages that reached their recipient at least once. */
  readonly delivered: number;
  /** Copies beyond the first. */
  readonly duplicated: number;
  /** Copies whose stanza-id differs from the first copy's or from the server receipt's. */
  readonly mismatchedIds: number;
  /** Messages that reached their recipient only in the final login's drain. */
  readonly drainedAtEnd: number;
  readonly lost: number;
  /** Receipts that reached the sender (XEP-0184 `<received/>`), distinct messages. */
  readonly receiptsReturned: number;
  /** Server receipts that came again for the same message, and those with another stanza-id. */
  readonly ackCopies: number;
  readonly ackMismatches: number;
  /** Delivery receipts that came again for the same message. */
  readonly receiptCopies: number;
  /** Messages sent more than once by their client (no server receipt in time). */
  readonly resent: number;
  readonly reconnects: number;
  readonly stanzaErrors: Record<string, number>;
  readonly durationMs: number;
  /** Everything arrived before `timeoutMs`. */
  readonly completedInTime: boolean;
}

interface Copy {
  readonly serverId?: string;
  readonly drained: boolean;
}

/** What every client shares: the run's ledger. */
class Ledger {
  /** message id → recipient, sender */
  readonly messages = new Map<string, { from: string; to: string }>();
  /** message id → server id of the server receipt */
  readonly acks = new Map<string, string>();
  /** message id → copies the recipient got */
  readonly copies = new Map<string, Copy[]>();
  readonly receipts = new Set<string>();
  /** Server receipts and delivery receipts that came again (a replayed frame, a resend). */
  ackCopies = 0;
  ackMismatches = 0;
  receiptCopies = 0;
  readonly stanzaErrors: Record<string, number> = {};
  resent = 0;
  reconnects = 0;
  finalPhase = false;
  drainedAtEnd = 0;
  private waiters: Array<() => void> = [];

  changed(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Resolves on the next change, or after `ms`. */
  nextChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

class ChaosUser {
  private client?: WireClient;
  private online = false;
  private connecting?: Promise<void>;
  private stopped = false;
  /** Sent without a server receipt yet: id → when last sent. */
  readonly outstanding = new Map<string, number>();
  private readonly bodies = new Map<string, string>();

  constructor(
    readonly user: string,
    private readonly options: ChaosLoadOptions,
    private readonly ledger: Ledger,
  ) {}

  get jid(): string {
    return `${this.user}@${this.options.domain}`;
  }

  /** Connects (retrying until the server answers), logs in and sends initial presence. */
  ensureOnline(): Promise<void> {
    if (this.online || this.stopped) return Promise.resolve();
    this.connecting ??= this.connectLoop().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async connectLoop(): Promise<void> {
    let pause = 100;
    for (let attempt = 0; !this.stopped; attempt++) {
      let client: WireClient | undefined;
      try {
        client = await WireClient.connect(this.options.url, 10_000);
        await client.login(this.jid, this.options.password, this.options.domain, 'chaos');
        client.deliverTo((element) => this.onElement(element));
        client.onClose = () => {
          if (this.client !== client) return;
          this.online = false;
          this.client = undefined;
          if (!this.stopped) {
            this.ledger.reconnects++;
            void this.ensureOnline();
          }
        };
        this.client = client;
        this.online = true;
        client.send('<presence xmlns="jabber:client"/>');
        // Whatever was not acknowledged goes again, with the same id.
        for (const id of this.outstanding.keys()) this.transmit(id, true);
        this.ledger.changed();
        return;
      } catch (error) {
        client?.terminate();
        if (attempt > 0 && attempt % 20 === 0)
          this.options.log?.(`${this.user}: still connecting (${error})`);
        await new Promise((resolve) => setTimeout(resolve, pause));
        pause = Math.min(pause * 2, 1000);
      }
    }
  }

  send(id: string, to: ChaosUser, body: string): void {
    this.ledger.messages.set(id, { from: this.jid, to: to.jid });
    this.bodies.set(id, `${to.jid}\n${body}`);
    this.outstanding.set(id, 0);
    this.transmit(id, false);
  }

  private transmit(id: string, again: boolean): void {
    const entry = this.bodies.get(id);
    if (!entry) return;
    if (again) this.ledger.resent++;
    this.outstanding.set(id, Date.now());
    if (!this.online || !this.client) return;
    const [to, body] = entry.split('\n');
    this.client.send(
      `<message xmlns="jabber:client" type="chat" to="${to}" id="${id}"><body>${body}</body><request xmlns="${NS_RECEIPTS}"/></message>`,
    );
  }

  /** Resends what waited too long for its server receipt. */
  resendOverdue(now: number): void {
    if (!this.online) return;
    for (const [id, sentAt] of this.outstanding) {
      if (now - sentAt >= this.options.resendMs) this.transmit(id, true);
    }
  }

  private onElement(element: Element): void {
    if (element.name !== 'message') return;
    const { ledger } = this;
    if (element.attrs.type === 'error') {
      const condition = stanzaErrorCondition(element) ?? 'unknown';
      ledger.stanzaErrors[condition] = (ledger.stanzaErrors[condition] ?? 0) + 1;
      return; // the message stays outstanding and is sent again
    }
    const ack = element.getChild('ack', NS_ACK);
    if (ack?.attrs.id) {
      const serverId = element.getChild('stanza-id', NS_SID)?.attrs.id;
      const earlier = ledger.acks.get(ack.attrs.id);
      if (earlier !== undefined) {
        ledger.ackCopies++;
        if (earlier !== serverId) ledger.ackMismatches++;
      }
      if (this.outstanding.delete(ack.attrs.id) && serverId && earlier === undefined) {
        ledger.acks.set(ack.attrs.id, serverId);
        this.options.onAck?.(ledger.acks.size, ledger.messages.size);
      }
      ledger.changed();
      return;
    }
    const received = element.getChild('received', NS_RECEIPTS);
    if (received?.attrs.id) {
      if (ledger.receipts.has(received.attrs.id)) ledger.receiptCopies++;
      ledger.receipts.add(received.attrs.id);
      ledger.changed();
      return;
    }
    const id = element.attrs.id;
    if (!id || !element.getChild('body')) return;
    const copies = ledger.copies.get(id) ?? [];
    if (copies.length === 0 && ledger.finalPhase) ledger.drainedAtEnd++;
    copies.push({
      serverId: element.getChild('stanza-id', NS_SID)?.attrs.id,
      drained: element.getChild('delay', 'urn:xmpp:delay') !== undefined,
    });
    ledger.copies.set(id, copies);
    // XEP-0184: a receipt for every copy; a second one is harmless.
    this.client?.send(
      `<message xmlns="jabber:client" to="${element.attrs.from}" id="r-${id}-${copies.length}"><received xmlns="${NS_RECEIPTS}" id="${id}"/></message>`,
    );
    ledger.changed();
  }

  /** Closes the stream and stops reconnecting. */
  async stop(): Promise<void> {
    this.stopped = true;
    const client = this.client;
    this.online = false;
    this.client = undefined;
    if (!client) return;
    client.close();
    await Promise.race([client.closed, new Promise((resolve) => setTimeout(resolve, 5000))]);
    client.terminate();
  }

  /** For the final drain: a fresh login with the stream of before closed. */
  async relogin(): Promise<void> {
    await this.stop();
    this.stopped = false;
    await this.ensureOnline();
  }
}

export async function runChaosLoad(options: ChaosLoadOptions): Promise<LoadCounts> {
  const started = Date.now();
  const ledger = new Ledger();
  const pairs = Array.from({ length: options.pairs }, (_, i) => [
    new ChaosUser(`${options.prefix}a${i}`, options, ledger),
    new ChaosUser(`${options.prefix}b${i}`, options, ledger),
  ]);
  const users = pairs.flat();
  await Promise.all(users.map((user) => user.ensureOnline()));
  const total = options.pairs * 2 * options.messagesPerUser;
  const delivered = () => ledger.copies.size;
  const resender = setInterval(() => {
    const now = Date.now();
    for (const user of users) user.resendOverdue(now);
  }, 250);
  const deadline = started + options.timeoutMs;
  try {
    const senders = pairs.flatMap(([a, b]) => [
      [a, b],
      [b, a],
    ]) as [ChaosUser, ChaosUser][];
    await Promise.all(
      senders.map(async ([from, to]) => {
        for (let i = 0; i < options.messagesPerUser && Date.now() < deadline; i++) {
          while (from.outstanding.size >= options.window && Date.now() < deadline)
            await ledger.nextChange(500);
          from.send(`${from.user}-${i}`, to, `message ${i} from ${from.user}`);
        }
      }),
    );
    // Until everything is acknowledged and delivered; or, once everything is acknowledged,
    // until deliveries stop coming (what waits in an inbox arrives in the final drain).
    let quietSince = Date.now();
    let lastDelivered = delivered();
    while ((delivered() < total || ledger.acks.size < total) && Date.now() < deadline) {
      await ledger.nextChange(500);
      if (delivered() !== lastDelivered) {
        lastDelivered = delivered();
        quietSince = Date.now();
      }
      if (ledger.acks.size >= total && Date.now() - quietSince > QUIET_MS) break;
    }
  } finally {
    clearInterval(resender);
  }
  const completedInTime = delivered() >= total && ledger.acks.size >= total;
  options.log?.(`load phase: ${ledger.acks.size} acknowledged, ${delivered()} delivered of ${total}`);

  // The final drain: every user logs in again; what still waits for them arrives now.
  ledger.finalPhase = true;
  await Promise.all(users.map((user) => user.relogin()));
  const finalDeadline = Date.now() + Math.max(30_000, options.timeoutMs / 2);
  const resendAgain = setInterval(() => {
    const now = Date.now();
    for (const user of users) user.resendOverdue(now);
  }, 250);
  try {
    while (
      (delivered() < ledger.messages.size || ledger.acks.size < ledger.messages.size) &&
      Date.now() < finalDeadline
    ) {
      await ledger.nextChange(500);
    }
  } finally {
    clearInterval(resendAgain);
  }
  await Promise.all(users.map((user) => user.stop()));

  let duplicated = 0;
  let mismatchedIds = 0;
  for (const [id, copies] of ledger.copies) {
    duplicated += copies.length - 1;
    const serverId = ledger.acks.get(id) ?? copies[0]?.serverId;
    mismatchedIds += copies.filter((copy) => copy.serverId !== serverId).length;
  }
  const unknown = [...ledger.copies.keys()].filter((id) => !ledger.messages.has(id)).length;
  return {
    sent: ledger.messages.size,
    stored: ledger.acks.size,
    delivered: [...ledger.copies.keys()].filter((id) => ledger.messages.has(id)).length,
    duplicated,
    mismatchedIds: mismatchedIds + unknown,
    drainedAtEnd: ledger.drainedAtEnd,
    lost: [...ledger.messages.keys()].filter((id) => !ledger.copies.has(id)).length,
    receiptsReturned: [...ledger.receipts].filter((id) => ledger.messages.has(id)).length,
    ackCopies: ledger.ackCopies,
    ackMismatches: ledger.ackMismatches,
    receiptCopies: ledger.receiptCopies,
    resent: ledger.resent,
    reconnects: ledger.reconnects,
    stanzaErrors: ledger.stanzaErrors,
    durationMs: Date.now() - started,
    completedInTime,
  };
}
