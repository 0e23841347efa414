// lib/gateway/management-api.ts against the emulator's Management API, through the real SDK
// client: each post's error is settled in the adapter (retried, or reported), never thrown.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import { WebSocket } from 'ws';
import { LocalWebSocketApi, type PostFault } from '../../infra/local/websocket-api.ts';
import { ManagementApiGateway, POST_RETRY } from '../../lib/gateway/management-api.ts';
import { eventually } from '../helpers.ts';

describe('ManagementApiGateway: per-post errors', () => {
  let faults: PostFault[] = [];
  const api = new LocalWebSocketApi({
    connectHandler: async () => ({ statusCode: 200, headers: { 'Sec-WebSocket-Protocol': 'xmpp' } }),
    framesHandler: async () => ({ batchItemFailures: [] }),
    // Each post takes the next scripted fault, until none are left.
    postFault: () => faults.shift(),
  });
  let client: ApiGatewayManagementApiClient;
  let socket: WebSocket;
  let connectionId: string;
  const received: string[] = [];

  before(async () => {
    await api.listen();
    client = new ApiGatewayManagementApiClient({
      region: 'local',
      endpoint: api.managementEndpoint,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      maxAttempts: 1,
    });
    socket = new WebSocket(api.url, ['xmpp']);
    socket.on('message', (data) => received.push(data.toString()));
    await new Promise((resolve) => socket.once('open', resolve));
    connectionId = await eventually(() => api.connectionIds[0]);
  });
  after(async () => {
    socket.close();
    client.destroy();
    await api.close();
  });

  /** A gateway whose pauses are recorded instead of waited, with a fixed jitter of one half. */
  function gateway(timeLeft?: () => number) {
    const pauses: number[] = [];
    const adapter = new ManagementApiGateway(client, undefined, {
      sleep: async (ms) => {
        pauses.push(ms);
      },
      random: () => 0.5,
      timeLeft,
    });
    return { adapter, pauses };
  }

  test('429 twice, then delivered: exponential, jittered pauses', async () => {
    faults = [429, 429];
    const { adapter, pauses } = gateway();
    assert.equal(await adapter.post(connectionId, 'after-429'), 'ok');
    assert.deepEqual(pauses, [75, 150]);
    await eventually(() => received.includes('after-429'));
  });

  test('500 on every try: failed after the policy’s tries, within its time bound', async () => {
    faults = [500, 500, 500, 500, 500];
    const { adapter, pauses } = gateway();
    assert.equal(await adapter.post(connectionId, 'never'), 'failed');
    assert.equal(pauses.length, POST_RETRY.attempts - 1);
    // The longest the pauses can add up to, with full jitter: under 2 s.
    const worst = Array.from({ length: POST_RETRY.attempts - 1 }, (_, i) => POST_RETRY.baseDelayMs * 2 ** i);
    assert.ok(worst.reduce((a, b) => a + b, 0) < 2000);
    faults = [];
    assert.equal(received.includes('never'), false);
  });

  test('413: too-large at once, no retry', async () => {
    faults = [413];
    const { adapter, pauses } = gateway();
    assert.equal(await adapter.post(connectionId, 'big'), 'too-large');
    assert.deepEqual(pauses, []);
  });

  test('near the end of the invocation a throttled post is not retried', async () => {
    faults = [429, 429];
    const { adapter, pauses } = gateway(() => POST_RETRY.minTimeLeftMs - 1);
    assert.equal(await adapter.post(connectionId, 'late'), 'failed');
    assert.deepEqual(pauses, []);
    faults = [];
  });

  test('a gone connection: gone, no retry', async () => {
    const { adapter, pauses } = gateway();
    assert.equal(await adapter.post('bm90IGEgY29ubmVjdGlvbg==', 'lost'), 'gone');
    assert.deepEqual(pauses, []);
  });
});
