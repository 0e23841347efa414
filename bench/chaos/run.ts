// `npm run chaos`: fault injection against the local system, bounded in time and count, with
// its figures in bench/results/chaos.md (and chaos.json). Scenarios (README, "Failure
// behaviour"): fuzz, DynamoDB and post faults, handler killed mid-batch, crash.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { DYNAMO_RETRIES } from '../../functions/runtime.ts';
import type { LoadCounts } from './load.ts';
import {
  type CrashScenario,
  crashScenario,
  type FuzzScenario,
  faultLoadScenario,
  fuzzScenario,
  type LoadScenario,
} from './scenarios.ts';

(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const SCENARIOS = ['fuzz', 'faults', 'kill', 'crash'] as const;
type ScenarioName = (typeof SCENARIOS)[number];

export interface ChaosResults {
  /** When each scenario ran, with the machine's load average then and the run's settings. */
  runs: Partial<
    Record<ScenarioName, { at: string; loadAverage: number[]; settings: Record<string, unknown> }>
  >;
  readonly cores: number;
  fuzz?: FuzzScenario;
  faults?: LoadScenario;
  kill?: LoadScenario;
  crash?: CrashScenario;
}

/** What must hold for a run to pass; each line a failure. */
export function verdict(results: ChaosResults): string[] {
  const failures: string[] = [];
  const messages = (name: string, counts: LoadCounts) => {
    if (counts.lost > 0) failures.push(`${name}: ${counts.lost} messages lost`);
    if (counts.mismatchedIds > 0)
      failures.push(`${name}: ${counts.mismatchedIds} copies with another stanza-id`);
    if (counts.ackMismatches > 0)
      failures.push(`${name}: ${counts.ackMismatches} server receipts with another stanza-id`);
    if (counts.stored < counts.sent)
      failures.push(`${name}: ${counts.sent - counts.stored} never acknowledged`);
  };
  const { fuzz, faults, kill, crash } = results;
  if (fuzz) {
    const { result, failures: handler } = fuzz;
    if (result.hangs > 0) {
      const limit = results.runs.fuzz?.settings.hangMs ?? 1000;
      failures.push(
        `fuzz: ${result.hangs} of ${result.frames} frames answered (or their stream closed) later than ${limit} ms; the slowest after ${result.answerMs.max} ms`,
      );
    }
    if (result.wrongEnds.length > 0) failures.push(`fuzz: ${result.wrongEnds.length} streams ended wrongly`);
    if (result.internalErrors > 0) failures.push(`fuzz: ${result.internalErrors} internal-server-errors`);
    if (result.unparsable > 0) failures.push(`fuzz: ${result.unparsable} unparsable frames from the server`);
    if (handler.framesFailed > 0) failures.push(`fuzz: the handler failed on ${handler.framesFailed} frames`);
    if (handler.deadLetters > 0) failures.push(`fuzz: ${handler.deadLetters} dead letters`);
    if (!fuzz.loginAfterwards) failures.push('fuzz: no message and receipt after the fuzz');
  }
  if (faults) {
    messages('faults', faults.counts);
    if (faults.failures.deadLetters > 0) failures.push(`faults: ${faults.failures.deadLetters} dead letters`);
  }
  if (kill) {
    messages('kill', kill.counts);
    if (kill.failures.deadLetters > 0) failures.push(`kill: ${kill.failures.deadLetters} dead letters`);
  }
  if (crash) messages('crash', crash.counts);
  return failures;
}

const row = (name: string, counts: LoadCounts) =>
  `| ${name} | ${counts.sent} | ${counts.stored} | ${counts.delivered} | ${counts.duplicated} | ${counts.lost} |`;

export function report(results: ChaosResults, failures: readonly string[]): string {
  const { fuzz, faults, kill, crash } = results;
  const lines: string[] = [
    '# Chaos run',
    '',
    `\`npm run chaos\` on ${results.cores} cores shared with other work (a scenario run alone,`,
    '`--scenarios NAME`, replaces its own section and keeps the others).',
    '',
    '| scenario | ran at | load average (1/5/15 min) | settings |',
    '|---|---|---|---|',
    ...Object.entries(results.runs).map(
      ([name, run]) =>
        `| ${name} | ${run?.at} | ${run?.loadAverage.map((n) => n.toFixed(1)).join(' / ')} | \`${JSON.stringify(run?.settings)}\` |`,
    ),
    '',
    failures.length === 0 ? '**Result: every check held.**' : `**Result: ${failures.length} checks failed:**`,
    ...failures.map((failure) => `- ${failure}`),
    '',
    '## Messages under faults',
    '',
    'Every message asks for a receipt; clients resend with the same id until the server receipt',
    'arrives, return a receipt for every copy, reconnect and log in again when their connection',
    'drops, and every user logs in once more at the end (the drain brings what still waited).',
    '*Delivered*: reached its recipient at least once. *Duplicated*: further copies, each checked',
    "to carry the first copy's stanza-id (and the server receipt's). *Lost*: never reached its recipient.",
    '',
    '| fault | sent | stored (server receipt) | delivered | duplicated (same stanza-id) | lost |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  if (faults) lines.push(row('DynamoDB calls 5 % and posts 5 % failing', faults.counts));
  if (kill) lines.push(row('frames invocations killed mid-batch', kill.counts));
  if (crash) lines.push(row(`whole system SIGKILLed ×${crash.crashes}, restarted on its data`, crash.counts));
  const details = (name: string, scenario: { counts: LoadCounts }, extra: string[]) => {
    const c = scenario.counts;
    lines.push(
      '',
      `**${name}.** ${extra.join(' ')} Clients resent ${c.resent} times, reconnected ${c.reconnects} times;`,
      `${c.drainedAtEnd} messages arrived only in the final login's drain; server receipts that came`,
      `again: ${c.ackCopies} (${c.ackMismatches} with another stanza-id); delivery receipts back at the`,
      `sender: ${c.receiptsReturned} (again: ${c.receiptCopies}); copies with another stanza-id: ${c.mismatchedIds};`,
      `stanza errors: ${JSON.stringify(c.stanzaErrors)}; ${(c.durationMs / 1000).toFixed(0)} s${c.completedInTime ? '' : ' (the load phase ran into its time limit)'}.`,
    );
  };
  if (faults) {
    const f = faults.faults;
    details('DynamoDB and post faults', faults, [
      `Injected: ${f.ddbThrottled} throttles (ThrottlingException, ProvisionedThroughputExceededException)`,
      `and ${f.ddbServerErrors} 500s (${f.ddbLostAnswers} of them after DynamoDB applied the call) in ${f.ddbCalls}`,
      `DynamoDB attempts; ${f.postsFailed} posts answered 500 or 429. Frames that failed after the SDK's`,
      `retries, and were delivered again by the queue: ${faults.failures.framesFailed}; dead letters: ${faults.failures.deadLetters}.`,
    ]);
  }
  if (kill) {
    const f = kill.faults;
    details('Handler killed mid-batch', kill, [
      `${f.invocationsKilled} invocations killed after some of their records; ${f.recordsReplayed} records`,
      `handled twice (their batch delivered again). Dead letters: ${kill.failures.deadLetters}.`,
    ]);
  }
  if (crash) {
    details('Crash', crash, [
      `The \`npm start\` process group (Node and DynamoDB Local's Java) got SIGKILL ${crash.crashes} times`,
      `during the load and started again on the same data directory, accepting connections after`,
      `${crash.restartMs.map((ms) => `${(ms / 1000).toFixed(1)} s`).join(', ')}.`,
    ]);
  }
  if (fuzz) {
    const r = fuzz.result;
    lines.push(
      '',
      '## Fuzz',
      '',
      `${r.frames} bad frames from seed ${r.seed}, each followed by a probe (a ping once bound, \`<open/>\``,
      'before): the frame counts as answered when the probe is, or when its stream ends. Answer time',
      `p50 ${r.answerMs.p50} ms, p99 ${r.answerMs.p99} ms, max ${r.answerMs.max} ms; answered later than the ${String(results.runs.fuzz?.settings.hangMs ?? 1000)} ms limit: ${r.hangs}`,
      `(${r.answerMs.max < 10_000 ? 'every frame was answered, or its stream closed, within 10 s' : 'some frames reached the 10 s give-up: never answered'}).`,
      `Streams ended with a wrong or missing condition: ${r.wrongEnds.length}; internal-server-errors: ${r.internalErrors};`,
      `frames the handler failed on: ${fuzz.failures.framesFailed}; dead letters: ${fuzz.failures.deadLetters};`,
      `unparsable frames from the server: ${r.unparsable}. A fresh login with a message and its receipt afterwards:`,
      `${fuzz.loginAfterwards ? 'worked' : '**failed**'}. ${(r.durationMs / 1000).toFixed(0)} s.`,
      '',
      '| category | frames | answered, stream open | stream ended with | stanza errors | slowest (ms) |',
      '|---|---:|---:|---|---|---:|',
    );
    const list = (counts: Record<string, number>) =>
      Object.entries(counts)
        .sort(([, a], [, b]) => b - a)
        .map(([name, count]) => `${name} ${count}`)
        .join(', ');
    for (const [category, c] of Object.entries(r.categories).sort(([a], [b]) => a.localeCompare(b))) {
      lines.push(
        `| ${category} | ${c.frames} | ${c.answered} | ${list(c.streamErrors)} | ${list(c.stanzaErrors)} | ${c.maxMs} |`,
      );
    }
    lines.push(
      '',
      '`ws:1009`: the emulator closes a frame over 32 KB as API Gateway does; `ws:1007`: a text frame',
      'that is not UTF-8 is refused by the WebSocket layer.',
    );
    if (r.wrongEnds.length > 0)
      lines.push('', 'Wrong ends:', ...r.wrongEnds.slice(0, 20).map((end) => `- \`${end}\``));
  }
  lines.push(
    '',
    '## Retry settings',
    '',
    `DynamoDB client (functions/runtime.ts): \`${JSON.stringify(DYNAMO_RETRIES)}\`: the SDK retries throttling`,
    'and 500s with exponential backoff and full jitter (100 ms base, 500 ms for throttling), 4 tries in all;',
    'a frame whose call still fails is delivered again by SQS. Posts (lib/gateway/management-api.ts): the',
    'SDK does not retry; the gateway retries 429 and 5xx itself with jittered backoff under 2 s.',
    '',
  );
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scenarios: { type: 'string', default: SCENARIOS.join(',') },
      'fuzz-frames': { type: 'string', default: '10000' },
      'fuzz-workers': { type: 'string', default: '4' },
      'hang-ms': { type: 'string', default: '1000' },
      pairs: { type: 'string', default: '10' },
      messages: { type: 'string', default: '50' },
      'kill-share': { type: 'string', default: '0.3' },
      'timeout-s': { type: 'string', default: '600' },
      seed: { type: 'string', default: '20261129' },
      out: { type: 'string', default: 'bench/results/chaos' },
      merge: { type: 'string', multiple: true, default: [] },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(`Usage: npm run chaos -- [options]
  --scenarios LIST   ${SCENARIOS.join(',')} (default all)
  --fuzz-frames N    bad frames (default 10000)
  --fuzz-workers N   connections fuzzing at once (default 4)
  --hang-ms N        a frame not answered within this is a hang (default 1000)
  --pairs N          user pairs of the message loads (default 10)
  --messages N       messages each user sends its partner (default 50: 10 pairs x 2 x 50 = 1,000)
  --kill-share X     share of multi-record frames invocations killed (default 0.3)
  --timeout-s N      most seconds a message load runs before its final drain (default 600)
  --seed N           seed of the fuzz and the faults
  --out PATH         report path without extension (default bench/results/chaos)
  --merge FILE.json  also take the scenarios of another run's results (repeatable)
  --scenarios none   only rewrite the report from the results at hand`);
    return;
  }
  const chosen = values.scenarios
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '' && name !== 'none') as ScenarioName[];
  for (const name of chosen) {
    if (!SCENARIOS.includes(name)) throw new Error(`unknown scenario ${name}`);
  }
  const seed = Number(values.seed);
  const size = {
    pairs: Number(values.pairs),
    messagesPerUser: Number(values.messages),
    timeoutMs: Number(values['timeout-s']) * 1000,
    log: (message: string) => console.log(`  ${message}`),
  };
  const out = resolve(values.out);
  const results: ChaosResults = { runs: {}, cores: cpus().length };
  const settings = (name: ScenarioName, own: Record<string, unknown>) => {
    results.runs[name] = { at: new Date().toISOString(), loadAverage: loadavg(), settings: { seed, ...own } };
  };
  const time = async <T>(name: string, run: () => Promise<T>) => {
    console.log(`${name}…`);
    const started = Date.now();
    const value = await run();
    console.log(`${name}: ${((Date.now() - started) / 1000).toFixed(0)} s`);
    return value;
  };
  if (chosen.includes('fuzz')) {
    settings('fuzz', {
      frames: values['fuzz-frames'],
      workers: values['fuzz-workers'],
      hangMs: values['hang-ms'],
    });
    results.fuzz = await time('fuzz', () =>
      fuzzScenario({
        frames: Number(values['fuzz-frames']),
        seed,
        workers: Number(values['fuzz-workers']),
        hangMs: Number(values['hang-ms']),
        log: size.log,
      }),
    );
  }
  const loadSettings = { pairs: size.pairs, messagesPerUser: size.messagesPerUser };
  if (chosen.includes('faults')) {
    settings('faults', { ...loadSettings, ddb: 0.05, post: 0.05 });
    results.faults = await time('DynamoDB and post faults', () =>
      faultLoadScenario({ ddb: 0.05, post: 0.05, kill: 0, seed }, size),
    );
  }
  if (chosen.includes('kill')) {
    settings('kill', { ...loadSettings, kill: values['kill-share'] });
    results.kill = await time('handler killed mid-batch', () =>
      faultLoadScenario({ ddb: 0, post: 0, kill: Number(values['kill-share']), seed }, size),
    );
  }
  if (chosen.includes('crash')) {
    const crashAt = [0.3, 0.65];
    settings('crash', { ...loadSettings, crashAt });
    results.crash = await time('crash', () => crashScenario({ ...size, crashAt }));
  }
  // Scenarios not run this time keep their last results (read now: another run may have
  // written since this one started), and so do those of the files given with --merge.
  const readResults = (path: string): Partial<ChaosResults> =>
    existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Partial<ChaosResults>) : {};
  for (const path of [`${out}.json`, ...values.merge.map((file) => resolve(file))].reverse()) {
    const earlier = readResults(path);
    for (const name of SCENARIOS) {
      if (results[name] !== undefined || earlier[name] === undefined) continue;
      Object.assign(results, { [name]: earlier[name] });
      results.runs[name] = earlier.runs?.[name];
    }
  }
  const failures = verdict(results);
  writeFileSync(`${out}.md`, report(results, failures));
  writeFileSync(`${out}.json`, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`wrote ${out}.md`);
  for (const failure of failures) console.log(`FAILED: ${failure}`);
  process.exitCode = failures.length > 0 ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
  // Sockets of stopped systems may linger; the report is written.
  process.exit(process.exitCode ?? 0);
}
