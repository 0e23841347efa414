// The handler's own CPU time per stanza, I/O excluded: lib/server.ts onFrame (parse, route,
// build the replies) driven many times with process.cpuUsage around the loop.
//
// BENCHMARK HARNESS, NOT A TEST DOUBLE: the Store and Gateway below answer at once from
// memory so that only the core's work is timed. They implement just what these two paths
// call, check nothing and keep nothing; any other Store method throws. What they leave out
// is real CPU on Lambda too: the AWS SDK's serialisation and request signing, deflating the
// stored stanza (lib/store/dynamo.ts), TLS.
import { defaultConfig } from '../lib/config.ts';
import type {
  Account,
  ConnectionRecord,
  Context,
  Gateway,
  Logger,
  SessionRecord,
  Store,
} from '../lib/ports.ts';
import { onFrame } from '../lib/server.ts';
import { xml } from '../lib/xml.ts';
import { round } from './harness.ts';
import { sampleBody } from './message-cost.ts';

export interface CpuCase {
  readonly name: string;
  readonly iterations: number;
  /** User + system CPU per stanza. */
  readonly cpuMicros: number;
  readonly wallMicros: number;
  /** Posts the handler made per stanza, a check that the intended path ran. */
  readonly postsPerStanza: number;
  readonly frameBytes: number;
}

export interface CpuResult {
  readonly node: string;
  readonly cases: CpuCase[];
}

const DOMAIN = 'localhost';
const ALICE_CONNECTION = 'alice-connection=';
const BOB_CONNECTION = 'bob-connection=';

const bound = (connectionId: string, user: string): ConnectionRecord => ({
  connectionId,
  state: 'bound',
  streamId: 'stream',
  user,
  resource: 'bench',
  connectedAt: 0,
  expiresAt: Number.MAX_SAFE_INTEGER,
});

const session = (user: string, connectionId: string): SessionRecord => ({
  user,
  resource: 'bench',
  connectionId,
  available: true,
  priority: 0,
  expiresAt: Number.MAX_SAFE_INTEGER,
});

/** Benchmark harness: answers from memory at once (see the top of this file). */
function harnessContext(): { ctx: Context; posts: () => number } {
  const connections = new Map([
    [ALICE_CONNECTION, bound(ALICE_CONNECTION, `alice@${DOMAIN}`)],
    [BOB_CONNECTION, bound(BOB_CONNECTION, `bob@${DOMAIN}`)],
  ]);
  const account = (user: string, connectionId: string): Account => ({
    exists: true,
    sessions: [session(user, connectionId)],
    blocks: new Set(),
    blockedBy: new Set(),
    push: [],
  });
  const accounts = new Map<string, Account>([
    [`alice@${DOMAIN}`, account(`alice@${DOMAIN}`, ALICE_CONNECTION)],
    [`bob@${DOMAIN}`, account(`bob@${DOMAIN}`, BOB_CONNECTION)],
  ]);
  const accountOf = (user: string): Account =>
    accounts.get(user) ?? { exists: false, sessions: [], blocks: new Set(), blockedBy: new Set(), push: [] };
  const answers: Partial<Store> = {
    getConnection: async (id) => {
      const record = connections.get(id);
      return record ? { ...record } : undefined;
    },
    getAccount: async (user) => accountOf(user),
    getAccounts: (async (users: readonly string[]) => users.map(accountOf)) as Store['getAccounts'],
    storeMessage: async () => ({ stored: true }),
    markDelivered: async () => ({}),
    listForDrain: async () => {},
    archive: async () => {},
    markAllDelivered: async () => {},
    reserveOfflineSlot: async () => 1,
    saveConnection: async () => {},
  };
  const store = new Proxy(answers, {
    get(target, name) {
      const answer = Reflect.get(target, name);
      if (answer !== undefined || typeof name !== 'string') return answer;
      return () => {
        throw new Error(`the CPU harness does not answer Store.${name}`);
      };
    },
  }) as Store;
  let posts = 0;
  const gateway: Gateway = {
    post: async () => {
      posts++;
      return 'ok';
    },
    close: async () => {},
  };
  const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };
  const ctx: Context = {
    store,
    gateway,
    continuations: {
      continueDrain: async () => {},
    },
    config: defaultConfig(DOMAIN),
    logger: silent,
    now: Date.now,
  };
  return { ctx, posts: () => posts };
}

async function measure(
  name: string,
  connectionId: string,
  frame: string,
  iterations: number,
): Promise<CpuCase> {
  const { ctx, posts } = harnessContext();
  const run = async (count: number) => {
    for (let i = 0; i < count; i++) await onFrame(ctx, { connectionId, body: frame });
  };
  await run(Math.min(2000, iterations)); // warm up the JIT
  const postsBefore = posts();
  const wall = performance.now();
  const cpu = process.cpuUsage();
  await run(iterations);
  const used = process.cpuUsage(cpu);
  const wallMs = performance.now() - wall;
  return {
    name,
    iterations,
    cpuMicros: round((used.user + used.system) / iterations, 1),
    wallMicros: round((wallMs * 1000) / iterations, 1),
    postsPerStanza: round((posts() - postsBefore) / iterations, 3),
    frameBytes: Buffer.byteLength(frame),
  };
}

/** Frames as @xmpp/client sends them: a 1 KB chat message asking for a receipt, and a receipt. */
export function benchFrames(bodyBytes = 1024) {
  const message = xml(
    'message',
    { xmlns: 'jabber:client', type: 'chat', to: `bob@${DOMAIN}`, id: 'bench-message-1' },
    xml('body', {}, sampleBody(bodyBytes)),
    xml('request', { xmlns: 'urn:xmpp:receipts' }),
  ).toString();
  const receipt = xml(
    'message',
    { xmlns: 'jabber:client', type: 'chat', to: `alice@${DOMAIN}/bench` },
    xml('received', { xmlns: 'urn:xmpp:receipts', id: 'bench-message-1' }),
  ).toString();
  return { message, receipt };
}

export async function measureCpu(iterations = 20_000, bodyBytes = 1024): Promise<CpuResult> {
  const frames = benchFrames(bodyBytes);
  return {
    node: process.version,
    cases: [
      await measure(
        `chat message, ${bodyBytes}-byte body, receipt requested (server receipt + push)`,
        ALICE_CONNECTION,
        frames.message,
        iterations,
      ),
      await measure(
        'delivery receipt (mark delivered + route to the sender)',
        BOB_CONNECTION,
        frames.receipt,
        iterations,
      ),
    ],
  };
}
