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
  /** The online case with the XEP-0313 archive off (archiveDays 0), on a system of its own. */
  readonly onlineArchiveOff?: Cost;
  /** One XEP-0313 page of ARCHIVE_PAGE messages: the archive query alone, and the bytes it read. */
  readonly archivePage?: ArchivePageCost;
}

export interface ArchivePageCost {
  readonly messages: number;
  /** The items' size as DynamoDB counts it (attribute names and values). */
  readonly bytes: number;
  /** The archive query (Store.queryArchive) alone. */
  readonly query: MethodCost;
  /** The whole iq: the account read (preferences, the archive's start) and the query. */
  readonly total: Cost;
}

/** The page the cost of a MAM query is measured on. */
export const ARCHIVE_PAGE = 50;

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

/** Both users online, containers warmed by one round trip, then one round trip counted. */
async function measureOnline(bench: BenchSystem, bodyBytes: number) {
  const { system } = bench;
  await addUsers(system, [ALICE, BOB]);
  const alice = await connect(system, ALICE);
  await sendPresence(system, alice);
  const bob = await connect(system, BOB);
  await sendPresence(system, bob);
  await roundTrip(bench, alice, bob, 'warm-up', sampleBody(bodyBytes));
  const before = bench.cost();
  bench.profile.reset();
  await roundTrip(bench, alice, bob, 'measured-online', sampleBody(bodyBytes));
  return { alice, bob, online: difference(bench.cost(), before), byMethod: bench.profile.snapshot() };
}

/**
 * Counts one message with a `bodyBytes` body and its receipt, recipient online and offline.
 * Starts its own system unless one is given (its users `alice` and `bob` must be unused).
 */
export async function measureMessageCost(bodyBytes = 1024, shared?: BenchSystem): Promise<CostReport> {
  const bench = shared ?? (await startBenchSystem());
  const { system } = bench;
  try {
    const {
      alice,
      bob: firstBob,
      online: onlineCost,
      byMethod: onlineByMethod,
    } = await measureOnline(bench, bodyBytes);
    let bob = firstBob;

    await bob.stop();
    await system.api.idle();
    const before = bench.cost();
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
    const archivePage = await measureArchivePage(bench, alice, bob, bodyBytes);
    await alice.stop();
    await bob.stop();
    await system.api.idle();
    return {
      bodyBytes,
      online: onlineCost,
      offline: sum(sent, drained),
      offlineStored: sent,
      onlineByMethod,
      onlineArchiveOff: await measureArchiveOff(bodyBytes),
      archivePage,
    };
  } finally {
    if (!shared) await bench.stop();
  }
}

/** The online case again, on a system with the archive off. */
async function measureArchiveOff(bodyBytes: number): Promise<Cost> {
  const bench = await startBenchSystem({ config: { archiveDays: 0 } });
  try {
    const { alice, bob, online } = await measureOnline(bench, bodyBytes);
    await alice.stop();
    await bob.stop();
    await bench.system.api.idle();
    return online;
  } finally {
    await bench.stop();
  }
}

/** Fills alice's archive with ARCHIVE_PAGE more messages and reads them back as one page. */
async function measureArchivePage(
  bench: BenchSystem,
  alice: BenchClient,
  bob: BenchClient,
  bodyBytes: number,
): Promise<ArchivePageCost> {
  const { system } = bench;
  const { xml } = alice;
  const ids: string[] = [];
  for (let i = 0; i < ARCHIVE_PAGE; i++) {
    const id = `archived-${i}`;
    ids.push(id);
    await alice.xmpp.send(chat(xml, `${BOB}@${system.config.domain}`, id, sampleBody(bodyBytes)));
  }
  await until(() => ids.every((id) => bob.stanzas.some((stanza) => stanza.attrs.id === id)));
  await system.api.idle();
  const first = ids[0] as string;
  const pushed = bob.stanzas.find((stanza) => stanza.attrs.id === first);
  const after = pushed?.getChild('stanza-id')?.attrs.id;
  if (!after) throw new Error('the first archived message came without a stanza-id');
  // The page starts right before the first of them: after the message sent just before it.
  const previous = (
    await system.context.store.queryArchive(
      { user: `${ALICE}@${system.config.domain}` },
      { before: after, max: 1, last: true },
    )
  ).messages[0]?.id;
  const before = bench.cost();
  bench.profile.reset();
  const answer = await alice.xmpp.iqCaller.request(
    xml(
      'iq',
      { type: 'set' },
      xml(
        'query',
        { xmlns: 'urn:xmpp:mam:2' },
        xml(
          'set',
          { xmlns: 'http://jabber.org/protocol/rsm' },
          xml('max', {}, String(ARCHIVE_PAGE)),
          previous ? xml('after', {}, previous) : xml('before', {}, ''),
        ),
      ),
    ),
  );
  await system.api.idle();
  const total = difference(bench.cost(), before);
  const query = bench.profile.snapshot().queryArchive ?? {
    calls: 0,
    readUnits: 0,
    writeUnits: 0,
    requests: 0,
  };
  const lastId = answer.getChild('fin')?.getChild('set')?.getChildText('last');
  const page = await system.context.store.queryArchive(
    { user: `${ALICE}@${system.config.domain}` },
    { after: previous, max: ARCHIVE_PAGE, last: false },
  );
  if (page.messages.length !== ARCHIVE_PAGE || page.messages.at(-1)?.id !== lastId)
    throw new Error('the measured page is not the 50 messages just sent');
  return { messages: page.messages.length, bytes: await archiveBytes(bench, page.messages), query, total };
}

/** DynamoDB's item size: attribute names and values, as stored (the stanza deflated). */
async function archiveBytes(bench: BenchSystem, messages: readonly { id: string }[]): Promise<number> {
  const { DynamoDBClient, BatchGetItemCommand } = await import('@aws-sdk/client-dynamodb');
  const { LOCAL_CREDENTIALS, LOCAL_REGION } = await import('../infra/local/dynamodb.ts');
  const client = new DynamoDBClient({
    endpoint: bench.system.dynamo.endpoint,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
  });
  try {
    let bytes = 0;
    const owner = `ARCHIVE#${ALICE}@${bench.system.config.domain}`;
    const { Responses } = await client.send(
      new BatchGetItemCommand({
        RequestItems: {
          [bench.system.tableName]: {
            Keys: messages.map((message) => ({ pk: { S: owner }, sk: { S: `MSG#${message.id}` } })),
          },
        },
      }),
    );
    for (const item of Responses?.[bench.system.tableName] ?? []) {
      for (const [name, value] of Object.entries(item)) {
        bytes += Buffer.byteLength(name);
        if (value.S !== undefined) bytes += Buffer.byteLength(value.S);
        else if (value.N !== undefined) bytes += Math.ceil(value.N.length / 2) + 1;
        else if (value.B !== undefined) bytes += value.B.length;
      }
    }
    return bytes;
  } finally {
    client.destroy();
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
    ...(report.onlineArchiveOff ? [row('recipient online, archive off', report.onlineArchiveOff)] : []),
    ...(report.archivePage ? ['', formatArchivePage(report.archivePage)] : []),
  ].join('\n');
}

export function formatArchivePage(page: ArchivePageCost): string {
  const limit = page.bytes / 4096 + 1;
  return (
    `A XEP-0313 page of ${page.messages} such messages: the archive query ${page.query.requests} request(s), ` +
    `${page.query.readUnits} read units for ${page.bytes} bytes read (target: at most bytes / 4 KB + 1 = ` +
    `${limit.toFixed(1)}); the whole iq ${page.total.readUnits} read units in ${page.total.dynamoRequests} requests, ` +
    `${page.total.posts} posts.`
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const bytes = Number(process.argv[2] ?? 1024);
  console.log(formatReport(await measureMessageCost(bytes)));
}
