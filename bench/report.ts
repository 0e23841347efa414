// The Markdown summary of a bench run (bench/results/latest.md) and the targets of issue 6,
// reported as reached or not, honestly: a missed target is a finding, not a failure.
import type { Comparison } from './baseline.ts';
import type { Cost, InvocationTimes, MethodCost } from './harness.ts';
import { formatArchivePage } from './message-cost.ts';
import { BILL_LINES, type Bill, PRICES } from './money.ts';
import { formatRoomCosts, type RoomCost } from './room-cost.ts';
import type { BenchResults } from './run.ts';

export interface Target {
  readonly name: string;
  readonly target: string;
  readonly measured: string;
  /** Undefined when the section did not run. */
  readonly reached?: boolean;
}

type Results = Omit<BenchResults, 'targets'> & { readonly targets?: Target[] };

export function evaluateTargets(results: Results): Target[] {
  const targets: Target[] = [];
  const online = results.messageCost?.online;
  const archiveOff = results.messageCost?.onlineArchiveOff;
  const page = results.messageCost?.archivePage;
  // Issue 13: a message store at half the writes, the archive on top.
  targets.push({
    name: 'write units per one-to-one message with its receipt, XEP-0313 archive on (the default)',
    target: '≤ 4',
    measured: online ? String(online.writeUnits) : 'not run',
    reached: online ? online.writeUnits <= 4 : undefined,
  });
  targets.push({
    name: 'write units per one-to-one message with its receipt, archive off',
    target: '≤ 2',
    measured: archiveOff ? String(archiveOff.writeUnits) : 'not run',
    reached: archiveOff ? archiveOff.writeUnits <= 2 : undefined,
  });
  targets.push({
    name: 'read units per one-to-one message with its receipt (archive on and off)',
    target: '≤ 2',
    measured: online ? `${online.readUnits}; off: ${archiveOff?.readUnits ?? 'not run'}` : 'not run',
    reached: online ? online.readUnits <= 2 && (archiveOff?.readUnits ?? 0) <= 2 : undefined,
  });
  targets.push({
    name: 'a XEP-0313 page of 50 messages',
    target: 'one query; read units ≤ bytes read / 4 KB + 1',
    measured: page
      ? `${page.query.requests} query, ${page.query.readUnits} RU for ${page.bytes} B`
      : 'not run',
    reached: page ? page.query.requests === 1 && page.query.readUnits <= page.bytes / 4096 + 1 : undefined,
  });
  // Issue 16: push costs the message path no request online, at most 0.5 read units offline.
  const pushCost = results.pushCost;
  targets.push({
    name: 'XEP-0357: DynamoDB requests a push registration adds to an online message with its receipt',
    target: '0',
    measured: pushCost
      ? String(pushCost.online.dynamoRequests - pushCost.onlineWithout.dynamoRequests)
      : 'not run',
    reached: pushCost ? pushCost.online.dynamoRequests === pushCost.onlineWithout.dynamoRequests : undefined,
  });
  targets.push({
    name: 'XEP-0357: read units a push registration adds to a message stored for an offline user',
    target: '≤ 0.5',
    measured: pushCost
      ? String(pushCost.offlineStored.readUnits - pushCost.offlineStoredWithout.readUnits)
      : 'not run',
    reached: pushCost
      ? pushCost.offlineStored.readUnits - pushCost.offlineStoredWithout.readUnits <= 0.5
      : undefined,
  });
  const drains = results.drain ?? [];
  const big = drains.filter((drain) => drain.backlog >= 100);
  targets.push({
    name: 'drain reads proportional to the backlog’s bytes, not one request per message',
    target: 'read units ≈ stored bytes / 4 KB; requests ≪ messages',
    measured:
      drains.length > 0
        ? drains
            .map(
              (drain) =>
                `${drain.backlog}: ${drain.drainReads.readUnits} RU for ${kb(drain.storedBytes)} (${drain.drainReads.readUnitsPer4KB} RU per 4 KB), ${drain.drainReads.requests} requests`,
            )
            .join('; ')
        : 'not run',
    reached:
      big.length > 0
        ? big.every(
            (drain) =>
              drain.drainReads.requestsPerMessage <= 0.05 &&
              drain.drainReads.readUnitsPer4KB >= 0.5 &&
              drain.drainReads.readUnitsPer4KB <= 2,
          )
        : undefined,
  });
  const rooms = results.rooms ?? [];
  const roomList = (describe: (room: RoomCost) => string) =>
    rooms.length ? rooms.map((room) => `${room.occupants}: ${describe(room)}`).join('; ') : 'not run';
  targets.push({
    name: 'write units per room message, whatever the occupant count',
    target: '≤ 2',
    measured: roomList((room) => `${room.writeUnits} WU`),
    reached: rooms.length ? rooms.every((room) => room.writeUnits <= 2) : undefined,
  });
  targets.push({
    name: 'read units per room message grow only with the bytes of the occupant list',
    target: 'read units ≤ list bytes / 4 KB + 1; requests the same at every size',
    measured: roomList(
      (room) =>
        `${room.readUnits} RU for ${kb(room.occupantListBytes)}, ${room.dynamoRequests} requests, ${room.posts} posts`,
    ),
    reached: rooms.length
      ? rooms.every(
          (room) =>
            room.readUnits <= Math.ceil(room.occupantListBytes / 4096) + 1 &&
            room.dynamoRequests === rooms[0]?.dynamoRequests &&
            room.posts === room.occupants,
        )
      : undefined,
  });
  const timed = invocationTimes(results);
  targets.push({
    name: 'every invocation within the function timeout (drains and room fan-out, emulator with the deployed timeout)',
    target: `0 over ${seconds(timed[0]?.times.functionTimeoutMs)}`,
    measured: timed.length
      ? timed
          .map(
            ({ work, times }) =>
              `${work}: longest ${times.longestMs} ms of ${times.invocations}, ${times.overTimeout} over`,
          )
          .join('; ')
      : 'not run',
    reached: timed.length
      ? timed.every(({ times }) => times.functionTimeoutMs > 0 && times.overTimeout === 0)
      : undefined,
  });
  const bundles = results.bundles?.bundles ?? [];
  targets.push({
    name: 'every function bundle under 1 MB (the AWS SDK inside)',
    target: '< 1 MB',
    measured: bundles.length
      ? bundles.map((b) => `${shortName(b.entry)} ${kb(b.totalBytes)}`).join(', ')
      : 'not run',
    reached: bundles.length ? bundles.every((b) => b.totalBytes < 1024 * 1024) : undefined,
  });
  const timedBundles = bundles.filter((b) => b.coldStartMs);
  targets.push({
    name: 'cold start: import of each function bundle plus its first handled event, fresh process (issue 17)',
    target: '≤ 150 ms',
    measured: timedBundles.length
      ? timedBundles
          .map(
            (b) =>
              `${shortName(b.entry)} ${ms(b.coldStartMs)} (import ${b.importMs?.median} ms, first event ${b.firstEventMs?.median} ms)`,
          )
          .join('; ')
      : 'not run',
    reached: timedBundles.length
      ? timedBundles.every((b) => (b.coldStartMs?.median ?? Number.POSITIVE_INFINITY) <= 150)
      : undefined,
  });
  const load = results.load;
  targets.push({
    name: 'server CPU per one-to-one message with its receipt, under load (emulator, handlers, SDK; issue 17)',
    target: '≤ 5 ms',
    measured: load
      ? `${load.cpuPerMessageMs.server} ms (DynamoDB Local apart: ${load.cpuPerMessageMs.dynamoLocal} ms)`
      : 'not run',
    reached: load ? load.cpuPerMessageMs.server <= 5 : undefined,
  });
  targets.push({
    name: 'DynamoDB requests per one-to-one message with its receipt, archive off (issue 17)',
    target: '≤ 3',
    measured: archiveOff ? String(archiveOff.dynamoRequests) : 'not run',
    reached: archiveOff ? archiveOff.dynamoRequests <= 3 : undefined,
  });
  const before = results.baseline?.results.load;
  targets.push({
    name: 'one-to-one throughput under load against the baseline (issue 17)',
    target: '≥ 3× baseline',
    measured:
      load && before
        ? `${load.throughput} against ${before.throughput} messages/s: ${round2(load.throughput / before.throughput)}×`
        : load
          ? `${load.throughput} messages/s (no --baseline)`
          : 'not run',
    reached: load && before ? load.throughput >= 3 * before.throughput : undefined,
  });
  const unloaded = results.unloaded;
  targets.push({
    name: 'delivery p50, unloaded (1 pair, one message at a time; issue 17)',
    target: '≤ 15 ms',
    measured: unloaded ? `${unloaded.deliveryMs.p50} ms` : 'not run',
    reached: unloaded ? unloaded.deliveryMs.p50 <= 15 : undefined,
  });
  const chat = results.cpu?.cases[0];
  targets.push({
    name: 'handler CPU per message (1 KB chat message with receipt request)',
    target: '< 0.3 ms',
    measured: chat ? `${(chat.cpuMicros / 1000).toFixed(3)} ms` : 'not run',
    reached: chat ? chat.cpuMicros < 300 : undefined,
  });
  return targets;
}

/** The frames invocations of each drain and each room message, in the order they were measured. */
function invocationTimes(results: Results): { work: string; times: InvocationTimes }[] {
  return [
    ...(results.drain ?? []).map((d) => ({ work: `drain of ${d.backlog}`, times: d.framesInvocations })),
    ...(results.rooms ?? []).map((r) => ({
      work: `room message to ${r.occupants}`,
      times: r.framesInvocations,
    })),
  ];
}

const seconds = (milliseconds?: number) =>
  milliseconds ? `the ${milliseconds / 1000} s function timeout` : 'the function timeout';

const perMillion = (price: number) => {
  const value = Number((price * 1e6).toPrecision(4));
  // $0.20, $1.00, but $0.125 and $0.625.
  return Math.abs(value * 100 - Math.round(value * 100)) < 1e-9 ? value.toFixed(2) : String(value);
};
const ms = (timing?: { median: number; min?: number }) =>
  timing ? `${timing.median} ms${timing.min !== undefined ? ` (fastest ${timing.min})` : ''}` : 'not timed';
const round2 = (value: number) => Math.round(value * 100) / 100;
const shortName = (entry: string) => entry.replace(/^functions\//, '');
const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
/** Cents from 10 cents up, two significant digits below. */
const dollars = (value: number) =>
  value === 0 ? '$0' : value >= 0.1 ? `$${value.toFixed(2)}` : `$${Number(value.toPrecision(2))}`;

/** Units by Store method, one row per method. */
function byMethodTable(byMethod: Record<string, MethodCost>): string {
  return table(
    ['Store method', 'calls', 'write units', 'read units', 'requests'],
    Object.entries(byMethod).map(([name, m]) => [name, m.calls, m.writeUnits, m.readUnits, m.requests]),
  );
}

function table(headers: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  return [
    `| ${headers.join(' | ')} |`,
    `|${headers.map(() => '---').join('|')}|`,
    ...rows.map((row) => `| ${row.join(' | ')} |`),
  ].join('\n');
}

const costRow = (name: string, cost: Cost) => [
  name,
  cost.writeUnits,
  cost.readUnits,
  cost.dynamoRequests,
  cost.posts,
  cost.invocations,
  cost.queuedRecords,
];
const COST_HEADERS = [
  '',
  'write units',
  'read units',
  'DynamoDB requests',
  'posts',
  'invocations',
  'SQS messages',
];

function billTable(columns: Record<string, Bill>): string {
  const names = Object.keys(columns);
  return table(
    ['', ...names],
    [
      ...BILL_LINES.map((line) => [
        line.label,
        ...names.map((name) => dollars((columns[name] as Bill)[line.key])),
      ]),
      ['**total**', ...names.map((name) => `**${dollars((columns[name] as Bill).total)}**`)],
    ],
  );
}

export function formatMarkdown(results: Results): string {
  const out: string[] = [];
  // Every item its own block: Markdown needs a blank line before a table.
  const push = (...blocks: string[]) => {
    for (const block of blocks) out.push(block, '');
  };
  push(
    '# Benchmark results',
    `Generated ${results.generatedAt} by \`npm run bench\` on ${results.machine.cpus} × ${results.machine.cpu}, ` +
      `Node.js ${results.machine.node}, ${results.machine.platform}, load average ${results.machine.loadAverage} at the start. Everything runs on this one machine: the ` +
      'clients, the emulator of API Gateway (with the real handlers in process) and DynamoDB Local (Java, in ' +
      'memory). Latencies and throughput are those of this setup, not of AWS; units, requests, posts, ' +
      'invocations and SQS messages are counted and do not depend on the machine. The cost model and the ' +
      'prices: [docs/costs.md](../../docs/costs.md).',
  );

  if (results.targets?.length) {
    push(
      '## Targets',
      table(
        ['target', 'wanted', 'measured', 'reached'],
        results.targets.map((t) => [
          t.name,
          t.target,
          t.measured,
          t.reached === undefined ? '—' : t.reached ? 'yes' : '**no**',
        ]),
      ),
    );
  }

  const load = results.load;
  if (load) {
    const { pairs, messages, window, bodyBytes } = load.options;
    const e = load.exactlyOnce;
    const unloaded = results.unloaded;
    const outstanding = 2 * pairs * window;
    push(
      '## 1. One-to-one load',
      `K = ${pairs} pairs, M = ${messages} messages each way, W = ${window} unacknowledged per sender, ` +
        `${bodyBytes}-byte bodies, every message with a receipt request and every receipt returned: ` +
        `${load.messages} messages in ${(load.durationMs / 1000).toFixed(2)} s, **${load.throughput} messages/s** ` +
        '(first send to last receipt back).',
      table(
        ['latency (ms)', 'p50', 'p90', 'p99', 'max', 'mean'],
        [
          ['delivery (send → recipient)', ...dist(load.deliveryMs)],
          ['receipt round trip (send → receipt back)', ...dist(load.receiptRoundTripMs)],
          ['server receipt (send → ack)', ...dist(load.serverReceiptMs)],
          ...(unloaded
            ? [
                [
                  `unloaded (1 pair, W=1, ${unloaded.messages} messages): delivery`,
                  ...dist(unloaded.deliveryMs),
                ],
                ['unloaded: receipt round trip', ...dist(unloaded.receiptRoundTripMs)],
                ['unloaded: server receipt', ...dist(unloaded.serverReceiptMs)],
              ]
            : []),
        ],
      ),
      `With up to 2 × K × W = ${outstanding} messages outstanding, Little’s law puts the time a message ` +
        `spends in the system at about ${outstanding} / ${load.throughput} per second = ` +
        `${(outstanding / load.throughput).toFixed(1)} s: under this load the latency is mostly queueing in ` +
        'each connection’s FIFO group in front of a saturated machine (the clients in the bench’s process, ' +
        'the emulator and handlers in a server process of their own, DynamoDB Local in Java, on 2 cores). The ' +
        'unloaded rows show the path itself. On AWS the handlers of different connections run in separate ' +
        'Lambda containers.',
      `CPU per message with its receipt, measured apart from the clients: **${load.cpuPerMessageMs.server} ms** ` +
        `in the server process (emulator, handlers, AWS SDK), ${load.cpuPerMessageMs.dynamoLocal} ms in ` +
        'DynamoDB Local' +
        (unloaded
          ? `; unloaded ${unloaded.cpuPerMessageMs.server} ms and ${unloaded.cpuPerMessageMs.dynamoLocal} ms.`
          : '.'),
      `Exactly once: ${e.deliveredOnce}/${e.expected} messages delivered once, ${e.serverReceiptsOnce}/${e.expected} ` +
        `server receipts once, ${e.receiptsOnce}/${e.expected} delivery receipts once; ${e.duplicates} duplicated, ` +
        `${e.missing} missing, ${e.unknown} unknown, ${e.errors} errors: **${e.ok ? 'ok' : 'FAILED'}**.`,
      'Counted over the whole load (logins excluded), per message with its receipt — the emulator batches ' +
        'up to 10 queued frames of one connection per invocation, as Lambda does with SQS, so invocations ' +
        'per message fall under load:',
      table(COST_HEADERS, [costRow('total', load.cost), costRow('per message', load.costPerMessage)]),
      '![Latency distribution](latency.svg)',
    );
  }

  const cost = results.messageCost;
  if (cost) {
    push(
      '## 2. Cost per message, counted',
      `One message with a ${cost.bodyBytes}-byte body and its delivery receipt, warm containers ` +
        '(DynamoDB units from ReturnConsumedCapacity summed over every call, table and index):',
      table(COST_HEADERS, [
        costRow('recipient online', cost.online),
        ...(cost.offlineStored
          ? [costRow('recipient offline: stored (server receipt included)', cost.offlineStored)]
          : []),
        costRow(
          'recipient offline: stored, drained at login, receipt back (presence included)',
          cost.offline,
        ),
        ...(cost.onlineArchiveOff
          ? [costRow('recipient online, XEP-0313 archive off (archiveDays 0)', cost.onlineArchiveOff)]
          : []),
      ]),
    );
    if (cost.archivePage) push(formatArchivePage(cost.archivePage));
    if (cost.onlineByMethod) {
      push('Where the online case’s units go, by Store method:', byMethodTable(cost.onlineByMethod));
    }
  }
  const pushCost = results.pushCost;
  if (pushCost) {
    push(
      'XEP-0357 push (bench/push-cost.ts): the message path with a push registration on the recipient and without one, and the push function:',
      table(COST_HEADERS, [
        costRow('recipient online, with a push registration', pushCost.online),
        costRow('recipient online, without', pushCost.onlineWithout),
        costRow('recipient offline, stored, with a push registration', pushCost.offlineStored),
        costRow('recipient offline, stored, without', pushCost.offlineStoredWithout),
      ]),
      `The push function, for that offline message: ${pushCost.pushFunction.requests} DynamoDB requests, ` +
        `${pushCost.pushFunction.writeUnits} write units, ${pushCost.pushFunction.readUnits} read units; ` +
        `${pushCost.queuedJobs} job(s) queued, ${pushCost.notifications} notification(s) POSTed.`,
    );
  }
  const sessions = results.sessions;
  if (sessions) {
    push(
      'Around the messages (used by the money model):',
      table(COST_HEADERS, [
        costRow(
          'login: connect, SASL, bind, initial presence (nothing waiting, empty roster)',
          sessions.login,
        ),
        costRow('XEP-0199 ping (keep-alive)', sessions.ping),
        costRow('logout: <close/> and $disconnect', sessions.logout),
        ...(results.uploadSlot
          ? [costRow('XEP-0363 upload slot (quota counter only)', results.uploadSlot.slot)]
          : []),
      ]),
      'The login and the logout by Store method:',
      table(
        [
          'Store method',
          'login: calls',
          'write units',
          'read units',
          'logout: calls',
          'write units',
          'read units',
        ],
        [...new Set([...Object.keys(sessions.loginByMethod), ...Object.keys(sessions.logoutByMethod)])]
          .sort()
          .map((name) => {
            const login = sessions.loginByMethod[name];
            const logout = sessions.logoutByMethod[name];
            return [
              name,
              login?.calls ?? 0,
              login?.writeUnits ?? 0,
              login?.readUnits ?? 0,
              logout?.calls ?? 0,
              logout?.writeUnits ?? 0,
              logout?.readUnits ?? 0,
            ];
          }),
      ),
    );
  }
  const roster = results.rosterLogin;
  if (roster) {
    const row = (
      name: string,
      c: { writeUnits: number; readUnits: number; dynamoRequests: number; posts: number },
    ) => [name, c.writeUnits, c.readUnits, c.dynamoRequests, c.posts];
    push(
      `### Login and logout with a roster of ${roster.contacts} contacts, ${roster.online} of them online`,
      'Subscription both with every contact; measured by bench/presence-cost.ts on a system of its own, ' +
        'from the initial presence (the SASL and bind steps before it are in the login above):',
      table(
        ['step', 'write units', 'read units', 'DynamoDB requests', 'posts'],
        [
          row('initial presence: broadcast, probes, drain check', roster.login),
          row('presence change (away)', roster.change),
          // Results written before XEP-0352 have neither.
          ...(roster.changeInactive && roster.active
            ? [
                row('the same change, the online contacts inactive (XEP-0352 CSI)', roster.changeInactive),
                row("one contact's <active/>: the user's current presence", roster.active),
              ]
            : []),
          row('logout: <close/>, $disconnect, unavailable to the contacts', roster.logout),
        ],
      ),
      ...(roster.changeInactive && roster.online > 0
        ? [
            `Client state indication saves ${(roster.change.posts - roster.changeInactive.posts) / roster.online} post per inactive contact ` +
              'session and presence change (chat states to it are held back too); unavailable presence still goes.',
          ]
        : []),
    );
  }
  if (results.drain?.length) {
    push(
      '### Draining a backlog at login',
      'Counted from the initial presence until every message arrived (with its delay stamp) and every ' +
        'receipt reached its sender; the login before it is not counted. Per message:',
      table(
        [
          'backlog',
          'stored by',
          'stored bytes (index)',
          'drain time',
          'write units',
          'read units',
          'DynamoDB requests',
          'posts',
          'invocations',
          'SQS messages',
          'exactly once',
        ],
        results.drain.map((d) => [
          d.backlog,
          d.fill.method === 'send'
            ? `sending (${d.fill.senders} sender${d.fill.senders === 1 ? '' : 's'}, ${(d.fill.durationMs / 1000).toFixed(1)} s)`
            : 'the store',
          kb(d.storedBytes),
          `${(d.durationMs / 1000).toFixed(2)} s`,
          d.costPerMessage.writeUnits,
          d.costPerMessage.readUnits,
          d.costPerMessage.dynamoRequests,
          d.costPerMessage.posts,
          d.costPerMessage.invocations,
          d.costPerMessage.queuedRecords,
          d.exactlyOnce.ok ? 'ok' : '**FAILED**',
        ]),
      ),
      'The drain’s own reads (Store.undelivered: one strongly consistent query of the byOrder index a page) ' +
        'against the size of what it read:',
      table(
        [
          'backlog',
          'queries',
          'read units',
          'per message',
          'stored bytes',
          'read units per 4 KB stored',
          'one unpaged query would take',
        ],
        results.drain.map((d) => [
          d.backlog,
          d.drainReads.requests,
          d.drainReads.readUnits,
          `${d.drainReads.readUnitsPerMessage} RU, ${d.drainReads.requestsPerMessage} requests`,
          kb(d.storedBytes),
          d.drainReads.readUnitsPer4KB,
          `${d.oneQueryReadUnits} RU`,
        ]),
      ),
      'All units of the drain by Store method (largest backlog):',
      byMethodTable(results.drain.at(-1)?.byMethod ?? {}),
    );
  }

  if (results.rooms?.length) {
    push(
      '### One room message by room size (XEP-0045)',
      'One groupchat message from the owner to a room of N occupants, each a logged-in WebSocket session, ' +
        'every copy received: one query of the occupant list and one put of the message, whatever N. ' +
        'The occupant list is the size of the room’s occupant items by DynamoDB’s item-size rule.',
      formatRoomCosts(results.rooms),
      '![Units per room message against occupants](room-cost.svg)',
    );
  }
  const timed = invocationTimes(results);
  if (timed.length) {
    push(
      '### Frames invocations against the function timeout',
      `The emulator gives each frames invocation a Lambda context counting down from ${seconds(timed[0]?.times.functionTimeoutMs)} ` +
        '(infra/timeouts.ts), so the handlers budget their time as deployed: a drain hands on to the next ' +
        'invocation with 8 s left (lib/offline.ts) or after `drainPerInvocation` messages, and a batch starts ' +
        'no record with under 5 s left (functions/frames.ts). Wall time in the emulator, the handlers in process ' +
        'on this machine; a drain counts every frames invocation from the initial presence to the last receipt, ' +
        'a room message the invocations of its fan-out.',
      table(
        ['work', 'frames invocations', 'longest', 'over the timeout'],
        timed.map(({ work, times }) => [
          work,
          times.invocations,
          `${times.longestMs} ms`,
          times.overTimeout === 0 ? '0' : `**${times.overTimeout}**`,
        ]),
      ),
    );
  }

  const bundles = results.bundles;
  if (bundles) {
    push(
      '## 3. Cold start and CPU',
      `Bundled with esbuild ${bundles.esbuild} exactly as the stack does (infra/bundle.ts: minified ESM, ` +
        'platform node, target node22, the AWS SDK inside, split so that what is imported on first use sits in chunks loaded then; ' +
        '“loaded at start” is the entry and the chunks it imports statically, what a cold start parses). Cold start: a fresh ' +
        `Node.js ${bundles.node} process imports the bundle and hands its handler a first real event against a ` +
        'local system (its SDK client built then, its first requests made), with NODE_OPTIONS=--enable-source-maps ' +
        'as deployed; the median (and the fastest) of the runs. Lambda runs Node.js 22 on a share of an arm64 ' +
        'core (about 0.3 vCPU at 512 MB), so expect more there.',
      table(
        [
          'bundle',
          'loaded at start',
          'all files',
          'source maps',
          'cold start (median)',
          'of which import',
          'of which first event',
          'cold start without source maps',
        ],
        bundles.bundles.map((b) => [
          shortName(b.entry),
          kb(b.bytes),
          kb(b.totalBytes),
          kb(b.sourceMapBytes),
          ms(b.coldStartMs),
          ms(b.importMs),
          ms(b.firstEventMs),
          ms(b.coldStartWithoutSourceMapsMs),
        ]),
      ),
      ...bundles.bundles.map(
        (b) =>
          `${shortName(b.entry)}: first event ${b.firstEvent ?? 'none (import only)'}; loads at start ` +
          `${b.contents.map((c) => `${c.name} ${kb(c.bytes)}`).join(', ')}.`,
      ),
    );
  }
  const cpu = results.cpu;
  if (cpu) {
    push(
      'Handler CPU per stanza, I/O excluded: lib/server.ts `onFrame` driven with a benchmark harness ' +
        '(a Store and Gateway answering at once from memory, bench/cpu.ts), process.cpuUsage over the loop. ' +
        'Not included: the AWS SDK’s serialisation and signing, deflating the stored stanza, TLS.',
      table(
        ['stanza', 'iterations', 'CPU per stanza', 'wall per stanza', 'posts per stanza', 'frame bytes'],
        cpu.cases.map((c) => [
          c.name,
          c.iterations,
          `${c.cpuMicros} µs`,
          `${c.wallMicros} µs`,
          c.postsPerStanza,
          c.frameBytes,
        ]),
      ),
    );
  }

  const m = results.money;
  if (m) {
    const a = m.assumptions;
    push(
      '## 4. Money',
      `Counted figures times us-east-1 list prices (${m.pricesAsOf}; sources in docs/costs.md). Assumed, not ` +
        `measured: ${a.framesInvocationMs} ms billed per frames invocation and ${a.connectInvocationMs} ms per ` +
        `$connect at ${a.lambdaMemoryGb * 1024} MB arm64; ${a.sqsRequestsPerRecord} SQS requests per queued ` +
        'frame (API Gateway’s send, Lambda’s receive and delete); every frame and post under 32 KB (one ' +
        'WebSocket message each).',
      '### Per million one-to-one messages with receipts (both users online)',
      billTable({ 'per million messages': m.perMillionMessages }),
      `### Per active user per month`,
      `Assumed: ${a.user.messagesPerDay} messages sent a day (${a.user.offlineShare * 100}% of them wait for the ` +
        `recipient), ${a.user.sessionsPerDay} sessions a day, ${a.user.connectedHoursPerDay} h connected a day ` +
        `with a ping every ${a.user.pingEveryMinutes} minutes, ${a.user.days} days.`,
      table(
        ['quantity', 'per month'],
        Object.entries(m.perUserMonth.quantities).map(([name, value]) => [
          name,
          value.toLocaleString('en-US'),
        ]),
      ),
      billTable({ ...m.perUserMonth.parts, total: m.perUserMonth.total }),
      `Unit prices: WebSocket messages $${perMillion(PRICES.apiGatewayMessage)} and connection minutes ` +
        `$${perMillion(PRICES.apiGatewayConnectionMinute)} per million; Lambda requests ` +
        `$${perMillion(PRICES.lambdaRequest)} per million and $${PRICES.lambdaArmGbSecond} per GB-second (arm64); ` +
        `DynamoDB $${perMillion(PRICES.dynamoWriteUnit)} per million write and $${perMillion(PRICES.dynamoReadUnit)} ` +
        `per million read request units; SQS FIFO $${perMillion(PRICES.sqsFifoRequest)} per million requests. ` +
        'The assumptions are ASSUMPTIONS in bench/money.ts.',
    );
  }

  const memory = results.memory;
  if (memory) {
    push(
      '### Lambda memory, from these figures',
      `A message with its receipt: ${memory.cpuMsPerMessage} ms of CPU on one full core (the server process under ` +
        'load, an upper bound: it includes the emulator) and ' +
        `${memory.waitMsPerMessage} ms waiting on DynamoDB and PostToConnection (requests and posts counted above, ` +
        'each at its modelled p50), in ' +
        `${memory.invocationsPerMessage} invocations. Lambda gives one vCPU at 1,769 MB and a share below; ` +
        'the smallest size within 1.25× of one vCPU’s handler time is ' +
        `**${memory.chosenMb} MB** (the stack’s default: ${memory.defaultMb} MB, context \`memorySize\`).`,
      table(
        ['memory (MB)', 'vCPU share', 'handler time per message (ms)', 'Lambda per million messages'],
        memory.rows.map((row) => [
          row.memoryMb,
          row.cpuShare,
          row.handlerMs,
          `$${row.perMillion.toFixed(2)}`,
        ]),
      ),
    );
  }

  if (results.baseline) push(...formatBaseline(results.baseline));

  if (results.skipped.length) {
    push(
      '## 5. Not measured in this run',
      table(
        ['scenario', 'why'],
        results.skipped.map((s) => [s.name, s.reason]),
      ),
    );
  }
  if (results.errors.length) {
    push('## Errors', ...results.errors.map((e) => `- ${e.section}: ${e.message.replace(/\n/g, ' ')}`));
  }
  return out.join('\n');
}

const dist = (d: { p50: number; p90: number; p99: number; max: number; mean: number }) => [
  d.p50,
  d.p90,
  d.p99,
  d.max,
  d.mean,
];

/** The figures issue 17 is about, first in the side-by-side report. */
const HEADLINE = [
  /^load\.throughput$/,
  /^load\.cpuPerMessageMs\./,
  /^load\.costPerMessage\.dynamoRequests$/,
  /^unloaded\.deliveryMs\.p50$/,
  /^unloaded\.cpuPerMessageMs\.server$/,
  /^messageCost\.onlineArchiveOff\.dynamoRequests$/,
  /^bundles\.bundles\[[^\]]+\]\.(bytes|coldStartMs\.median|importMs\.median)$/,
  /^cpu\.cases\[[^\]]+\]\.cpuMicros$/,
];

const ratioText = (ratio: number | null) => (ratio === null ? '—' : `${ratio}×`);

function formatBaseline(baseline: NonNullable<Results['baseline']>): string[] {
  const rows = (list: Comparison[]) =>
    list.map((row) => [`\`${row.path}\``, row.baseline, row.current, ratioText(row.ratio)]);
  const headline = baseline.comparison.filter((row) => HEADLINE.some((pattern) => pattern.test(row.path)));
  const headers = [
    'figure',
    `baseline ${baseline.ref} (${baseline.commit.slice(0, 10)})`,
    'this tree',
    'ratio',
  ];
  return [
    '## Against the baseline',
    `Every section ran against a worktree of \`${baseline.ref}\` (installed with \`npm ci\`) and against this ` +
      'tree in turn, in this one run, alternating which went first; the ratio is this tree / baseline (below 1 ' +
      'is less: faster, fewer, smaller — except messages/s, where above 1 is better). The load and the bundles are ' +
      'measured by this tree’s bench against either tree; the other sections by each tree’s own bench.',
    table(headers, rows(headline)),
    `<details><summary>Every figure (${baseline.comparison.length})</summary>`,
    table(headers, rows(baseline.comparison)),
    '</details>',
  ];
}
