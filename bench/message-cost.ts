// What one one-to-one message with its delivery receipt costs, counted end to end through
// the emulator: DynamoDB capacity units (ReturnConsumedCapacity, table and index),
// Management API posts, handler invocations and queued records (SQS messages on AWS).
// `npm run bench:message-cost` prints it; test/e2e/cost.test.ts checks it.
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import type { Element } from 'ltx';
import { WebSocket } from 'ws';
import { type LocalSystem, startLocalSystem } from '../infra/local/system.ts';
import { makeCredentials } from '../lib/scram.ts';
import { type CapacityMeter, newMeter } from '../lib/store/capacity.ts';

(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

export interface Cost {
  readonly readUnits: number;
  readonly writeUnits: number;
  readonly dynamoRequests: number;
  readonly posts: number;
  readonly invocations: number;
  readonly queuedRecords: number;
}

export interface CostReport {
  readonly bodyBytes: number;
  /** Both users online, warm containers: the steady state. */
  readonly online: Cost;
  /** The recipient offline: stored, drained at login, receipt back. Login costs excluded. */
  readonly offline: Cost;
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

type Client = Awaited<ReturnType<typeof online>>;

async function online(system: LocalSystem, user: string, presence = true) {
  const { client, xml } = await import('@xmpp/client');
  const xmpp = client({
    service: system.url,
    domain: system.config.domain,
    username: user,
    password: 'pw',
    resource: 'bench',
  });
  const stanzas: Element[] = [];
  xmpp.on('stanza', (stanza: Element) => stanzas.push(stanza));
  xmpp.on('error', () => {});
  await xmpp.start();
  if (presence) await xmpp.send(xml('presence'));
  await system.api.idle();
  return { xmpp, xml, stanzas };
}

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Alice sends one message with a receipt request; Bob's client returns the receipt. */
async function roundTrip(
  system: LocalSystem,
  alice: Client,
  bob: Client,
  id: string,
  body: string,
): Promise<void> {
  const { xml } = alice;
  await alice.xmpp.send(
    xml(
      'message',
      { type: 'chat', to: 'bob@localhost', id },
      xml('body', {}, body),
      xml('request', { xmlns: 'urn:xmpp:receipts' }),
    ),
  );
  await until(() => bob.stanzas.some((stanza) => stanza.attrs.id === id && stanza.getChild('body')));
  await bob.xmpp.send(
    xml(
      'message',
      { to: 'alice@localhost/bench', type: 'chat' },
      xml('received', { xmlns: 'urn:xmpp:receipts', id }),
    ),
  );
  await until(() => alice.stanzas.some((stanza) => stanza.getChild('received')?.attrs.id === id));
  await system.api.idle();
}

function snapshot(system: LocalSystem, meter: CapacityMeter): Cost {
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

const difference = (after: Cost, before: Cost): Cost => ({
  readUnits: after.readUnits - before.readUnits,
  writeUnits: after.writeUnits - before.writeUnits,
  dynamoRequests: after.dynamoRequests - before.dynamoRequests,
  posts: after.posts - before.posts,
  invocations: after.invocations - before.invocations,
  queuedRecords: after.queuedRecords - before.queuedRecords,
});

export async function measureMessageCost(bodyBytes = 1024): Promise<CostReport> {
  const meter = newMeter();
  const system = await startLocalSystem({ capacityMeter: meter });
  try {
    for (const user of ['alice', 'bob']) {
      await system.context.store.putUser({
        user: `${user}@localhost`,
        scram: makeCredentials('pw', 4096),
        createdAt: Date.now(),
      });
    }
    const alice = await online(system, 'alice');
    let bob = await online(system, 'bob');
    await roundTrip(system, alice, bob, 'warm-up', sampleBody(bodyBytes));

    let before = snapshot(system, meter);
    await roundTrip(system, alice, bob, 'measured-online', sampleBody(bodyBytes));
    const onlineCost = difference(snapshot(system, meter), before);

    await bob.xmpp.stop();
    await system.api.idle();
    before = snapshot(system, meter);
    const { xml } = alice;
    await alice.xmpp.send(
      xml(
        'message',
        { type: 'chat', to: 'bob@localhost', id: 'measured-offline' },
        xml('body', {}, sampleBody(bodyBytes)),
        xml('request', { xmlns: 'urn:xmpp:receipts' }),
      ),
    );
    await until(() =>
      alice.stanzas.some((stanza) => stanza.getChild('ack')?.attrs.id === 'measured-offline'),
    );
    await system.api.idle();
    const sent = difference(snapshot(system, meter), before);
    bob = await online(system, 'bob', false);
    const loggedIn = snapshot(system, meter);
    await bob.xmpp.send(xml('presence'));
    await until(() => bob.stanzas.some((stanza) => stanza.attrs.id === 'measured-offline'));
    await bob.xmpp.send(
      xml(
        'message',
        { to: 'alice@localhost/bench', type: 'chat' },
        xml('received', { xmlns: 'urn:xmpp:receipts', id: 'measured-offline' }),
      ),
    );
    await until(() =>
      alice.stanzas.some((stanza) => stanza.getChild('received')?.attrs.id === 'measured-offline'),
    );
    await system.api.idle();
    const drained = difference(snapshot(system, meter), loggedIn);
    const offlineCost: Cost = {
      readUnits: sent.readUnits + drained.readUnits,
      writeUnits: sent.writeUnits + drained.writeUnits,
      dynamoRequests: sent.dynamoRequests + drained.dynamoRequests,
      posts: sent.posts + drained.posts,
      invocations: sent.invocations + drained.invocations,
      queuedRecords: sent.queuedRecords + drained.queuedRecords,
    };
    await alice.xmpp.stop();
    await bob.xmpp.stop();
    return { bodyBytes, online: onlineCost, offline: offlineCost };
  } finally {
    await system.stop();
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
