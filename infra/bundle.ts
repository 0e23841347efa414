// How every Lambda function is bundled, in one place: the stack bundles each entry with it when
// it synthesises (infra/function.ts), and the benchmark (bench/bundles.ts) builds the very same
// bundles to measure their size and cold start.
//
// esbuild, minified ESM for Node.js 22, the AWS SDK inside (the version the tests ran against,
// not whatever the runtime ships that day), and split: every module the code imports with
// `import()` on first use (the Management API, SQS and S3 clients, the SDK's credential providers
// other than the environment's) goes into a chunk of its own, loaded only when first needed.
// V8 parses all of a module's text when it is imported, so a single file made every cold start
// parse clients the invocation never used; split, a function's start parses its entry and the
// chunks it imports statically (figures in bench/results/cold-start.md, docs/costs.md).
//
// esbuild calls its code splitting a work in progress (import order across chunks has known
// issues): test/synth runs every synthesised bundle in its own process, and must stay in CI.
import { type BuildOptions, buildSync, type Metafile } from 'esbuild';

/** ESM bundles still contain CommonJS dependencies that call `require` (in every chunk). */
const ESM_REQUIRE_BANNER =
  "import { createRequire } from 'module'; const require = createRequire(import.meta.url);";

/** The function's handler: `handler`, exported by the entry's output, `index.mjs` (entryNames). */
export const HANDLER = 'index.handler';

export const FUNCTION_BUNDLING = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  mainFields: ['module', 'main'],
  banner: { js: ESM_REQUIRE_BANNER },
  minify: true,
  // Source maps go with the code (NODE_OPTIONS=--enable-source-maps, infra/function.ts): stack
  // traces in the logs name our TypeScript. Without the sources' text, to keep the asset small.
  sourcemap: true,
  sourcesContent: false,
  splitting: true,
  entryNames: 'index',
  chunkNames: 'chunks/[name]-[hash]',
  outExtension: { '.js': '.mjs' },
  logLevel: 'warning',
} as const satisfies BuildOptions;

/** Bundles `entry` (an absolute path) into `outdir`: index.mjs, its chunks and source maps. */
export function bundleFunction(entry: string, outdir: string): Metafile {
  const { metafile } = buildSync({ ...FUNCTION_BUNDLING, entryPoints: [entry], outdir, metafile: true });
  return metafile;
}

/**
 * The output files a cold start loads: the entry and, transitively, every chunk it imports
 * statically (what `import()` loads later is left out). Paths as the metafile has them.
 */
export function startupFiles(metafile: Metafile): string[] {
  // Every module imported with `import()` is an entry point of its own too (named as chunks).
  const entry = Object.keys(metafile.outputs).find((path) => /(^|\/)index\.mjs$/.test(path));
  const seen = new Set<string>();
  const visit = (path: string) => {
    if (seen.has(path)) return;
    seen.add(path);
    for (const imported of metafile.outputs[path]?.imports ?? [])
      if (imported.kind === 'import-statement' && !imported.external) visit(imported.path);
  };
  if (entry) visit(entry);
  return [...seen];
}
