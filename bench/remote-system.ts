// The bench's side of bench/server-process.ts: starts the local system of a source tree in a
// child process and talks to it over IPC. What the load scenario (bench/load.ts) needs of a
// server is `LoadTarget`; the clients run here, apart from the server's CPU.
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Cost } from './harness.ts';
import type { Ready, Reply, Request, Usage } from './server-process.ts';

export type { Usage } from './server-process.ts';

/** A running server the load drives: where to connect, and its counters. */
export interface LoadTarget {
  readonly url: string;
  readonly domain: string;
  addUsers(users: readonly string[]): Promise<void>;
  /** Resolves once nothing is queued or being handled. */
  idle(): Promise<void>;
  connectionIds(): Promise<string[]>;
  cost(): Promise<Cost>;
  /** CPU used so far by the server process and, apart, by DynamoDB Local. */
  usage(): Promise<Usage>;
}

export interface RemoteSystem extends LoadTarget {
  /** The source tree it runs. */
  readonly tree: string;
  readonly pid: number;
  stop(): Promise<void>;
}

const SERVER = fileURLToPath(new URL('./server-process.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));

type Distribute<T> = T extends unknown ? Omit<T, 'id'> : never;

/** Starts the local system of `tree` (default: this one) in a child process. */
export async function startRemoteSystem(tree: string = ROOT): Promise<RemoteSystem> {
  const child: ChildProcess = fork(SERVER, [], {
    // tsx from this tree compiles the other tree's sources; their imports resolve from their tree.
    cwd: ROOT,
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, BENCH_TREE: tree, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  let nextId = 1;
  let exited = false;
  const ready = new Promise<Ready>((resolve, reject) => {
    child.on('message', (message: Ready | Reply) => {
      if ('ready' in message) return resolve(message);
      const waiting = pending.get(message.id);
      pending.delete(message.id);
      if (message.error !== undefined) waiting?.reject(new Error(message.error));
      else waiting?.resolve(message.value);
    });
    child.once('exit', (code) => {
      exited = true;
      const error = new Error(`the server process of ${tree} exited with code ${code}`);
      reject(error);
      for (const waiting of pending.values()) waiting.reject(error);
      pending.clear();
    });
  });
  const call = <T>(request: Distribute<Request>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (exited) return reject(new Error(`the server process of ${tree} is gone`));
      const id = nextId++;
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      child.send({ ...request, id });
    });
  const { url, domain } = await ready;
  return {
    tree,
    pid: child.pid ?? 0,
    url,
    domain,
    addUsers: (users) => call({ op: 'addUsers', users }),
    idle: () => call({ op: 'idle' }),
    connectionIds: () => call({ op: 'connectionIds' }),
    cost: () => call({ op: 'cost' }),
    usage: () => call({ op: 'usage' }),
    async stop() {
      if (exited) return;
      const gone = new Promise((resolve) => child.once('exit', resolve));
      await call({ op: 'stop' }).catch(() => {});
      await gone;
    },
  };
}
