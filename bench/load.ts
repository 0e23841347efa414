// One-to-one load: K pairs of real @xmpp/client clients, each side sending M chat messages
// to the other with a XEP-0184 receipt request, at most W of them not yet acknowledged by
// the server (its receipt, `<ack xmlns="urn:serverless-xmpp:ack:0"/>`). Every recipient
// returns the receipt as each message arrives. Measures throughput, delivery latency
// (send → recipient), receipt round trip (send → receipt back at the sender), counts the
// cost, and checks that every message, server receipt and delivery receipt arrived
// exactly once. The server runs in a process of its own (bench/remote-system.ts), so the CPU
// it spends per message is measured apart from the clients', and DynamoDB Local's apart again.
import type { Element } from 'ltx';
import {
  ackedId,
  type Cost,
  chat,
  difference,
  hasBody,
  PASSWORD,
  per,
  percentile,
  receipt,
  receiptId,
  round,
  STEP_TIMEOUT_MS,
  until,
  type Xml,
} from './harness.ts';
import { sampleBody } from './message-cost.ts';
import type { LoadTarget } from './remote-system.ts';

export interface LoadOptions {
  /** K: pairs of users. */
  readonly pairs: number;
  /** M: messages each way per pair. */
  readonly messages: number;
  /** W: most messages one sender has out without the server's receipt. */
  readonly window: number;
  readonly bodyBytes: number;
}

export const DEFAULT_LOAD: LoadOptions = { pairs: 20, messages: 50, window: 10, bodyBytes: 1024 };

export interface Distribution {
  readonly count: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

export interface ExactlyOnce {
  readonly expected: number;
  /** Messages that reached their recipient exactly once, and so on. */
  readonly deliveredOnce: number;
  readonly serverReceiptsOnce: number;
  readonly receiptsOnce: number;
  /** Ids seen more than once (any kind), never seen, or not sent by the bench at all. */
  readonly duplicates: number;
  readonly missing: number;
  readonly unknown: number;
  readonly errors: number;
  readonly ok: boolean;
}

export interface LoadResult {
  readonly options: LoadOptions;
  readonly messages: number;
  /** From the first send to the last receipt back. */
  readonly durationMs: number;
  /** Messages (each with its receipt back) per second. */
  readonly throughput: number;
  readonly deliveryMs: Distribution;
  readonly receiptRoundTripMs: Distribution;
  readonly serverReceiptMs: Distribution;
  readonly exactlyOnce: ExactlyOnce;
  /** Everything the load cost (logins excluded), and per message with its receipt. */
  readonly cost: Cost;
  readonly costPerMessage: Cost;
  /**
   * CPU per message with its receipt, in ms: the server process (emulator, handlers, SDK) and
   * DynamoDB Local, each measured apart from the clients.
   */
  readonly cpuPerMessageMs: { readonly server: number; readonly dynamoLocal: number };
  /** Latencies in ms, sorted, for the chart; not written to the JSON report. */
  readonly samples: { readonly delivery: number[]; readonly roundTrip: number[] };
}

export function distribution(values: readonly number[]): Distribution {
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.reduce((total, value) => total + value, 0) / Math.max(1, sorted.length);
  return {
    count: sorted.length,
    p50: round(percentile(sorted, 50)),
    p90: round(percentile(sorted, 90)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.at(-1) ?? Number.NaN),
    mean: round(mean),
  };
}

interface Track {
  sentAt?: number;
  delivered: number;
  deliveredAt?: number;
  acks: number;
  ackAt?: number;
  receipts: number;
  receiptAt?: number;
}

type XmppClient = ReturnType<typeof import('@xmpp/client').client>;

interface LoadClient {
  readonly user: string;
  readonly xmpp: XmppClient;
  readonly xml: Xml;
  onStanza?: (stanza: Element) => void;
}

/** A logged-in @xmpp/client session with initial presence sent and handled. */
async function login(target: LoadTarget, user: string): Promise<LoadClient> {
  const { client, xml } = await import('@xmpp/client');
  const xmpp = client({
    service: target.url,
    domain: target.domain,
    username: user,
    password: PASSWORD,
    resource: 'bench',
    timeout: STEP_TIMEOUT_MS,
  } as Parameters<typeof client>[0]);
  const session: LoadClient = { user, xmpp, xml };
  xmpp.on('stanza', (stanza: Element) => session.onStanza?.(stanza));
  xmpp.on('error', () => {});
  await xmpp.start();
  await xmpp.send(xml('presence'));
  await target.idle();
  return session;
}

/** `prefix` names the users (`${prefix}0a`, `${prefix}0b`, …): one prefix per run on a system. */
export async function runLoad(
  target: LoadTarget,
  options: LoadOptions = DEFAULT_LOAD,
  prefix = 'load',
): Promise<LoadResult> {
  const { pairs, messages, window, bodyBytes } = options;
  const users = Array.from({ length: pairs }, (_, i) => [`${prefix}${i}a`, `${prefix}${i}b`]).flat();
  await target.addUsers(users);
  const clients: LoadClient[] = [];
  for (const user of users) clients.push(await login(target, user));
  const jidOf = (user: string) => `${user}@${target.domain}`;
  const peerOf = (index: number) => clients[index % 2 === 0 ? index + 1 : index - 1] as LoadClient;

  const tracks = new Map<string, Track>();
  let unknown = 0;
  let errors = 0;
  const track = (id: string | undefined): Track | undefined => {
    const entry = id ? tracks.get(id) : undefined;
    if (!entry) unknown++;
    return entry;
  };
  const inFlight = new Map<LoadClient, number>();
  const wakers = new Map<LoadClient, () => void>();

  clients.forEach((client, index) => {
    const peer = peerOf(index);
    client.onStanza = (stanza: Element) => {
      const now = performance.now();
      if (stanza.attrs.type === 'error') {
        errors++;
        return;
      }
      if (hasBody(stanza)) {
        const entry = track(stanza.attrs.id);
        if (!entry) return;
        entry.delivered++;
        entry.deliveredAt ??= now;
        if (!String(stanza.attrs.from).startsWith(`${peer.user}@`)) errors++;
        // A client returns the receipt as the message arrives.
        client.xmpp.send(receipt(client.xml, stanza.attrs.from, stanza.attrs.id)).catch(() => errors++);
        return;
      }
      const acked = ackedId(stanza);
      if (acked !== undefined) {
        const entry = track(acked);
        if (!entry) return;
        entry.acks++;
        if (entry.acks > 1) return;
        entry.ackAt = now;
        inFlight.set(client, (inFlight.get(client) ?? 1) - 1);
        wakers.get(client)?.();
        return;
      }
      const received = receiptId(stanza);
      if (received !== undefined) {
        const entry = track(received);
        if (!entry) return;
        entry.receipts++;
        entry.receiptAt ??= now;
      }
    };
  });

  const ids = clients.map((client) => Array.from({ length: messages }, (_, i) => `${client.user}-${i}`));
  for (const id of ids.flat()) tracks.set(id, { delivered: 0, acks: 0, receipts: 0 });
  const bodies = Array.from({ length: 16 }, () => sampleBody(bodyBytes));
  const total = tracks.size;

  await target.idle();
  const before = await target.cost();
  const usageBefore = await target.usage();
  const started = performance.now();
  const send = async (index: number) => {
    const client = clients[index] as LoadClient;
    const to = jidOf(peerOf(index).user);
    for (const [i, id] of (ids[index] as string[]).entries()) {
      while ((inFlight.get(client) ?? 0) >= window) {
        await new Promise<void>((resolve) => wakers.set(client, resolve));
      }
      inFlight.set(client, (inFlight.get(client) ?? 0) + 1);
      (tracks.get(id) as Track).sentAt = performance.now();
      await client.xmpp.send(chat(client.xml, to, id, bodies[i % bodies.length] as string));
    }
  };
  await Promise.all(clients.map((_, index) => send(index)));
  const entries = [...tracks.values()];
  await until(
    () => entries.every((entry) => entry.receipts > 0 && entry.delivered > 0 && entry.acks > 0),
    Math.max(60_000, total * 100),
    'every message, server receipt and receipt',
  );
  const finished = Math.max(...entries.map((entry) => entry.receiptAt ?? 0));
  // Let anything late arrive, so that a second copy would be seen.
  await target.idle();
  await new Promise((resolve) => setTimeout(resolve, 300));
  await target.idle();
  const usage = await target.usage();
  const cost = difference(await target.cost(), before);
  const open = new Set(await target.connectionIds());
  for (const client of clients) await client.xmpp.stop().catch(() => {});
  // Every session's $disconnect handled before the next scenario.
  const deadline = Date.now() + 30_000;
  for (let left = open.size; left > 0 && Date.now() < deadline; ) {
    await target.idle();
    left = (await target.connectionIds()).filter((id) => open.has(id)).length;
    if (left > 0) await new Promise((resolve) => setTimeout(resolve, 10));
  }

  const elapsed = (from: number | undefined, to: number | undefined) => (to ?? 0) - (from ?? 0);
  const delivery = entries.map((entry) => elapsed(entry.sentAt, entry.deliveredAt)).sort((a, b) => a - b);
  const roundTrip = entries.map((entry) => elapsed(entry.sentAt, entry.receiptAt)).sort((a, b) => a - b);
  const once = (key: 'delivered' | 'acks' | 'receipts') => entries.filter((entry) => entry[key] === 1).length;
  const duplicates = entries.filter((entry) => entry.delivered > 1 || entry.acks > 1 || entry.receipts > 1);
  const missing = entries.filter((entry) => !entry.delivered || !entry.acks || !entry.receipts);
  const exactlyOnce: ExactlyOnce = {
    expected: total,
    deliveredOnce: once('delivered'),
    serverReceiptsOnce: once('acks'),
    receiptsOnce: once('receipts'),
    duplicates: duplicates.length,
    missing: missing.length,
    unknown,
    errors,
    ok:
      once('delivered') === total &&
      once('acks') === total &&
      once('receipts') === total &&
      unknown === 0 &&
      errors === 0,
  };
  const durationMs = finished - started;
  return {
    options,
    messages: total,
    durationMs: round(durationMs, 1),
    throughput: round(total / (durationMs / 1000), 1),
    deliveryMs: distribution(delivery),
    receiptRoundTripMs: distribution(roundTrip),
    serverReceiptMs: distribution(entries.map((entry) => elapsed(entry.sentAt, entry.ackAt))),
    exactlyOnce,
    cost,
    costPerMessage: per(cost, total),
    cpuPerMessageMs: {
      server: round((usage.serverCpuMs - usageBefore.serverCpuMs) / total, 3),
      dynamoLocal: round((usage.dynamoCpuMs - usageBefore.dynamoCpuMs) / total, 3),
    },
    samples: { delivery, roundTrip },
  };
}
