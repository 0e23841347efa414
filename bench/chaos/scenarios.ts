// The four chaos scenarios of `npm run chaos` (and, smaller, of test/e2e/chaos.test.ts).
// Each starts what it needs and stops it again; each returns its counts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FaultCounters, FaultSettings } from '../../infra/local/faults.ts';
import { type LocalSystem, startLocalSystem } from '../../infra/local/system.ts';
import type { Context, Logger } from '../../lib/ports.ts';
import { makeCredentials } from '../../lib/scram.ts';
import { type FuzzResult, runFuzz } from './fuzz.ts';
import { type LoadCounts, runChaosLoad } from './load.ts';
import { freePort, SystemProcess } from './system-process.ts';
import { WireClient } from './wire.ts';

export const PASSWORD = 'chaos-pw';
const DOMAIN = 'localhost';

/** Handler failures the system reported: frames that threw (and were retried) and dead letters. */
export interface HandlerFailures {
  framesFailed: number;
  deadLetters: number;
  errorsLogged: string[];
}

/** Counts the handlers' logged errors ("frame failed", …) without printing them. */
function countingLogger(inner: Logger, failures: HandlerFailures): Logger {
  return {
    debug: (message, fields) => inner.debug(message, fields),
    info: (message, fields) => inner.info(message, fields),
    warn: (message, fields) => inner.warn(message, fields),
    error: (message, fields) => {
      if (message === 'frame failed') failures.framesFailed++;
      if (failures.errorsLogged.length < 20)
        failures.errorsLogged.push(`${message} ${JSON.stringify(fields)}`);
    },
  };
}

async function startCountedSystem(
  faults?: FaultSettings,
): Promise<{ system: LocalSystem; failures: HandlerFailures }> {
  const failures: HandlerFailures = { framesFailed: 0, deadLetters: 0, errorsLogged: [] };
  const system = await startLocalSystem({
    logLevel: 'error',
    ttlSweepMs: 0,
    ...(faults ? { faults } : {}),
    wrapContext: (context: Context) => ({ ...context, logger: countingLogger(context.logger, failures) }),
  });
  return { system, failures };
}

async function addUsers(system: LocalSystem, users: readonly string[]): Promise<void> {
  const scram = makeCredentials(PASSWORD, 4096);
  for (const user of users) await system.context.store.putUser({ user, scram, createdAt: Date.now() });
}

const pairUsers = (prefix: string, pairs: number) =>
  Array.from({ length: pairs }, (_, i) => [`${prefix}a${i}@${DOMAIN}`, `${prefix}b${i}@${DOMAIN}`]).flat();

/** A fresh login on each side, a message with a receipt request, the server's receipt and the recipient's. */
export async function messageAndReceipt(url: string, from: string, to: string): Promise<boolean> {
  const sender = await WireClient.connect(url);
  const recipient = await WireClient.connect(url);
  try {
    await sender.login(from, PASSWORD, DOMAIN, 'check');
    const recipientJid = await recipient.login(to, PASSWORD, DOMAIN, 'check');
    recipient.send('<presence xmlns="jabber:client"/>');
    // Presence is handled once a ping sent after it is answered (frames run in order).
    recipient.send(`<iq xmlns="jabber:client" type="get" id="ready"><ping xmlns="urn:xmpp:ping"/></iq>`);
    await recipient.next((element) => element.attrs.id === 'ready');
    const id = `after-chaos-${Date.now()}`;
    sender.send(
      `<message xmlns="jabber:client" type="chat" to="${recipientJid}" id="${id}"><body>still here?</body><request xmlns="urn:xmpp:receipts"/></message>`,
    );
    await sender.next((element) => element.getChild('ack', 'urn:serverless-xmpp:ack:0')?.attrs.id === id);
    const message = await recipient.next((element) => element.name === 'message' && element.attrs.id === id);
    recipient.send(
      `<message xmlns="jabber:client" to="${message.attrs.from}" id="r-${id}"><received xmlns="urn:xmpp:receipts" id="${id}"/></message>`,
    );
    await sender.next((element) => element.getChild('received', 'urn:xmpp:receipts')?.attrs.id === id);
    return true;
  } catch {
    return false;
  } finally {
    sender.terminate();
    recipient.terminate();
  }
}

export interface FuzzScenario {
  readonly result: FuzzResult;
  readonly failures: HandlerFailures;
  readonly loginAfterwards: boolean;
}

export async function fuzzScenario(options: {
  frames: number;
  seed: number;
  workers: number;
  hangMs: number;
  log?: (message: string) => void;
}): Promise<FuzzScenario> {
  const { system, failures } = await startCountedSystem();
  try {
    const workers = Array.from({ length: options.workers }, (_, i) => `fuzz${i}@${DOMAIN}`);
    await addUsers(system, [...workers, `peer@${DOMAIN}`, `after1@${DOMAIN}`, `after2@${DOMAIN}`]);
    const result = await runFuzz({
      url: system.url,
      domain: DOMAIN,
      password: PASSWORD,
      peer: `peer@${DOMAIN}`,
      frames: options.frames,
      seed: options.seed,
      workers: options.workers,
      hangMs: options.hangMs,
      giveUpMs: Math.max(10_000, options.hangMs * 5),
      onProgress: (done) => options.log?.(`fuzz: ${done} frames`),
    });
    await system.api.idle();
    failures.deadLetters = system.api.deadLetters.length;
    const loginAfterwards = await messageAndReceipt(system.url, `after1@${DOMAIN}`, `after2@${DOMAIN}`);
    return { result, failures, loginAfterwards };
  } finally {
    await system.stop();
  }
}

export interface LoadScenario {
  readonly counts: LoadCounts;
  readonly failures: HandlerFailures;
  readonly faults: FaultCounters;
}

export interface LoadSize {
  readonly pairs: number;
  readonly messagesPerUser: number;
  readonly timeoutMs: number;
  readonly log?: (message: string) => void;
}

const loadOptions = (url: string, prefix: string, size: LoadSize) => ({
  url,
  domain: DOMAIN,
  password: PASSWORD,
  prefix,
  pairs: size.pairs,
  messagesPerUser: size.messagesPerUser,
  window: 10,
  resendMs: 10_000,
  timeoutMs: size.timeoutMs,
  log: size.log,
});

/** The chat load against an in-process system with these faults injected. */
export async function faultLoadScenario(faults: FaultSettings, size: LoadSize): Promise<LoadScenario> {
  const { system, failures } = await startCountedSystem(faults);
  try {
    await addUsers(system, pairUsers('c', size.pairs));
    const counts = await runChaosLoad(loadOptions(system.url, 'c', size));
    await system.api.idle();
    failures.deadLetters = system.api.deadLetters.length;
    return { counts, failures, faults: { ...system.faults } };
  } finally {
    await system.stop();
  }
}

export interface CrashScenario {
  readonly counts: LoadCounts;
  readonly crashes: number;
  /** Milliseconds from each kill to the restarted system accepting connections. */
  readonly restartMs: number[];
}

/**
 * The chat load against `npm start` in a child process, on a data directory of its own; the
 * whole process group is SIGKILLed when `crashAt` shares of the messages are acknowledged,
 * and started again on the same data.
 */
export async function crashScenario(size: LoadSize & { crashAt: readonly number[] }): Promise<CrashScenario> {
  const dataDir = mkdtempSync(join(tmpdir(), 'chaos-crash-'));
  const processOptions = { dataDir, port: await freePort(), dynamoPort: await freePort() };
  const system = new SystemProcess(processOptions);
  const restartMs: number[] = [];
  let crashes = 0;
  const pending = [...size.crashAt].sort((a, b) => a - b);
  let crashing: Promise<void> | undefined;
  const leftovers = () => system.kill();
  process.once('exit', leftovers);
  try {
    await system.start();
    await system.addUsers(pairUsers('k', size.pairs), PASSWORD);
    const crashAndRestart = async () => {
      const killedAt = Date.now();
      system.kill();
      await system.gone();
      crashes++;
      size.log?.(`crash ${crashes}: killed; restarting on ${dataDir}`);
      await system.start();
      restartMs.push(Date.now() - killedAt);
    };
    const counts = await runChaosLoad({
      ...loadOptions(system.url, 'k', size),
      onAck: (acked, total) => {
        const next = pending[0];
        if (crashing || next === undefined || acked < next * size.pairs * 2 * size.messagesPerUser) return;
        pending.shift();
        void total;
        crashing = crashAndRestart().finally(() => {
          crashing = undefined;
        });
      },
    });
    await crashing;
    return { counts, crashes, restartMs };
  } finally {
    await system.stop();
    process.removeListener('exit', leftovers);
    rmSync(dataDir, { recursive: true, force: true });
  }
}
