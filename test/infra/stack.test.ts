// What the stack promises (infra/stack.ts), checked on the synthesized template, and cdk-nag's
// AwsSolutions pack on it. Bundling is skipped ('aws:cdk:bundling-stacks': []), so no esbuild run:
// `npx cdk synth` exercises that.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { App, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { FRAME_ATTRIBUTES, FRAME_BODY_PREFIX } from '../../functions/frames.ts';
import { HANDLER_ERRORS_METRIC } from '../../infra/observability.ts';
import {
  PARAMETER_DEFAULTS,
  PARAMETER_KEYS,
  ParameterError,
  parseParameters,
} from '../../infra/parameters.ts';
import {
  ACCESS_LOG_FORMAT,
  AUTH_DEADLINE_TABLE_ACTIONS,
  FRAMES_TABLE_ACTIONS,
  XmppStack,
} from '../../infra/stack.ts';
import { METRIC_NAMES, METRIC_NAMESPACE } from '../../lib/metrics.ts';
import { TABLE_SCHEMA } from '../../lib/store/schema.ts';

type Resource = { Type: string; Properties: Record<string, unknown> } & Record<string, unknown>;
type Statement = { Action: string | string[]; Resource: unknown; Effect: string };

/** Builds the stack the way infra/app.ts does, from CDK context. */
function build(context: Record<string, unknown> = {}): { stack: XmppStack; template: Template } {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [], ...context } });
  const stack = new XmppStack(
    app,
    'Test',
    parseParameters((key) => app.node.tryGetContext(key)),
  );
  return { stack, template: Template.fromStack(stack) };
}
const synth = (context: Record<string, unknown> = {}) => build(context).template;

let defaults: ReturnType<typeof build> | undefined;
const built = () => {
  defaults ??= build();
  return defaults;
};
const template = () => built().template;

/** Every context parameter set to something other than its default. */
const EVERY_PARAMETER = {
  domain: 'Chat.Example.com',
  mucDomain: 'rooms.example.com',
  stageName: 'live',
  maxStanzaBytes: '20000',
  logLevel: 'debug',
  throttleRate: '50',
  throttleBurst: 80,
  logRetentionDays: 7,
  removalPolicy: 'destroy',
  offlineQuota: '500',
  retentionDays: '7',
  archiveDays: '0',
  messagePolicy: 'roster',
  maxFramesPerSecond: '50',
  maxBytesPerSecond: 65536,
  maxSessionsPerUser: '5',
  authTimeoutSeconds: '60',
  alarmEmail: 'ops@example.com',
  customDomainName: 'xmpp.example.com',
  certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0',
  apiGatewayCloudWatchRole: 'false',
  registration: 'open',
  registrationsPerHour: '3',
  minPasswordLength: 12,
  webClient: 'true',
  uploadDomain: 'files.example.com',
  uploadMaxFileBytes: '1048576',
  uploadQuotaBytesPerDay: 10485760,
  uploadRetentionDays: '7',
  pushServices: 'push.example.com=https://push.example.com/xmpp',
  pushMaxRegistrations: '5',
  pushCoalesceSeconds: 30,
  pushIncludeBody: 'true',
  pushRoomMentions: 'false',
  pushEvents: 'true',
  memorySize: '1536',
} as const satisfies Record<(typeof PARAMETER_KEYS)[number], unknown>;

let everything: ReturnType<typeof build> | undefined;
const builtWithEverything = () => {
  everything ??= build(EVERY_PARAMETER);
  return everything;
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
const expiredFunction = (t: Template) => functionNamed(t, /TTL deleted/);
const authDeadlineFunction = (t: Template) => functionNamed(t, /authentication deadline/);
/** The standard queue of authentication deadlines (delayed messages). */
const authDeadlines = (t: Template) => only(t, 'AWS::SQS::Queue', { MessageRetentionPeriod: 3600 });
/** The frames queue's dead-letter queue (FIFO) and the expired function's failure queue. */
const framesDeadLetters = (t: Template) =>
  only(t, 'AWS::SQS::Queue', { MessageRetentionPeriod: 14 * 24 * 3600, FifoQueue: true });
const expiryFailures = (t: Template) =>
  only(t, 'AWS::SQS::Queue', { MessageRetentionPeriod: 14 * 24 * 3600, FifoQueue: Match.absent() });
/** XEP-0363 files (infra/uploads.ts): the bucket with the lifecycle rule. */
const uploadsBucket = (t: Template) =>
  only(t, 'AWS::S3::Bucket', { LifecycleConfiguration: Match.anyValue() });
const sendMessageRole = (t: Template) =>
  only(t, 'AWS::IAM::Role', { Description: Match.stringLikeRegexp('ordered frame queue') });

function policyStatementsOf(t: Template, roleLogicalId: string): Statement[] {
  return Object.values(t.findResources('AWS::IAM::Policy')).flatMap((policy) => {
    const roles = JSON.stringify(policy.Properties.Roles);
    if (!roles.includes(`"${roleLogicalId}"`)) return [];
    return policy.Properties.PolicyDocument.Statement as Statement[];
  });
}

function roleOf(fn: Resource): string {
  return (fn.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
}

/** Every (action, resource) pair a role may use, resources as JSON. */
function grantsOf(t: Template, roleLogicalId: string): Set<string> {
  const grants = new Set<string>();
  for (const statement of policyStatementsOf(t, roleLogicalId)) {
    assert.equal(statement.Effect, 'Allow');
    for (const action of [statement.Action].flat()) {
      for (const resource of [statement.Resource].flat()) grants.add(`${action} ${JSON.stringify(resource)}`);
    }
  }
  return grants;
}

const arnOf = (logicalId: string) => ({ 'Fn::GetAtt': [logicalId, 'Arn'] });

/** The DynamoDB actions the commands of lib/store/*.ts need (lib-dynamodb's names). */
const COMMAND_ACTIONS: Record<string, string> = {
  Get: 'dynamodb:GetItem',
  Put: 'dynamodb:PutItem',
  Update: 'dynamodb:UpdateItem',
  Delete: 'dynamodb:DeleteItem',
  Query: 'dynamodb:Query',
  Scan: 'dynamodb:Scan',
  BatchGet: 'dynamodb:BatchGetItem',
  BatchWrite: 'dynamodb:BatchWriteItem',
  TransactGet: 'dynamodb:TransactGetItems',
  TransactWrite: 'dynamodb:TransactWriteItems',
  ExecuteStatement: 'dynamodb:PartiQLSelect',
};

/** AwsSolutions findings that are not acknowledged, as `rule at path`. */
function nagFindings(stack: XmppStack): string[] {
  const report = new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(stack);
  return report.violations.flatMap((violation) =>
    violation.violatingResources.map(
      (resource) => `${violation.ruleName} at ${resource.constructPath}: ${violation.description}`,
    ),
  );
}

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
  const [dlqId] = framesDeadLetters(t);
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
    RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [dlqId, 'Arn'] }, maxReceiveCount: 3 },
  });
  const [, frames] = framesFunction(t);
  const visibility = Number(queue.Properties.VisibilityTimeout);
  const timeout = Number(frames.Properties.Timeout);
  // Lambda refuses a queue whose visibility timeout is shorter than the function's timeout;
  // the margin covers the time from the poller's receive to the invocation's start.
  assert.equal(visibility, timeout + 5);
  // A frame that keeps failing is received again every visibility timeout: it reaches the
  // dead-letter queue, and unblocks its connection, within about a minute.
  assert.ok(3 * visibility <= 60, `a poison frame waits ${3 * visibility} s`);
  // enforceSSL on every queue: these two, the expiry failure queue and the deadline queue.
  const policies = Object.values(t.findResources('AWS::SQS::QueuePolicy'));
  assert.equal(policies.length, 4);
  for (const policy of policies) {
    assert.match(JSON.stringify(policy.Properties.PolicyDocument), /"aws:SecureTransport":"false"/);
  }
});

for (const [routeKey, body] of [
  // The frame in base64 after a prefix: SQS takes any frame then, empty or with any character.
  [
    '$default',
    `MessageBody=${encodeURIComponent(FRAME_BODY_PREFIX)}$util.urlEncode($util.base64Encode($input.body))`,
  ],
  ['$disconnect', 'MessageBody=DISCONNECT'],
] as const) {
  test(`${routeKey} sends an SQS message in the connection's message group`, () => {
    const t = template();
    const integration = integrationOfRoute(t, routeKey);
    const [queueId] = only(t, 'AWS::SQS::Queue', { RedrivePolicy: Match.anyValue() });
    const [roleId] = sendMessageRole(t);
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

test('every function: Node.js 22 on arm64, timeouts sized to the work, no reserved concurrency', () => {
  const t = template();
  t.resourceCountIs('AWS::Lambda::Function', 4);
  for (const [[, fn], timeout] of [
    [connectFunction(t), 5],
    [framesFunction(t), 15],
    [expiredFunction(t), 60],
    [authDeadlineFunction(t), 10],
  ] as const) {
    assert.equal(fn.Properties.Runtime, 'nodejs22.x');
    assert.deepEqual(fn.Properties.Architectures, ['arm64']);
    assert.equal(fn.Properties.Handler, 'index.handler');
    assert.equal(fn.Properties.Timeout, timeout);
    assert.equal(fn.Properties.MemorySize, PARAMETER_DEFAULTS.memorySize);
    // Stage throttling bounds $connect and the FIFO queue bounds frames (infra/function.ts).
    assert.equal(fn.Properties.ReservedConcurrentExecutions, undefined);
    // Its own log group, with the retention.
    const logGroupId = (fn.Properties.LoggingConfig as { LogGroup: { Ref: string } }).LogGroup.Ref;
    const logGroup = t.findResources('AWS::Logs::LogGroup')[logGroupId];
    assert.equal(logGroup?.Properties.RetentionInDays, 30);
  }
});

test('environment variables: only names and settings, the ones the handlers read', () => {
  const t = template();
  const [tableId] = only(t, 'AWS::DynamoDB::GlobalTable');
  const settings = {
    NODE_OPTIONS: '--enable-source-maps',
    TABLE_NAME: { Ref: tableId },
    XMPP_DOMAIN: 'localhost',
    MUC_DOMAIN: 'conference.localhost',
    MAX_STANZA_BYTES: '32768',
    LOG_LEVEL: 'info',
    OFFLINE_QUOTA: '10000',
    RETENTION_DAYS: '30',
    ARCHIVE_DAYS: '365',
    MESSAGE_POLICY: 'open',
    POWERTOOLS_SERVICE_NAME: 'Test',
    POWERTOOLS_METRICS_NAMESPACE: METRIC_NAMESPACE,
  };
  const variables = (fn: Resource) =>
    (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
  const [deadlinesId] = authDeadlines(t);
  const [, connect] = connectFunction(t);
  // $connect starts each connection's authentication deadline (lib/limits.ts).
  assert.deepEqual(variables(connect), {
    ...settings,
    AUTH_TIMEOUT_SECONDS: '30',
    AUTH_DEADLINE_QUEUE_URL: { Ref: deadlinesId },
  });
  const [, frames] = framesFunction(t);
  const { MANAGEMENT_ENDPOINT, FRAMES_QUEUE_URL, UPLOAD_BUCKET, UPLOAD_BASE_URL, ...rest } =
    variables(frames);
  // XEP-0363 slots (the references: the uploads test below).
  assert.ok(UPLOAD_BUCKET && UPLOAD_BASE_URL);
  // The frames function applies the limits per connection and per user.
  assert.deepEqual(rest, {
    ...settings,
    MAX_FRAMES_PER_SECOND: '200',
    MAX_BYTES_PER_SECOND: '262144',
    MAX_SESSIONS_PER_USER: '10',
    REGISTRATION: 'closed',
    REGISTRATIONS_PER_HOUR: '10',
    MIN_PASSWORD_LENGTH: '8',
    UPLOAD_DOMAIN: 'upload.localhost',
    UPLOAD_MAX_FILE_BYTES: '52428800',
    UPLOAD_QUOTA_BYTES_PER_DAY: '1073741824',
    UPLOAD_RETENTION_DAYS: '30',
  });
  assert.match(JSON.stringify(MANAGEMENT_ENDPOINT), /^\{"Fn::Join":\["",\["https:\/\//);
  // Long drains continue through the frames queue.
  assert.match(JSON.stringify(FRAMES_QUEUE_URL), /^\{"Ref":"OrderedFrames/);
  const [, expired] = expiredFunction(t);
  const { MANAGEMENT_ENDPOINT: endpoint, ...others } = variables(expired);
  assert.deepEqual(others, settings);
  assert.deepEqual(endpoint, MANAGEMENT_ENDPOINT);
  const [, deadline] = authDeadlineFunction(t);
  assert.deepEqual(variables(deadline), { ...settings, AUTH_TIMEOUT_SECONDS: '30', MANAGEMENT_ENDPOINT });
});

test('authentication deadlines: a standard queue (delayed messages), consumed by its function in batches', () => {
  const t = template();
  const [queueId, queue] = authDeadlines(t);
  // A FIFO queue cannot delay one message: the deadline queue is a standard one.
  assert.equal(queue.Properties.FifoQueue, undefined);
  assert.equal(queue.Properties.SqsManagedSseEnabled, true);
  const [deadlineId, deadline] = authDeadlineFunction(t);
  assert.equal(Number(queue.Properties.VisibilityTimeout), 6 * Number(deadline.Properties.Timeout));
  const [, mapping] = only(t, 'AWS::Lambda::EventSourceMapping', {
    EventSourceArn: { 'Fn::GetAtt': [queueId, 'Arn'] },
  });
  assert.deepEqual(mapping.Properties.FunctionName, { Ref: deadlineId });
  assert.equal(mapping.Properties.BatchSize, 10);
  assert.deepEqual(mapping.Properties.FunctionResponseTypes, ['ReportBatchItemFailures']);
});

test('IAM: the deadline function reads and deletes connection items, closes connections, reads its queue', () => {
  const t = template();
  const [tableId] = only(t, 'AWS::DynamoDB::GlobalTable');
  const [queueId] = authDeadlines(t);
  const [, deadline] = authDeadlineFunction(t);
  const grants = [...grantsOf(t, roleOf(deadline))].filter((grant) => !grant.startsWith('logs:'));
  const table = JSON.stringify(arnOf(tableId));
  assert.deepEqual(
    grants.filter((grant) => grant.startsWith('dynamodb:')).sort(),
    AUTH_DEADLINE_TABLE_ACTIONS.map((action) => `${action} ${table}`).sort(),
  );
  const manage = grants.filter((grant) => grant.startsWith('execute-api:'));
  assert.equal(manage.length, 2);
  assert.match(manage[0] ?? '', /\/prod\/POST\/@connections\/\*"\]\]\}$/);
  assert.match(manage[1] ?? '', /\/prod\/DELETE\/@connections\/\*"\]\]\}$/);
  const queue = JSON.stringify(arnOf(queueId));
  assert.deepEqual(
    grants.filter((grant) => grant.startsWith('sqs:')).sort(),
    [
      'sqs:ChangeMessageVisibility',
      'sqs:DeleteMessage',
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
      'sqs:ReceiveMessage',
    ].map((action) => `${action} ${queue}`),
  );
  assert.equal(grants.length, AUTH_DEADLINE_TABLE_ACTIONS.length + manage.length + 5);
});

test('the frames function consumes the FIFO queue in batches and reports item failures', () => {
  const t = template();
  const [queueId] = only(t, 'AWS::SQS::Queue', { RedrivePolicy: Match.anyValue() });
  const [framesId] = framesFunction(t);
  const [, mapping] = only(t, 'AWS::Lambda::EventSourceMapping', {
    EventSourceArn: { 'Fn::GetAtt': [queueId, 'Arn'] },
  });
  assert.deepEqual(mapping.Properties.FunctionName, { Ref: framesId });
  assert.equal(mapping.Properties.BatchSize, 10);
  assert.deepEqual(mapping.Properties.FunctionResponseTypes, ['ReportBatchItemFailures']);
});

test('the table streams old images; only TTL deletions of connections and occupants reach the expired function', () => {
  const t = template();
  const [tableId, table] = only(t, 'AWS::DynamoDB::GlobalTable');
  assert.deepEqual(table.Properties.StreamSpecification, { StreamViewType: 'OLD_IMAGE' });
  const [expiredId] = expiredFunction(t);
  const [, mapping] = only(t, 'AWS::Lambda::EventSourceMapping', { FunctionName: { Ref: expiredId } });
  assert.deepEqual(mapping.Properties.EventSourceArn, { 'Fn::GetAtt': [tableId, 'StreamArn'] });
  assert.equal(mapping.Properties.StartingPosition, 'TRIM_HORIZON');
  assert.equal(mapping.Properties.BatchSize, 10);
  assert.deepEqual(mapping.Properties.FunctionResponseTypes, ['ReportBatchItemFailures']);
  assert.equal(mapping.Properties.MaximumRetryAttempts, 10);
  const [failuresId] = expiryFailures(t);
  assert.deepEqual(mapping.Properties.DestinationConfig, {
    OnFailure: { Destination: { 'Fn::GetAtt': [failuresId, 'Arn'] } },
  });
  const patterns = (mapping.Properties.FilterCriteria as { Filters: { Pattern: string }[] }).Filters.map(
    (filter) => JSON.parse(filter.Pattern),
  );
  const ttl = {
    eventName: ['REMOVE'],
    userIdentity: { type: ['Service'], principalId: ['dynamodb.amazonaws.com'] },
  };
  assert.deepEqual(patterns, [
    { ...ttl, dynamodb: { Keys: { sk: { S: ['#CONN'] } } } },
    { ...ttl, dynamodb: { Keys: { sk: { S: [{ prefix: '#OCC#' }] } } } },
  ]);
});

test('IAM: API Gateway may only send to the frame queue', () => {
  const t = template();
  const [queueId] = only(t, 'AWS::SQS::Queue', { RedrivePolicy: Match.anyValue() });
  const [roleId] = sendMessageRole(t);
  assert.deepEqual(policyStatementsOf(t, roleId), [
    { Action: 'sqs:SendMessage', Effect: 'Allow', Resource: { 'Fn::GetAtt': [queueId, 'Arn'] } },
  ]);
});

test('IAM: each function has its own role without managed policies, writing only its own logs', () => {
  const t = template();
  for (const [, fn] of [connectFunction(t), framesFunction(t), expiredFunction(t), authDeadlineFunction(t)]) {
    const role = t.findResources('AWS::IAM::Role')[roleOf(fn)];
    assert.ok(role);
    assert.equal(role.Properties.ManagedPolicyArns, undefined);
    const logGroupId = (fn.Properties.LoggingConfig as { LogGroup: { Ref: string } }).LogGroup.Ref;
    const logs = [...grantsOf(t, roleOf(fn))].filter((grant) => grant.startsWith('logs:'));
    assert.deepEqual(logs.sort(), [
      `logs:CreateLogStream ${JSON.stringify(arnOf(logGroupId))}`,
      `logs:PutLogEvents ${JSON.stringify(arnOf(logGroupId))}`,
    ]);
  }
});

test('IAM: connect may only put items in the table and start authentication deadlines', () => {
  const t = template();
  const [tableId] = only(t, 'AWS::DynamoDB::GlobalTable');
  const [queueId] = authDeadlines(t);
  const [, connect] = connectFunction(t);
  const grants = [...grantsOf(t, roleOf(connect))].filter((grant) => !grant.startsWith('logs:'));
  assert.deepEqual(grants.sort(), [
    `dynamodb:PutItem ${JSON.stringify(arnOf(tableId))}`,
    `sqs:SendMessage ${JSON.stringify(arnOf(queueId))}`,
  ]);
});

test('IAM: frames may use exactly the table commands of lib/store/, the stage connections and its queue', () => {
  const t = template();
  const [tableId] = only(t, 'AWS::DynamoDB::GlobalTable');
  const [queueId] = only(t, 'AWS::SQS::Queue', { RedrivePolicy: Match.anyValue() });
  const [, frames] = framesFunction(t);
  const grants = grantsOf(t, roleOf(frames));
  const table = JSON.stringify(arnOf(tableId));
  const index = JSON.stringify({
    'Fn::Join': ['', [arnOf(tableId), `/index/${TABLE_SCHEMA.orderIndex.name}`]],
  });

  // The commands the adapter sends, except Scan: only the users command lists users.
  const store = new URL('../../lib/store/', import.meta.url);
  const source = readdirSync(store)
    .filter((file) => file.endsWith('.ts'))
    .map((file) => readFileSync(new URL(file, store), 'utf8'))
    .join('\n');
  const commands = new Set([...source.matchAll(/new (\w+)Command\(/g)].map((match) => match[1] as string));
  assert.ok(commands.has('Scan'), 'listUsers scans');
  const used = [...commands]
    .filter((command) => command !== 'Scan')
    .map((command) => {
      const action = COMMAND_ACTIONS[command];
      assert.ok(action, `a DynamoDB action for ${command}Command`);
      return action;
    });
  assert.deepEqual([...FRAMES_TABLE_ACTIONS].sort(), [...new Set(used)].sort());
  const tableGrants = [...grants].filter((grant) => grant.startsWith('dynamodb:'));
  assert.deepEqual(
    tableGrants.sort(),
    [...used.map((action) => `${action} ${table}`), `dynamodb:Query ${index}`].sort(),
  );

  const manage = [...grants].filter((grant) => grant.startsWith('execute-api:'));
  assert.equal(manage.length, 2);
  assert.match(manage[0] ?? '', /execute-api:ManageConnections .*\/prod\/POST\/@connections\/\*"\]\]\}$/);
  assert.match(manage[1] ?? '', /execute-api:ManageConnections .*\/prod\/DELETE\/@connections\/\*"\]\]\}$/);

  const queue = JSON.stringify(arnOf(queueId));
  const sqs = [...grants].filter((grant) => grant.startsWith('sqs:'));
  assert.deepEqual(
    sqs.sort(),
    [
      // The event source mapping's, and SendMessage for drain continuations.
      'sqs:ChangeMessageVisibility',
      'sqs:DeleteMessage',
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
      'sqs:ReceiveMessage',
      'sqs:SendMessage',
    ].map((action) => `${action} ${queue}`),
  );
  // XEP-0363: presigned PUTs under the upload prefix of its bucket, nothing else of S3.
  const [uploadsBucketId] = uploadsBucket(t);
  const s3 = [...grants].filter((grant) => grant.startsWith('s3:'));
  assert.deepEqual(
    s3.map((grant) => grant.split(' ')[0]),
    ['s3:PutObject'],
  );
  for (const grant of s3) {
    assert.equal(
      grant.slice(grant.indexOf(' ') + 1),
      JSON.stringify({ 'Fn::Join': ['', [arnOf(uploadsBucketId), '/uploads/*']] }),
    );
  }
  assert.equal(grants.size, tableGrants.length + manage.length + sqs.length + s3.length + 2 /* logs */);
});

test('IAM: expired may use the table (not its index) as $disconnect does, post to connections, read its stream', () => {
  const t = template();
  const [tableId] = only(t, 'AWS::DynamoDB::GlobalTable');
  const [, expired] = expiredFunction(t);
  const grants = [...grantsOf(t, roleOf(expired))].filter((grant) => !grant.startsWith('logs:'));
  const table = JSON.stringify(arnOf(tableId));
  assert.deepEqual(
    grants.filter((grant) => grant.includes(table)).sort(),
    FRAMES_TABLE_ACTIONS.map((action) => `${action} ${table}`).sort(),
  );
  const manage = grants.filter((grant) => grant.startsWith('execute-api:'));
  assert.equal(manage.length, 1);
  assert.match(manage[0] ?? '', /execute-api:ManageConnections .*\/prod\/POST\/@connections\/\*"\]\]\}$/);
  const stream = JSON.stringify({ 'Fn::GetAtt': [tableId, 'StreamArn'] });
  assert.deepEqual(
    grants
      .filter((grant) => grant.includes(stream))
      .map((grant) => grant.split(' ')[0])
      .sort(),
    ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams'],
  );
  const [failuresId] = expiryFailures(t);
  const failures = JSON.stringify({ 'Fn::GetAtt': [failuresId, 'Arn'] });
  assert.ok(grants.some((grant) => grant === `sqs:SendMessage ${failures}`));
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

test('the stage writes a JSON access log line per request to its own log group', () => {
  const t = template();
  const [, stage] = only(t, 'AWS::ApiGatewayV2::Stage');
  const settings = stage.Properties.AccessLogSettings as { DestinationArn: unknown; Format: string };
  const logGroupId = (settings.DestinationArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
  const logGroup = t.findResources('AWS::Logs::LogGroup')[logGroupId];
  assert.ok(logGroup, 'the access log group');
  assert.deepEqual(settings.DestinationArn, arnOf(logGroupId));
  assert.equal(logGroup.Properties.RetentionInDays, 30);
  assert.equal(logGroup.DeletionPolicy, 'Retain');
  const format = JSON.parse(settings.Format) as Record<string, string>;
  for (const [key, variable] of Object.entries({
    requestId: '$context.requestId',
    connectionId: '$context.connectionId',
    eventType: '$context.eventType',
    routeKey: '$context.routeKey',
    status: '$context.status',
    integrationLatency: '$context.integrationLatency',
    error: '$context.error.message',
  })) {
    assert.equal(format[key], variable);
  }
  assert.deepEqual(format, ACCESS_LOG_FORMAT);
  // A REST and HTTP API variable: API Gateway refuses a WebSocket stage that names it.
  assert.doesNotMatch(settings.Format, /integrationErrorMessage/);
});

test('API Gateway gets its account-wide CloudWatch Logs role (kept), unless told one exists', () => {
  const t = template();
  const [roleId, role] = only(t, 'AWS::IAM::Role', {
    Description: Match.stringLikeRegexp('account-wide'),
  });
  assert.equal(role.DeletionPolicy, 'Retain');
  assert.match(JSON.stringify(role.Properties.ManagedPolicyArns), /AmazonAPIGatewayPushToCloudWatchLogs/);
  const [accountId, account] = only(t, 'AWS::ApiGateway::Account');
  assert.deepEqual(account.Properties.CloudWatchRoleArn, arnOf(roleId));
  assert.equal(account.DeletionPolicy, 'Retain');
  const [, stage] = only(t, 'AWS::ApiGatewayV2::Stage');
  assert.deepEqual(stage.DependsOn, [accountId]);

  const without = synth({ apiGatewayCloudWatchRole: false });
  without.resourceCountIs('AWS::ApiGateway::Account', 0);
  assert.equal(
    Object.keys(
      without.findResources('AWS::IAM::Role', {
        Properties: { Description: Match.stringLikeRegexp('account-wide') },
      }),
    ).length,
    0,
  );
});

test('a custom domain: regional, TLS 1.2, mapped to the stage, and the wss:// URL on it', () => {
  const t = template();
  t.resourceCountIs('AWS::ApiGatewayV2::DomainName', 0);
  t.resourceCountIs('AWS::ApiGatewayV2::ApiMapping', 0);
  assert.equal(Object.keys(t.findOutputs('CustomDomainTarget')).length, 0);

  const custom = synth({
    customDomainName: 'chat.example.com',
    certificateArn: EVERY_PARAMETER.certificateArn,
  });
  const [domainId] = only(custom, 'AWS::ApiGatewayV2::DomainName', {
    DomainName: 'chat.example.com',
    DomainNameConfigurations: [
      {
        CertificateArn: EVERY_PARAMETER.certificateArn,
        EndpointType: 'REGIONAL',
        SecurityPolicy: 'TLS_1_2',
      },
    ],
  });
  const [apiId] = only(custom, 'AWS::ApiGatewayV2::Api');
  const [stageId] = only(custom, 'AWS::ApiGatewayV2::Stage');
  const [, mapping] = only(custom, 'AWS::ApiGatewayV2::ApiMapping');
  assert.deepEqual(mapping.Properties.ApiId, { Ref: apiId });
  assert.deepEqual(mapping.Properties.DomainName, { Ref: domainId });
  assert.deepEqual(mapping.Properties.Stage, 'prod');
  assert.ok([mapping.DependsOn].flat().includes(stageId), 'mapped once the stage exists');
  assert.equal(mapping.Properties.ApiMappingKey, undefined);
  custom.hasOutput('WebSocketUrl', { Value: 'wss://chat.example.com' });
  custom.hasOutput('CustomDomainTarget', { Value: { 'Fn::GetAtt': [domainId, 'RegionalDomainName'] } });
  // The Management API stays on the execute-api endpoint.
  custom.hasOutput('ManagementEndpoint', { Value: { 'Fn::Join': ['', Match.arrayWith(['https://'])] } });
});

test('outputs: the wss:// URL, the domain, the table, the dashboard and the Management API endpoint', () => {
  const t = template();
  const [tableId] = only(t, 'AWS::DynamoDB::GlobalTable');
  const [dashboardId] = only(t, 'AWS::CloudWatch::Dashboard');
  t.hasOutput('WebSocketUrl', { Value: { 'Fn::Join': ['', Match.arrayWith(['wss://'])] } });
  t.hasOutput('XmppDomain', { Value: 'localhost' });
  t.hasOutput('TableName', { Value: { Ref: tableId } });
  t.hasOutput('DashboardUrl', {
    Value: {
      'Fn::Join': [
        '',
        Match.arrayWith([
          Match.stringLikeRegexp('console.aws.amazon.com/cloudwatch/home'),
          Match.stringLikeRegexp('#dashboards/dashboard/$'),
          { Ref: dashboardId },
        ]),
      ],
    },
  });
  t.hasOutput('ManagementEndpoint', { Value: { 'Fn::Join': ['', Match.arrayWith(['https://'])] } });
});

test('alarms notify an SNS topic (SSL only): errors, throttles, logged errors, dead letters, table throttling, API 5xx', () => {
  const t = template();
  const [topicId] = only(t, 'AWS::SNS::Topic');
  t.resourceCountIs('AWS::SNS::Subscription', 0);
  const [, topicPolicy] = only(t, 'AWS::SNS::TopicPolicy');
  assert.match(JSON.stringify(topicPolicy.Properties.PolicyDocument), /"aws:SecureTransport":"false"/);
  const alarms = Object.values(t.findResources('AWS::CloudWatch::Alarm'));
  assert.equal(alarms.length, 14);
  for (const alarm of alarms) {
    assert.deepEqual(alarm.Properties.AlarmActions, [{ Ref: topicId }]);
    assert.equal(alarm.Properties.Threshold, 1);
    assert.equal(alarm.Properties.TreatMissingData, 'notBreaching');
    assert.ok(String(alarm.Properties.AlarmDescription).length > 10);
  }
  const [connectId] = connectFunction(t);
  const [framesId] = framesFunction(t);
  const [expiredId] = expiredFunction(t);
  const [deadlineId] = authDeadlineFunction(t);
  for (const fnId of [connectId, framesId, expiredId, deadlineId]) {
    for (const metricName of ['Errors', 'Throttles']) {
      t.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/Lambda',
        MetricName: metricName,
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: fnId } }],
      });
    }
  }
  for (const [queueId] of [framesDeadLetters(t), expiryFailures(t)]) {
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queueId, 'QueueName'] } }],
    });
  }
  const [apiId] = only(t, 'AWS::ApiGatewayV2::Api');
  for (const metricName of ['IntegrationError', 'ExecutionError']) {
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/ApiGateway',
      MetricName: metricName,
      Dimensions: Match.arrayWith([
        { Name: 'ApiId', Value: { Ref: apiId } },
        { Name: 'Stage', Value: 'prod' },
      ]),
    });
  }
  const [tableId] = only(t, 'AWS::DynamoDB::GlobalTable');
  const tableAlarm = alarms.find((alarm) =>
    JSON.stringify(alarm.Properties.Metrics ?? []).includes('ThrottleEvents'),
  );
  assert.ok(tableAlarm, 'a DynamoDB throttling alarm');
  const metrics = JSON.stringify(tableAlarm.Properties.Metrics);
  for (const name of ['ReadThrottleEvents', 'WriteThrottleEvents']) {
    assert.ok(metrics.includes(`"MetricName":"${name}"`), name);
  }
  assert.ok(metrics.includes(`"Dimensions":[{"Name":"TableName","Value":{"Ref":"${tableId}"}}]`));
  t.hasResourceProperties('AWS::CloudWatch::Alarm', {
    Namespace: METRIC_NAMESPACE,
    MetricName: HANDLER_ERRORS_METRIC,
    Dimensions: [{ Name: 'service', Value: 'Test' }],
  });

  const mailed = synth({ alarmEmail: 'ops@example.com' });
  mailed.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
});

test('logged errors of every function become a metric', () => {
  const t = template();
  const filters = Object.values(t.findResources('AWS::Logs::MetricFilter'));
  assert.equal(filters.length, 4);
  const logGroups = [connectFunction(t), framesFunction(t), expiredFunction(t), authDeadlineFunction(t)].map(
    ([, fn]) => (fn.Properties.LoggingConfig as { LogGroup: { Ref: string } }).LogGroup,
  );
  assert.deepEqual(
    filters.map((filter) => filter.Properties.LogGroupName),
    logGroups,
  );
  for (const filter of filters) {
    assert.equal(filter.Properties.FilterPattern, '{ $.level = "ERROR" }');
    assert.deepEqual(filter.Properties.MetricTransformations, [
      {
        MetricNamespace: METRIC_NAMESPACE,
        MetricName: HANDLER_ERRORS_METRIC,
        MetricValue: '1',
        Dimensions: [{ Key: 'service', Value: '$.service' }],
      },
    ]);
  }
});

test('the dashboard graphs every service metric, the functions, queues, table and API, and the alarms', () => {
  const t = template();
  const [, dashboard] = only(t, 'AWS::CloudWatch::Dashboard');
  const body = JSON.stringify(dashboard.Properties.DashboardBody);
  for (const name of [...METRIC_NAMES, HANDLER_ERRORS_METRIC]) {
    assert.ok(body.includes(`[\\"${METRIC_NAMESPACE}\\",\\"${name}\\",\\"service\\",\\"Test\\"`), name);
  }
  for (const metric of [
    '\\"AWS/Lambda\\",\\"Invocations\\"',
    '\\"AWS/Lambda\\",\\"Errors\\"',
    '\\"AWS/Lambda\\",\\"Throttles\\"',
    '\\"AWS/Lambda\\",\\"Duration\\"',
    '\\"AWS/SQS\\",\\"ApproximateNumberOfMessagesVisible\\"',
    '\\"AWS/SQS\\",\\"ApproximateAgeOfOldestMessage\\"',
    '\\"AWS/DynamoDB\\",\\"ConsumedWriteCapacityUnits\\"',
    '\\"AWS/DynamoDB\\",\\"ReadThrottleEvents\\"',
    '\\"AWS/ApiGateway\\",\\"ConnectCount\\"',
    '\\"AWS/ApiGateway\\",\\"MessageCount\\"',
    '\\"AWS/ApiGateway\\",\\"IntegrationError\\"',
    '\\"AWS/ApiGateway\\",\\"ExecutionError\\"',
  ]) {
    assert.ok(body.includes(metric), metric);
  }
  // The alarm status widget lists every alarm.
  for (const alarmId of Object.keys(t.findResources('AWS::CloudWatch::Alarm'))) {
    assert.ok(body.includes(`{"Fn::GetAtt":["${alarmId}","Arn"]}`), alarmId);
  }
});

test('cdk-nag AwsSolutions: no unacknowledged findings, with the defaults and with every parameter', () => {
  assert.deepEqual(nagFindings(built().stack), []);
  assert.deepEqual(nagFindings(builtWithEverything().stack), []);
});

test('cdk-nag: every acknowledgment is an AwsSolutions rule and says why', () => {
  for (const { stack } of [built(), builtWithEverything()]) {
    const acknowledged = stack.node
      .findAll()
      .flatMap((construct) =>
        construct.node.metadata.filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY),
      )
      .flatMap((entry) => Object.entries(entry.data as Record<string, string>));
    assert.ok(acknowledged.length > 0);
    for (const [id, reason] of acknowledged) {
      assert.match(id, /AwsSolutions-[A-Z]+\d+/);
      assert.ok(typeof reason === 'string' && reason.length >= 40, `${id} needs a reason`);
    }
  }
});

test('every context parameter reaches its place', () => {
  const { template: t, stack } = builtWithEverything();
  for (const [, fn] of [connectFunction(t), framesFunction(t)]) {
    t.hasResourceProperties('AWS::Lambda::Function', {
      Description: fn.Properties.Description,
      Environment: {
        Variables: Match.objectLike({
          XMPP_DOMAIN: 'chat.example.com',
          MUC_DOMAIN: 'rooms.example.com',
          MAX_STANZA_BYTES: '20000',
          LOG_LEVEL: 'debug',
          OFFLINE_QUOTA: '500',
          RETENTION_DAYS: '7',
          ARCHIVE_DAYS: '0',
          MESSAGE_POLICY: 'roster',
        }),
      },
    });
  }
  const variables = (fn: Resource) =>
    (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
  const frames = variables(framesFunction(t)[1]);
  assert.equal(frames.MAX_FRAMES_PER_SECOND, '50');
  assert.equal(frames.MAX_BYTES_PER_SECOND, '65536');
  assert.equal(frames.MAX_SESSIONS_PER_USER, '5');
  assert.equal(frames.REGISTRATION, 'open');
  assert.equal(frames.REGISTRATIONS_PER_HOUR, '3');
  assert.equal(frames.MIN_PASSWORD_LENGTH, '12');
  assert.equal(frames.UPLOAD_DOMAIN, 'files.example.com');
  assert.equal(frames.UPLOAD_MAX_FILE_BYTES, '1048576');
  assert.equal(frames.UPLOAD_QUOTA_BYTES_PER_DAY, '10485760');
  assert.equal(frames.UPLOAD_RETENTION_DAYS, '7');
  t.hasResourceProperties('AWS::S3::Bucket', {
    LifecycleConfiguration: {
      Rules: Match.arrayWith([Match.objectLike({ Prefix: 'uploads/', ExpirationInDays: 7 })]),
    },
  });
  assert.ok(stack.webClient, 'webClient=true deploys the chat page');
  for (const [, fn] of [connectFunction(t), authDeadlineFunction(t)]) {
    assert.equal(variables(fn).AUTH_TIMEOUT_SECONDS, '60');
  }
  t.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
    StageName: 'live',
    DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 80 },
  });
  for (const logGroup of Object.values(t.findResources('AWS::Logs::LogGroup'))) {
    assert.equal(logGroup.Properties.RetentionInDays, 7);
    assert.equal(logGroup.DeletionPolicy, 'Delete');
  }
  const [, table] = only(t, 'AWS::DynamoDB::GlobalTable');
  assert.equal(table.DeletionPolicy, 'Delete');
  t.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
  t.hasResourceProperties('AWS::ApiGatewayV2::DomainName', { DomainName: 'xmpp.example.com' });
  t.resourceCountIs('AWS::ApiGateway::Account', 0);
  t.hasOutput('WebSocketUrl', { Value: 'wss://xmpp.example.com' });
  t.hasOutput('XmppDomain', { Value: 'chat.example.com' });
  // Every function takes the memory size given (docs/costs.md, "Lambda memory").
  for (const [, fn] of [connectFunction(t), framesFunction(t), expiredFunction(t), authDeadlineFunction(t)])
    assert.equal(fn.Properties.MemorySize, 1536);
  assert.equal(stack.webSocketUrl, 'wss://xmpp.example.com');
  // Every key was given, so every key was read.
  assert.deepEqual(Object.keys(EVERY_PARAMETER).sort(), [...PARAMETER_KEYS].sort());
});

test('the chat page (webClient=true): a private bucket behind CloudFront, HTTPS, security headers, host-meta', () => {
  assert.equal(built().stack.webClient, undefined, 'off by default');
  // The uploads' distribution only (infra/uploads.ts).
  template().resourceCountIs('AWS::CloudFront::Distribution', 1);
  const { template: t } = builtWithEverything();
  const [bucketId] = only(t, 'AWS::S3::Bucket', {
    PublicAccessBlockConfiguration: {
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    },
    LifecycleConfiguration: Match.absent(),
  });
  // Only CloudFront reads the bucket, through origin access control, and only over TLS.
  t.resourceCountIs('AWS::CloudFront::OriginAccessControl', 2);
  const policy = JSON.stringify(t.findResources('AWS::S3::BucketPolicy'));
  assert.match(policy, /cloudfront\.amazonaws\.com/);
  assert.match(policy, /aws:SecureTransport/);
  assert.ok(policy.includes(bucketId));
  const [, distribution] = only(t, 'AWS::CloudFront::Distribution', {
    DistributionConfig: Match.objectLike({ DefaultRootObject: 'index.html' }),
  });
  interface Behavior {
    PathPattern?: string;
    ViewerProtocolPolicy: string;
  }
  const config = distribution.Properties.DistributionConfig as {
    DefaultRootObject: string;
    DefaultCacheBehavior: Behavior;
    CacheBehaviors: Behavior[];
  };
  assert.equal(config.DefaultRootObject, 'index.html');
  assert.equal(config.DefaultCacheBehavior.ViewerProtocolPolicy, 'redirect-to-https');
  const hostMeta = config.CacheBehaviors.find((b) => b.PathPattern === '/.well-known/*');
  assert.equal(hostMeta?.ViewerProtocolPolicy, 'https-only');
  // The page may connect to the stack's WebSocket endpoint and load nothing from elsewhere.
  const headers = JSON.stringify(t.findResources('AWS::CloudFront::ResponseHeadersPolicy'));
  assert.match(headers, /connect-src 'self' wss:\/\/xmpp\.example\.com/);
  // XEP-0363: the page PUTs to the uploads bucket and shows files from their distribution.
  assert.match(
    headers,
    /connect-src 'self' wss:\/\/xmpp\.example\.com https:\/\/",\{"Fn::GetAtt":\["UploadsBucket\w+","RegionalDomainName"\]\}/,
  );
  assert.match(
    headers,
    /img-src 'self' data: blob: https:\/\/",\{"Fn::GetAtt":\["UploadsDistribution\w+","DomainName"\]\}/,
  );
  assert.match(headers, /default-src 'self'/);
  assert.match(headers, /"AccessControlAllowOrigins":\{"Items":\["\*"\]\}/);
  // Converse's files, the page with its configuration, and both host-meta documents.
  // (Their content is written into assets at synth, or at deploy time where it names tokens.)
  const deployments = t.findResources('Custom::CDKBucketDeployment');
  assert.equal(Object.keys(deployments).length, 4);
  assert.match(JSON.stringify(deployments), /application\/xrd\+xml/);
  assert.match(JSON.stringify(deployments), /"DestinationBucketKeyPrefix":"dist\/"/);
  assert.ok(t.toJSON().Outputs.WebClientUrl, 'output WebClientUrl');
});

test('no hard-coded physical names', () => {
  const names = [
    'TableName',
    'FunctionName',
    'QueueName',
    'RoleName',
    'LogGroupName',
    'TopicName',
    'DashboardName',
  ];
  for (const [id, resource] of Object.entries(template().toJSON().Resources as Record<string, Resource>)) {
    for (const name of names) {
      // A reference to another resource (an event source's FunctionName) is not a physical name.
      assert.notEqual(typeof resource.Properties?.[name], 'string', `${id} has a literal ${name}`);
    }
  }
});

test('synth is offline: no lookups, environment-agnostic; the CLI sends no notices or telemetry', () => {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new XmppStack(
    app,
    'Offline',
    parseParameters(() => undefined),
  );
  const assembly = app.synth();
  assert.equal(assembly.manifest.missing, undefined);
  assert.equal(stack.environment, 'aws://unknown-account/unknown-region');
  const cdkJson = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8'));
  assert.equal(cdkJson.notices, false);
  assert.equal(cdkJson.context['cli-telemetry'], false);
  const appSource = readFileSync(new URL('../../infra/app.ts', import.meta.url), 'utf8');
  assert.match(appSource, /analyticsReporting: false/);
});

test('parseParameters: defaults', () => {
  assert.deepEqual(
    parseParameters(() => undefined),
    { ...PARAMETER_DEFAULTS, mucDomain: 'conference.localhost', uploadDomain: 'upload.localhost' },
  );
  // An empty value from `-c alarmEmail=` means not set.
  assert.equal(parseParameters((key) => (key === 'alarmEmail' ? '' : undefined)).alarmEmail, undefined);
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
    // Over API Gateway's 32 KB frame limit: such a frame closes the connection before any handler.
    ['maxStanzaBytes', 32769],
    ['maxStanzaBytes', 65536],
    ['maxStanzaBytes', '15000.5'],
    ['logLevel', 'verbose'],
    ['throttleRate', 0],
    ['throttleRate', '-5'],
    ['throttleBurst', 1.5],
    ['throttleBurst', 'lots'],
    ['logRetentionDays', 31],
    ['logRetentionDays', 'forever'],
    ['removalPolicy', 'snapshot'],
    ['offlineQuota', 0],
    ['retentionDays', 'a month'],
    ['archiveDays', '-1'],
    ['archiveDays', '3651'],
    ['messagePolicy', 'closed'],
    ['registration', 'on'],
    ['registrationsPerHour', 0],
    ['minPasswordLength', '8 chars'],
    ['webClient', 'yes'],
    ['alarmEmail', 'ops'],
    ['alarmEmail', 'ops@example'],
    ['apiGatewayCloudWatchRole', 'yes'],
    ['maxFramesPerSecond', 0],
    ['maxFramesPerSecond', '2.5'],
    // Below the largest frame (maxStanzaBytes): such a frame could never be sent.
    ['maxBytesPerSecond', 1000],
    ['maxSessionsPerUser', 0],
    // SQS delays a message by at most 900 s.
    ['authTimeoutSeconds', 901],
    ['authTimeoutSeconds', 0],
    ['uploadDomain', 'files@example.com'],
    // S3 takes at most 5 GB in one PUT.
    ['uploadMaxFileBytes', 6 * 1024 ** 3],
    ['uploadMaxFileBytes', 0],
    // Less than one largest file a day.
    ['uploadQuotaBytesPerDay', 1000],
    ['uploadRetentionDays', 0],
    ['uploadRetentionDays', '3651'],
    // Lambda's range.
    ['memorySize', 127],
    ['memorySize', 10241],
    ['memorySize', '1 GB'],
  ];
  for (const [key, value] of invalid) {
    assert.throws(
      () => parseParameters((k) => (k === key ? value : undefined)),
      (error: unknown) => error instanceof ParameterError && error.message.includes(key),
      `${key}=${JSON.stringify(value)} must be rejected`,
    );
  }
  const { certificateArn } = EVERY_PARAMETER;
  for (const context of [
    { customDomainName: 'chat.example.com' },
    { certificateArn },
    { customDomainName: 'chat example.com', certificateArn },
    { customDomainName: 'chat.example.com', certificateArn: 'arn:aws:iam::123456789012:role/x' },
  ] as Record<string, unknown>[]) {
    assert.throws(
      () => parseParameters((key) => context[key]),
      (error: unknown) =>
        error instanceof ParameterError && /customDomainName|certificateArn/.test(error.message),
      JSON.stringify(context),
    );
  }
  assert.throws(() => synth({ removalPolicy: 'keep' }), ParameterError);
  assert.throws(() => new XmppStack(new App(), 'Direct', { throttleRate: -1 }), ParameterError);
});

test('uploads (XEP-0363): a private bucket that expires files, read only through CloudFront with OAC', () => {
  const t = template();
  const [bucketId, bucket] = uploadsBucket(t);
  assert.deepEqual(bucket.Properties.PublicAccessBlockConfiguration, {
    BlockPublicAcls: true,
    BlockPublicPolicy: true,
    IgnorePublicAcls: true,
    RestrictPublicBuckets: true,
  });
  assert.deepEqual(bucket.Properties.BucketEncryption, {
    ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
  });
  assert.equal(bucket.DeletionPolicy, 'Retain');
  t.hasResourceProperties('AWS::S3::Bucket', {
    LifecycleConfiguration: {
      Rules: Match.arrayWith([
        Match.objectLike({ Prefix: 'uploads/', ExpirationInDays: 30, Status: 'Enabled' }),
      ]),
    },
    // XEP-0363 §7: browsers PUT with a content-type.
    CorsConfiguration: {
      CorsRules: [
        Match.objectLike({
          AllowedMethods: ['PUT'],
          AllowedOrigins: ['*'],
          AllowedHeaders: ['content-type'],
        }),
      ],
    },
  });
  // TLS only, and CloudFront (this distribution, by OAC) the only reader.
  const [, policy] = only(t, 'AWS::S3::BucketPolicy', { Bucket: { Ref: bucketId } });
  const statements = JSON.stringify(policy.Properties.PolicyDocument);
  assert.match(statements, /"aws:SecureTransport":"false"/);
  assert.match(statements, /"Service":"cloudfront\.amazonaws\.com"/);
  assert.match(statements, /"s3:GetObject"/);
  assert.doesNotMatch(statements, /s3:PutObject/);
  const [distributionId, distribution] = only(t, 'AWS::CloudFront::Distribution');
  assert.match(statements, new RegExp(distributionId));
  interface Config {
    Origins: { OriginPath: string; OriginAccessControlId: unknown }[];
    DefaultCacheBehavior: {
      ViewerProtocolPolicy: string;
      FunctionAssociations: { EventType: string; FunctionARN: unknown }[];
      ResponseHeadersPolicyId: { Ref: string };
    };
  }
  const config = distribution.Properties.DistributionConfig as Config;
  assert.equal(config.Origins[0]?.OriginPath, '/uploads');
  assert.ok(config.Origins[0]?.OriginAccessControlId);
  assert.equal(config.DefaultCacheBehavior.ViewerProtocolPolicy, 'https-only');
  // Content-Disposition by the same function the local system runs; nosniff and CORS by the policy.
  assert.equal(config.DefaultCacheBehavior.FunctionAssociations[0]?.EventType, 'viewer-response');
  const [, fn] = only(t, 'AWS::CloudFront::Function');
  assert.equal((fn.Properties.FunctionConfig as { Runtime: string }).Runtime, 'cloudfront-js-2.0');
  assert.match(String(fn.Properties.FunctionCode), /content-disposition/);
  const headers = t.findResources('AWS::CloudFront::ResponseHeadersPolicy')[
    config.DefaultCacheBehavior.ResponseHeadersPolicyId.Ref
  ];
  const headersConfig = JSON.stringify(headers?.Properties);
  assert.match(headersConfig, /"ContentTypeOptions":\{"Override":true\}/);
  assert.match(headersConfig, /"AccessControlAllowOrigins":\{"Items":\["\*"\]\}/);
  // The frames function knows the bucket and where files are read.
  const [, frames] = framesFunction(t);
  const variables = (frames.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
  assert.deepEqual(variables.UPLOAD_BUCKET, { Ref: bucketId });
  assert.deepEqual(variables.UPLOAD_BASE_URL, {
    'Fn::Join': ['', ['https://', { 'Fn::GetAtt': [distributionId, 'DomainName'] }]],
  });
  assert.equal(variables.UPLOAD_DOMAIN, 'upload.localhost');
  t.hasOutput('UploadBaseUrl', {});
});
