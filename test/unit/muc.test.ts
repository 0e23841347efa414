// The room fan-out: bounded concurrency, one post per occupant, gone connections reported.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fanOut, sessionOf } from '../../lib/muc/fanout.ts';
import { leaveRoom, occupantPresence } from '../../lib/muc/room.ts';
import type { Context, Occupant, Store } from '../../lib/ports.ts';

const occupant = (index: number): Occupant => ({
  room: 'room@conference.localhost',
  jid: `user${index}@localhost/res/with/slashes`,
  nick: `n${index}`,
  connectionId: `c${index}`,
  role: 'participant',
  affiliation: 'none',
  expiresAt: 0,
});

function fakeContext(gone: Set<string>) {
  let inFlight = 0;
  let maxInFlight = 0;
  const posted: string[] = [];
  const store: Partial<Store> = {};
  const quiet = () => {};
  const ctx = {
    store: store as Store,
    gateway: {
      post: async (connectionId: string) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((resolve) => setTimeout(resolve, 1));
        inFlight--;
        posted.push(connectionId);
        return gone.has(connectionId) ? ('gone' as const) : ('ok' as const);
      },
      close: async () => {},
    },
    logger: { debug: quiet, info: quiet, warn: quiet, error: quiet },
    now: Date.now,
  } as unknown as Context;
  return { ctx, posted, maxInFlight: () => maxInFlight };
}

describe('room fan-out', () => {
  test('posts once per occupant, never more than the concurrency at once', async () => {
    const fake = fakeContext(new Set());
    const occupants = Array.from({ length: 1000 }, (_, index) => occupant(index));
    const gone = await fanOut(fake.ctx, occupants, (to) => `<message to="${to.jid}"/>`, {
      concurrency: 16,
    });
    assert.deepEqual(gone, []);
    assert.equal(fake.posted.length, 1000);
    assert.equal(new Set(fake.posted).size, 1000);
    assert.ok(fake.maxInFlight() <= 16 && fake.maxInFlight() > 1, `in flight: ${fake.maxInFlight()}`);
  });

  test('a gone connection is reported as it is met, and the others still get the frame', async () => {
    const fake = fakeContext(new Set(['c3', 'c7']));
    const occupants = Array.from({ length: 10 }, (_, index) => occupant(index));
    const reported: string[] = [];
    const gone = await fanOut(fake.ctx, occupants, () => '<message/>', {
      onGone: async (occupant) => {
        reported.push(occupant.connectionId);
      },
    });
    assert.deepEqual(gone.map((o) => o.connectionId).sort(), ['c3', 'c7']);
    assert.deepEqual(reported.sort(), ['c3', 'c7']);
    assert.equal(fake.posted.length, 10);
  });

  test('the session behind an occupant keeps slashes in the resource', () => {
    assert.deepEqual(sessionOf(occupant(1)), {
      connectionId: 'c1',
      user: 'user1@localhost',
      resource: 'res/with/slashes',
    });
  });

  test('semi-anonymous presence: the real JID only to moderators and to the occupant itself', () => {
    const alice = occupant(1);
    const bob = occupant(2);
    const item = (to: Occupant) => occupantPresence(alice, to).getChild('x')?.getChild('item');
    assert.equal(item(bob)?.attrs.jid, undefined);
    assert.equal(item({ ...bob, role: 'moderator' })?.attrs.jid, alice.jid);
    const self = occupantPresence(alice, alice);
    assert.equal(self.getChild('x')?.getChild('item')?.attrs.jid, alice.jid);
    assert.ok(
      self
        .getChild('x')
        ?.getChildren('status')
        .some((status) => status.attrs.code === '110'),
    );
  });
});

describe('leaving a room the occupant already left', () => {
  function recordingContext() {
    const calls: string[] = [];
    const store: Partial<Store> = {
      lastRoomSeq: async (_room, before) => (before ? 'before-window' : 'newest'),
      getOccupants: async () => [],
      removeOccupant: async () => undefined, // another leave came first
      removeJoinedRoom: async () => {},
      lowerPushedMarker: async (_room, user, seq) => {
        calls.push(`lower ${user} ${seq}`);
      },
      setPushedMarker: async (_room, user, seq) => {
        calls.push(`set ${user} ${seq}`);
      },
    };
    const ctx = { store: store as Store, logger: console, now: Date.now } as unknown as Context;
    return { ctx, calls };
  }
  const session = { connectionId: 'c1', user: 'erin@localhost', resource: 'phone' };

  test('messages that may not have arrived: the marker is lowered to before them', async () => {
    const { ctx, calls } = recordingContext();
    await leaveRoom(ctx, session, 'room@conference.localhost', { notPushedFrom: 'window' });
    assert.deepEqual(calls, ['lower erin@localhost before-window']);
  });

  test('a plain leave changes nothing the first leave wrote', async () => {
    const { ctx, calls } = recordingContext();
    await leaveRoom(ctx, session, 'room@conference.localhost');
    assert.deepEqual(calls, []);
  });
});
