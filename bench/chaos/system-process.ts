// The local system as a child process (`scripts/start.ts`), so that it can be SIGKILLed whole:
// it runs in a process group of its own, with DynamoDB Local's Java child in the same group,
// and one kill of the group stops both at once, as a power cut would.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../infra/local/dynamodb.ts';
import { makeCredentials } from '../../lib/scram.ts';
import { DynamoStore } from '../../lib/store/dynamo.ts';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');

export interface SystemProcessOptions {
  readonly dataDir: string;
  readonly port: number;
  readonly dynamoPort: number;
  /** e.g. `ddb=0.05,post=0.05` */
  readonly faults?: string;
  readonly startTimeoutMs?: number;
}

/** A free TCP port on 127.0.0.1 (and so on every interface DynamoDB Local listens on). */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

export class SystemProcess {
  private child?: ChildProcess;
  private output = '';
  private exited?: Promise<void>;

  constructor(readonly options: SystemProcessOptions) {}

  get url(): string {
    return `ws://127.0.0.1:${this.options.port}/xmpp-websocket`;
  }

  /** Starts `npm start`'s script on the data directory and waits until it says it runs. */
  async start(): Promise<void> {
    const { dataDir, port, dynamoPort, faults } = this.options;
    this.output = '';
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(ROOT, 'scripts/start.ts'),
        '--data-dir',
        dataDir,
        '--port',
        String(port),
        '--dynamodb-port',
        String(dynamoPort),
        '--log-level',
        'error',
        ...(faults ? ['--faults', faults] : []),
      ],
      {
        cwd: ROOT,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', FAULTS: '' },
      },
    );
    this.child = child;
    this.exited = new Promise((resolveExit) => child.once('exit', () => resolveExit()));
    const collect = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString()).slice(-20_000);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    const deadline = Date.now() + (this.options.startTimeoutMs ?? 120_000);
    while (!this.output.includes('serverless-xmpp is running')) {
      if (child.exitCode !== null) throw new Error(`the system exited while starting:\n${this.output}`);
      if (Date.now() > deadline) {
        this.kill();
        throw new Error(`the system did not start in time:\n${this.output}`);
      }
      await new Promise((resolveWait) => setTimeout(resolveWait, 100));
    }
  }

  /** SIGKILL to the whole process group: Node, the emulator and DynamoDB Local's Java at once. */
  kill(): void {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }

  /** Waits for the process to be gone (after kill() or stop()). */
  async gone(): Promise<void> {
    await this.exited;
  }

  /** A clean stop (SIGTERM: the script stops DynamoDB Local itself), then the group is killed anyway. */
  async stop(): Promise<void> {
    const pid = this.child?.pid;
    if (pid === undefined || this.child?.exitCode !== null) return this.kill();
    process.kill(pid, 'SIGTERM');
    await Promise.race([this.exited, new Promise((resolveWait) => setTimeout(resolveWait, 15_000))]);
    this.kill();
  }

  /** The table of the running system, for creating users. */
  store(): { store: DynamoStore; close: () => void } {
    const runtime = JSON.parse(readFileSync(join(this.options.dataDir, 'local.json'), 'utf8')) as {
      dynamoEndpoint: string;
      tableName: string;
    };
    const client = new DynamoDBClient({
      endpoint: runtime.dynamoEndpoint,
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
    });
    return { store: new DynamoStore(client, runtime.tableName), close: () => client.destroy() };
  }

  async addUsers(users: readonly string[], password: string): Promise<void> {
    const { store, close } = this.store();
    try {
      const scram = makeCredentials(password, 4096);
      for (const user of users) await store.putUser({ user, scram, createdAt: Date.now() });
    } finally {
      close();
    }
  }

  get log(): string {
    return this.output;
  }
}
