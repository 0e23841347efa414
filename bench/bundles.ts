// Cold start, part one: each Lambda entry bundled the way the stack bundles it (esbuild,
// minified ESM for node22, the AWS SDK left out as with bundleAwsSDK: false, so the
// runtime's copy is imported), its size, what is in it, and the time a fresh Node process
// takes to import it (the SDK clients it imports included), the median of several runs.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, type Metafile } from 'esbuild';
import { round } from './harness.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Inside node_modules so that the bundles' `@aws-sdk/*` imports resolve to the project's copies. */
const OUT_DIR = join(ROOT, 'node_modules', '.cache', 'serverless-xmpp-bench');

/** As infra/function.ts: ESM bundles still contain CommonJS dependencies that call `require`. */
const ESM_REQUIRE_BANNER =
  "import { createRequire } from 'module'; const require = createRequire(import.meta.url);";

export const ENTRIES = ['functions/connect.ts', 'functions/frames.ts', 'functions/expired.ts'] as const;

export interface BundleResult {
  readonly entry: string;
  readonly bytes: number;
  readonly sourceMapBytes: number;
  /** The biggest contributors to the minified output, by package. */
  readonly contents: { readonly name: string; readonly bytes: number }[];
  /** The SDK packages the bundle imports (left out of it, provided by the runtime). */
  readonly sdkImports: string[];
  /** A fresh process importing the bundle, the SDK clients it imports included. Absent with 0 runs. */
  readonly importMs?: Timing;
  /** The same with NODE_OPTIONS=--enable-source-maps, as the stack sets it. */
  readonly importWithSourceMapsMs?: Timing;
  /** The SDK packages alone, in a fresh process. */
  readonly sdkImportMs?: Timing;
  /** The bundle alone: a fresh process that imported the SDK packages first, untimed. */
  readonly ownImportMs?: Timing;
}

export interface Timing {
  readonly median: number;
  /** The fastest run: the least disturbed by other work on the machine. */
  readonly min: number;
  readonly runs: number[];
}

export interface BundlesResult {
  readonly node: string;
  readonly esbuild: string;
  readonly bundles: BundleResult[];
}

function byPackage(metafile: Metafile, output: string): { name: string; bytes: number }[] {
  const totals = new Map<string, number>();
  for (const [path, input] of Object.entries(metafile.outputs[output]?.inputs ?? {})) {
    const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
    const name = match ? (match[1] as string) : `(project) ${path.split('/')[0]}/`;
    totals.set(name, (totals.get(name) ?? 0) + input.bytesInOutput);
  }
  return [...totals]
    .map(([name, bytes]) => ({ name, bytes }))
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, 8);
}

/** Imports BENCH_FIRST (untimed), then times importing every module in BENCH_TIMED. */
const IMPORT_SCRIPT = [
  'for (const m of JSON.parse(process.env.BENCH_FIRST)) await import(m);',
  'const t = performance.now();',
  'for (const m of JSON.parse(process.env.BENCH_TIMED)) await import(m);',
  'process.stdout.write(String(performance.now() - t));',
].join(' ');

/** Milliseconds a fresh Node process (cwd: the project) takes to import `timed`. */
function timeImport(
  timed: readonly string[],
  options: { first?: readonly string[]; sourceMaps?: boolean } = {},
) {
  const output = execFileSync(process.execPath, ['--input-type=module', '-e', IMPORT_SCRIPT], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      BENCH_FIRST: JSON.stringify(options.first ?? []),
      BENCH_TIMED: JSON.stringify(timed),
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...(options.sourceMaps ? { NODE_OPTIONS: '--enable-source-maps' } : {}),
    },
    encoding: 'utf8',
  });
  return round(Number(output), 1);
}

function timing(runs: number, measure: () => number): Timing {
  const values = Array.from({ length: runs }, measure);
  return { median: round(median(values), 1), min: Math.min(...values), runs: values };
}

const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
};

/** `runs` fresh processes per timing; 0 builds and measures sizes only. */
export async function measureBundles(runs = 7): Promise<BundlesResult> {
  rmSync(OUT_DIR, { recursive: true, force: true });
  mkdirSync(OUT_DIR, { recursive: true });
  const { version } = await import('esbuild');
  const bundles: BundleResult[] = [];
  for (const entry of ENTRIES) {
    const name = entry.replace(/^functions\//, '').replace(/\.ts$/, '');
    const outfile = join(OUT_DIR, `${name}.mjs`);
    const result = await build({
      entryPoints: [resolve(ROOT, entry)],
      outfile,
      bundle: true,
      minify: true,
      format: 'esm',
      platform: 'node',
      target: 'node22',
      mainFields: ['module', 'main'],
      external: ['@aws-sdk/*'],
      banner: { js: ESM_REQUIRE_BANNER },
      sourcemap: true,
      sourcesContent: false,
      metafile: true,
      logLevel: 'error',
    });
    const outputKey = Object.keys(result.metafile.outputs).find((key) => key.endsWith(`${name}.mjs`)) ?? '';
    const sdkImports = [
      ...new Set(
        (result.metafile.outputs[outputKey]?.imports ?? [])
          .filter((entry) => entry.external && entry.path.startsWith('@aws-sdk/'))
          .map((entry) => entry.path),
      ),
    ].sort();
    const bundle = pathToFileURL(outfile).href;
    const sizes = {
      entry,
      bytes: statSync(outfile).size,
      sourceMapBytes: statSync(`${outfile}.map`).size,
      contents: byPackage(result.metafile, outputKey),
      sdkImports,
    };
    if (runs === 0) {
      bundles.push(sizes);
      continue;
    }
    timeImport([bundle]); // the first run also fills the file system cache
    bundles.push({
      ...sizes,
      importMs: timing(runs, () => timeImport([bundle])),
      importWithSourceMapsMs: timing(runs, () => timeImport([bundle], { sourceMaps: true })),
      sdkImportMs: timing(runs, () => timeImport(sdkImports)),
      ownImportMs: timing(runs, () => timeImport([bundle], { first: sdkImports })),
    });
  }
  return { node: process.version, esbuild: version, bundles };
}
