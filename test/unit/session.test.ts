// session.ts: the order in which a session ends, and a gone connection turned into an end.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ConnectionRecord, Context, Store } from '../../lib/ports.ts';
import { CLOSE_FENCE_MS, endSession, withSessionEnds } from '../../lib/session.ts';
import { xml } from '../../lib/xml.ts';

const quiet = () => {};

/** Records every store call and post in order; `gone` connections answer 410. */
function recordingContext(gone: ReadonlySet<string> = new Set(), endUnderWay = false) {
  const calls: string[] = [];
  const record: ConnectionRecord = {
    connectionId: 'c1',
    state: 'bound',
    user: 'erin@localhost',
    resource: 'phone',
    connectedAt: 0,
    expiresAt: Number.MAX_SAFE_INTEGER,
  };
  const entry = {
    resource: 'phone',
    connectionId: 'c1',
    priority: 0,
    stanza: '<presence/>',
    expiresAt: 0,
    directed: [],
  };
  const store: Partial<Store> = {
    getConnection: async (id) => {
      calls.push(`getConnection ${id}`);
      return id === 'c1' ? record : undefined;
    },
    markClosing: async (id) => {
      calls.push(`markClosing ${id}`);
    },
    claimClosing: async (id) => {
      calls.push(`claimClosing ${id}`);
      return !endUnderWay;
    },
    isClosing: async (id) => {
      calls.push(`isClosing ${id}`);
      return id === 'c1';
    },
    deleteSession: async () => {
      calls.push('deleteSession');
    },
    getRoster: async () => ({
      items: [
        {
          contact: 'ann@localhost',
          subscription: 'both',
          askOut: false,
          pendingIn: false,
          groups: [],
          listed: true,
        },
      ],
      version: 1,
    }),
    getPresences: async (users) => {
      calls.push(`getPresences ${users.join(',')}`);
      return new Map([
        ['erin@localhost', [entry]],
        ['ann@localhost', [{ ...entry, resource: 'desk', connectionId: 'c2' }]],
      ]);
    },
    removePresence: async () => {
      calls.push('removePresence');
      return entry;
    },
    getJoinedRooms: async () => {
      calls.push('getJoinedRooms');
      return [];
    },
    deleteConnection: async (id) => {
      calls.push(`deleteConnection ${id}`);
    },
  };
  const ctx = {
    store: store as Store,
    gateway: {
      post: async (connectionId: string, frame: string) => {
        calls.push(`post ${connectionId} ${frame.slice(0, frame.indexOf(' '))}`);
        return gone.has(connectionId) ? ('gone' as const) : ('ok' as const);
      },
      close: async (connectionId: string) => {
        calls.push(`close ${connectionId}`);
      },
    },
    logger: { debug: quiet, info: quiet, warn: quiet, error: quiet },
    now: Date.now,
  } as unknown as Context;
  return { ctx, calls, record };
}

describe('the end of a session', () => {
  test('routing goes first, contacts are told before the entry goes, <close/> and the record last', async () => {
    const { ctx, calls, record } = recordingContext();
    await endSession(ctx, record, {
      lastFrames: [xml('close', { xmlns: 'urn:ietf:params:xml:ns:xmpp-framing' })],
    });
    assert.deepEqual(calls, [
      'markClosing c1',
      'deleteSession',
      'getPresences erin@localhost,ann@localhost',
      'post c2 <presence',
      'removePresence',
      'getJoinedRooms',
      'post c1 <close',
      'close c1',
      'deleteConnection c1',
    ]);
  });

  test('a stream error goes out once the session item is gone; only its <close/> waits for the fence', async () => {
    const { ctx, calls, record } = recordingContext();
    await endSession(ctx, record, {
      lastFrames: [
        xml('stream:error', {}, xml('not-well-formed', { xmlns: 'urn:ietf:params:xml:ns:xmpp-streams' })),
        xml('close', { xmlns: 'urn:ietf:params:xml:ns:xmpp-framing' }),
      ],
    });
    assert.deepEqual(calls, [
      'markClosing c1',
      'deleteSession',
      'post c1 <stream:error><not-well-formed',
      'getPresences erin@localhost,ann@localhost',
      'post c2 <presence',
      'removePresence',
      'getJoinedRooms',
      'post c1 <close',
      'close c1',
      'deleteConnection c1',
    ]);
  });

  test('a connection gone at its stream error gets no <close/>, and the session still ends', async () => {
    const { ctx, calls, record } = recordingContext(new Set(['c1']));
    await endSession(ctx, record, {
      lastFrames: [xml('stream:error'), xml('close', { xmlns: 'urn:ietf:params:xml:ns:xmpp-framing' })],
    });
    assert.ok(!calls.includes('post c1 <close'));
    assert.deepEqual(calls.slice(-3), ['getJoinedRooms', 'close c1', 'deleteConnection c1']);
  });

  test('past the fence, a post to another connection that is ending is skipped', async () => {
    const { ctx, calls } = recordingContext();
    let clock = 0;
    const routed = withSessionEnds({ ...ctx, now: () => clock }, 'c9');
    assert.equal(await routed.gateway.post('c1', '<message/>'), 'ok', 'within the fence: posted');
    clock = CLOSE_FENCE_MS + 1;
    assert.equal(await routed.gateway.post('c1', '<message/>'), 'failed', 'later: c1 is ending');
    assert.equal(await routed.gateway.post('c2', '<message/>'), 'ok');
    assert.equal(await routed.gateway.post('c9', '<message/>'), 'ok', 'its own connection: no read');
    assert.deepEqual(
      calls.filter((call) => call.startsWith('isClosing')),
      ['isClosing c1', 'isClosing c2'],
    );
  });

  test('a gone connection whose end is under way elsewhere is left to that end', async () => {
    const { ctx, calls } = recordingContext(new Set(['c1']), true);
    assert.equal(await withSessionEnds(ctx).gateway.post('c1', '<message/>'), 'gone');
    assert.ok(calls.includes('claimClosing c1'));
    assert.ok(!calls.includes('deleteSession'));
  });

  test('a post that meets a gone connection ends that session, once per invocation', async () => {
    const { ctx, calls } = recordingContext(new Set(['c1']));
    const routed = withSessionEnds(ctx);
    assert.equal(await routed.gateway.post('c1', '<message/>'), 'gone');
    assert.equal(await routed.gateway.post('c1', '<message/>'), 'gone');
    assert.equal(calls.filter((call) => call === 'getConnection c1').length, 1);
    assert.ok(calls.includes('deleteSession'));
    assert.equal(calls.filter((call) => call === 'deleteConnection c1').length, 1);
  });
});
