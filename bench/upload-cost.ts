// What one XEP-0363 upload slot costs, counted end to end through the emulator: the slot
// request's frame (one invocation, one post: the answer) and its DynamoDB units, which should be
// the quota counter's conditional UpdateItem alone (lib/store/uploads.ts); presigning is a
// signature the function computes, no request. The file's bytes never reach a function: S3
// takes the PUT, CloudFront serves the GET. `npm run bench` puts it in the report's cost section;
// test/e2e/cost.test.ts checks it.
import { pathToFileURL } from 'node:url';
import {
  addUsers,
  type BenchSystem,
  type Cost,
  connect,
  difference,
  type MethodCost,
  startBenchSystem,
  until,
} from './harness.ts';

export interface SlotCost {
  readonly slot: Cost;
  /** The slot's units by Store method: only countUpload. */
  readonly byMethod: Record<string, MethodCost>;
}

/** One slot of a 1 MB picture, after a first one warmed the container. Starts its own system unless given. */
export async function measureSlotCost(shared?: BenchSystem, user = 'erin'): Promise<SlotCost> {
  const bench = shared ?? (await startBenchSystem());
  const { system } = bench;
  try {
    await addUsers(system, [user]);
    const client = await connect(system, user);
    const { xml } = client;
    const request = async (id: string) => {
      await client.xmpp.send(
        xml(
          'iq',
          { type: 'get', id, to: system.config.uploadDomain },
          xml('request', {
            xmlns: 'urn:xmpp:http:upload:0',
            filename: `${id}.jpg`,
            size: String(1024 * 1024),
            'content-type': 'image/jpeg',
          }),
        ),
      );
      await until(() =>
        client.stanzas.some((stanza) => stanza.attrs.id === id && stanza.getChild('slot') !== undefined),
      );
      await system.api.idle();
    };
    await request('warm-up');
    const before = bench.cost();
    bench.profile.reset();
    await request('measured-slot');
    const slot = difference(bench.cost(), before);
    const byMethod = bench.profile.snapshot();
    await client.stop();
    await system.api.idle();
    return { slot, byMethod };
  } finally {
    if (!shared) await bench.stop();
  }
}

/** The Store methods that sent a request (a bound connection is cached: getConnection sends none). */
export const requesting = (byMethod: Record<string, MethodCost>) =>
  Object.entries(byMethod)
    .filter(([, cost]) => cost.requests > 0)
    .map(([name]) => name);

export function formatSlotCost(cost: SlotCost): string {
  const { slot } = cost;
  return (
    `One XEP-0363 upload slot (1 MB): ${slot.writeUnits} write units, ${slot.readUnits} read units in ` +
    `${slot.dynamoRequests} DynamoDB request(s) (${requesting(cost.byMethod).join(', ') || 'none'}), ` +
    `${slot.posts} post(s), ${slot.invocations} invocation(s), ${slot.queuedRecords} SQS message(s); ` +
    'no request to S3 (presigning is a signature); the bytes go to S3 and come from CloudFront, never through a function.'
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(formatSlotCost(await measureSlotCost()));
}
