// The deployable system (docs DESIGN §2, §7): one WebSocket API, two functions, one table, and the
// FIFO queue that keeps each connection's frames in order (infra/ordered-route.ts).
import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import { WebSocketApi, WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { Alarm, ComparisonOperator, type IMetric, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { AttributeType, Billing, ProjectionType, TableEncryptionV2, TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { TABLE_SCHEMA } from '../lib/store/schema.ts';
import { XmppFunction } from './function.ts';
import { OrderedRoutes } from './ordered-route.ts';
import { type LogLevel, parseParameters, type RemovalChoice } from './parameters.ts';

export interface XmppStackProps extends StackProps {
  /** The XMPP domain users live on. @default 'localhost' */
  readonly domain?: string;
  /** The XEP-0045 service domain. @default `conference.${domain}` */
  readonly mucDomain?: string;
  /** The WebSocket API stage. @default 'prod' */
  readonly stageName?: string;
  /** Largest frame accepted, in bytes (10000 to 131072). @default 65536 */
  readonly maxStanzaBytes?: number;
  /** @default 'info' */
  readonly logLevel?: LogLevel;
  /** Stage throttling, steady-state requests per second. @default 500 */
  readonly throttleRate?: number;
  /** Stage throttling, burst capacity. @default 1000 */
  readonly throttleBurst?: number;
  /** Retention of the functions' logs. @default RetentionDays.ONE_MONTH */
  readonly logRetentionDays?: RetentionDays;
  /**
   * `retain`: the table survives stack deletion and has deletion protection; `destroy`: the table
   * and log groups go with the stack (for throw-away stacks).
   * @default 'retain'
   */
  readonly removalPolicy?: RemovalChoice;
}

/** Function timeouts; the frame queue's visibility timeout follows the frames function's. */
const CONNECT_TIMEOUT = Duration.seconds(10);
const FRAMES_TIMEOUT = Duration.seconds(30);

export class XmppStack extends Stack {
  public readonly table: TableV2;
  public readonly webSocketApi: WebSocketApi;
  public readonly stage: WebSocketStage;
  /** The ordered frame queue, its dead-letter queue and the routes that feed it. */
  public readonly frames: OrderedRoutes;
  public readonly connectFunction: XmppFunction;
  public readonly framesFunction: XmppFunction;
  /** Alarms on function errors and throttles, failed integrations and dead-lettered frames (no actions). */
  public readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: XmppStackProps = {}) {
    super(scope, id, props);
    // The same defaults and checks as the CDK context gets in infra/app.ts.
    const parameters = parseParameters((key) => props[key as keyof XmppStackProps]);
    const retain = parameters.removalPolicy === 'retain';

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
      billing: Billing.onDemand(),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: TableEncryptionV2.awsManagedKey(),
      deletionProtection: retain,
      removalPolicy: retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });

    const environment = {
      TABLE_NAME: this.table.tableName,
      XMPP_DOMAIN: parameters.domain,
      MUC_DOMAIN: parameters.mucDomain,
      MAX_STANZA_BYTES: String(parameters.maxStanzaBytes),
      LOG_LEVEL: parameters.logLevel,
      OFFLINE_QUOTA: String(parameters.offlineQuota),
      RETENTION_DAYS: String(parameters.retentionDays),
    };
    const logs = {
      logRetention: parameters.logRetentionDays,
      logRemovalPolicy: retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    };

    // $connect answers synchronously (it accepts or refuses, and negotiates the subprotocol), so it
    // stays a Lambda integration. It never posts to connections: no stage URL, no Management API.
    this.connectFunction = new XmppFunction(this, 'ConnectFunction', {
      entry: 'functions/connect.ts',
      description: 'XMPP $connect: records the connection, negotiates the xmpp subprotocol',
      timeout: CONNECT_TIMEOUT,
      environment,
      ...logs,
    });
    this.table.grantWriteData(this.connectFunction);

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
    this.stage = new WebSocketStage(this, 'Stage', {
      webSocketApi: this.webSocketApi,
      stageName: parameters.stageName,
      autoDeploy: true,
      throttle: { rateLimit: parameters.throttleRate, burstLimit: parameters.throttleBurst },
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
      },
      ...logs,
    });
    this.framesFunction.addEventSource(
      new SqsEventSource(this.frames.queue, { batchSize: 10, reportBatchItemFailures: true }),
    );
    this.table.grantReadWriteData(this.framesFunction);
    this.stage.grantManagementApiAccess(this.framesFunction);
    this.frames.queue.grantSendMessages(this.framesFunction);

    this.addAlarms();

    new CfnOutput(this, 'WebSocketUrl', {
      description: 'The XMPP WebSocket endpoint for clients',
      value: this.stage.url,
    });
    new CfnOutput(this, 'XmppDomain', { description: 'The XMPP domain', value: parameters.domain });
    new CfnOutput(this, 'TableName', {
      description: 'The table, for the users command (TABLE_NAME)',
      value: this.table.tableName,
    });
    new CfnOutput(this, 'ManagementEndpoint', {
      description: 'The Management API endpoint (MANAGEMENT_ENDPOINT)',
      value: this.stage.callbackUrl,
    });
  }

  /** Alarms without actions: attach an SNS topic with `alarm.addAlarmAction(...)`. */
  private addAlarms(): void {
    const period = Duration.minutes(5);
    const alarmOn = (id: string, metric: IMetric, description: string) => {
      this.alarms.push(
        new Alarm(this, id, {
          metric,
          alarmDescription: description,
          threshold: 1,
          evaluationPeriods: 1,
          comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          treatMissingData: TreatMissingData.NOT_BREACHING,
        }),
      );
    };
    for (const [name, fn] of [
      ['Connect', this.connectFunction],
      ['Frames', this.framesFunction],
    ] as const) {
      alarmOn(`${name}Errors`, fn.metricErrors({ period }), `The ${name} function failed`);
      alarmOn(`${name}Throttles`, fn.metricThrottles({ period }), `The ${name} function was throttled`);
    }
    alarmOn(
      'IntegrationErrors',
      this.stage.metric('IntegrationError', { period, statistic: 'Sum' }),
      'A route integration failed (a frame may not have reached the queue)',
    );
    alarmOn(
      'DeadLetters',
      this.frames.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum' }),
      'Frames failed repeatedly and were moved to the dead-letter queue',
    );
  }
}
