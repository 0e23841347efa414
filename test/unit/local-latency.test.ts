// infra/local/latency.ts: the modelled AWS latency the emulator adds with `--aws-latency`. The
// draws follow the documented p50 and p99 (seeded, so the same every run), and the emulator
// reports every delay it applied. Nothing here asserts how long anything took.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { AWS_LATENCY, awsLatencyWanted, HOPS, LatencyModel } from '../../infra/local/latency.ts';
import { LocalWebSocketApi } from '../../infra/local/websocket-api.ts';
import { eventually } from '../helpers.ts';

describe('modelled AWS latency', () => {
  test('draws have the documented median and 99th percentile, the same for the same seed', () => {
    for (const hop of HOPS) {
      const model = new LatencyModel(AWS_LATENCY, 7);
      const draws = Array.from({ length: 20_000 }, () => model.sample(hop)).sort((a, b) => a - b);
      const { p50Ms, p99Ms } = AWS_LATENCY[hop];
      const p50 = draws[10_000] as number;
      const p99 = draws[19_800] as number;
      assert.ok(Math.abs(p50 / p50Ms - 1) < 0.05, `${hop}: p50 ${p50} for ${p50Ms}`);
      assert.ok(Math.abs(p99 / p99Ms - 1) < 0.15, `${hop}: p99 ${p99} for ${p99Ms}`);
      assert.equal(model.applied[hop].count, 20_000);
      const again = new LatencyModel(AWS_LATENCY, 7);
      assert.equal(again.sample(hop), new LatencyModel(AWS_LATENCY, 7).sample(hop));
    }
  });

  test('--aws-latency or AWS_LATENCY turns it on; nothing does by default', () => {
    assert.equal(awsLatencyWanted([], {}), false);
    assert.equal(awsLatencyWanted([], { AWS_LATENCY: '0' }), false);
    assert.equal(awsLatencyWanted(['--aws-latency'], {}), true);
    assert.equal(awsLatencyWanted([], { AWS_LATENCY: '1' }), true);
  });

  test('the emulator delays each batch (API Gateway, SQS FIFO to Lambda) and each post, and says so', async () => {
    // Tiny delays: what is checked is that they were applied, never how long they took.
    const tiny = { p50Ms: 1, p99Ms: 2 };
    const latency = new LatencyModel(
      { apiGateway: tiny, sqsFifoToLambda: tiny, dynamoDb: tiny, postToConnection: tiny },
      3,
    );
    const handled: string[] = [];
    const api = new LocalWebSocketApi({
      connectHandler: async () => ({ statusCode: 200, headers: { 'Sec-WebSocket-Protocol': 'xmpp' } }),
      framesHandler: async (event) => {
        for (const record of event.Records) {
          handled.push(record.body);
          // The handler answers through the Management API, as the frames function does.
          const connectionId = record.messageAttributes.connectionId?.stringValue ?? '';
          await fetch(`${api.managementEndpoint}/@connections/${encodeURIComponent(connectionId)}`, {
            method: 'POST',
            body: '<pong/>',
          });
        }
        return { batchItemFailures: [] };
      },
      latency,
    });
    await api.listen();
    const socket = new WebSocket(api.url, ['xmpp']);
    const received: string[] = [];
    socket.on('message', (data) => received.push(data.toString()));
    try {
      await new Promise((resolve) => socket.once('open', resolve));
      socket.send('<ping/>');
      await eventually(() => received.length === 1 || undefined);
      await api.idle();
      assert.equal(handled.length, 1);
      assert.deepEqual(received, ['<pong/>']);
      assert.equal(api.latency, latency);
      assert.equal(latency.applied.apiGateway.count, 1);
      assert.equal(latency.applied.sqsFifoToLambda.count, 1);
      assert.equal(latency.applied.postToConnection.count, 1);
      assert.ok(latency.applied.postToConnection.totalMs > 0);
      assert.equal(latency.applied.dynamoDb.count, 0, 'DynamoDB is the local system’s, not the emulator’s');
    } finally {
      socket.close();
      await api.close();
    }
  });

  test('off unless asked for: an emulator without a model has none', async () => {
    const api = new LocalWebSocketApi({
      connectHandler: async () => ({ statusCode: 200 }),
      framesHandler: async () => ({ batchItemFailures: [] }),
    });
    assert.equal(api.latency, undefined);
  });
});
