// functions/runtime.ts as a deployed function meets it: settings from exactly the environment the
// stack gives that function, DynamoDB reached through the SDK's standard endpoint setting
// (AWS_ENDPOINT_URL_DYNAMODB) and credentials from the environment, as on Lambda.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createConnectHandler } from '../../functions/connect.ts';
import { createExpiredHandler } from '../../functions/expired.ts';
import { createContext, settingsFromEnv } from '../../functions/runtime.ts';
import {
  ensureTable,
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  type LocalDynamo,
  startDynamoLocal,
} from '../../infra/local/dynamodb.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

describe('functions/runtime.ts with a function environment', () => {
  const tableName = 'xmpp-runtime-test';
  let dynamo: LocalDynamo;

  before(async () => {
    dynamo = await startDynamoLocal({ startTimeoutMs: 120_000 });
    const admin = new DynamoDBClient({
      endpoint: dynamo.endpoint,
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
    });
    await ensureTable(admin, tableName);
    admin.destroy();
    // What the Lambda runtime and the local bundle processes provide, not the template.
    process.env.AWS_ENDPOINT_URL_DYNAMODB = dynamo.endpoint;
    process.env.AWS_ACCESS_KEY_ID = LOCAL_CREDENTIALS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = LOCAL_CREDENTIALS.secretAccessKey;
  });
  after(async () => {
    await dynamo?.stop();
  });

  test('$connect runs without FRAMES_QUEUE_URL: clients are built on first use', async () => {
    const ctx = createContext(
      settingsFromEnv({ TABLE_NAME: tableName, AWS_REGION: LOCAL_REGION, MANAGEMENT_ENDPOINT: '' }),
    );
    const response = await createConnectHandler(() => ctx)({
      requestContext: { connectionId: 'conn-runtime-1', routeKey: '$connect', eventType: 'CONNECT' },
      headers: { 'Sec-WebSocket-Protocol': 'xmpp' },
    });
    assert.deepEqual(response, { statusCode: 200, headers: { 'Sec-WebSocket-Protocol': 'xmpp' } });
    assert.equal((await ctx.store.getConnection('conn-runtime-1'))?.state, 'connected');
  });

  test('the example of the issue: TABLE_NAME, AWS_REGION and MANAGEMENT_ENDPOINT only', async () => {
    const ctx = createContext(
      settingsFromEnv({
        TABLE_NAME: tableName,
        AWS_REGION: LOCAL_REGION,
        MANAGEMENT_ENDPOINT: 'http://127.0.0.1:9/local',
      }),
    );
    const response = await createConnectHandler(() => ctx)({
      requestContext: { connectionId: 'conn-runtime-2', routeKey: '$connect', eventType: 'CONNECT' },
    });
    assert.deepEqual(response, { statusCode: 200, headers: undefined });
    // The expired function has no queue either; a batch without records touches nothing.
    assert.deepEqual(await createExpiredHandler(() => ctx)({ Records: [] }), { batchItemFailures: [] });
  });

  test('a missing setting fails the use that needs it, naming it', async () => {
    const ctx = createContext(settingsFromEnv({ TABLE_NAME: tableName, AWS_REGION: LOCAL_REGION }));
    await assert.rejects(
      async () => ctx.continuations.continueDrain('c', 'x'),
      /FRAMES_QUEUE_URL is not set/,
    );
    await assert.rejects(async () => ctx.gateway.post('c', '<x/>'), /MANAGEMENT_ENDPOINT is not set/);
  });
});
