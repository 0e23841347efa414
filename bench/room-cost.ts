// What one room message costs as the room grows (XEP-0045): DynamoDB units and requests
// (ReturnConsumedCapacity) and Management API posts, for rooms of 1, 10, 100 and 1,000
// occupants, each occupant a real logged-in WebSocket session through the emulator.
// `npm run bench:room-cost [N ...]` prints the table.
//
// Up to JOIN_LIMIT occupants join with real presence. Above it, the rest are seated the
// way a join seats them (the occupant item and the session's room pool, through the same
// store calls) without the join's presence: every join announces itself to everyone
// already in the room, about N²/2 posts, and 1,000 real joins do not finish in minutes on
// one machine. The measured message is the same either way: the room reads one occupant
// list and posts once per occupant.
import { pathToFileURL } from 'node:url';
import { WebSocket } from 'ws';
import { type LocalSystem, startLocalSystem } from '../infra/local/system.ts';
import { makeCredentials } from '../lib/scram.ts';
import { newMeter } from '../lib/store/capacity.ts';
import { RawClient } from '../test/helpers.ts';
import { AS_DEPLOYED_TIMEOUT, type InvocationTimes, NO_TTL_PASSES, timeInvocations } from './harness.ts';
import { measureQuery } from './stored.ts';

(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

export interface RoomCost {
  readonly occupants: number;
  readonly writeUnits: number;
  readonly readUnits: number;
  readonly dynamoRequests: number;
  readonly posts: number;
  /** The occupant items the room message reads, by DynamoDB's item-size rule. */
  readonly occupantListBytes: number;
  /** How the occupants got into the room: all by joining, or partly seated through the store. */
  readonly filled: 'joined' | 'seated';
  /** The frames invocations of the measured message (its fan-out), against the deployed timeout. */
  readonly framesInvocations: InvocationTimes;
}

/** Rooms up to this size are filled by real joins. */
export const JOIN_LIMIT = 100;

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

/** Logs in and puts the session in the room as a join would, without the join's presence. */
async function seat(system: LocalSystem, user: string, room: string, nick: string): Promise<RawClient> {
  const client = await RawClient.connect(system.url);
  const jid = await client.login(user, 'pw', 'bench');
  const { store } = system.context;
  const [session] = await store.getSessions(user);
  const connection = session && (await store.getConnection(session.connectionId));
  if (!connection) throw new Error(`no session for ${user}`);
  await store.putOccupant({
    room,
    jid,
    nick,
    connectionId: connection.connectionId,
    role: 'participant',
    affiliation: 'none',
    expiresAt: connection.expiresAt,
  });
  await store.addJoinedRoom(connection.connectionId, room, connection.expiresAt);
  return client;
}

export async function measureRoomCost(occupants: number): Promise<RoomCost> {
  const meter = newMeter();
  const system = await startLocalSystem({ ...NO_TTL_PASSES, ...AS_DEPLOYED_TIMEOUT, capacityMeter: meter });
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
        ...(await Promise.all(
          batch.map((index) =>
            index < JOIN_LIMIT
              ? join(system, `u${index}@localhost`, room, `n${index}`)
              : seat(system, `u${index}@localhost`, room, `n${index}`),
          ),
        )),
      );
    }
    await system.api.idle();
    for (const client of clients) client.received.length = 0;

    const before = { ...meter, posts: system.api.counters.posts };
    const invocationsEnded = timeInvocations(system);
    owner.send(
      `<message xmlns="jabber:client" to="${room}" type="groupchat" id="measured"><body>hello room</body></message>`,
    );
    await Promise.all(
      clients.map((client) => client.next((element) => element.attrs.id === 'measured', 60_000)),
    );
    await system.api.idle();
    const framesInvocations = invocationsEnded();
    const list = await measureQuery(system, {
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :occupant)',
      ExpressionAttributeValues: { ':pk': { S: `ROOM#${room}` }, ':occupant': { S: '#OCC#' } },
    });
    return {
      occupants,
      writeUnits: meter.writeUnits - before.writeUnits,
      readUnits: meter.readUnits - before.readUnits,
      dynamoRequests: meter.requests - before.requests,
      posts: system.api.counters.posts - before.posts,
      occupantListBytes: list.bytes,
      filled: occupants > JOIN_LIMIT ? 'seated' : 'joined',
      framesInvocations,
    };
  } finally {
    for (const client of clients) client.close();
    await system.stop();
  }
}

export function formatRoomCosts(costs: readonly RoomCost[]): string {
  return [
    '| occupants | write units | read units | occupant list | DynamoDB requests | posts | room filled by | longest frames invocation |',
    '|---|---|---|---|---|---|---|---|',
    ...costs.map(
      (c) =>
        `| ${c.occupants} | ${c.writeUnits} | ${c.readUnits} | ${(c.occupantListBytes / 1024).toFixed(1)} KB | ${c.dynamoRequests} | ${c.posts} | ${c.filled === 'joined' ? 'joins' : `${JOIN_LIMIT} joins, the rest seated`} | ${c.framesInvocations.longestMs} ms |`,
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
