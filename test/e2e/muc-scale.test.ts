// XEP-0045 at scale: 100 concurrent occupants in one room each receive every message
// exactly once, and a room message costs the same DynamoDB writes whatever the room's size.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { xml } from '@xmpp/client';
import type { Element } from 'ltx';
import type { Context } from '../../lib/ports.ts';
import { newMeter } from '../../lib/store/capacity.ts';
import {
  addUser,
  eventually,
  goOnline,
  RawClient,
  roundTrip,
  useLocalSystem,
  waitForStanza,
} from '../helpers.ts';

const ROOM = 'big@conference.localhost';
const OCCUPANTS = 100;

describe('a room of 100 occupants', () => {
  const meter = newMeter();
  let posts = 0;
  const system = useLocalSystem({
    capacityMeter: meter,
    // Each connection's authentication deadline reads its item when it fires (30 s by default):
    // on a slow run those reads would land in the measured windows below.
    config: { authTimeoutSeconds: 3600 },
    wrapContext: (context: Context) => ({
      ...context,
      gateway: {
        close: (id) => context.gateway.close(id),
        post: (id, frame) => {
          posts++;
          return context.gateway.post(id, frame);
        },
      },
    }),
  });
  const clients: RawClient[] = [];
  const names = Array.from({ length: OCCUPANTS }, (_, index) => `user${index}`);
  const isBody = (body: string) => (element: Element) =>
    element.name === 'message' && element.getChildText('body') === body;

  test('every occupant receives every message exactly once; writes constant per message', async () => {
    await addUser(system(), 'owner@localhost', 'pw');
    for (const name of names) await addUser(system(), `${name}@localhost`, 'pw');
    const owner = await goOnline(system(), 'owner@localhost', 'pw');
    await owner.xmpp.send(
      xml('presence', { to: `${ROOM}/Owner` }, xml('x', { xmlns: 'http://jabber.org/protocol/muc' })),
    );
    await waitForStanza(owner.stanzas, (s) => s.getChild('subject') !== undefined);
    await owner.xmpp.send(
      xml(
        'iq',
        { type: 'set', to: ROOM, id: 'configure' },
        xml(
          'query',
          { xmlns: 'http://jabber.org/protocol/muc#owner' },
          xml('x', { xmlns: 'jabber:x:data', type: 'submit' }),
        ),
      ),
    );
    await waitForStanza(owner.stanzas, (s) => s.attrs.id === 'configure' && s.attrs.type === 'result');

    // 100 sessions log in (ten at a time), then all join at once.
    for (let start = 0; start < names.length; start += 10) {
      await Promise.all(
        names.slice(start, start + 10).map(async (name) => {
          const client = await RawClient.connect(system().url);
          clients.push(client);
          await client.login(`${name}@localhost`, 'pw', 'raw');
          client.send('<presence xmlns="jabber:client"/>');
        }),
      );
    }
    await system().api.idle();
    await Promise.all(
      clients.map(async (client, index) => {
        client.send(
          `<presence xmlns="jabber:client" to="${ROOM}/n${index}"><x xmlns="http://jabber.org/protocol/muc"><history maxstanzas="0"/></x></presence>`,
        );
        await client.next((element) => element.getChild('subject') !== undefined, 60_000);
      }),
    );
    assert.equal((await system().context.store.getOccupants(ROOM)).length, OCCUPANTS + 1);
    await system().api.idle();

    // One message from the owner: its cost, measured alone.
    const before = { ...meter };
    posts = 0;
    await owner.xmpp.send(
      xml('message', { to: ROOM, type: 'groupchat', id: 'solo' }, xml('body', {}, 'solo')),
    );
    await eventually(() => clients.every((client) => client.received.some(isBody('solo'))), 30_000);
    await system().api.idle();
    const writes = meter.writeUnits - before.writeUnits;
    const reads = meter.readUnits - before.readUnits;
    const requests = meter.requests - before.requests;
    console.log(`room of ${OCCUPANTS + 1}: ${writes} WU, ${reads} RU, ${requests} requests, ${posts} posts`);
    assert.ok(writes <= 2, `writes per room message: ${writes}`);
    assert.equal(posts, OCCUPANTS + 1, 'one post per occupant');
    assert.ok(requests <= 3, `requests per room message: ${requests}`);

    // Ten occupants talk at once.
    const senders = clients.slice(0, 10);
    for (const [index, client] of senders.entries()) {
      client.send(
        `<message xmlns="jabber:client" to="${ROOM}" type="groupchat" id="c${index}"><body>chorus ${index}</body></message>`,
      );
    }
    const chorus = Array.from({ length: 10 }, (_, index) => `chorus ${index}`);
    await eventually(
      () => clients.every((client) => chorus.every((body) => client.received.some(isBody(body)))),
      60_000,
    );
    await system().api.idle();
    // Every post is on its socket: a ping answered on each connection comes after any duplicate.
    await Promise.all([owner, ...clients].map((client) => roundTrip(client)));
    for (const client of clients) {
      for (const body of ['solo', ...chorus])
        assert.equal(client.received.filter(isBody(body)).length, 1, `${body} exactly once`);
    }
    for (const body of ['solo', ...chorus]) assert.equal(owner.stanzas.filter(isBody(body)).length, 1);
    assert.equal((await system().context.store.roomHistory(ROOM, 100)).length, 11);

    // The owner first: @xmpp/client throws on frames (their leaving) that arrive while it stops.
    await owner.xmpp.stop();
    await system().api.idle();
    for (const client of clients) client.close();
  });
});
