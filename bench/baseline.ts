// `npm run bench -- --baseline <git ref>`: the same scenarios against a worktree of that ref and
// against this tree, alternating, in one run. Absolute times on a shared machine drift; the
// ratio of two figures taken minutes apart in one run does not, or much less.
//
// The ref is checked out once per commit under node_modules/.cache (a detached git worktree)
// and installed with `npm ci`, as this tree is. The load (and the bundles) are measured by this
// tree's code against either tree: the server is a process of its own started from the tree's
// sources (bench/server-process.ts), the bundles are built from the tree's entries. The other
// sections are counted by each tree's own bench (`bench/run.ts --only <section>` run there).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchOptions, BenchPlace, BenchResults, Section } from './run.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CACHE = join(ROOT, 'node_modules', '.cache', 'serverless-xmpp-baseline');

export interface Baseline {
  readonly ref: string;
  readonly commit: string;
  /** Its worktree, installed. */
  readonly tree: string;
}

/** A worktree of `ref`, installed with `npm ci` (kept under node_modules/.cache for the next run). */
export function prepareBaseline(ref: string, log: (line: string) => void): Baseline {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
  const commit = git('rev-parse', '--verify', `${ref}^{commit}`);
  const tree = join(CACHE, commit);
  if (!existsSync(join(tree, 'package.json'))) {
    mkdirSync(CACHE, { recursive: true });
    rmSync(tree, { recursive: true, force: true });
    git('worktree', 'prune');
    log(`baseline: git worktree of ${ref} (${commit.slice(0, 10)}) in ${tree}`);
    git('worktree', 'add', '--detach', tree, commit);
  }
  const installed = join(tree, 'node_modules', '.package-lock.json');
  if (!existsSync(installed)) {
    log('baseline: npm ci…');
    execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], {
      cwd: tree,
      stdio: 'inherit',
    });
  }
  return { ref, commit, tree };
}

/** The sections this tree's code measures against either tree; the others each tree counts itself. */
const MEASURED_HERE: readonly Section[] = ['load', 'bundles'];

/** The flags of `bench/run.ts` that reproduce `options` (those every version of it knows). */
function flags(options: BenchOptions, section: Section, out: string): string[] {
  return [
    `--pairs=${options.load.pairs}`,
    `--messages=${options.load.messages}`,
    `--window=${options.load.window}`,
    `--body-bytes=${options.load.bodyBytes}`,
    `--backlogs=${options.backlogs.join(',')}`,
    `--room-sizes=${options.roomSizes.join(',')}`,
    `--cpu-iterations=${options.cpuIterations}`,
    `--import-runs=${options.importRuns}`,
    ...(options.roster ? [`--contacts=${options.roster.contacts}`, `--online=${options.roster.online}`] : []),
    ...(Number.isFinite(options.fillStoreAbove) ? [`--fill-store-above=${options.fillStoreAbove}`] : []),
    `--only=${section}`,
    `--out=${out}`,
  ];
}

/**
 * One section of the baseline, counted by its own bench in its own process. Some versions of
 * bench/run.ts write their results and then stay alive (a handle left open): the process is
 * ended once it has written latest.md and gone quiet, or after an hour.
 */
async function runThere(
  baseline: Baseline,
  options: BenchOptions,
  section: Section,
): Promise<Partial<BenchResults>> {
  const out = mkdtempSync(join(tmpdir(), 'bench-baseline-'));
  try {
    await new Promise<void>((resolve) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', 'bench/run.ts', ...flags(options, section, out)],
        {
          cwd: baseline.tree,
          env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let quiet: NodeJS.Timeout | undefined;
      const deadline = setTimeout(() => child.kill(), 60 * 60 * 1000);
      const written = () => existsSync(join(out, 'latest.md'));
      const activity = () => {
        if (quiet) clearTimeout(quiet);
        if (written()) quiet = setTimeout(() => child.kill(), 5000);
      };
      child.stdout.on('data', activity);
      child.stderr.on('data', (chunk: Buffer) => {
        process.stderr.write(chunk);
        activity();
      });
      child.once('exit', () => {
        clearTimeout(deadline);
        if (quiet) clearTimeout(quiet);
        resolve();
      });
    });
    return JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as Partial<BenchResults>;
  } catch (error) {
    return { errors: [{ section, message: `baseline: ${String(error)}` }] };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

type Runner = (options: BenchOptions, place: BenchPlace) => Promise<BenchResults>;

/** Section by section, the baseline and this tree in turn (which goes first alternates). */
export async function runAlternating(
  baseline: Baseline,
  options: BenchOptions,
  run: Runner,
  log: (line: string) => void,
): Promise<{ current: BenchResults[]; baseline: Partial<BenchResults>[] }> {
  const current: BenchResults[] = [];
  const before: Partial<BenchResults>[] = [];
  for (const [index, section] of options.sections.entries()) {
    const only = { ...options, sections: [section] };
    const there = async () => {
      log(`baseline ${baseline.ref}: ${section}`);
      before.push(
        MEASURED_HERE.includes(section)
          ? await run(only, { tree: baseline.tree })
          : await runThere(baseline, options, section),
      );
    };
    const here = async () => {
      log(`this tree: ${section}`);
      current.push(await run(only, {}));
    };
    if (index % 2 === 0) {
      await there();
      await here();
    } else {
      await here();
      await there();
    }
  }
  return { current, baseline: before };
}

/** One result from per-section parts: each part contributes what it measured. */
export function mergeParts<T extends Partial<BenchResults>>(parts: readonly T[]): T {
  const merged: Record<string, unknown> = { targets: [], skipped: [], errors: [] };
  for (const part of parts) {
    for (const [key, value] of Object.entries(part)) {
      if (value === undefined) continue;
      if (key === 'skipped' || key === 'errors') {
        (merged[key] as unknown[]).push(...(value as unknown[]));
      } else {
        merged[key] ??= value;
      }
    }
  }
  return merged as T;
}

export interface Comparison {
  readonly path: string;
  readonly baseline: number;
  readonly current: number;
  /** current / baseline; null where the baseline is 0. */
  readonly ratio: number | null;
}

/** Keys that are settings or raw samples, not figures. */
const NOT_FIGURES = new Set([
  'options',
  'machine',
  'generatedAt',
  'samples',
  'runs',
  'targets',
  'skipped',
  'errors',
]);

function leaves(value: unknown, path: string, out: Map<string, number>): void {
  if (typeof value === 'number') {
    if (Number.isFinite(value)) out.set(path, value);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((entry, index) => {
      // Name array entries by what they are where they say so (a bundle's entry, a case's name).
      const label =
        entry && typeof entry === 'object'
          ? ((entry as Record<string, unknown>).entry ??
            (entry as Record<string, unknown>).backlog ??
            (entry as Record<string, unknown>).occupants ??
            (entry as Record<string, unknown>).name ??
            index)
          : index;
      leaves(entry, `${path}[${String(label)}]`, out);
    });
    return;
  }
  if (value && typeof value === 'object') {
    for (const [key, entry] of Object.entries(value)) {
      if (NOT_FIGURES.has(key)) continue;
      leaves(entry, path ? `${path}.${key}` : key, out);
    }
  }
}

/** Every numeric figure present in both, with the ratio this tree / baseline. */
export function compare(baseline: Partial<BenchResults>, current: Partial<BenchResults>): Comparison[] {
  const before = new Map<string, number>();
  const after = new Map<string, number>();
  leaves(baseline, '', before);
  leaves(current, '', after);
  const rows: Comparison[] = [];
  for (const [path, value] of after) {
    const old = before.get(path);
    if (old === undefined) continue;
    rows.push({
      path,
      baseline: old,
      current: value,
      ratio: old === 0 ? null : Math.round((value / old) * 1000) / 1000,
    });
  }
  return rows;
}
