// What the functions publish (functions/runtime.ts) is what the stack watches (infra/observability.ts):
// EMF metrics in METRIC_NAMESPACE with the `service` dimension, JSON log lines with `level` and
// `service` (the metric filter's fields), flushed at the end of every invocation.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createFramesHandler } from '../../functions/frames.ts';
import { createContext, EmfMetrics, JsonLogger, settingsFromEnv } from '../../functions/runtime.ts';
import { defaultConfig } from '../../lib/config.ts';
import { METRIC_NAMES, METRIC_NAMESPACE } from '../../lib/metrics.ts';
import type { Context } from '../../lib/ports.ts';

/** The JSON lines written to stdout and stderr while `run` runs. */
async function captureLines(run: () => unknown): Promise<Record<string, unknown>[]> {
  const written: string[] = [];
  const streams = [process.stdout, process.stderr];
  const originals = streams.map((stream) => stream.write);
  for (const stream of streams) {
    stream.write = ((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    }) as typeof stream.write;
  }
  try {
    await run();
  } finally {
    streams.forEach((stream, i) => {
      stream.write = originals[i] as typeof stream.write;
    });
  }
  return written
    .join('')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

const unused = () => {
  throw new Error('not used by this test');
};

describe('metrics', () => {
  test('one EMF line per flush, in the namespace and with the service dimension the dashboard reads', async () => {
    const metrics = new EmfMetrics(METRIC_NAMESPACE, 'Test');
    const lines = await captureLines(() => {
      metrics.count('StanzasHandled');
      metrics.count('StanzasHandled');
      metrics.count('MessagesDrained', 5);
      metrics.count('GoneConnections', 0);
      metrics.flush();
      metrics.flush();
    });
    assert.equal(lines.length, 1, 'nothing is written when nothing was counted');
    const [emf] = lines as [Record<string, unknown>];
    assert.deepEqual((emf._aws as { CloudWatchMetrics: unknown }).CloudWatchMetrics, [
      {
        Namespace: METRIC_NAMESPACE,
        Dimensions: [['service']],
        Metrics: [
          { Name: 'StanzasHandled', Unit: 'Count' },
          { Name: 'MessagesDrained', Unit: 'Count' },
        ],
      },
    ]);
    assert.equal(emf.service, 'Test');
    assert.deepEqual(emf.StanzasHandled, [1, 1]);
    assert.equal(emf.MessagesDrained, 5);
  });

  test('every metric name is a valid CloudWatch name', () => {
    for (const name of METRIC_NAMES) assert.match(name, /^[A-Za-z][A-Za-z0-9]{1,254}$/);
  });

  test('only a deployment (POWERTOOLS_METRICS_NAMESPACE set) publishes; the local system does not', () => {
    const env = { TABLE_NAME: 't', AWS_REGION: 'eu-west-1', FRAMES_QUEUE_URL: 'https://sqs.invalid/q' };
    const local = createContext(settingsFromEnv(env));
    assert.equal(local.metrics, undefined);
    const deployed = createContext(
      settingsFromEnv({
        ...env,
        POWERTOOLS_METRICS_NAMESPACE: METRIC_NAMESPACE,
        POWERTOOLS_SERVICE_NAME: 'Test',
      }),
    );
    assert.ok(deployed.metrics instanceof EmfMetrics);
  });

  test('the frames handler publishes what was counted, also when a frame failed', async () => {
    const metrics = new EmfMetrics(METRIC_NAMESPACE, 'Test');
    const ctx: Context = {
      store: new Proxy({}, { get: unused }) as Context['store'],
      gateway: { post: unused, close: unused },
      continuations: { continueDrain: unused },
      config: defaultConfig(),
      logger: new JsonLogger('silent'),
      metrics,
      now: Date.now,
    };
    metrics.count('SaslFailures');
    let result: unknown;
    const lines = await captureLines(async () => {
      result = await createFramesHandler(() => ctx)({
        Records: [
          {
            messageId: 'm1',
            body: '<open/>',
            attributes: {},
            messageAttributes: {},
          } as never,
        ],
      });
    });
    assert.deepEqual(result, { batchItemFailures: [{ itemIdentifier: 'm1' }] });
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.SaslFailures, 1);
  });
});

describe('logs', () => {
  test('JSON lines with level, message, service and the fields; below the level nothing', async () => {
    const lines = await captureLines(() => {
      const logger = new JsonLogger('warn', 'Test');
      logger.debug('hidden');
      logger.info('hidden', { connectionId: 'c1' });
      logger.warn('frame for an unknown connection', { connectionId: 'c1' });
      logger.error('frame failed', { connectionId: 'c2', user: 'alice@localhost', error: 'boom' });
    });
    assert.deepEqual(
      lines.map(({ timestamp, sampling_rate, ...line }) => line),
      [
        {
          level: 'WARN',
          message: 'frame for an unknown connection',
          service: 'Test',
          connectionId: 'c1',
        },
        {
          level: 'ERROR',
          message: 'frame failed',
          service: 'Test',
          connectionId: 'c2',
          user: 'alice@localhost',
          error: 'boom',
        },
      ],
    );
  });

  test('silent logs nothing', async () => {
    const lines = await captureLines(() => new JsonLogger('silent').error('not shown'));
    assert.deepEqual(lines, []);
  });
});
