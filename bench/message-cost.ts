// What one one-to-one message with its delivery receipt costs, counted end to end through
// the emulator: DynamoDB capacity units (ReturnConsumedCapacity, table and index),
// Management API posts, handler invocations and queued records (SQS messages on AWS).
// `npm run bench:message-cost` prints it; test/e2e/cost.test.ts checks it; `npm run bench`
// puts it in the report.
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import {
  addUsers,
  type BenchClient,
  type BenchSystem,
  type Cost,
  chat,
  connect,
  difference,
  hasBody,
  type MethodCost,
  receipt,
  receiptId,
  sendPresence,
  startBenchSystem,
  sum,
  until,
} from './harness.ts';

export type { Cost } from './harness.ts';

export interface CostReport {
  readonly bodyBytes: number;
  /** Both users online, warm containers: the steady state. */
  readonly online: Cost;
  /** The recipient offline: stored, drained at login, receipt back. Login costs excluded. */
  readonly offline: Cost;
  /** The first part of `offline`: storing it while the recipient is offline, server receipt included. */
  readonly offlineStored?: Cost;
  /** The online case by Store method: where the units go. */
  readonly onlineByMethod?: Record<string, MethodCost>;
}

const WORDS =
  'message server client receipt delivered stored offline online chat friend room hello 你好 世界 今天 明天'.split(
    ' ',
  );

/** A body shaped like the seed's JSON payload, `bytes` long. */
export function sampleBody(bytes: number): string {
  const head = {
    messageId: randomBytes(16).toString('hex'),
    fromUserName: '张三',
    isSecret: 0,
    timeLen: 0,
    isAt: 0,
    timeSend: 1522034423,
    type: 1,
  };
  let content = '';
  const base = JSON.stringify({ ...head, content: '' });
  while (Buffer.byteLength(base) + Buffer.byteLength(content) < bytes)
    content += `${WORDS[Math.floor(Math.random() * WORDS.length)]} `;
  return JSON.stringify({
    ...head,
    content: content.slice(
      0,
      content.length - (Buffer.byteLength(base) + Buffer.byteLength(content) - bytes),
    ),
  });
}

const ALICE = 'alice';
const BOB = 'bob';

/** Alice sends one message with a receipt request; Bob's client returns the receipt. */
async function roundTrip(
  bench: BenchSystem,
  alice: BenchClient,
  bob: BenchClient,
  id: string,
  body: string,
): Promise<void> {
  const { xml } = alice;
  await alice.xmpp.send(chat(xml, `${BOB}@${bench.system.config.domain}`, id, body));
  await until(() => bob.stanzas.some((stanza) => stanza.attrs.id === id && hasBody(stanza)));
  await bob.xmpp.send(receipt(xml, alice.jid, id));
  await until(() => alice.stanzas.some((stanza) => receiptId(stanza) === id));
  await bench.system.api.idle();
}

/**
 * Counts one message with a `bodyBytes` body and its receipt, recipient online and offline.
 * Starts its own system unless one is given (its users `alice` and `bob` must be unused).
 */
export async function measureMessageCost(bodyBytes = 1024, shared?: BenchSystem): Promise<CostReport> {
  const bench = shared ?? (await startBenchSystem());
  const { system } = bench;
  try {
    await addUsers(system, [ALICE, BOB]);
    const alice = await connect(system, ALICE);
    await sendPresence(system, alice);
    let bob = await connect(system, BOB);
    await sendPresence(system, bob);
    await roundTrip(bench, alice, bob, 'warm-up', sampleBody(bodyBytes));

    let before = bench.cost();
    bench.profile.reset();
    await roundTrip(bench, alice, bob, 'measured-online', sampleBody(bodyBytes));
    const onlineCost = difference(bench.cost(), before);
    const onlineByMethod = bench.profile.snapshot();

    await bob.stop();
    await system.api.idle();
    before = bench.cost();
    const { xml } = alice;
    await alice.xmpp.send(
      chat(xml, `${BOB}@${system.config.domain}`, 'measured-offline', sampleBody(bodyBytes)),
    );
    await until(() =>
      alice.stanzas.some((stanza) => stanza.getChild('ack')?.attrs.id === 'measured-offline'),
    );
    await system.api.idle();
    const sent = difference(bench.cost(), before);
    bob = await connect(system, BOB);
    await system.api.idle();
    const loggedIn = bench.cost();
    await bob.xmpp.send(xml('presence'));
    await until(() => bob.stanzas.some((stanza) => stanza.attrs.id === 'measured-offline'));
    await bob.xmpp.send(receipt(xml, alice.jid, 'measured-offline'));
    await until(() => alice.stanzas.some((stanza) => receiptId(stanza) === 'measured-offline'));
    await system.api.idle();
    const drained = difference(bench.cost(), loggedIn);
    await alice.stop();
    await bob.stop();
    await system.api.idle();
    return {
      bodyBytes,
      online: onlineCost,
      offline: sum(sent, drained),
      offlineStored: sent,
      onlineByMethod,
    };
  } finally {
    if (!shared) await bench.stop();
  }
}

export function formatReport(report: CostReport): string {
  const row = (name: string, cost: Cost) =>
    `| ${name} | ${cost.writeUnits} | ${cost.readUnits} | ${cost.dynamoRequests} | ${cost.posts} | ${cost.invocations} | ${cost.queuedRecords} |`;
  return [
    `One message with a ${report.bodyBytes}-byte body and its delivery receipt:`,
    '',
    '| case | write units | read units | DynamoDB requests | posts | invocations | SQS messages |',
    '|---|---|---|---|---|---|---|',
    row('recipient online', report.online),
    row('recipient offline (drained at login; presence included)', report.offline),
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const bytes = Number(process.argv[2] ?? 1024);
  console.log(formatReport(await measureMessageCost(bytes)));
}
