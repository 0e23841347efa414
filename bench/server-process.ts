// The server side of the load, in a process of its own (started by bench/remote-system.ts): the
// local system of one source tree (BENCH_TREE: this one, or a worktree of the baseline), the
// emulator with the handlers in process and DynamoDB Local as its child. The clients stay in the
// bench's process, so `process.cpuUsage()` here is the server's CPU alone (emulator, handlers,
// SDK), and DynamoDB Local's (a descendant process) is read from /proc apart.
//
// It imports the tree's own modules by path, so it uses only what the local system has offered
// for a while: startLocalSystem with a capacity meter, the store's putUser, the emulator's
// counters, connection ids and idle().
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export type Request =
  | { readonly id: number; readonly op: 'addUsers'; readonly users: readonly string[] }
  | { readonly id: number; readonly op: 'idle' | 'connectionIds' | 'cost' | 'usage' | 'stop' };

export type Reply = { readonly id: number; readonly value?: unknown; readonly error?: string };

/** Ready message: where the clients connect. */
export interface Ready {
  readonly ready: true;
  readonly url: string;
  readonly domain: string;
}

/** CPU milliseconds so far: this process, and its descendants (DynamoDB Local). */
export interface Usage {
  readonly serverCpuMs: number;
  readonly dynamoCpuMs: number;
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** User + system CPU of every live descendant of `pid`, from /proc (0 where /proc is absent). */
export function descendantsCpuMs(pid: number): number {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return 0;
  }
  const stats = new Map<number, { parent: number; ticks: number }>();
  for (const name of entries) {
    try {
      const text = readFileSync(`/proc/${name}/stat`, 'utf8');
      // The command may hold spaces and parentheses: fields start after the last ')'.
      const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
      stats.set(Number(name), { parent: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      // gone meanwhile
    }
  }
  const inTree = (candidate: number): boolean => {
    for (let at = stats.get(candidate)?.parent; at !== undefined && at > 1; at = stats.get(at)?.parent) {
      if (at === pid) return true;
    }
    return false;
  };
  let ticks = 0;
  for (const [candidate, stat] of stats) if (inTree(candidate)) ticks += stat.ticks;
  return (ticks * 1000) / TICKS_PER_SECOND;
}

async function main(): Promise<void> {
  const tree = process.env.BENCH_TREE ?? join(import.meta.dirname, '..');
  const load = (path: string) => import(pathToFileURL(join(tree, path)).href);
  const { startLocalSystem } = await load('infra/local/system.ts');
  const { newMeter } = await load('lib/store/capacity.ts');
  const { makeCredentials } = await load('lib/scram.ts');
  const timeoutSeconds: number = await load('infra/timeouts.ts').then(
    (module) => module.FRAMES_TIMEOUT_SECONDS ?? 60,
    () => 60,
  );
  const meter = newMeter();
  const system = await startLocalSystem({
    ttlSweepMs: 0,
    api: { functionTimeoutMs: timeoutSeconds * 1000 },
    capacityMeter: meter,
  });
  const scram = makeCredentials('pw', 4096);
  const answer = async (request: Request): Promise<unknown> => {
    switch (request.op) {
      case 'addUsers':
        for (const user of request.users)
          await system.context.store.putUser({
            user: `${user}@${system.config.domain}`,
            scram,
            createdAt: Date.now(),
          });
        return null;
      case 'idle':
        return system.api.idle();
      case 'connectionIds':
        return [...system.api.connectionIds];
      case 'cost': {
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
      case 'usage': {
        const used = process.cpuUsage();
        return {
          serverCpuMs: (used.user + used.system) / 1000,
          dynamoCpuMs: descendantsCpuMs(process.pid),
        } satisfies Usage;
      }
      case 'stop':
        await system.stop();
        setImmediate(() => process.exit(0));
        return null;
    }
  };
  process.on('message', (request: Request) => {
    answer(request).then(
      (value) => process.send?.({ id: request.id, value: value ?? null } satisfies Reply),
      (error) => process.send?.({ id: request.id, error: String(error) } satisfies Reply),
    );
  });
  process.on('disconnect', () => {
    system.stop().finally(() => process.exit(0));
  });
  process.send?.({ ready: true, url: system.url, domain: system.config.domain } satisfies Ready);
}

if (process.send) await main();
