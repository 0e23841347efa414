// A deployed function's bundle, run as Lambda runs it: each container is its own Node.js process
// (lambda-runtime.mjs) with only the environment Lambda would give it, handling one invocation at
// a time; more containers start while all are busy (up to a cap), idle ones stay warm. An
// invocation that outlives the function's timeout ends its container, as on Lambda.
import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const RUNTIME = fileURLToPath(new URL('./lambda-runtime.mjs', import.meta.url));

export interface LambdaProcessOptions {
  /** AWS_LAMBDA_FUNCTION_NAME. */
  readonly functionName: string;
  /** The bundle's folder (LAMBDA_TASK_ROOT). */
  readonly assetDir: string;
  /** `index.handler`. */
  readonly handler: string;
  /** The function's own environment: the template's variables, resolved to local values. */
  readonly environment: Record<string, string>;
  /** What Lambda and its role would add: region, credentials, and endpoint settings locally. */
  readonly runtimeEnvironment: Record<string, string>;
  readonly timeoutSeconds: number;
  readonly memorySize: number;
  /** Containers at most (Lambda scales further; this machine has two cores). @default 4 */
  readonly maxContainers?: number;
  /** Each line a container writes (its logs). @default - discarded */
  readonly onOutput?: (functionName: string, line: string) => void;
}

/** What a failed invocation reports, as Lambda's `errorType` and `errorMessage`. */
export class InvocationError extends Error {
  constructor(
    readonly errorType: string,
    message: string,
  ) {
    super(message);
    this.name = errorType;
  }
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

class Container {
  busy = false;
  pending?: Pending;
  readonly ready: Promise<void>;
  exited = false;

  constructor(
    readonly child: ChildProcess,
    onExit: (container: Container) => void,
  ) {
    this.ready = new Promise((resolve, reject) => {
      child.on('message', (message: RuntimeMessage) => {
        if (message.type === 'ready') resolve();
        else if (message.type === 'init-error') {
          reject(new InvocationError('Runtime.ImportModuleError', message.error.errorMessage));
        } else this.settle(message);
      });
      child.once('exit', (code, signal) => {
        this.exited = true;
        const error = new InvocationError('Runtime.ExitError', `container exited (${signal ?? code})`);
        reject(error);
        if (this.pending) {
          clearTimeout(this.pending.timer);
          this.pending.reject(error);
          this.pending = undefined;
        }
        onExit(this);
      });
    });
    this.ready.catch(() => {});
  }

  private settle(message: RuntimeMessage): void {
    const pending = this.pending;
    if (!pending) return;
    this.pending = undefined;
    clearTimeout(pending.timer);
    if (message.type === 'result') pending.resolve(message.result);
    else if (message.type === 'error') {
      pending.reject(new InvocationError(message.error.errorType, message.error.errorMessage));
    }
  }
}

type RuntimeMessage =
  | { type: 'ready' }
  | { type: 'init-error'; error: { errorType: string; errorMessage: string } }
  | { type: 'result'; requestId: string; result: unknown }
  | { type: 'error'; requestId: string; error: { errorType: string; errorMessage: string } };

export class LambdaProcess {
  private readonly containers = new Set<Container>();
  private readonly waiting: Array<(container: Container) => void> = [];
  private closed = false;
  /** Invocations, and the containers started for them (cold starts). */
  readonly counters = { invocations: 0, coldStarts: 0, timeouts: 0 };

  constructor(private readonly options: LambdaProcessOptions) {}

  /** Lambda's Invoke: the handler's result, or an InvocationError. */
  async invoke<Result>(event: unknown): Promise<Result> {
    if (this.closed) throw new Error(`${this.options.functionName} is stopped`);
    this.counters.invocations++;
    const container = await this.acquire();
    try {
      await container.ready;
      return (await this.run(container, event)) as Result;
    } finally {
      this.release(container);
    }
  }

  /** Starts one container ahead of the first invocation; fails if the bundle does not load. */
  async warm(): Promise<void> {
    const container = await this.acquire();
    try {
      await container.ready;
    } finally {
      this.release(container);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.containers].map((container) => stop(container)));
  }

  private run(container: Container, event: unknown): Promise<unknown> {
    const timeoutMs = this.options.timeoutSeconds * 1000;
    const requestId = randomUUID();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.counters.timeouts++;
        container.pending = undefined;
        reject(
          new InvocationError(
            'Sandbox.Timedout',
            `Task timed out after ${this.options.timeoutSeconds} seconds`,
          ),
        );
        void stop(container);
      }, timeoutMs);
      container.pending = { resolve, reject, timer };
      container.child.send({ requestId, event, deadline: Date.now() + timeoutMs });
    });
  }

  private async acquire(): Promise<Container> {
    for (const container of this.containers) {
      if (!container.busy && !container.exited) {
        container.busy = true;
        return container;
      }
    }
    if (this.containers.size < (this.options.maxContainers ?? 4)) {
      const container = this.start();
      container.busy = true;
      return container;
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(container: Container): void {
    const next = this.waiting.shift();
    if (!next) {
      container.busy = false;
      return;
    }
    if (!container.exited) {
      next(container);
      return;
    }
    // Its container died (a timeout, a crash): the next invocation gets a fresh one.
    const fresh = this.start();
    fresh.busy = true;
    next(fresh);
  }

  private start(): Container {
    const { options } = this;
    this.counters.coldStarts++;
    const child = fork(RUNTIME, [], {
      // Only what Lambda would set: nothing of this process's environment leaks in.
      env: {
        ...options.runtimeEnvironment,
        ...lambdaEnvironment(options),
        ...options.environment,
      },
      // Plain Node.js: not the TypeScript loader or test runner flags of this process.
      execArgv: [],
      cwd: options.assetDir,
      // Events and results cross as JSON, as they do between Lambda and its callers.
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'json',
    });
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      const lines = createInterface({ input: stream });
      lines.on('line', (line) => options.onOutput?.(options.functionName, line));
    }
    const container = new Container(child, (gone) => this.containers.delete(gone));
    this.containers.add(container);
    return container;
  }
}

async function stop(container: Container): Promise<void> {
  if (container.exited) return;
  await new Promise<void>((resolve) => {
    container.child.once('exit', () => resolve());
    container.child.kill('SIGKILL');
  });
}

/** The variables the Lambda service itself sets in every container of a function. */
function lambdaEnvironment(options: LambdaProcessOptions): Record<string, string> {
  return {
    AWS_LAMBDA_FUNCTION_NAME: options.functionName,
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(options.memorySize),
    AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${options.functionName}`,
    AWS_LAMBDA_LOG_STREAM_NAME: `local/[$LATEST]${randomUUID().replaceAll('-', '')}`,
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
    LAMBDA_TASK_ROOT: options.assetDir,
    _HANDLER: options.handler,
    TZ: ':UTC',
    LANG: 'en_US.UTF-8',
  };
}
