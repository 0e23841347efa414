// What the stack promises (infra/stack.ts), checked on the synthesized template. Bundling is
// skipped ('aws:cdk:bundling-stacks': []), so no esbuild run: `npx cdk synth` exercises that.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { FRAME_ATTRIBUTES } from '../../functions/frames.ts';
import { PARAMETER_DEFAULTS, ParameterError, parseParameters } from '../../infra/parameters.ts';
import { XmppStack } from '../../infra/stack.ts';
import { TABLE_SCHEMA } from '../../lib/store/schema.ts';

type Resource = { Type: string; Properties: Record<string, unknown> } & Record<string, unknown>;

/** Builds the stack the way infra/app.ts does, from CDK context. */
function synth(context: Record<string, unknown> = {}): Template {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [], ...context } });
  const stack = new XmppStack(
    app,
    'Test',
    parseParameters((key) => app.node.tryGetContext(key)),
  );
  return Template.fromStack(stack);
}

let defaults: Template | undefined;
const template = () => {
  defaults ??= synth();
  return defaults;
};

function only(t: Template, type: string, props: Record<string, unknown> = {}): [string, Resource] {
  const found = Object.entries(t.findResources(type, { Properties: props }));
  assert.equal(
    found.length,
    1,
    `expected one ${type} matching ${JSON.stringify(props)}, found ${found.length}`,
  );
  return found[0] as [string, Resource];
}

function integrationOfRoute(t: Template, routeKey: string): Resource {
  const [, route] = only(t, 'AWS::ApiGatewayV2::Route', { RouteKey: routeKey });
  const target = JSON.stringify(route.Properties.Target);
  const match = /"Ref":"([^"]+)"/.exec(target);
  assert.ok(match, `route ${routeKey} has no integration target: ${target}`);
  const integration = t.findResources('AWS::ApiGatewayV2::Integration')[match[1] as string];
  assert.ok(integration, `integration of ${routeKey}`);
  return integration as Resource;
}

function functionNamed(t: Template, entryDescription: RegExp): [string, Resource] {
  const found = Object.entries(t.findResources('AWS::Lambda::Function')).filter(([, fn]) =>
    entryDescription.test(String(fn.Properties.Description)),
  );
  assert.equal(found.length, 1, `one function described ${entryDescription}`);
  return found[0] as [string, Resource];
}

const connectFunction = (t: Template) => functionNamed(t, /\$connect/);
const framesFunction = (t: Template) => functionNamed(t, /frames/);

function policyStatementsOf(t: Template, roleLogicalId: string): Record<string, unknown>[] {
  return Object.values(t.findResources('AWS::IAM::Policy')).flatMap((policy) => {
    const roles = JSON.stringify(policy.Properties.Roles);
    if (!roles.includes(`"${roleLogicalId}"`)) return [];
    return policy.Properties.PolicyDocument.Statement as Record<string, unknown>[];
  });
}

function roleOf(fn: Resource): string {
  return (fn.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
}

const actionsOf = (statements: Record<string, unknown>[]) => statements.flatMap((s) => [s.Action].flat());

test('the table follows TABLE_SCHEMA: keys, order index, TTL, on demand, PITR, encrypted, retained', () => {
  const t = template();
  const [, table] = only(t, 'AWS::DynamoDB::GlobalTable');
  assert.equal(table.DeletionPolicy, 'Retain');
  assert.equal(table.UpdateReplacePolicy, 'Retain');
  t.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
    BillingMode: 'PAY_PER_REQUEST',
    KeySchema: [
      { AttributeName: TABLE_SCHEMA.partitionKey, KeyType: 'HASH' },
      { AttributeName: TABLE_SCHEMA.sortKey, KeyType: 'RANGE' },
    ],
    AttributeDefinitions: Match.arrayWith([
      { AttributeName: TABLE_SCHEMA.partitionKey, AttributeType: 'S' },
      { AttributeName: TABLE_SCHEMA.sortKey, AttributeType: 'S' },
      { AttributeName: TABLE_SCHEMA.orderIndex.sortKey, AttributeType: 'S' },
    ]),
    LocalSecondaryIndexes: [
      {
        IndexName: TABLE_SCHEMA.orderIndex.name,
        KeySchema: [
          { AttributeName: TABLE_SCHEMA.partitionKey, KeyType: 'HASH' },
          { AttributeName: TABLE_SCHEMA.orderIndex.sortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
    ],
    TimeToLiveSpecification: { AttributeName: TABLE_SCHEMA.timeToLiveAttribute, Enabled: true },
    SSESpecification: { SSEEnabled: true },
    Replicas: [
      Match.objectLike({
        DeletionProtectionEnabled: true,
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      }),
    ],
  });
});

test('removalPolicy=destroy lets the table and the logs go with the stack', () => {
  const t = synth({ removalPolicy: 'destroy' });
  const [, table] = only(t, 'AWS::DynamoDB::GlobalTable');
  assert.equal(table.DeletionPolicy, 'Delete');
  t.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
    Replicas: [Match.objectLike({ DeletionProtectionEnabled: false })],
  });
  for (const logGroup of Object.values(t.findResources('AWS::Logs::LogGroup'))) {
    assert.equal(logGroup.DeletionPolicy, 'Delete');
  }
  for (const logGroup of Object.values(template().findResources('AWS::Logs::LogGroup'))) {
    assert.equal(logGroup.DeletionPolicy, 'Retain');
  }
});

test('frames go through a high-throughput FIFO queue with a dead-letter FIFO queue', () => {
  const t = template();
  const [dlqId] = only(t, 'AWS::SQS::Queue', { MessageRetentionPeriod: 14 * 24 * 3600 });
  t.hasResourceProperties('AWS::SQS::Queue', {
    MessageRetentionPeriod: 14 * 24 * 3600,
    FifoQueue: true,
    SqsManagedSseEnabled: true,
  });
  const [, queue] = only(t, 'AWS::SQS::Queue', { RedrivePolicy: Match.anyValue() });
  assert.deepEqual(queue.Properties, {
    FifoQueue: true,
    DeduplicationScope: 'messageGroup',
    FifoThroughputLimit: 'perMessageGroupId',
    SqsManagedSseEnabled: true,
    VisibilityTimeout: queue.Properties.VisibilityTimeout,
    RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [dlqId, 'Arn'] }, maxReceiveCount: 5 },
  });
  const [, frames] = framesFunction(t);
  assert.ok(
    Number(queue.Properties.VisibilityTimeout) >= 6 * Number(frames.Properties.Timeout),
    'visibility timeout at least 6x the consumer timeout',
  );
  // enforceSSL on both queues.
  const policies = Object.values(t.findResources('AWS::SQS::QueuePolicy'));
  assert.equal(policies.length, 2);
  for (const policy of policies) {
    assert.match(JSON.stringify(policy.Properties.PolicyDocument), /"aws:SecureTransport":"false"/);
  }
});

for (const [routeKey, body] of [
  ['$default', 'MessageBody=$util.urlEncode($input.body)'],
  ['$disconnect', 'MessageBody=DISCONNECT'],
] as const) {
  test(`${routeKey} sends an SQS message in the connection's message group`, () => {
    const t = template();
    const integration = integrationOfRoute(t, routeKey);
    const [queueId] = only(t, 'AWS::SQS::Queue', { RedrivePolicy: Match.anyValue() });
    const [roleId] = only(t, 'AWS::IAM::Role', {
      AssumeRolePolicyDocument: Match.objectLike({
        Statement: [Match.objectLike({ Principal: { Service: 'apigateway.amazonaws.com' } })],
      }),
    });
    const props = integration.Properties;
    assert.equal(props.IntegrationType, 'AWS');
    assert.equal(props.IntegrationMethod, 'POST');
    assert.deepEqual(props.CredentialsArn, { 'Fn::GetAtt': [roleId, 'Arn'] });
    const uri = JSON.stringify(props.IntegrationUri);
    assert.match(uri, /:apigateway:.*:sqs:path\//);
    assert.ok(uri.includes(`"Fn::GetAtt":["${queueId}","QueueName"]`), uri);
    assert.deepEqual(props.RequestParameters, {
      'integration.request.header.Content-Type': "'application/x-www-form-urlencoded'",
    });
    assert.equal(props.TemplateSelectionExpression, '\\$default');
    const templates = props.RequestTemplates as Record<string, string>;
    assert.deepEqual(Object.keys(templates), ['$default']);
    const fields = (templates.$default ?? '').split('&');
    for (const field of [
      'Action=SendMessage',
      'MessageGroupId=$util.urlEncode($context.connectionId)',
      'MessageDeduplicationId=$util.urlEncode($context.requestId)',
      `MessageAttribute.1.Name=${FRAME_ATTRIBUTES.connectionId}`,
      'MessageAttribute.1.Value.StringValue=$util.urlEncode($context.connectionId)',
      'MessageAttribute.1.Value.DataType=String',
      `MessageAttribute.2.Name=${FRAME_ATTRIBUTES.eventType}`,
      'MessageAttribute.2.Value.StringValue=$util.urlEncode($context.eventType)',
      'MessageAttribute.2.Value.DataType=String',
      body,
    ]) {
      assert.ok(fields.includes(field), `${routeKey} template has ${field}`);
    }
    assert.equal(fields.length, 10);
  });
}

test('$connect is a Lambda proxy integration of the connect function, with no route response', () => {
  const t = template();
  const integration = integrationOfRoute(t, '$connect');
  const [connectId] = connectFunction(t);
  assert.equal(integration.Properties.IntegrationType, 'AWS_PROXY');
  assert.ok(JSON.stringify(integration.Properties.IntegrationUri).includes(`"${connectId}"`));
  t.resourceCountIs('AWS::ApiGatewayV2::RouteResponse', 0);
  t.resourceCountIs('AWS::ApiGatewayV2::Route', 3);
});

test('both functions run Node.js 22 on arm64 with the settings the handlers read', () => {
  const t = template();
  const [tableId] = only(t, 'AWS::DynamoDB::GlobalTable');
  for (const [[, fn], timeout] of [
    [connectFunction(t), 10],
    [framesFunction(t), 30],
  ] as const) {
    assert.equal(fn.Properties.Runtime, 'nodejs22.x');
    assert.deepEqual(fn.Properties.Architectures, ['arm64']);
    assert.equal(fn.Properties.Handler, 'index.handler');
    assert.equal(fn.Properties.Timeout, timeout);
    assert.equal(fn.Properties.MemorySize, 512);
    const variables = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    assert.deepEqual(variables.TABLE_NAME, { Ref: tableId });
    assert.equal(variables.NODE_OPTIONS, '--enable-source-maps');
    assert.equal(variables.XMPP_DOMAIN, 'localhost');
    assert.equal(variables.MUC_DOMAIN, 'conference.localhost');
    assert.equal(variables.MAX_STANZA_BYTES, '65536');
    assert.equal(variables.LOG_LEVEL, 'info');
    // Its own log group, with the retention.
    const logGroupId = (fn.Properties.LoggingConfig as { LogGroup: { Ref: string } }).LogGroup.Ref;
    const logGroup = t.findResources('AWS::Logs::LogGroup')[logGroupId];
    assert.equal(logGroup?.Properties.RetentionInDays, 30);
  }
  const [, frames] = framesFunction(t);
  const [, connect] = connectFunction(t);
  assert.match(
    JSON.stringify(frames.Properties.Environment),
    /"MANAGEMENT_ENDPOINT":\{"Fn::Join":\["",\["https:\/\//,
  );
  assert.ok(!JSON.stringify(connect.Properties.Environment).includes('MANAGEMENT_ENDPOINT'));
  // Long drains continue through the frames queue, so only the frames function may send to it.
  assert.match(JSON.stringify(frames.Properties.Environment), /"FRAMES_QUEUE_URL":\{"Ref":"OrderedFrames/);
  const sendsToQueue = Object.values(t.findResources('AWS::IAM::Policy')).filter((policy) =>
    JSON.stringify(policy.Properties.PolicyDocument).includes('sqs:SendMessage'),
  );
  assert.ok(
    sendsToQueue.some((policy) => JSON.stringify(policy.Properties.Roles).includes('FramesFunction')),
  );
});

test('the frames function consumes the FIFO queue in batches and reports item failures', () => {
  const t = template();
  const [queueId] = only(t, 'AWS::SQS::Queue', { RedrivePolicy: Match.anyValue() });
  const [framesId] = framesFunction(t);
  const [, mapping] = only(t, 'AWS::Lambda::EventSourceMapping');
  assert.deepEqual(mapping.Properties.EventSourceArn, { 'Fn::GetAtt': [queueId, 'Arn'] });
  assert.deepEqual(mapping.Properties.FunctionName, { Ref: framesId });
  assert.equal(mapping.Properties.BatchSize, 10);
  assert.deepEqual(mapping.Properties.FunctionResponseTypes, ['ReportBatchItemFailures']);
});

test('IAM: API Gateway may only send to the frame queue', () => {
  const t = template();
  const [queueId] = only(t, 'AWS::SQS::Queue', { RedrivePolicy: Match.anyValue() });
  const [roleId] = only(t, 'AWS::IAM::Role', {
    AssumeRolePolicyDocument: Match.objectLike({
      Statement: [Match.objectLike({ Principal: { Service: 'apigateway.amazonaws.com' } })],
    }),
  });
  assert.deepEqual(policyStatementsOf(t, roleId), [
    { Action: 'sqs:SendMessage', Effect: 'Allow', Resource: { 'Fn::GetAtt': [queueId, 'Arn'] } },
  ]);
});

test('IAM: frames manages the stage connections, reads and writes; connect only writes', () => {
  const t = template();
  const [, frames] = framesFunction(t);
  const [, connect] = connectFunction(t);
  const framesStatements = policyStatementsOf(t, roleOf(frames));
  const manage = framesStatements.filter((s) => s.Action === 'execute-api:ManageConnections');
  assert.equal(manage.length, 1);
  assert.match(JSON.stringify(manage[0]?.Resource), /\/prod\/\*\/@connections\/\*"\]\]\}$/);
  const framesActions = actionsOf(framesStatements);
  for (const action of ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem']) {
    assert.ok(framesActions.includes(action), `frames may ${action}`);
  }
  const connectActions = actionsOf(policyStatementsOf(t, roleOf(connect)));
  assert.ok(connectActions.includes('dynamodb:PutItem'));
  for (const action of [
    'dynamodb:GetItem',
    'dynamodb:Query',
    'dynamodb:Scan',
    'execute-api:ManageConnections',
  ]) {
    assert.ok(!connectActions.includes(action), `connect may not ${action}`);
  }
  assert.ok(!connectActions.some((action) => String(action).startsWith('sqs:')));
});

test('the stage deploys itself and is throttled as the context says', () => {
  template().hasResourceProperties('AWS::ApiGatewayV2::Stage', {
    StageName: 'prod',
    AutoDeploy: true,
    DefaultRouteSettings: { ThrottlingRateLimit: 500, ThrottlingBurstLimit: 1000 },
  });
  const t = synth({ stageName: 'live', throttleRate: '50', throttleBurst: 80 });
  t.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
    StageName: 'live',
    DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 80 },
  });
  t.hasOutput('WebSocketUrl', { Value: { 'Fn::Join': ['', Match.arrayWith(['/live'])] } });
});

test('outputs: the wss:// URL, the domain, the table and the Management API endpoint', () => {
  const t = template();
  const [tableId] = only(t, 'AWS::DynamoDB::GlobalTable');
  t.hasOutput('WebSocketUrl', { Value: { 'Fn::Join': ['', Match.arrayWith(['wss://'])] } });
  t.hasOutput('XmppDomain', { Value: 'localhost' });
  t.hasOutput('TableName', { Value: { Ref: tableId } });
  t.hasOutput('ManagementEndpoint', { Value: { 'Fn::Join': ['', Match.arrayWith(['https://'])] } });
});

test('alarms watch function errors and throttles, integration errors and dead letters', () => {
  const t = template();
  t.resourceCountIs('AWS::CloudWatch::Alarm', 6);
  for (const metricName of [
    'Errors',
    'Throttles',
    'IntegrationError',
    'ApproximateNumberOfMessagesVisible',
  ]) {
    t.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: metricName, Threshold: 1 });
  }
});

test('context parameters reach the functions', () => {
  const t = synth({
    domain: 'Chat.Example.com',
    maxStanzaBytes: '32768',
    logLevel: 'debug',
    logRetentionDays: 7,
    offlineQuota: '500',
    retentionDays: '7',
  });
  for (const [, fn] of [connectFunction(t), framesFunction(t)]) {
    t.hasResourceProperties('AWS::Lambda::Function', {
      Description: fn.Properties.Description,
      Environment: {
        Variables: Match.objectLike({
          XMPP_DOMAIN: 'chat.example.com',
          MUC_DOMAIN: 'conference.chat.example.com',
          MAX_STANZA_BYTES: '32768',
          LOG_LEVEL: 'debug',
          OFFLINE_QUOTA: '500',
          RETENTION_DAYS: '7',
        }),
      },
    });
  }
  t.hasOutput('XmppDomain', { Value: 'chat.example.com' });
  for (const logGroup of Object.values(t.findResources('AWS::Logs::LogGroup'))) {
    assert.equal(logGroup.Properties.RetentionInDays, 7);
  }
  const rooms = synth({ domain: 'chat.example.com', mucDomain: 'rooms.example.com' });
  rooms.hasResourceProperties('AWS::Lambda::Function', {
    Environment: { Variables: Match.objectLike({ MUC_DOMAIN: 'rooms.example.com' }) },
  });
});

test('no hard-coded physical names', () => {
  const names = ['TableName', 'FunctionName', 'QueueName', 'RoleName', 'LogGroupName'];
  for (const [id, resource] of Object.entries(template().toJSON().Resources as Record<string, Resource>)) {
    for (const name of names) {
      // A reference to another resource (an event source's FunctionName) is not a physical name.
      assert.notEqual(typeof resource.Properties?.[name], 'string', `${id} has a literal ${name}`);
    }
  }
});

test('parseParameters: defaults', () => {
  assert.deepEqual(
    parseParameters(() => undefined),
    { ...PARAMETER_DEFAULTS, mucDomain: 'conference.localhost' },
  );
});

test('parseParameters: invalid context values are rejected', () => {
  const invalid: [string, unknown][] = [
    ['domain', 'not a domain'],
    ['domain', 'example..com'],
    ['domain', ''],
    ['mucDomain', 'rooms@example.com'],
    ['stageName', 'a/b'],
    ['stageName', ''],
    ['maxStanzaBytes', 'big'],
    ['maxStanzaBytes', 9999],
    ['maxStanzaBytes', 200000],
    ['maxStanzaBytes', '15000.5'],
    ['logLevel', 'verbose'],
    ['throttleRate', 0],
    ['throttleRate', '-5'],
    ['throttleBurst', 1.5],
    ['throttleBurst', 'lots'],
    ['logRetentionDays', 31],
    ['logRetentionDays', 'forever'],
    ['removalPolicy', 'snapshot'],
  ];
  for (const [key, value] of invalid) {
    assert.throws(
      () => parseParameters((k) => (k === key ? value : undefined)),
      (error: unknown) => error instanceof ParameterError && error.message.includes(key),
      `${key}=${JSON.stringify(value)} must be rejected`,
    );
  }
  assert.throws(() => synth({ removalPolicy: 'keep' }), ParameterError);
  assert.throws(() => new XmppStack(new App(), 'Direct', { throttleRate: -1 }), ParameterError);
});
