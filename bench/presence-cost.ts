// What presence costs for a user with N contacts (subscription both) of whom K are
// online: one login (initial presence, including probes and the drain check), one
// presence change, the same change with the online contacts inactive (XEP-0352: the posts
// it saves) and one contact active again, one logout. Counted through the emulator like
// bench/message-cost.ts.
// `npm run bench:presence-cost [N] [K]` prints it; test/e2e/presence-cost.test.ts checks
// that posts grow with K and requests do not grow with N.
import { pathToFileURL } from 'node:url';
import { WebSocket } from 'ws';
import { type LocalSystem, startLocalSystem } from '../infra/local/system.ts';
import { makeCredentials } from '../lib/scram.ts';
import { type CapacityMeter, newMeter } from '../lib/store/capacity.ts';
import { NONE } from '../lib/subscription.ts';
import { RawClient } from '../test/helpers.ts';
import { NO_TTL_PASSES } from './harness.ts';

(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

export interface StepCost {
  readonly readUnits: number;
  readonly writeUnits: number;
  readonly dynamoRequests: number;
  readonly posts: number;
}

export interface PresenceCostReport {
  readonly contacts: number;
  readonly online: number;
  readonly login: StepCost;
  readonly change: StepCost;
  /** The same change once every online contact sent <inactive/> (XEP-0352). */
  readonly changeInactive: StepCost;
  /** One contact's <active/>: the user's current presence, read from the presence items. */
  readonly active: StepCost;
  readonly logout: StepCost;
}

/** XEP-0352: posts a presence change no longer costs, per inactive contact session. */
export const postsSavedPerInactiveSession = (report: PresenceCostReport) =>
  report.online === 0 ? 0 : (report.change.posts - report.changeInactive.posts) / report.online;

function snapshot(system: LocalSystem, meter: CapacityMeter): StepCost {
  return {
    readUnits: meter.readUnits,
    writeUnits: meter.writeUnits,
    dynamoRequests: meter.requests,
    posts: system.api.counters.posts,
  };
}

const minus = (after: StepCost, before: StepCost): StepCost => ({
  readUnits: after.readUnits - before.readUnits,
  writeUnits: after.writeUnits - before.writeUnits,
  dynamoRequests: after.dynamoRequests - before.dynamoRequests,
  posts: after.posts - before.posts,
});

/** Frames of one connection are handled in order: once the ping is answered, the frame before it is done. */
async function settle(system: LocalSystem, client: RawClient): Promise<void> {
  const id = `settle-${Math.random()}`;
  client.send(`<iq xmlns="jabber:client" type="get" id="${id}"><ping xmlns="urn:xmpp:ping"/></iq>`);
  await client.next((element) => element.attrs.id === id);
  await system.api.idle();
}

async function online(system: LocalSystem, user: string): Promise<RawClient> {
  const client = await RawClient.connect(system.url);
  await client.login(user, 'pw', 'bench');
  client.send('<presence xmlns="jabber:client"/>');
  await settle(system, client);
  return client;
}

export async function measurePresenceCost(contacts = 100, onlineCount = 10): Promise<PresenceCostReport> {
  const meter = newMeter();
  const system = await startLocalSystem({ ...NO_TTL_PASSES, capacityMeter: meter });
  const { store } = system.context;
  try {
    const scram = makeCredentials('pw', 4096);
    const user = 'user@localhost';
    const names = Array.from({ length: contacts }, (_, index) => `contact${index}@localhost`);
    await store.putUser({ user, scram, createdAt: Date.now() });
    for (const contact of names) {
      await store.putUser({ user: contact, scram, createdAt: Date.now() });
      const both = { ...NONE, subscription: 'both' as const, groups: [], listed: true };
      await store.saveRosterItem(user, { ...both, contact }, { adds: true, limit: 10_000 });
      await store.saveRosterItem(contact, { ...both, contact: user }, { adds: true, limit: 10_000 });
    }
    const others: RawClient[] = [];
    for (const contact of names.slice(0, onlineCount)) others.push(await online(system, contact));

    const client = await RawClient.connect(system.url);
    await client.login(user, 'pw', 'bench');
    await settle(system, client);
    let before = snapshot(system, meter);
    client.send('<presence xmlns="jabber:client"/>');
    await settle(system, client);
    const login = minus(snapshot(system, meter), before);

    before = snapshot(system, meter);
    client.send('<presence xmlns="jabber:client"><show>away</show></presence>');
    await settle(system, client);
    const change = minus(snapshot(system, meter), before);

    for (const other of others) {
      other.send('<inactive xmlns="urn:xmpp:csi:0"/>');
      await settle(system, other);
    }
    before = snapshot(system, meter);
    client.send('<presence xmlns="jabber:client"><show>xa</show></presence>');
    await settle(system, client);
    const changeInactive = minus(snapshot(system, meter), before);

    before = snapshot(system, meter);
    const first = others[0];
    if (first) {
      first.send('<active xmlns="urn:xmpp:csi:0"/>');
      await settle(system, first);
    }
    const active = minus(snapshot(system, meter), before);

    before = snapshot(system, meter);
    client.send('<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>');
    await client.closed;
    for (let waited = 0; (await store.getAccount(user)).sessions.length > 0 && waited < 5000; waited += 10) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await system.api.idle();
    const logout = minus(snapshot(system, meter), before);
    for (const other of others) other.close();
    return { contacts, online: onlineCount, login, change, changeInactive, active, logout };
  } finally {
    await system.stop();
  }
}

export function formatPresenceReport(report: PresenceCostReport): string {
  const row = (name: string, cost: StepCost) =>
    `| ${name} | ${cost.writeUnits} | ${cost.readUnits} | ${cost.dynamoRequests} | ${cost.posts} |`;
  return [
    `A user with ${report.contacts} contacts (subscription both), ${report.online} of them online:`,
    '',
    '| step | write units | read units | DynamoDB requests | posts |',
    '|---|---|---|---|---|',
    row('login (initial presence: broadcast, probes, drain check)', report.login),
    row('presence change', report.change),
    row('presence change, the online contacts inactive (XEP-0352)', report.changeInactive),
    row("one contact's <active/>: the user's current presence", report.active),
    row('logout (<close/>, $disconnect, unavailable broadcast)', report.logout),
    '',
    `Posts saved per inactive contact session and presence change: ${postsSavedPerInactiveSession(report)}.`,
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [contacts = 100, onlineCount = 10] = process.argv.slice(2).map(Number);
  console.log(formatPresenceReport(await measurePresenceCost(contacts, onlineCount)));
}
