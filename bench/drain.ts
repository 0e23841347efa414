// Draining a backlog at login: N messages wait for a user who is offline; the user logs
// in and sends initial presence; the server pushes every message (XEP-0203 delay) and the
// user's client returns a receipt for each. Counted from the initial presence until every
// message arrived and every receipt reached its sender; the login before it is not.
//
// The backlog is stored by sending real messages while the recipient is offline
// (`fill: 'send'`), from several senders at once to keep it quick, or, for very large
// backlogs, through the store as the message path would (`fill: 'store'`).
import type { Element } from 'ltx';
import { sequenceId } from '../lib/ids.ts';
import { TABLE_SCHEMA } from '../lib/store/schema.ts';
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
  type InvocationTimes,
  jidOf,
  type MethodCost,
  NS_DELAY,
  NS_RECEIPTS,
  per,
  receipt,
  receiptId,
  round,
  sendPresence,
  timeInvocations,
  until,
} from './harness.ts';
import { sampleBody } from './message-cost.ts';
import { measureQuery } from './stored.ts';

export interface DrainOptions {
  readonly backlog: number;
  readonly bodyBytes: number;
  readonly fill: 'send' | 'store';
  /** Messages a sender has out without the server's receipt while filling. */
  readonly window: number;
}

export interface DrainResult {
  readonly backlog: number;
  readonly fill: { readonly method: 'send' | 'store'; readonly senders: number; readonly durationMs: number };
  /** The backlog's items in the byOrder index, by DynamoDB's item size rules (stanzas deflated). */
  readonly storedBytes: number;
  /** The read units one query without a page limit would take for the same items (a lower bound). */
  readonly oneQueryReadUnits: number;
  readonly durationMs: number;
  readonly cost: Cost;
  readonly costPerMessage: Cost;
  readonly byMethod: Record<string, MethodCost>;
  /**
   * The frames invocations of the drain (the initial presence, the pushes, continuations, the
   * receipts), against the deployed timeout: the drain hands on before it runs out.
   */
  readonly framesInvocations: InvocationTimes;
  /** The drain's own reads: Store.undelivered, one strongly consistent query a page. */
  readonly drainReads: {
    readonly requests: number;
    readonly readUnits: number;
    readonly requestsPerMessage: number;
    readonly readUnitsPerMessage: number;
    /** Read units per 4 KB of stored backlog: 1 means reads exactly proportional to bytes. */
    readonly readUnitsPer4KB: number;
  };
  readonly exactlyOnce: {
    readonly deliveredOnce: number;
    readonly receiptsOnce: number;
    readonly delayed: number;
    readonly ok: boolean;
  };
}

/** DynamoDB's item size: attribute names plus values (numbers approximated by their digits). */
/** The backlog's index entries, read without the meter. */
const measureStored = (bench: BenchSystem, recipient: string) =>
  measureQuery(bench.system, {
    IndexName: TABLE_SCHEMA.orderIndex.name,
    KeyConditionExpression: 'pk = :pk',
    ExpressionAttributeValues: { ':pk': { S: `INBOX#${recipient}` } },
  });

export async function runDrain(bench: BenchSystem, options: DrainOptions): Promise<DrainResult> {
  const { system } = bench;
  const { backlog, bodyBytes } = options;
  const prefix = `backlog${backlog}`;
  const recipientUser = `${prefix}r`;
  const recipient = jidOf(system, recipientUser);
  const senderCount = Math.min(10, Math.max(1, Math.ceil(backlog / 100)));
  const senderUsers = Array.from({ length: senderCount }, (_, i) => `${prefix}s${i}`);
  await addUsers(system, [recipientUser, ...senderUsers]);
  const senders: BenchClient[] = [];
  for (const user of senderUsers) {
    const sender = await connect(system, user, { keep: false });
    await sendPresence(system, sender);
    senders.push(sender);
  }
  const ids = Array.from({ length: backlog }, (_, i) => `${prefix}-${i}`);
  const senderOf = (i: number) => senders[i % senderCount] as BenchClient;
  const bodies = Array.from({ length: 16 }, () => sampleBody(bodyBytes));

  // Fill the inbox while the recipient is offline.
  const fillStarted = performance.now();
  if (options.fill === 'send') await fillBySending(recipient, senders, ids, senderOf, bodies, options.window);
  else await fillThroughStore(bench, recipient, ids, senderOf, bodies);
  await system.api.idle();
  const fillMs = performance.now() - fillStarted;
  const stored = await measureStored(bench, recipient);
  if (stored.count !== backlog)
    throw new Error(`expected ${backlog} waiting messages, found ${stored.count}`);

  // The recipient logs in (not counted), then sends initial presence (counted from here).
  const delivered = new Map<string, number>();
  const receipts = new Map<string, number>();
  let delayed = 0;
  const client = await connect(system, recipientUser, { keep: false });
  client.onStanza = (stanza: Element) => {
    if (!hasBody(stanza)) return;
    const id = stanza.attrs.id as string;
    delivered.set(id, (delivered.get(id) ?? 0) + 1);
    if (stanza.getChild('delay', NS_DELAY)) delayed++;
    client.xmpp.send(receipt(client.xml, stanza.attrs.from, id)).catch(() => {});
  };
  for (const sender of senders) {
    sender.onStanza = (stanza: Element) => {
      const id = receiptId(stanza);
      if (id !== undefined) receipts.set(id, (receipts.get(id) ?? 0) + 1);
    };
  }
  await system.api.idle();
  const before = bench.cost();
  bench.profile.reset();
  const invocationsEnded = timeInvocations(system);
  const started = performance.now();
  await client.xmpp.send(client.xml('presence'));
  await until(
    () => delivered.size === backlog && receipts.size === backlog,
    Math.max(30_000, backlog * 100),
    `the drain of ${backlog} messages and their receipts`,
  );
  const durationMs = performance.now() - started;
  await system.api.idle();
  const framesInvocations = invocationsEnded();
  const cost = difference(bench.cost(), before);
  const byMethod = bench.profile.snapshot();
  await client.stop();
  for (const sender of senders) await sender.stop();

  const drainQueries = byMethod.undelivered ?? { calls: 0, readUnits: 0, writeUnits: 0, requests: 0 };
  const once = (counts: Map<string, number>) => ids.filter((id) => counts.get(id) === 1).length;
  return {
    backlog,
    fill: { method: options.fill, senders: senderCount, durationMs: round(fillMs, 0) },
    storedBytes: stored.bytes,
    oneQueryReadUnits: stored.units,
    durationMs: round(durationMs, 1),
    cost,
    costPerMessage: per(cost, backlog),
    byMethod,
    framesInvocations,
    drainReads: {
      requests: drainQueries.requests,
      readUnits: drainQueries.readUnits,
      requestsPerMessage: round(drainQueries.requests / backlog, 4),
      readUnitsPerMessage: round(drainQueries.readUnits / backlog, 4),
      readUnitsPer4KB: round(drainQueries.readUnits / (stored.bytes / 4096), 3),
    },
    exactlyOnce: {
      deliveredOnce: once(delivered),
      receiptsOnce: once(receipts),
      delayed,
      ok: once(delivered) === backlog && once(receipts) === backlog && delayed === backlog,
    },
  };
}

async function fillBySending(
  recipient: string,
  senders: readonly BenchClient[],
  ids: readonly string[],
  senderOf: (i: number) => BenchClient,
  bodies: readonly string[],
  window: number,
): Promise<void> {
  const acked = new Set<string>();
  let refused: string | undefined;
  for (const sender of senders) {
    sender.onStanza = (stanza: Element) => {
      const id = ackedId(stanza);
      if (id !== undefined) acked.add(id);
      if (stanza.attrs.type === 'error') refused ??= stanza.toString();
    };
  }
  const check = (done: () => boolean) => () => {
    if (refused) throw new Error(`the server refused a message: ${refused}`);
    return done();
  };
  const share = (sender: BenchClient) => ids.filter((_, i) => senderOf(i) === sender);
  await Promise.all(
    senders.map(async (sender) => {
      const mine = share(sender);
      for (const [i, id] of mine.entries()) {
        // At most `window` out without the server's receipt.
        const earlier = mine[i - window];
        if (earlier !== undefined)
          await until(
            check(() => acked.has(earlier)),
            30_000,
            `the server receipt of ${earlier}`,
          );
        await sender.xmpp.send(chat(sender.xml, recipient, id, bodies[i % bodies.length] as string));
      }
    }),
  );
  await until(
    check(() => acked.size === ids.length),
    60_000,
    'every server receipt',
  );
}

/** What the message path stores for an offline recipient (lib/message.ts), written directly. */
async function fillThroughStore(
  bench: BenchSystem,
  recipient: string,
  ids: readonly string[],
  senderOf: (i: number) => BenchClient,
  bodies: readonly string[],
): Promise<void> {
  const { store, config } = bench.system.context;
  const { xml } = senderOf(0);
  for (const [i, id] of ids.entries()) {
    const sender = senderOf(i);
    const now = Date.now();
    const stanza = xml(
      'message',
      { xmlns: 'jabber:client', type: 'chat', to: recipient, id, from: sender.jid },
      xml('body', {}, bodies[i % bodies.length] as string),
      xml('request', { xmlns: NS_RECEIPTS }),
    );
    await store.reserveOfflineSlot(recipient, config.offlineQuota);
    await store.storeMessage(
      {
        recipient,
        sender: sender.jid.split('/')[0] as string,
        id,
        seq: sequenceId(now),
        stanza: stanza.toString(),
        storedAt: now,
        receiptRequested: true,
        expiresAt: Math.floor(now / 1000) + config.retentionDays * 86_400,
      },
      { listed: true },
    );
  }
}
