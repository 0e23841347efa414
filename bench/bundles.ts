// Cold start: each Lambda entry bundled exactly as the stack bundles it (infra/bundle.ts:
// esbuild, minified ESM for node22, the AWS SDK inside, split into chunks loaded on first use),
// its size, what is in it, and what a fresh Node.js process takes to import it and handle its
// first event (the SDK client built on first use and its first request included), the median of
// several runs. A baseline tree is bundled as that tree bundled its functions.
//
// The entries are every file in functions/ that exports `handler`, so a new function is
// measured without being listed here. The first event of each known function is a real one
// against a local system started for the purpose (DynamoDB Local and the emulator): $connect of
// a new connection, its `<open/>` frame, the authentication deadline of a connection, the TTL
// deletion of a connection item. A function with no event here is timed on its import alone.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { build, type Metafile } from 'esbuild';
import { WebSocket } from 'ws';
import { FUNCTION_BUNDLING } from '../infra/bundle.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../infra/local/dynamodb.ts';
import { type LocalSystem, startLocalSystem } from '../infra/local/system.ts';
import { round } from './harness.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Every `functions/*.ts` of `tree` that exports a `handler`: the stack's entries. */
export function functionEntries(tree = ROOT): string[] {
  const directory = join(tree, 'functions');
  return readdirSync(directory)
    .filter((name) => name.endsWith('.ts') && !name.endsWith('.test.ts'))
    .filter((name) =>
      /export\s+(const|let|async\s+function|function)\s+handler\b/.test(
        readFileSync(join(directory, name), 'utf8'),
      ),
    )
    .sort()
    .map((name) => `functions/${name}`);
}

export interface BundleResult {
  readonly entry: string;
  /** What a cold start loads: the entry's file and the chunks it imports statically. */
  readonly bytes: number;
  /** Every file of the bundle (the deployed asset, source maps aside). */
  readonly totalBytes: number;
  readonly sourceMapBytes: number;
  /** The biggest contributors to what a cold start loads, by package. */
  readonly contents: { readonly name: string; readonly bytes: number }[];
  /** The first event the cold start handles, or null: import alone. */
  readonly firstEvent: string | null;
  /** Import + first event in a fresh process, NODE_OPTIONS=--enable-source-maps as deployed. */
  readonly coldStartMs?: Timing;
  /** The import alone, in the same runs. */
  readonly importMs?: Timing;
  /** The first event alone, in the same runs. */
  readonly firstEventMs?: Timing;
  /** Import + first event without --enable-source-maps: what the setting costs. */
  readonly coldStartWithoutSourceMapsMs?: Timing;
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

function byPackage(metafile: Metafile, outputs: readonly string[]): { name: string; bytes: number }[] {
  const totals = new Map<string, number>();
  for (const output of outputs)
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

/** Imports the bundle, then hands it BENCH_EVENT with a Lambda-like context; prints the times. */
const COLD_SCRIPT = [
  'const t0 = performance.now();',
  'const { handler } = await import(process.env.BENCH_BUNDLE);',
  'const t1 = performance.now();',
  'const event = JSON.parse(process.env.BENCH_EVENT);',
  'if (event) await handler(event, { awsRequestId: "cold", functionName: "cold",',
  '  getRemainingTimeInMillis: () => 10000 });',
  'const t2 = performance.now();',
  'process.stdout.write("\\nBENCH_TIMES " + JSON.stringify([t1 - t0, t2 - t1]) + "\\n");',
  'process.exit(0);',
].join(' ');

const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
};

const timing = (values: number[]): Timing => ({
  median: round(median(values), 1),
  min: round(Math.min(...values), 1),
  runs: values.map((value) => round(value, 1)),
});

/** Opens a WebSocket to the emulator ($connect runs) and returns its connection id. */
async function openConnection(system: LocalSystem): Promise<{ id: string; socket: WebSocket }> {
  const before = new Set(system.api.connectionIds);
  const socket = new WebSocket(system.url, 'xmpp');
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  socket.on('message', () => {});
  const id = system.api.connectionIds.find((candidate) => !before.has(candidate));
  if (!id) throw new Error('no new connection');
  return { id, socket };
}

type EventMaker = (system: LocalSystem, run: number) => Promise<{ event: unknown; done(): void }>;

const sqsRecord = (body: string, attributes: Record<string, string>) => ({
  messageId: `cold-${Math.random()}`,
  body,
  attributes: { SentTimestamp: String(Date.now()), MessageGroupId: attributes.connectionId ?? 'cold' },
  messageAttributes: Object.fromEntries(
    Object.entries(attributes).map(([name, value]) => [name, { stringValue: value, dataType: 'String' }]),
  ),
});

/** The first event of each known function (by file name), built against the local system. */
const FIRST_EVENTS: Record<string, { describe: string; make: EventMaker }> = {
  connect: {
    describe: '$connect of a new connection (one conditional put)',
    make: async (_, run) => ({
      event: {
        requestContext: { connectionId: `cold-connect-${run}=`, routeKey: '$connect', eventType: 'CONNECT' },
        headers: { 'Sec-WebSocket-Protocol': 'xmpp' },
      },
      done() {},
    }),
  },
  frames: {
    describe: 'the `<open/>` frame of a new connection (its record read and saved, two posts)',
    make: async (system) => {
      const { id, socket } = await openConnection(system);
      const open = `<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="${system.config.domain}" version="1.0"/>`;
      return {
        event: {
          Records: [
            sqsRecord(`b64:${Buffer.from(open).toString('base64')}`, {
              connectionId: id,
              eventType: 'MESSAGE',
            }),
          ],
        },
        done: () => socket.terminate(),
      };
    },
  },
  'auth-deadline': {
    describe: 'the authentication deadline of a connection still negotiating (one read, a close)',
    make: async (system) => {
      const { id, socket } = await openConnection(system);
      return { event: { Records: [sqsRecord(id, {})] }, done: () => socket.terminate() };
    },
  },
  expired: {
    describe: 'the TTL deletion of an unbound connection’s item',
    make: async (_, run) => ({
      event: {
        Records: [
          {
            eventName: 'REMOVE',
            userIdentity: { type: 'Service', principalId: 'dynamodb.amazonaws.com' },
            dynamodb: {
              OldImage: {
                pk: { S: `CONN#cold-expired-${run}=` },
                sk: { S: '#CONN' },
                connectionId: { S: `cold-expired-${run}=` },
                expiresAt: { N: '1' },
              },
            },
          },
        ],
      },
      done() {},
    }),
  },
};

/** What the stack and Lambda would set, resolved to the local system. */
function functionEnvironment(system: LocalSystem): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    AWS_REGION: LOCAL_REGION,
    AWS_DEFAULT_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_SESSION_TOKEN: 'local',
    AWS_ENDPOINT_URL_DYNAMODB: system.dynamo.endpoint,
    AWS_LAMBDA_FUNCTION_NAME: 'cold',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '512',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    TABLE_NAME: system.tableName,
    XMPP_DOMAIN: system.config.domain,
    MUC_DOMAIN: system.config.mucDomain,
    MANAGEMENT_ENDPOINT: system.api.managementEndpoint,
    POWERTOOLS_METRICS_NAMESPACE: 'ServerlessXmppBench',
    POWERTOOLS_SERVICE_NAME: 'serverless-xmpp',
    LOG_LEVEL: 'error',
  };
}

/** One fresh process: import and first event, in ms (asynchronously: this process serves its requests). */
async function coldRun(bundle: string, event: unknown, env: Record<string, string>, sourceMaps: boolean) {
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', COLD_SCRIPT], {
    cwd: ROOT,
    env: {
      ...env,
      BENCH_BUNDLE: bundle,
      BENCH_EVENT: JSON.stringify(event ?? null),
      ...(sourceMaps ? { NODE_OPTIONS: '--enable-source-maps' } : {}),
    },
    encoding: 'utf8',
    timeout: 60_000,
  });
  // The function's own log lines (and EMF metrics) go to stdout too.
  const line = stdout.split('\n').find((text) => text.startsWith('BENCH_TIMES '));
  if (!line) throw new Error(`no times from ${bundle}: ${stdout.slice(0, 500)}`);
  const [importMs, eventMs] = JSON.parse(line.slice('BENCH_TIMES '.length)) as [number, number];
  return { importMs, eventMs };
}

interface Built {
  readonly metafile: Metafile;
  /** The module Lambda imports (absolute). */
  readonly module: string;
  /** What its cold start loads, as the metafile names them (relative to the working directory). */
  readonly startup: readonly string[];
  /** Every file written (absolute). */
  readonly files: readonly string[];
}

/** The bytes of these files (paths absolute, or relative to the working directory). */
const bytesOf = (paths: readonly string[]) =>
  paths.reduce((sum, path) => sum + statSync(resolve(path)).size, 0);

/**
 * Bundles `entry` into `outdir` as `tree` bundles its functions: with its infra/bundle.ts, or, for
 * a tree from before that file, as one file (its settings were today's, without the splitting).
 */
async function bundleAs(tree: string, entry: string, outdir: string): Promise<Built> {
  const files = () =>
    readdirSync(outdir, { recursive: true, encoding: 'utf8' }).map((path) => join(outdir, path));
  const module = join(outdir, 'index.mjs');
  if (existsSync(join(tree, 'infra', 'bundle.ts'))) {
    const own = (await import(
      pathToFileURL(join(tree, 'infra', 'bundle.ts')).href
    )) as typeof import('../infra/bundle.ts');
    const metafile = own.bundleFunction(entry, outdir);
    return { metafile, module, startup: own.startupFiles(metafile), files: files() };
  }
  const { splitting, entryNames, chunkNames, outExtension, ...oneFile } = FUNCTION_BUNDLING;
  const { metafile } = await build({ ...oneFile, entryPoints: [entry], outfile: module, metafile: true });
  return {
    metafile,
    module,
    startup: Object.keys(metafile.outputs).filter((path) => path.endsWith('.mjs')),
    files: files(),
  };
}

/**
 * `runs` fresh processes per timing; 0 builds and measures sizes only. `tree` is the source tree
 * whose functions are bundled (a baseline's worktree), as that tree bundles them (`bundleAs`).
 */
export async function measureBundles(runs = 7, tree = ROOT): Promise<BundlesResult> {
  const outDir = join(tree, 'node_modules', '.cache', 'serverless-xmpp-bench');
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const { version } = await import('esbuild');
  const system = runs > 0 ? await startLocalSystem({ ttlSweepMs: 0 }) : undefined;
  const bundles: BundleResult[] = [];
  try {
    for (const entry of functionEntries(tree)) {
      const name = entry.replace(/^functions\//, '').replace(/\.ts$/, '');
      const built = await bundleAs(tree, join(tree, entry), join(outDir, name));
      const known = FIRST_EVENTS[name];
      const sizes: BundleResult = {
        entry,
        bytes: bytesOf(built.startup),
        totalBytes: bytesOf(built.files.filter((path) => path.endsWith('.mjs'))),
        sourceMapBytes: bytesOf(built.files.filter((path) => path.endsWith('.map'))),
        contents: byPackage(built.metafile, built.startup),
        firstEvent: known?.describe ?? null,
      };
      if (!system) {
        bundles.push(sizes);
        continue;
      }
      const bundle = pathToFileURL(built.module).href;
      const env = functionEnvironment(system);
      const sample = async (run: number, sourceMaps: boolean) => {
        const made = known ? await known.make(system, run) : { event: null, done() {} };
        try {
          return await coldRun(bundle, made.event, env, sourceMaps);
        } finally {
          made.done();
          await system.api.idle();
        }
      };
      await sample(-1, true); // fills the file system cache
      const deployed = [];
      const plain = [];
      for (let run = 0; run < runs; run++) {
        // Alternated, so that drift on the machine falls on both alike.
        deployed.push(await sample(run, true));
        plain.push(await sample(runs + run, false));
      }
      bundles.push({
        ...sizes,
        coldStartMs: timing(deployed.map((r) => r.importMs + r.eventMs)),
        importMs: timing(deployed.map((r) => r.importMs)),
        firstEventMs: timing(deployed.map((r) => r.eventMs)),
        coldStartWithoutSourceMapsMs: timing(plain.map((r) => r.importMs + r.eventMs)),
      });
    }
  } finally {
    await system?.stop();
  }
  return { node: process.version, esbuild: version, bundles };
}
