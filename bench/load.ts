// One-to-one load: K pairs of real @xmpp/client clients, each side sending M chat messages
// to the other with a XEP-0184 receipt request, at most W of them not yet acknowledged by
// the server (its receipt, `<ack xmlns="urn:serverless-xmpp:ack:0"/>`). Every recipient
// returns the receipt as each message arrives. Measures throughput, delivery latency
// (send → recipient), receipt round trip (send → receipt back at the sender), counts the
// cost, and checks that every message, server receipt and delivery receipt arrived
// exactly once.
import type { Element } from 'ltx';
import {
  ackedId,
  addUsers,
  type BenchClient,
  type BenchSystem,
  type Cost,
  chat,
  connect,
  difference,
  hasBody,
  jidOf,
  per,
  percentile,
  receipt,
  receiptId,
  round,
  sendPresence,
  until,
} from './harness.ts';
import { sampleBody } from './message-cost.ts';

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

/** `prefix` names the users (`${prefix}0a`, `${prefix}0b`, …): one prefix per run on a system. */
export async function runLoad(
  bench: BenchSystem,
  options: LoadOptions = DEFAULT_LOAD,
  prefix = 'load',
): Promise<LoadResult> {
  const { system } = bench;
  const { pairs, messages, window, bodyBytes } = options;
  const users = Array.from({ length: pairs }, (_, i) => [`${prefix}${i}a`, `${prefix}${i}b`]).flat();
  await addUsers(system, users);
  const clients: BenchClient[] = [];
  for (const user of users) {
    const client = await connect(system, user, { keep: false });
    await sendPresence(system, client);
    clients.push(client);
  }
  const peerOf = (index: number) => clients[index % 2 === 0 ? index + 1 : index - 1] as BenchClient;

  const tracks = new Map<string, Track>();
  let unknown = 0;
  let errors = 0;
  const track = (id: string | undefined): Track | undefined => {
    const entry = id ? tracks.get(id) : undefined;
    if (!entry) unknown++;
    return entry;
  };
  const inFlight = new Map<BenchClient, number>();
  const wakers = new Map<BenchClient, () => void>();

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

  await system.api.idle();
  const before = bench.cost();
  const started = performance.now();
  const send = async (index: number) => {
    const client = clients[index] as BenchClient;
    const to = jidOf(system, peerOf(index).user);
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
    () => entries.every((entry) => entry.receipts > 0 && entry.delivered > 0),
    Math.max(60_000, total * 100),
    'every message and receipt',
  );
  const finished = Math.max(...entries.map((entry) => entry.receiptAt ?? 0));
  // Let anything late arrive, so that a second copy would be seen.
  await system.api.idle();
  await new Promise((resolve) => setTimeout(resolve, 300));
  await system.api.idle();
  const cost = difference(bench.cost(), before);
  for (const client of clients) await client.stop();

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
    samples: { delivery, roundTrip },
  };
}
