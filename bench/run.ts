// `npm run bench`: starts its own local system (DynamoDB Local in memory and the emulator,
// as the tests do), drives it with real @xmpp/client clients, measures the rest in
// process, and writes bench/results/latest.json, latest.md and latency.svg. A script,
// not a test: timings are reported, never asserted. `npm run bench -- --help` lists the flags.

import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { type Comparison, compare, mergeParts, prepareBaseline, runAlternating } from './baseline.ts';
import { type BundlesResult, measureBundles } from './bundles.ts';
import { latencyChart, roomCostChart } from './chart.ts';
import { type CpuResult, measureCpu } from './cpu.ts';
import { type DrainResult, runDrain } from './drain.ts';
import { type BenchSystem, startBenchSystem } from './harness.ts';
import { DEFAULT_LOAD, type LoadOptions, type LoadResult, runLoad } from './load.ts';
import { type MemoryChoice, memoryChoice } from './memory.ts';
import { type CostReport, measureMessageCost } from './message-cost.ts';
import { type MoneyResult, money } from './money.ts';
import { measurePushCost, type PushCost } from './push-cost.ts';
import { type RemoteSystem, startRemoteSystem } from './remote-system.ts';
import { evaluateTargets, formatMarkdown, type Target } from './report.ts';
import { JOIN_LIMIT, measureRoomCost, type RoomCost } from './room-cost.ts';
import {
  DEFAULT_ROSTER_LOGIN,
  measureRosterLogin,
  ROSTER_LOGIN,
  type RosterLoginOptions,
  type RosterLoginResult,
} from './roster-login.ts';
import { measureSessionCost, type SessionCost } from './session-cost.ts';
import { measureSlotCost, type SlotCost } from './upload-cost.ts';

export const SECTIONS = ['load', 'cost', 'drain', 'rooms', 'bundles', 'cpu'] as const;
export type Section = (typeof SECTIONS)[number];

export interface BenchOptions {
  readonly load: LoadOptions;
  readonly backlogs: readonly number[];
  /** Backlogs larger than this are stored through the store instead of sent. */
  readonly fillStoreAbove: number;
  /** Null leaves the login with a roster out (it starts a system of its own). */
  readonly roster: RosterLoginOptions | null;
  /** Occupant counts of the rooms measured, each on a system of its own. */
  readonly roomSizes: readonly number[];
  readonly cpuIterations: number;
  readonly importRuns: number;
  readonly sections: readonly Section[];
}

export const DEFAULT_OPTIONS: BenchOptions = {
  load: DEFAULT_LOAD,
  backlogs: [10, 100, 1000],
  fillStoreAbove: Number.POSITIVE_INFINITY,
  roster: DEFAULT_ROSTER_LOGIN,
  roomSizes: [1, 10, 100, 1000],
  cpuIterations: 20_000,
  importRuns: 9,
  sections: SECTIONS,
};

/** The same path without queueing: one pair, one message at a time. */
export const unloadedOptions = (load: LoadOptions): LoadOptions => ({
  ...load,
  pairs: 1,
  messages: Math.min(50, load.messages),
  window: 1,
});

export interface BenchResults {
  readonly generatedAt: string;
  readonly machine: {
    readonly node: string;
    readonly platform: string;
    readonly cpus: number;
    readonly cpu: string;
    /** The 1-minute load average as the run started: other work on the machine skews timings. */
    readonly loadAverage: number;
  };
  readonly options: Omit<BenchOptions, 'fillStoreAbove'> & { readonly fillStoreAbove: number | null };
  readonly load?: LoadResult;
  /** The same path without queueing: one pair, one message at a time (W=1). */
  readonly unloaded?: LoadResult;
  readonly messageCost?: CostReport;
  readonly sessions?: SessionCost;
  /** One XEP-0363 upload slot (bench/upload-cost.ts). */
  readonly uploadSlot?: SlotCost;
  /** What XEP-0357 push adds to a message, and the push function's work (bench/push-cost.ts). */
  readonly pushCost?: PushCost;
  readonly drain?: DrainResult[];
  readonly rosterLogin?: RosterLoginResult;
  readonly rooms?: RoomCost[];
  readonly bundles?: BundlesResult;
  readonly cpu?: CpuResult;
  readonly money?: MoneyResult;
  readonly memory?: MemoryChoice;
  readonly targets: Target[];
  /** With `--baseline`: the same sections against that ref, and every figure side by side. */
  readonly baseline?: {
    readonly ref: string;
    readonly commit: string;
    readonly results: Partial<BenchResults>;
    readonly comparison: Comparison[];
  };
  readonly skipped: { readonly name: string; readonly reason: string }[];
  readonly errors: { readonly section: string; readonly message: string }[];
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Where the sections run: which source tree serves the load and is bundled (default: this one). */
export interface BenchPlace {
  readonly tree?: string;
}

export async function runBench(
  options: BenchOptions = DEFAULT_OPTIONS,
  log: (line: string) => void = () => {},
  place: BenchPlace = {},
): Promise<BenchResults> {
  const results: Mutable<BenchResults> = {
    generatedAt: new Date().toISOString(),
    machine: {
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
      cpus: cpus().length,
      cpu: cpus()[0]?.model ?? 'unknown',
      loadAverage: Math.round((loadavg()[0] ?? 0) * 100) / 100,
    },
    options: {
      ...options,
      fillStoreAbove: Number.isFinite(options.fillStoreAbove) ? options.fillStoreAbove : null,
    },
    targets: [],
    skipped: [],
    errors: [],
  };
  const wanted = new Set(options.sections);
  const attempt = async <T>(section: string, work: () => Promise<T>): Promise<T | undefined> => {
    const started = performance.now();
    log(`${section}…`);
    try {
      const value = await work();
      log(`${section}: done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      return value;
    } catch (error) {
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      log(`${section}: FAILED ${message}`);
      results.errors.push({ section, message: error instanceof Error ? error.message : String(error) });
      return undefined;
    }
  };

  if (wanted.has('load')) {
    // The server in a process of its own, the clients here (bench/remote-system.ts).
    let server: RemoteSystem | undefined;
    try {
      server = await startRemoteSystem(place.tree);
      const target = server;
      results.load = await attempt('one-to-one load', () => runLoad(target, options.load));
      results.unloaded = await attempt('one-to-one, unloaded', () =>
        runLoad(target, unloadedOptions(options.load), 'quiet'),
      );
    } catch (error) {
      results.errors.push({ section: 'load server', message: String(error) });
    } finally {
      await server?.stop();
    }
  }
  if (wanted.has('cost') || wanted.has('drain')) {
    let bench: BenchSystem | undefined;
    try {
      bench = await startBenchSystem();
      const system = bench;
      if (wanted.has('cost')) {
        results.messageCost = await attempt('cost of one message', () =>
          measureMessageCost(options.load.bodyBytes, system),
        );
        results.sessions = await attempt('cost of login, ping, logout', () => measureSessionCost(system));
        results.uploadSlot = await attempt('cost of an upload slot', () => measureSlotCost(system));
        // On a system of its own, with a push service configured.
        results.pushCost = await attempt('cost of push', () => measurePushCost(options.load.bodyBytes));
        const roster = options.roster;
        if (ROSTER_LOGIN.blocked)
          results.skipped.push({ name: ROSTER_LOGIN.name, reason: ROSTER_LOGIN.blocked });
        else if (!roster) results.skipped.push({ name: ROSTER_LOGIN.name, reason: 'left out of this run' });
        // On a system of its own (bench/presence-cost.ts).
        else results.rosterLogin = await attempt(ROSTER_LOGIN.name, () => measureRosterLogin(roster));
      }
      if (wanted.has('drain')) {
        const drained: DrainResult[] = [];
        for (const backlog of options.backlogs) {
          const result = await attempt(`drain of ${backlog}`, () =>
            runDrain(system, {
              backlog,
              bodyBytes: options.load.bodyBytes,
              window: options.load.window,
              fill: backlog > options.fillStoreAbove ? 'store' : 'send',
            }),
          );
          if (result) drained.push(result);
        }
        results.drain = drained;
      }
    } catch (error) {
      results.errors.push({ section: 'local system', message: String(error) });
    } finally {
      await bench?.stop();
    }
  }
  if (wanted.has('rooms')) {
    const rooms: RoomCost[] = [];
    for (const occupants of options.roomSizes) {
      const cost = await attempt(`room of ${occupants}`, () => measureRoomCost(occupants));
      if (cost) rooms.push(cost);
    }
    results.rooms = rooms;
  }
  if (wanted.has('bundles'))
    results.bundles = await attempt('bundles', () => measureBundles(options.importRuns, place.tree));
  if (wanted.has('cpu')) results.cpu = await attempt('handler CPU', () => measureCpu(options.cpuIterations));

  return finish(results);
}

/** What follows from the sections together: the money model and the targets. */
export function finish(results: Mutable<BenchResults>): BenchResults {
  const drainedMessage = results.drain?.[0]?.costPerMessage;
  if (results.messageCost && results.sessions && drainedMessage && results.messageCost.offlineStored) {
    results.money = money({
      onlineMessage: results.messageCost.online,
      offlineStored: results.messageCost.offlineStored,
      drainedMessage,
      login: results.sessions.login,
      logout: results.sessions.logout,
      ping: results.sessions.ping,
    });
  }
  // Lambda memory from the figures (bench/memory.ts, docs/costs.md "Lambda memory").
  const online = results.messageCost?.online;
  if (results.load && online) results.memory = memoryChoice(results.load.cpuPerMessageMs.server, online);
  results.targets = evaluateTargets(results);
  return results;
}

/** latest.json (without raw samples), latest.md, latency.svg and room-cost.svg in `directory`. */
export function writeResults(results: BenchResults, directory: string): string[] {
  mkdirSync(directory, { recursive: true });
  const files: string[] = [];
  const write = (name: string, text: string) => {
    const path = join(directory, name);
    writeFileSync(path, text);
    files.push(path);
  };
  const withoutSamples = (load?: LoadResult) => {
    if (!load) return undefined;
    const { samples: _samples, ...rest } = load;
    return rest;
  };
  const baseline = results.baseline && {
    ...results.baseline,
    results: {
      ...results.baseline.results,
      load: withoutSamples(results.baseline.results.load),
      unloaded: withoutSamples(results.baseline.results.unloaded),
    },
  };
  const json = {
    ...results,
    load: withoutSamples(results.load),
    unloaded: withoutSamples(results.unloaded),
    baseline,
  };
  write('latest.json', `${JSON.stringify(json, null, 2)}\n`);
  write('latest.md', formatMarkdown(results));
  if (results.load) write('latency.svg', renderChart(results.load, results.unloaded));
  if (results.rooms?.length) write('room-cost.svg', renderRoomChart(results.rooms));
  return files;
}

export function renderChart(load: LoadResult, unloaded?: LoadResult): string {
  const { pairs, messages, window, bodyBytes } = load.options;
  const quiet = unloaded
    ? [
        {
          label: 'delivery, unloaded (1 pair, W=1)',
          color: '#1f77b4',
          dashed: true,
          values: unloaded.samples.delivery,
        },
        {
          label: 'receipt round trip, unloaded (1 pair, W=1)',
          color: '#d62728',
          dashed: true,
          values: unloaded.samples.roundTrip,
        },
      ]
    : [];
  return latencyChart(
    `One-to-one latency: K=${pairs} pairs, M=${messages} each way, W=${window}, ${bodyBytes}-byte bodies`,
    [
      { label: 'delivery (send → recipient)', color: '#1f77b4', values: load.samples.delivery },
      { label: 'receipt round trip (send → receipt back)', color: '#d62728', values: load.samples.roundTrip },
      ...quiet,
    ],
    ['Local emulator + DynamoDB Local on one machine'],
  );
}

export function renderRoomChart(rooms: readonly RoomCost[]): string {
  return roomCostChart('Units per room message against occupants (XEP-0045)', rooms, [
    'Counted with ReturnConsumedCapacity on DynamoDB Local; posts equal occupants at every size',
    `Rooms above ${JOIN_LIMIT} occupants: ${JOIN_LIMIT} real joins, the rest seated through the store (bench/room-cost.ts)`,
  ]);
}

/** `--baseline`: each section against the ref's worktree and this tree in turn, then side by side. */
export async function runAgainstBaseline(
  options: BenchOptions,
  ref: string,
  log: (line: string) => void,
): Promise<BenchResults> {
  const baseline = prepareBaseline(ref, log);
  const parts = await runAlternating(baseline, options, (only, place) => runBench(only, log, place), log);
  const merged = mergeParts(parts.current);
  const current = finish({ ...merged, options: { ...merged.options, sections: options.sections } });
  const before = finish(mergeParts(parts.baseline) as Mutable<BenchResults>);
  const side: Mutable<BenchResults> = {
    ...current,
    baseline: { ref, commit: baseline.commit, results: before, comparison: compare(before, current) },
  };
  // Again, now that the targets against the baseline can be judged.
  side.targets = evaluateTargets(side);
  return side;
}

const HELP = `npm run bench -- [flags]

  -k, --pairs K            pairs of users in the one-to-one load (default ${DEFAULT_LOAD.pairs})
  -m, --messages M         messages each way per pair (default ${DEFAULT_LOAD.messages})
  -w, --window W           most unacknowledged messages per sender (default ${DEFAULT_LOAD.window})
      --body-bytes N       message body size (default ${DEFAULT_LOAD.bodyBytes})
      --backlogs LIST      backlogs drained at login (default ${DEFAULT_OPTIONS.backlogs.join(',')})
      --fill-store-above N store backlogs larger than N through the store instead of sending them
      --contacts N         roster size for the login with a roster (default ${DEFAULT_ROSTER_LOGIN.contacts})
      --online N           how many of those contacts are online (default ${DEFAULT_ROSTER_LOGIN.online})
      --room-sizes LIST    occupant counts of the rooms measured (default ${DEFAULT_OPTIONS.roomSizes.join(',')})
      --cpu-iterations N   stanzas per CPU case (default ${DEFAULT_OPTIONS.cpuIterations})
      --import-runs N      fresh processes per import timing, 0 for sizes only (default ${DEFAULT_OPTIONS.importRuns})
      --only LIST          sections to run: ${SECTIONS.join(',')} (default all)
      --baseline REF       also run every section against a worktree of git REF (installed with npm ci),
                           alternating with this tree, and report both and their ratio for every figure
      --out DIR            where to write latest.json, latest.md and the charts (default bench/results)
  -h, --help`;

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed <= 0)
    throw new Error(`--${name} takes a positive integer, got "${value}"`);
  return parsed;
}

function positiveList(name: string, value: string | undefined, fallback: readonly number[]): number[] {
  return value === undefined
    ? [...fallback]
    : value.split(',').map((entry) => positive(name, entry.trim(), 0));
}

export function parseOptions(
  argv: readonly string[],
): { options: BenchOptions; out: string; baseline?: string } | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      pairs: { type: 'string', short: 'k' },
      messages: { type: 'string', short: 'm' },
      window: { type: 'string', short: 'w' },
      'body-bytes': { type: 'string' },
      backlogs: { type: 'string' },
      'fill-store-above': { type: 'string' },
      contacts: { type: 'string' },
      online: { type: 'string' },
      'room-sizes': { type: 'string' },
      'cpu-iterations': { type: 'string' },
      'import-runs': { type: 'string' },
      only: { type: 'string' },
      out: { type: 'string' },
      baseline: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) return 'help';
  const sections = (values.only?.split(',') ?? [...SECTIONS]).map((name) => name.trim());
  for (const name of sections) {
    if (!(SECTIONS as readonly string[]).includes(name)) throw new Error(`--only: unknown section "${name}"`);
  }
  const options: BenchOptions = {
    load: {
      pairs: positive('pairs', values.pairs, DEFAULT_LOAD.pairs),
      messages: positive('messages', values.messages, DEFAULT_LOAD.messages),
      window: positive('window', values.window, DEFAULT_LOAD.window),
      bodyBytes: positive('body-bytes', values['body-bytes'], DEFAULT_LOAD.bodyBytes),
    },
    backlogs: positiveList('backlogs', values.backlogs, DEFAULT_OPTIONS.backlogs),
    fillStoreAbove: positive('fill-store-above', values['fill-store-above'], Number.POSITIVE_INFINITY),
    roster: {
      contacts: positive('contacts', values.contacts, DEFAULT_ROSTER_LOGIN.contacts),
      online: values.online === '0' ? 0 : positive('online', values.online, DEFAULT_ROSTER_LOGIN.online),
    },
    roomSizes: positiveList('room-sizes', values['room-sizes'], DEFAULT_OPTIONS.roomSizes),
    cpuIterations: positive('cpu-iterations', values['cpu-iterations'], DEFAULT_OPTIONS.cpuIterations),
    importRuns:
      values['import-runs'] === '0'
        ? 0
        : positive('import-runs', values['import-runs'], DEFAULT_OPTIONS.importRuns),
    sections: sections as Section[],
  };
  const out = values.out ?? fileURLToPath(new URL('results', import.meta.url));
  return { options, out: resolve(out), baseline: values.baseline };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const parsed = parseOptions(process.argv.slice(2));
  if (parsed === 'help') {
    console.log(HELP);
  } else {
    const log = (line: string) => console.error(line);
    const results = parsed.baseline
      ? await runAgainstBaseline(parsed.options, parsed.baseline, log)
      : await runBench(parsed.options, log);
    for (const file of writeResults(results, parsed.out)) console.error(`wrote ${file}`);
    console.log(formatMarkdown(results));
    const broken = results.errors.length > 0 || results.load?.exactlyOnce.ok === false;
    const drainBroken = results.drain?.some((entry) => !entry.exactlyOnce.ok) ?? false;
    // Exit non-zero only when something broke (a section failed, a message was lost or
    // duplicated); slow figures never fail the run.
    process.exitCode = broken || drainBroken ? 1 : 0;
  }
}
