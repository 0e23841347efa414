// What one room message costs as the room grows (XEP-0045): DynamoDB units and requests
// (ReturnConsumedCapacity) and Management API posts, for rooms of 1, 10, 100 and 1,000
// occupants, each occupant a real WebSocket session through the emulator.
// `npm run bench:room-cost [N ...]` prints the table.
import { pathToFileURL } from 'node:url';
import { WebSocket } from 'ws';
import { type LocalSystem, startLocalSystem } from '../infra/local/system.ts';
import { makeCredentials } from '../lib/scram.ts';
import { newMeter } from '../lib/store/capacity.ts';
import { RawClient } from '../test/helpers.ts';

(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

export interface RoomCost {
  readonly occupants: number;
  readonly writeUnits: number;
  readonly readUnits: number;
  readonly dynamoRequests: number;
  readonly posts: number;
}

const MUC = 'http://jabber.org/protocol/muc';

async function join(system: LocalSystem, user: string, room: string, nick: string): Promise<RawClient> {
  const client = await RawClient.connect(system.url);
  await client.login(user, 'pw', 'bench');
  client.send(
    `<presence xmlns="jabber:client" to="${room}/${nick}"><x xmlns="${MUC}"><history maxstanzas="0"/></x></presence>`,
  );
  await client.next((element) => element.getChild('subject') !== undefined, 120_000);
  return client;
}

export async function measureRoomCost(occupants: number): Promise<RoomCost> {
  const meter = newMeter();
  const system = await startLocalSystem({ capacityMeter: meter });
  const room = `bench${occupants}@${system.config.mucDomain}`;
  const clients: RawClient[] = [];
  try {
    const scram = makeCredentials('pw', 4096);
    for (let index = 0; index < occupants; index++) {
      await system.context.store.putUser({ user: `u${index}@localhost`, scram, createdAt: Date.now() });
    }
    const owner = await join(system, 'u0@localhost', room, 'owner');
    clients.push(owner);
    owner.send(
      `<iq xmlns="jabber:client" type="set" id="instant" to="${room}"><query xmlns="${MUC}#owner"><x xmlns="jabber:x:data" type="submit"/></query></iq>`,
    );
    await owner.next((element) => element.attrs.id === 'instant');
    for (let start = 1; start < occupants; start += 20) {
      const batch = Array.from({ length: Math.min(20, occupants - start) }, (_, offset) => start + offset);
      clients.push(
        ...(await Promise.all(batch.map((index) => join(system, `u${index}@localhost`, room, `n${index}`)))),
      );
    }
    await system.api.idle();
    for (const client of clients) client.received.length = 0;

    const before = { ...meter, posts: system.api.counters.posts };
    owner.send(
      `<message xmlns="jabber:client" to="${room}" type="groupchat" id="measured"><body>hello room</body></message>`,
    );
    await Promise.all(
      clients.map((client) => client.next((element) => element.attrs.id === 'measured', 60_000)),
    );
    await system.api.idle();
    return {
      occupants,
      writeUnits: meter.writeUnits - before.writeUnits,
      readUnits: meter.readUnits - before.readUnits,
      dynamoRequests: meter.requests - before.requests,
      posts: system.api.counters.posts - before.posts,
    };
  } finally {
    for (const client of clients) client.close();
    await system.stop();
  }
}

export function formatRoomCosts(costs: readonly RoomCost[]): string {
  return [
    '| occupants | write units | read units | DynamoDB requests | posts |',
    '|---|---|---|---|---|',
    ...costs.map(
      (c) => `| ${c.occupants} | ${c.writeUnits} | ${c.readUnits} | ${c.dynamoRequests} | ${c.posts} |`,
    ),
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const sizes = process.argv.length > 2 ? process.argv.slice(2).map(Number) : [1, 10, 100, 1000];
  const costs: RoomCost[] = [];
  for (const size of sizes) {
    const started = Date.now();
    costs.push(await measureRoomCost(size));
    console.error(`room of ${size}: measured in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  console.log('One groupchat message from the owner, by room size:\n');
  console.log(formatRoomCosts(costs));
}
