// The deployable system (docs DESIGN §2, §7): one WebSocket API, four functions, one table, the
// FIFO queue that keeps each connection's frames in order (infra/ordered-route.ts), the table's
// stream that ends sessions TTL deleted, the queue of authentication deadlines (lib/limits.ts),
// and what an operator needs to run it
// (infra/observability.ts). Parameters: infra/parameters.ts.
import {
  type CfnElement,
  CfnOutput,
  Duration,
  RemovalPolicy,
  Stack,
  type StackProps,
  Validations,
} from 'aws-cdk-lib';
import { AccessLogFormat, CfnAccount } from 'aws-cdk-lib/aws-apigateway';
import {
  DomainName,
  EndpointType,
  LogGroupLogDestination,
  SecurityPolicy,
  WebSocketApi,
  WebSocketStage,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { Certificate } from 'aws-cdk-lib/aws-certificatemanager';
import {
  AttributeType,
  Billing,
  ProjectionType,
  StreamViewType,
  TableEncryptionV2,
  TableV2,
} from 'aws-cdk-lib/aws-dynamodb';
import { type IRole, ManagedPolicy, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { FilterCriteria, FilterRule, StartingPosition } from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq, SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { METRIC_NAMESPACE } from '../lib/metrics.ts';
import { TABLE_SCHEMA, TTL_DELETION } from '../lib/store/schema.ts';
import { XmppFunction } from './function.ts';
import { Observability } from './observability.ts';
import { OrderedRoutes } from './ordered-route.ts';
import {
  type LogLevel,
  type MessagePolicy,
  parseParameters,
  type Registration,
  type RemovalChoice,
} from './parameters.ts';
import { PushNotifications } from './push.ts';
import { FRAMES_TIMEOUT_SECONDS } from './timeouts.ts';
import { Uploads } from './uploads.ts';
import { WebClient } from './web-client.ts';

export interface XmppStackProps extends StackProps {
  /** The XMPP domain users live on. @default 'localhost' */
  readonly domain?: string;
  /** The XEP-0045 service domain. @default `conference.${domain}` */
  readonly mucDomain?: string;
  /** The WebSocket API stage. @default 'prod' */
  readonly stageName?: string;
  /** Largest frame accepted, in bytes (10000 to 32768, API Gateway's frame limit). @default 32768 */
  readonly maxStanzaBytes?: number;
  /** @default 'info' */
  readonly logLevel?: LogLevel;
  /** Stage throttling, steady-state requests per second. @default 500 */
  readonly throttleRate?: number;
  /** Stage throttling, burst capacity. @default 1000 */
  readonly throttleBurst?: number;
  /** Retention of the functions' and the API's logs. @default RetentionDays.ONE_MONTH */
  readonly logRetentionDays?: RetentionDays;
  /**
   * `retain`: the table survives stack deletion and has deletion protection; `destroy`: the table
   * and log groups go with the stack (for throw-away stacks).
   * @default 'retain'
   */
  readonly removalPolicy?: RemovalChoice;
  /** Undelivered messages kept per offline user. @default 10000 */
  readonly offlineQuota?: number;
  /** Days an undelivered message is kept. @default 30 */
  readonly retentionDays?: number;
  /** Days XEP-0313 archives (users' and rooms') are kept; 0 turns them off. @default 365 */
  readonly archiveDays?: number;
  /** Who may message whom: `open` or `roster`. @default 'open' */
  readonly messagePolicy?: MessagePolicy;
  /** Frames one connection may send per second (lib/limits.ts). @default 200 */
  readonly maxFramesPerSecond?: number;
  /** Bytes one connection may send per second, at least maxStanzaBytes. @default 262144 */
  readonly maxBytesPerSecond?: number;
  /** Sessions one user may have at once. @default 10 */
  readonly maxSessionsPerUser?: number;
  /** Seconds a connection has to finish SASL (1 to 900). @default 30 */
  readonly authTimeoutSeconds?: number;
  /** XEP-0077 in-band registration: `open` or `closed`. @default 'closed' */
  readonly registration?: Registration;
  /** Registration attempts per source address and hour. @default 10 */
  readonly registrationsPerHour?: number;
  /** Shortest password accepted in-band. @default 8 */
  readonly minPasswordLength?: number;
  /** Deploy the Converse.js chat page behind CloudFront (infra/web-client.ts). @default false */
  readonly webClient?: boolean;
  /** Alarm notifications by e-mail. @default - the alarm topic has no subscription */
  readonly alarmEmail?: string;
  /** Custom domain of the WebSocket API, with `certificateArn`. @default - the execute-api URL */
  readonly customDomainName?: string;
  /** ACM certificate (in the stack's region) for `customDomainName`. */
  readonly certificateArn?: string;
  /** Set API Gateway's account-wide CloudWatch Logs role (access logging needs one). @default true */
  readonly apiGatewayCloudWatchRole?: boolean;
  /** XEP-0357 push services, `jid=https-url,…` (infra/push.ts). @default '' - no push */
  readonly pushServices?: string;
  /** Push registrations one user may have (1 to 100). @default 10 */
  readonly pushMaxRegistrations?: number;
  /** At most one notification per registration in this many seconds (0 to 900). @default 10 */
  readonly pushCoalesceSeconds?: number;
  /** Notifications carry the message body. @default false */
  readonly pushIncludeBody?: boolean;
  /** A room message mentioning an offline member's nick notifies them. @default true */
  readonly pushRoomMentions?: boolean;
  /** Also put each notification on the default EventBridge bus. @default false */
  readonly pushEvents?: boolean;
  /** XEP-0363 upload service JID. @default `upload.${domain}` */
  readonly uploadDomain?: string;
  /** Largest file a slot is given for, in bytes. @default 52428800 */
  readonly uploadMaxFileBytes?: number;
  /** Bytes of slots one user may request per UTC day. @default 1073741824 */
  readonly uploadQuotaBytesPerDay?: number;
  /** Days uploaded files are kept. @default 30 */
  readonly uploadRetentionDays?: number;
}

/** $connect does one PutItem; API Gateway would wait 29 s, a client not nearly as long. */
const CONNECT_TIMEOUT = Duration.seconds(5);
/**
 * A batch of up to 10 frames. Short, so that a frame that keeps failing reaches the dead-letter
 * queue within about a minute (the queue's visibility timeout is this + 5 s, 3 receives:
 * infra/ordered-route.ts). The work fits with margin: functions/frames.ts starts no record with
 * less than 5 s left (the rest go back to the queue), a drain hands on to the next invocation
 * with 8 s left (lib/offline.ts), and a post settles in under 2 s (lib/gateway/management-api.ts).
 */
export const FRAMES_TIMEOUT = Duration.seconds(FRAMES_TIMEOUT_SECONDS);

/**
 * What the frames function does to the table: exactly the commands of lib/store/*.ts on the
 * request path (Scan only lists users, for the users command, and is not granted).
 */
export const FRAMES_TABLE_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:BatchGetItem',
  'dynamodb:BatchWriteItem',
  'dynamodb:Query',
  // A PartiQL SELECT on partition keys (accounts.ts getAccounts): queries, not a scan.
  'dynamodb:PartiQLSelect',
] as const;
/** $connect only records the connection. */
export const CONNECT_TABLE_ACTIONS = ['dynamodb:PutItem'] as const;
/** A batch of expired items, each a session's end (presence to its contacts, its rooms left). */
const EXPIRED_TIMEOUT = Duration.seconds(60);
/** A batch of up to 10 deadlines: a read each, and a stream error and a close for the late ones. */
const AUTH_DEADLINE_TIMEOUT = Duration.seconds(10);
/**
 * The authentication deadline function reads the connection, and deletes it when a post finds it
 * gone (lib/session.ts): nothing else of the table.
 */
export const AUTH_DEADLINE_TABLE_ACTIONS = ['dynamodb:GetItem', 'dynamodb:DeleteItem'] as const;

export class XmppStack extends Stack {
  public readonly table: TableV2;
  public readonly webSocketApi: WebSocketApi;
  public readonly stage: WebSocketStage;
  /** The stage's access log (JSON, one line per connect, frame and disconnect). */
  public readonly accessLogs: LogGroup;
  /** The ordered frame queue, its dead-letter queue and the routes that feed it. */
  public readonly frames: OrderedRoutes;
  public readonly connectFunction: XmppFunction;
  public readonly framesFunction: XmppFunction;
  /** Ends the sessions whose items TTL deleted, from the table's stream (functions/expired.ts). */
  public readonly expiredFunction: XmppFunction;
  /** Stream records the expired function failed on after its retries. */
  public readonly expiryFailures: Queue;
  /**
   * Each new connection's authentication deadline: a standard queue, whose messages $connect
   * delays by authTimeoutSeconds (FIFO queues cannot delay single messages).
   */
  public readonly authDeadlines: Queue;
  /** Closes the connections that did not authenticate in time (functions/auth-deadline.ts). */
  public readonly authDeadlineFunction: XmppFunction;
  /** Alarms (to an SNS topic) and the dashboard. */
  public readonly observability: Observability;
  /** The custom domain, when `customDomainName` is set. */
  public readonly domainName?: DomainName;
  /** What clients connect to: `wss://customDomainName` or the stage's execute-api URL. */
  public readonly webSocketUrl: string;
  /** The chat page behind CloudFront, when `webClient` is set (infra/web-client.ts). */
  public readonly webClient?: WebClient;
  /** XEP-0363 files: the bucket and the CloudFront distribution they are read through (infra/uploads.ts). */
  public readonly uploads: Uploads;
  /** XEP-0357 push (infra/push.ts), when `pushServices` names a service. */
  public readonly push?: PushNotifications;

  constructor(scope: Construct, id: string, props: XmppStackProps = {}) {
    super(scope, id, props);
    // The same defaults and checks as the CDK context gets in infra/app.ts.
    const parameters = parseParameters((key) => props[key as keyof XmppStackProps]);
    const retain = parameters.removalPolicy === 'retain';
    const removalPolicy = retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    const { partitionKey, sortKey, timeToLiveAttribute, orderIndex } = TABLE_SCHEMA;
    this.table = new TableV2(this, 'Table', {
      partitionKey: { name: partitionKey, type: AttributeType.STRING },
      sortKey: { name: sortKey, type: AttributeType.STRING },
      localSecondaryIndexes: [
        {
          indexName: orderIndex.name,
          sortKey: { name: orderIndex.sortKey, type: AttributeType.STRING },
          projectionType: ProjectionType.ALL,
        },
      ],
      timeToLiveAttribute,
      // Only TTL deletions of connections and occupants invoke anything: the filter below.
      dynamoStream: StreamViewType[TABLE_SCHEMA.expiryStream.viewType],
      billing: Billing.onDemand(),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: TableEncryptionV2.awsManagedKey(),
      deletionProtection: retain,
      removalPolicy,
    });

    // Names and settings only: no secrets, nothing that changes per request.
    const environment = {
      TABLE_NAME: this.table.tableName,
      XMPP_DOMAIN: parameters.domain,
      MUC_DOMAIN: parameters.mucDomain,
      MAX_STANZA_BYTES: String(parameters.maxStanzaBytes),
      LOG_LEVEL: parameters.logLevel,
      OFFLINE_QUOTA: String(parameters.offlineQuota),
      RETENTION_DAYS: String(parameters.retentionDays),
      ARCHIVE_DAYS: String(parameters.archiveDays),
      MESSAGE_POLICY: parameters.messagePolicy,
      // Read by functions/runtime.ts: log lines' `service`, and the metrics' namespace and dimension.
      POWERTOOLS_SERVICE_NAME: this.stackName,
      POWERTOOLS_METRICS_NAMESPACE: METRIC_NAMESPACE,
    };
    // What every function shares besides its environment: logs, and the memory size (context `memorySize`).
    const logs = {
      logRetention: parameters.logRetentionDays,
      logRemovalPolicy: removalPolicy,
      memorySize: parameters.memorySize,
    };

    // $connect answers synchronously (it accepts or refuses, and negotiates the subprotocol), so it
    // stays a Lambda integration. It never posts to connections: no stage URL, no Management API.
    // API Gateway's throttling knows no connection and no user: these limits do (lib/limits.ts).
    this.authDeadlines = new Queue(this, 'AuthDeadlines', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // A deadline is worth nothing once its connection is gone; a failing one is retried until then.
      retentionPeriod: Duration.hours(1),
      visibilityTimeout: Duration.seconds(AUTH_DEADLINE_TIMEOUT.toSeconds() * 6),
    });
    const authTimeout = { AUTH_TIMEOUT_SECONDS: String(parameters.authTimeoutSeconds) };

    this.connectFunction = new XmppFunction(this, 'ConnectFunction', {
      entry: 'functions/connect.ts',
      description: 'XMPP $connect: records the connection, negotiates the xmpp subprotocol',
      timeout: CONNECT_TIMEOUT,
      environment: {
        ...environment,
        // Each new connection's deadline goes on this queue, delayed by the timeout.
        ...authTimeout,
        AUTH_DEADLINE_QUEUE_URL: this.authDeadlines.queueUrl,
      },
      ...logs,
    });
    this.connectFunction.addToRolePolicy(
      new PolicyStatement({ actions: [...CONNECT_TABLE_ACTIONS], resources: [this.table.tableArn] }),
    );
    this.authDeadlines.grant(this.connectFunction, 'sqs:SendMessage');

    this.webSocketApi = new WebSocketApi(this, 'WebSocketApi', {
      description: `XMPP over WebSocket (RFC 7395) for ${parameters.domain}`,
      connectRouteOptions: {
        integration: new WebSocketLambdaIntegration('ConnectIntegration', this.connectFunction),
      },
    });
    this.frames = new OrderedRoutes(this, 'OrderedFrames', {
      webSocketApi: this.webSocketApi,
      consumerTimeout: FRAMES_TIMEOUT,
    });

    if (parameters.customDomainName && parameters.certificateArn) {
      // WebSocket APIs only have regional endpoints: the certificate is in the stack's region.
      this.domainName = new DomainName(this, 'CustomDomain', {
        domainName: parameters.customDomainName,
        certificate: Certificate.fromCertificateArn(this, 'Certificate', parameters.certificateArn),
        endpointType: EndpointType.REGIONAL,
        securityPolicy: SecurityPolicy.TLS_1_2,
      });
    }

    this.accessLogs = new LogGroup(this, 'AccessLogs', {
      retention: parameters.logRetentionDays,
      removalPolicy,
    });
    this.stage = new WebSocketStage(this, 'Stage', {
      webSocketApi: this.webSocketApi,
      stageName: parameters.stageName,
      autoDeploy: true,
      throttle: { rateLimit: parameters.throttleRate, burstLimit: parameters.throttleBurst },
      accessLogSettings: {
        destination: new LogGroupLogDestination(this.accessLogs),
        format: AccessLogFormat.custom(JSON.stringify(ACCESS_LOG_FORMAT)),
      },
      // The whole domain maps to this stage: wss://chat.example.com, no path.
      ...(this.domainName ? { domainMapping: { domainName: this.domainName } } : {}),
    });
    if (parameters.apiGatewayCloudWatchRole) this.setApiGatewayAccountRole();

    this.uploads = new Uploads(this, 'Uploads', {
      retentionDays: parameters.uploadRetentionDays,
      removalPolicy,
    });
    this.framesFunction = new XmppFunction(this, 'FramesFunction', {
      entry: 'functions/frames.ts',
      description: 'XMPP frames and $disconnect, in order per connection, from the FIFO queue',
      timeout: FRAMES_TIMEOUT,
      environment: {
        ...environment,
        MANAGEMENT_ENDPOINT: this.stage.callbackUrl,
        // A long offline drain continues in the connection's own message group (lib/offline.ts).
        FRAMES_QUEUE_URL: this.frames.queue.queueUrl,
        MAX_FRAMES_PER_SECOND: String(parameters.maxFramesPerSecond),
        MAX_BYTES_PER_SECOND: String(parameters.maxBytesPerSecond),
        MAX_SESSIONS_PER_USER: String(parameters.maxSessionsPerUser),
        REGISTRATION: parameters.registration,
        REGISTRATIONS_PER_HOUR: String(parameters.registrationsPerHour),
        MIN_PASSWORD_LENGTH: String(parameters.minPasswordLength),
        // XEP-0363 slots (lib/upload.ts): the bucket PUTs are presigned for, where files are read.
        ...this.uploads.environment,
        UPLOAD_DOMAIN: parameters.uploadDomain,
        UPLOAD_MAX_FILE_BYTES: String(parameters.uploadMaxFileBytes),
        UPLOAD_QUOTA_BYTES_PER_DAY: String(parameters.uploadQuotaBytesPerDay),
        UPLOAD_RETENTION_DAYS: String(parameters.uploadRetentionDays),
      },
      ...logs,
    });
    this.framesFunction.addEventSource(
      new SqsEventSource(this.frames.queue, { batchSize: 10, reportBatchItemFailures: true }),
    );
    this.framesFunction.addToRolePolicy(
      new PolicyStatement({
        actions: FRAMES_TABLE_ACTIONS.filter((action) => action !== 'dynamodb:Query'),
        resources: [this.table.tableArn],
      }),
    );
    this.framesFunction.addToRolePolicy(
      new PolicyStatement({
        actions: ['dynamodb:Query'],
        resources: [this.table.tableArn, `${this.table.tableArn}/index/${orderIndex.name}`],
      }),
    );
    // PostToConnection and DeleteConnection (lib/gateway/management-api.ts).
    this.grantManageConnections(this.framesFunction, ['POST', 'DELETE']);
    this.frames.queue.grant(this.framesFunction, 'sqs:SendMessage');
    this.uploads.grantPresign(this.framesFunction);
    if (parameters.pushServices !== '') {
      this.push = new PushNotifications(this, 'Push', {
        parameters,
        environment,
        tableArn: this.table.tableArn,
        producer: this.framesFunction,
        logs,
      });
      for (const [name, value] of Object.entries(this.push.producerEnvironment))
        this.framesFunction.addEnvironment(name, value);
    }

    this.expiryFailures = new Queue(this, 'ExpiryFailures', {
      retentionPeriod: Duration.days(14),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    this.expiredFunction = this.addExpiredFunction(environment, logs);
    this.authDeadlineFunction = this.addAuthDeadlineFunction({ ...environment, ...authTimeout }, logs);

    this.observability = new Observability(this, 'Observability', {
      serviceName: this.stackName,
      functions: {
        Connect: this.connectFunction,
        Frames: this.framesFunction,
        Expired: this.expiredFunction,
        AuthDeadline: this.authDeadlineFunction,
        ...(this.push ? { Push: this.push.function } : {}),
      },
      ...(this.push ? { pushDeadLetters: this.push.deadLetters } : {}),
      stage: this.stage,
      framesQueue: this.frames.queue,
      deadLetterQueue: this.frames.deadLetterQueue,
      expiryFailures: this.expiryFailures,
      table: this.table,
      alarmEmail: parameters.alarmEmail,
    });

    this.webSocketUrl = parameters.customDomainName ? `wss://${parameters.customDomainName}` : this.stage.url;
    new CfnOutput(this, 'WebSocketUrl', {
      description: 'The XMPP WebSocket endpoint for clients',
      value: this.webSocketUrl,
    });
    if (parameters.webClient) {
      this.webClient = new WebClient(this, 'WebClient', {
        // The stage URL ends with the stage name; Converse connects to exactly this URL.
        websocketUrl: this.webSocketUrl,
        websocketOrigin: parameters.customDomainName
          ? `wss://${parameters.customDomainName}`
          : `wss://${this.webSocketApi.apiId}.execute-api.${this.region}.${this.urlSuffix}`,
        domain: parameters.domain,
        mucDomain: parameters.mucDomain,
        registration: parameters.registration === 'open',
        removalPolicy,
        uploadOrigins: {
          put: `https://${this.uploads.bucket.bucketRegionalDomainName}`,
          get: this.uploads.baseUrl,
        },
      });
      new CfnOutput(this, 'WebClientUrl', {
        description: 'The Converse.js chat page (and /.well-known/host-meta beside it)',
        value: this.webClient.url,
      });
    }
    if (this.domainName) {
      new CfnOutput(this, 'CustomDomainTarget', {
        description: `Point ${parameters.customDomainName} here (CNAME, or a Route 53 alias)`,
        value: this.domainName.regionalDomainName,
      });
    }
    new CfnOutput(this, 'XmppDomain', { description: 'The XMPP domain', value: parameters.domain });
    new CfnOutput(this, 'UploadBaseUrl', {
      description: 'Where XEP-0363 files are read (CloudFront)',
      value: this.uploads.baseUrl,
    });
    new CfnOutput(this, 'TableName', {
      description: 'The table, for the users command (--table)',
      value: this.table.tableName,
    });
    new CfnOutput(this, 'DashboardUrl', {
      description: 'The CloudWatch dashboard',
      value: this.observability.dashboardUrl,
    });
    new CfnOutput(this, 'ManagementEndpoint', {
      description: 'The Management API endpoint (MANAGEMENT_ENDPOINT)',
      value: this.stage.callbackUrl,
    });

    this.suppressNagFindings();
  }

  /**
   * A connection whose $disconnect never came and that nobody posts to is only found when TTL
   * deletes its items (typically within a few days; AWS: usually within 48 hours). The table's stream, filtered to TTL deletions of
   * connections and room occupants (TABLE_SCHEMA.expiryStream), invokes functions/expired.ts,
   * which ends the session as $disconnect would. Other writes invoke nothing.
   */
  private addExpiredFunction(
    environment: Record<string, string>,
    logs: { logRetention: RetentionDays; logRemovalPolicy: RemovalPolicy; memorySize: number },
  ): XmppFunction {
    const fn = new XmppFunction(this, 'ExpiredFunction', {
      entry: 'functions/expired.ts',
      description: 'Ends XMPP sessions whose connection items TTL deleted, from the table stream',
      timeout: EXPIRED_TIMEOUT,
      environment: { ...environment, MANAGEMENT_ENDPOINT: this.stage.callbackUrl },
      ...logs,
    });
    const { equal, prefix } = TABLE_SCHEMA.expiryStream.sortKeys;
    const ttlDeletion = (sk: unknown) => ({
      eventName: FilterRule.isEqual(TTL_DELETION.eventName),
      userIdentity: {
        type: FilterRule.isEqual(TTL_DELETION.userIdentity.type),
        principalId: FilterRule.isEqual(TTL_DELETION.userIdentity.principalId),
      },
      dynamodb: { Keys: { sk: { S: sk } } },
    });
    fn.addEventSource(
      new DynamoEventSource(this.table, {
        startingPosition: StartingPosition.TRIM_HORIZON,
        batchSize: 10,
        reportBatchItemFailures: true,
        retryAttempts: 10,
        onFailure: new SqsDlq(this.expiryFailures),
        filters: [
          ...equal.map((sk) => FilterCriteria.filter(ttlDeletion(FilterRule.isEqual(sk)))),
          ...prefix.map((sk) => FilterCriteria.filter(ttlDeletion(FilterRule.beginsWith(sk)))),
        ],
      }),
    );
    fn.addToRolePolicy(
      new PolicyStatement({ actions: [...FRAMES_TABLE_ACTIONS], resources: [this.table.tableArn] }),
    );
    // PostToConnection only: unavailable presence to contacts and room occupants.
    this.grantManageConnections(fn, ['POST']);
    return fn;
  }

  /**
   * $connect puts each connection's id on the deadline queue, delayed by authTimeoutSeconds; this
   * function gets it once the deadline has passed and closes the connection unless it finished
   * SASL meanwhile (lib/limits.ts). One message and one read per connection, batched by 10.
   */
  private addAuthDeadlineFunction(
    environment: Record<string, string>,
    logs: { logRetention: RetentionDays; logRemovalPolicy: RemovalPolicy; memorySize: number },
  ): XmppFunction {
    const fn = new XmppFunction(this, 'AuthDeadlineFunction', {
      entry: 'functions/auth-deadline.ts',
      description: 'XMPP authentication deadline: closes connections that have not finished SASL in time',
      timeout: AUTH_DEADLINE_TIMEOUT,
      environment: { ...environment, MANAGEMENT_ENDPOINT: this.stage.callbackUrl },
      ...logs,
    });
    fn.addEventSource(
      new SqsEventSource(this.authDeadlines, { batchSize: 10, reportBatchItemFailures: true }),
    );
    fn.addToRolePolicy(
      new PolicyStatement({ actions: [...AUTH_DEADLINE_TABLE_ACTIONS], resources: [this.table.tableArn] }),
    );
    // The stream error, <close/>, and DeleteConnection.
    this.grantManageConnections(fn, ['POST', 'DELETE']);
    return fn;
  }

  /**
   * The Management API on this stage's connections, for the given methods. Connection ids are
   * made at run time, so the grant ends in a wildcard, which cdk-nag is told about here.
   */
  private grantManageConnections(fn: XmppFunction, methods: readonly ('POST' | 'DELETE')[]): void {
    const resourceName = (method: string) => `${this.stage.stageName}/${method}/@connections/*`;
    fn.addToRolePolicy(
      new PolicyStatement({
        actions: ['execute-api:ManageConnections'],
        resources: methods.map((method) =>
          this.formatArn({
            service: 'execute-api',
            resource: this.webSocketApi.apiId,
            resourceName: resourceName(method),
          }),
        ),
      }),
    );
    // The same resources, as cdk-nag spells them.
    const apiId = this.resolve(this.getLogicalId(this.webSocketApi.node.defaultChild as CfnElement));
    for (const method of methods) {
      Validations.of(fn.role as IRole).acknowledge({
        id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<${apiId}>/${resourceName(method)}]`,
        reason: `Connection ids are made by API Gateway at run time: ${method} on any connection of this API's stage (${method === 'POST' ? 'PostToConnection' : 'DeleteConnection'})`,
      });
    }
  }

  /**
   * WebSocket access logging needs API Gateway's account-wide CloudWatch Logs role (one per account
   * and region, shared by every API). Both are kept when the stack is deleted, so that other APIs'
   * logging keeps working; with `apiGatewayCloudWatchRole=false` the existing setting is used.
   */
  private setApiGatewayAccountRole(): void {
    const role = new Role(this, 'ApiGatewayCloudWatchRole', {
      assumedBy: new ServicePrincipal('apigateway.amazonaws.com'),
      description: 'API Gateway (account-wide setting) writes access and execution logs',
      managedPolicies: [
        ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonAPIGatewayPushToCloudWatchLogs'),
      ],
    });
    role.applyRemovalPolicy(RemovalPolicy.RETAIN);
    const account = new CfnAccount(this, 'ApiGatewayAccount', { cloudWatchRoleArn: role.roleArn });
    account.applyRemovalPolicy(RemovalPolicy.RETAIN);
    this.stage.node.addDependency(account);
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
      reason:
        "AmazonAPIGatewayPushToCloudWatchLogs is AWS's policy for this account-wide role: it must cover the log groups of every API in the account and region",
    });
  }

  /** Every AwsSolutions finding that stays, with its reason (test/infra/stack.test.ts runs cdk-nag). */
  private suppressNagFindings(): void {
    Validations.of(this.webSocketApi).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason:
        'XMPP authenticates inside the stream, with SASL SCRAM or PLAIN over wss:// (RFC 6120 §6), after the WebSocket is open: clients send no credentials with the upgrade, and WebSocket APIs allow an authorizer only on $connect',
    });
    for (const fn of [
      this.connectFunction,
      this.framesFunction,
      this.expiredFunction,
      this.authDeadlineFunction,
      ...(this.push ? [this.push.function] : []),
    ]) {
      Validations.of(fn).acknowledge({
        id: 'AwsSolutions-L1',
        reason:
          'Pinned to Node.js 22 (LTS, supported by Lambda until 2027): the runtime the bundles target (esbuild target node22) and the project is tested on',
      });
    }
    Validations.of(this.expiryFailures).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        'This queue is itself a dead-letter queue: the on-failure destination of the stream event source mapping, which cdk-nag does not recognise as one',
    });
    if (this.push) {
      Validations.of(this.push.deadLetters).acknowledge({
        id: 'AwsSolutions-SQS3',
        reason: "This queue is itself the push queue's dead-letter queue (alarmed)",
      });
      Validations.of(this.push.secret).acknowledge({
        id: 'AwsSolutions-SMG4',
        reason:
          'The signing secret is shared with the app servers, which verify each notification with it: a rotation must be coordinated with them (README, "Push notifications"), so it is rotated by hand',
      });
    }
    Validations.of(this.authDeadlines).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        'A deadline is worth nothing once its connection is gone: a failing one is retried until its 1-hour retention ends, and the function errors alarm reports it; a dead-letter queue would keep only stale connection ids',
    });
  }
}

/**
 * One JSON line per request in the access log: what happened to which connection. Only variables
 * that API Gateway lists for WebSocket APIs ("Configure logging for WebSocket APIs"): it refuses
 * to deploy a stage whose format names another ("The following context variables are not
 * supported"), and `$context.integrationErrorMessage` is a REST and HTTP API variable. A frame
 * SQS refused shows as status 500 with error "Internal server error" (docs/architecture.md, runbook).
 */
export const ACCESS_LOG_FORMAT = {
  requestId: '$context.requestId',
  requestTime: '$context.requestTimeEpoch',
  connectionId: '$context.connectionId',
  eventType: '$context.eventType',
  routeKey: '$context.routeKey',
  status: '$context.status',
  integrationLatency: '$context.integrationLatency',
  error: '$context.error.message',
  errorType: '$context.error.responseType',
  sourceIp: '$context.identity.sourceIp',
} as const;
