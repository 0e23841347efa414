// What the benchmark scenarios share: a local system with a capacity meter and a
// per-store-method profile, users, real @xmpp/client clients, and cost snapshots read
// from the meter and the emulator's counters (system.api.counters).
import type { Element } from 'ltx';
import { WebSocket } from 'ws';
import { type LocalSystem, type LocalSystemOptions, startLocalSystem } from '../infra/local/system.ts';
import { FRAMES_TIMEOUT_SECONDS } from '../infra/timeouts.ts';
import type { Store } from '../lib/ports.ts';
import { makeCredentials } from '../lib/scram.ts';
import { type CapacityMeter, newMeter } from '../lib/store/capacity.ts';

(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

export const NS_ACK = 'urn:serverless-xmpp:ack:0';
export const NS_RECEIPTS = 'urn:xmpp:receipts';
export const NS_DELAY = 'urn:xmpp:delay';
export const PASSWORD = 'pw';

/** What one piece of work cost, counted: DynamoDB units and requests, posts, invocations, SQS records. */
export interface Cost {
  readonly readUnits: number;
  readonly writeUnits: number;
  readonly dynamoRequests: number;
  readonly posts: number;
  readonly invocations: number;
  readonly queuedRecords: number;
}

export const ZERO_COST: Cost = {
  readUnits: 0,
  writeUnits: 0,
  dynamoRequests: 0,
  posts: 0,
  invocations: 0,
  queuedRecords: 0,
};

const COST_KEYS = Object.keys(ZERO_COST) as (keyof Cost)[];

const combine = (a: Cost, b: Cost, f: (x: number, y: number) => number): Cost =>
  Object.fromEntries(COST_KEYS.map((k) => [k, f(a[k], b[k])])) as unknown as Cost;

export const difference = (after: Cost, before: Cost): Cost => combine(after, before, (x, y) => x - y);
export const sum = (a: Cost, b: Cost): Cost => combine(a, b, (x, y) => x + y);
/** Per unit of work, rounded to 4 decimals so that reports stay readable. */
export const per = (cost: Cost, count: number): Cost =>
  combine(cost, ZERO_COST, (x) => Math.round((x / count) * 10_000) / 10_000);

/** DynamoDB units and requests spent inside one Store method. */
export interface MethodCost {
  calls: number;
  readUnits: number;
  writeUnits: number;
  requests: number;
}

/**
 * Attributes the meter's units to the Store method that spent them, by wrapping the
 * context's store. Exact only while one connection's frames are being handled at a time
 * (the scenarios that report it are serial); under concurrency units would be mixed up.
 */
export class StoreProfile {
  readonly methods = new Map<string, MethodCost>();

  constructor(private readonly meter: CapacityMeter) {}

  reset(): void {
    this.methods.clear();
  }

  snapshot(): Record<string, MethodCost> {
    return Object.fromEntries(
      [...this.methods].sort(([a], [b]) => a.localeCompare(b)).map(([name, cost]) => [name, { ...cost }]),
    );
  }

  wrap(store: Store): Store {
    const meter = this.meter;
    const methods = this.methods;
    return new Proxy(store, {
      get(target, name, receiver) {
        const value = Reflect.get(target, name, receiver);
        if (typeof value !== 'function' || typeof name !== 'string') return value;
        return async (...args: unknown[]) => {
          const before = { ...meter };
          try {
            return await value.apply(target, args);
          } finally {
            const entry = methods.get(name) ?? { calls: 0, readUnits: 0, writeUnits: 0, requests: 0 };
            entry.calls++;
            entry.readUnits += meter.readUnits - before.readUnits;
            entry.writeUnits += meter.writeUnits - before.writeUnits;
            entry.requests += meter.requests - before.requests;
            methods.set(name, entry);
          }
        };
      },
    });
  }
}

export interface BenchSystem {
  readonly system: LocalSystem;
  readonly meter: CapacityMeter;
  readonly profile: StoreProfile;
  cost(): Cost;
  stop(): Promise<void>;
}

/**
 * Nothing expires during a run, so the local TTL process stays off: its table scans would
 * only load the machine (on AWS, TTL runs apart and costs nothing).
 */
export const NO_TTL_PASSES = { ttlSweepMs: 0 } as const;

/** The frames function's timeout as deployed (infra/stack.ts). */
export const FRAMES_TIMEOUT_MS = FRAMES_TIMEOUT_SECONDS * 1000;

/**
 * Each frames invocation gets a Lambda context counting down from the deployed timeout, so the
 * handlers budget their time as on AWS (a drain hands on, a batch leaves records for the next
 * invocation), and the emulator counts the invocations that outlast it.
 */
export const AS_DEPLOYED_TIMEOUT = { api: { functionTimeoutMs: FRAMES_TIMEOUT_MS } } as const;

/** The frames invocations of one piece of work, timed against the function's timeout. */
export interface InvocationTimes {
  readonly invocations: number;
  /** The longest of them, wall time in the emulator (the handlers run in process). */
  readonly longestMs: number;
  /** How many ran longer than the timeout: on AWS their batches would have failed. */
  readonly overTimeout: number;
  readonly functionTimeoutMs: number;
}

/**
 * Starts timing the frames invocations from now; the function returned ends it. The emulator's
 * longest-invocation counter is a running maximum, so it is restarted here and, at the end, put
 * back to the larger of the two (work measured this way must not overlap).
 */
export function timeInvocations(system: LocalSystem): () => InvocationTimes {
  const { counters } = system.api;
  const before = { ...counters };
  counters.longestInvocationMs = 0;
  return () => {
    const longestMs = counters.longestInvocationMs;
    counters.longestInvocationMs = Math.max(before.longestInvocationMs, longestMs);
    return {
      invocations: counters.framesInvocations - before.framesInvocations,
      longestMs,
      overTimeout: counters.overTimeout - before.overTimeout,
      functionTimeoutMs: system.api.functionTimeoutMs,
    };
  };
}

/** DynamoDB Local in memory and the emulator, metered, with the deployed frames timeout. */
export async function startBenchSystem(options: Omit<LocalSystemOptions, 'capacityMeter'> = {}) {
  const meter = newMeter();
  const profile = new StoreProfile(meter);
  const system = await startLocalSystem({
    ...NO_TTL_PASSES,
    ...options,
    api: { ...AS_DEPLOYED_TIMEOUT.api, ...options.api },
    capacityMeter: meter,
    wrapContext: (context) => {
      const wrapped = options.wrapContext ? options.wrapContext(context) : context;
      return { ...wrapped, store: profile.wrap(wrapped.store) };
    },
  });
  const bench: BenchSystem = {
    system,
    meter,
    profile,
    cost: () => snapshot(system, meter),
    stop: () => system.stop(),
  };
  return bench;
}

export function snapshot(system: LocalSystem, meter: CapacityMeter): Cost {
  const { counters } = system.api;
  return {
    readUnits: meter.readUnits,
    writeUnits: meter.writeUnits,
    dynamoRequests: meter.requests,
    posts: counters.posts,
    invocations: counters.framesInvocations + counters.connectInvocations,
    queuedRecords: counters.queuedRecords,
  };
}

export const jidOf = (system: LocalSystem, user: string) => `${user}@${system.config.domain}`;

export async function addUsers(system: LocalSystem, users: readonly string[]): Promise<void> {
  const scram = makeCredentials(PASSWORD, 4096); // one derivation, shared: only the bench's users
  for (const user of users) {
    await system.context.store.putUser({ user: jidOf(system, user), scram, createdAt: Date.now() });
  }
}

/** Polls `check` until it holds; the limit only ends a run that is stuck (a loaded machine is slow, not stuck). */
export async function until(check: () => boolean, timeoutMs = 30_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

type XmppClient = ReturnType<typeof import('@xmpp/client').client>;
export type Xml = typeof import('@xmpp/client').xml;

/** A real @xmpp/client session; `stanzas` keeps what it received unless `keep` is false. */
export interface BenchClient {
  readonly user: string;
  readonly jid: string;
  readonly xmpp: XmppClient;
  readonly xml: Xml;
  readonly stanzas: Element[];
  /** The emulator's id of this connection, when it could be told apart (connects one at a time). */
  readonly connectionId?: string;
  onStanza?: (stanza: Element) => void;
  /** Closes the stream and waits until the server handled $disconnect. */
  stop(): Promise<void>;
}

/**
 * xmpp.js waits 2 s by default for each stream step (the open, each restart, the `</close>`
 * answer). The server answers `<close/>` only after its close fence (lib/session.ts, 1 s) and
 * the session's end, which on a loaded 2-core machine can pass 2 s: xmpp.js 0.14 then detaches
 * its parser and throws, uncaught, on the late `</close>`. The bench's clients wait this long.
 */
export const STEP_TIMEOUT_MS = 30_000;

export async function connect(
  system: LocalSystem,
  user: string,
  options: { resource?: string; keep?: boolean } = {},
): Promise<BenchClient> {
  const { client, xml } = await import('@xmpp/client');
  const xmpp = client({
    service: system.url,
    domain: system.config.domain,
    username: user,
    password: PASSWORD,
    resource: options.resource ?? 'bench',
    timeout: STEP_TIMEOUT_MS,
  } as Parameters<typeof client>[0]);
  const stanzas: Element[] = [];
  const open = new Set(system.api.connectionIds);
  const session: BenchClient = {
    user,
    jid: '',
    xmpp,
    xml,
    stanzas,
    async stop() {
      await xmpp.stop().catch(() => {});
      const id = session.connectionId;
      // The emulator queues $disconnect when the socket closes and forgets the connection
      // once it is handled.
      if (id) await until(() => !system.api.connectionIds.includes(id), 30_000, '$disconnect');
      await system.api.idle();
    },
  };
  xmpp.on('stanza', (stanza: Element) => {
    if (options.keep !== false) stanzas.push(stanza);
    session.onStanza?.(stanza);
  });
  xmpp.on('error', () => {});
  const address = await xmpp.start();
  const opened = system.api.connectionIds.filter((id) => !open.has(id));
  Object.assign(session, {
    jid: address.toString(),
    connectionId: opened.length === 1 ? opened[0] : undefined,
  });
  return session;
}

/** Sends initial presence and waits until the server handled it (and anything it drained). */
export async function sendPresence(system: LocalSystem, client: BenchClient): Promise<void> {
  await client.xmpp.send(client.xml('presence'));
  await system.api.idle();
}

export const chat = (xml: Xml, to: string, id: string, body: string) =>
  xml('message', { type: 'chat', to, id }, xml('body', {}, body), xml('request', { xmlns: NS_RECEIPTS }));

/** XEP-0184 §5: the receipt a recipient's client returns to the sender's full JID. */
export const receipt = (xml: Xml, to: string, id: string) =>
  xml('message', { to, type: 'chat' }, xml('received', { xmlns: NS_RECEIPTS, id }));

export const ackedId = (stanza: Element) => stanza.getChild('ack', NS_ACK)?.attrs.id as string | undefined;
export const receiptId = (stanza: Element) =>
  stanza.getChild('received', NS_RECEIPTS)?.attrs.id as string | undefined;
export const hasBody = (stanza: Element) =>
  stanza.name === 'message' && stanza.getChild('body') !== undefined;

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] as number;
}

export const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;
