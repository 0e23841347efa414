// What XEP-0357 push adds to a one-to-one message (lib/push.ts), counted end to end through the
// emulator: the message path (the frames function) with and without a push registration on the
// recipient, online and offline, and the push function's own work for a message it tells an
// app server about. Issue #16's budget: online, no DynamoDB request more; offline, at most 0.5
// read units more. `npm run bench:push-cost` prints it; test/e2e/push-cost.test.ts checks it.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
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
  until,
} from './harness.ts';
import { sampleBody } from './message-cost.ts';

/** The Store methods only the push function calls (store/push.ts). */
const PUSH_FUNCTION_METHODS = ['addPushPending', 'getPushPending', 'notePushSent', 'schedulePush'];

export interface PushCost {
  readonly bodyBytes: number;
  /** Recipient online, a message and its receipt: with a push registration, and without. */
  readonly online: Cost;
  readonly onlineWithout: Cost;
  /** Recipient offline, the message stored (server receipt included), the frames function only. */
  readonly offlineStored: Cost;
  readonly offlineStoredWithout: Cost;
  /** Jobs put on the push queue for that message (one per registration, in one SendMessageBatch). */
  readonly queuedJobs: number;
  /** The push function's table work for that message (one notification sent at once). */
  readonly pushFunction: MethodCost;
  /** Notifications the app server got for it. */
  readonly notifications: number;
}

const ALICE = 'alice';
const PUSHED = 'bob';
const PLAIN = 'carol';

async function roundTrip(bench: BenchSystem, from: BenchClient, to: BenchClient, id: string, body: string) {
  await from.xmpp.send(chat(from.xml, to.jid.split('/')[0] as string, id, body));
  await until(() => to.stanzas.some((stanza) => stanza.attrs.id === id && hasBody(stanza)));
  await to.xmpp.send(receipt(from.xml, from.jid, id));
  await until(() => from.stanzas.some((stanza) => receiptId(stanza) === id));
  await bench.system.api.idle();
}

/** Sends one message to an offline user and waits until it is stored and acknowledged. */
async function storeOffline(bench: BenchSystem, from: BenchClient, to: string, id: string, body: string) {
  await from.xmpp.send(chat(from.xml, `${to}@${bench.system.config.domain}`, id, body));
  await until(() => from.stanzas.some((stanza) => stanza.getChild('ack')?.attrs.id === id));
  await bench.system.api.idle();
}

/** Sums the profile's entries for `methods`. */
function methodsCost(profile: Record<string, MethodCost>, methods: readonly string[]): MethodCost {
  const total: MethodCost = { calls: 0, readUnits: 0, writeUnits: 0, requests: 0 };
  for (const method of methods) {
    const cost = profile[method];
    if (!cost) continue;
    total.calls += cost.calls;
    total.readUnits += cost.readUnits;
    total.writeUnits += cost.writeUnits;
    total.requests += cost.requests;
  }
  return total;
}

export async function measurePushCost(bodyBytes = 1024): Promise<PushCost> {
  let notifications = 0;
  const app = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      notifications++;
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(app.address() as AddressInfo).port}/push`;
  const bench = await startBenchSystem({ config: { pushServices: new Map([['push.localhost', url]]) } });
  const { system } = bench;
  const push = system.push;
  if (!push) throw new Error('the bench system has no push path');
  try {
    await addUsers(system, [ALICE, PUSHED, PLAIN]);
    const alice = await connect(system, ALICE);
    await sendPresence(system, alice);
    const bob = await connect(system, PUSHED);
    await sendPresence(system, bob);
    await bob.xmpp.iqCaller.request(
      bob.xml(
        'iq',
        { type: 'set' },
        bob.xml('enable', { xmlns: 'urn:xmpp:push:0', jid: 'push.localhost', node: 'bench-node' }),
      ),
    );
    const carol = await connect(system, PLAIN);
    await sendPresence(system, carol);
    await roundTrip(bench, alice, bob, 'warm-bob', sampleBody(bodyBytes));
    await roundTrip(bench, alice, carol, 'warm-carol', sampleBody(bodyBytes));

    let before = bench.cost();
    await roundTrip(bench, alice, bob, 'online-bob', sampleBody(bodyBytes));
    const online = difference(bench.cost(), before);
    before = bench.cost();
    await roundTrip(bench, alice, carol, 'online-carol', sampleBody(bodyBytes));
    const onlineWithout = difference(bench.cost(), before);

    await bob.stop();
    await carol.stop();
    await system.api.idle();
    before = bench.cost();
    await storeOffline(bench, alice, PLAIN, 'offline-carol', sampleBody(bodyBytes));
    const offlineStoredWithout = difference(bench.cost(), before);

    before = bench.cost();
    const jobsBefore = push.queuedJobs();
    bench.profile.reset();
    await storeOffline(bench, alice, PUSHED, 'offline-bob', sampleBody(bodyBytes));
    await until(() => notifications === 1 && push.queue.idle(), 30_000, 'the notification');
    const total = difference(bench.cost(), before);
    const pushFunction = methodsCost(bench.profile.snapshot(), PUSH_FUNCTION_METHODS);
    // The frames function's share: the push function's requests taken out.
    const offlineStored: Cost = {
      ...total,
      readUnits: total.readUnits - pushFunction.readUnits,
      writeUnits: total.writeUnits - pushFunction.writeUnits,
      dynamoRequests: total.dynamoRequests - pushFunction.requests,
    };
    await alice.stop();
    await system.api.idle();
    return {
      bodyBytes,
      online,
      onlineWithout,
      offlineStored,
      offlineStoredWithout,
      queuedJobs: push.queuedJobs() - jobsBefore,
      pushFunction,
      notifications,
    };
  } finally {
    await bench.stop();
    app.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const cost = await measurePushCost();
  console.log(JSON.stringify(cost, null, 2));
}
