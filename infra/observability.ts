// What an operator sees: alarms that notify an SNS topic (and an e-mail address, when given), and
// one CloudWatch dashboard with the service's own metrics (lib/metrics.ts, published as EMF by
// functions/runtime.ts), the functions, the frame queues, the table and the WebSocket API.
import { Aws, Duration } from 'aws-cdk-lib';
import type { WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  MathExpression,
  Metric,
  TextWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { FilterPattern, MetricFilter } from 'aws-cdk-lib/aws-logs';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRIC_DESCRIPTIONS, METRIC_NAMESPACE } from '../lib/metrics.ts';
import type { MetricName } from '../lib/ports.ts';
import type { XmppFunction } from './function.ts';

/** Logged errors (functions/runtime.ts logs JSON with `level`), counted by a metric filter. */
export const HANDLER_ERRORS_METRIC = 'HandlerErrors';

export interface ObservabilityProps {
  /** The `service` dimension of the service's metrics and log lines (the stack name). */
  readonly serviceName: string;
  readonly functions: Readonly<
    Record<'Connect' | 'Frames' | 'Expired' | 'AuthDeadline', XmppFunction> & { Push?: XmppFunction }
  >;
  /** XEP-0357 notifications given up on (infra/push.ts), when push is deployed. */
  readonly pushDeadLetters?: Queue;
  readonly stage: WebSocketStage;
  readonly framesQueue: Queue;
  readonly deadLetterQueue: Queue;
  /** Stream records of expired items the expired function gave up on. */
  readonly expiryFailures: Queue;
  readonly table: TableV2;
  /** Subscribed to the alarm topic by e-mail (SNS asks the address to confirm). */
  readonly alarmEmail?: string;
}

export class Observability extends Construct {
  /** Every alarm notifies this topic. */
  public readonly topic: Topic;
  public readonly alarms: Alarm[] = [];
  public readonly dashboard: Dashboard;
  /** The dashboard in the CloudWatch console. */
  public readonly dashboardUrl: string;

  private readonly period = Duration.minutes(5);

  constructor(
    scope: Construct,
    id: string,
    private readonly props: ObservabilityProps,
  ) {
    super(scope, id);

    this.topic = new Topic(this, 'AlarmTopic', {
      displayName: `XMPP alarms (${props.serviceName})`,
      enforceSSL: true,
    });
    if (props.alarmEmail) this.topic.addSubscription(new EmailSubscription(props.alarmEmail));

    for (const [name, fn] of Object.entries(props.functions)) {
      new MetricFilter(this, `${name}ErrorLogs`, {
        logGroup: fn.logGroup,
        filterPattern: FilterPattern.stringValue('$.level', '=', 'ERROR'),
        metricNamespace: METRIC_NAMESPACE,
        metricName: HANDLER_ERRORS_METRIC,
        metricValue: '1',
        dimensions: { service: '$.service' },
      });
    }

    this.addAlarms();
    this.dashboard = this.addDashboard();
    this.dashboardUrl = `https://${Aws.REGION}.console.aws.amazon.com/cloudwatch/home?region=${Aws.REGION}#dashboards/dashboard/${this.dashboard.dashboardName}`;
  }

  /** One of the service's own metrics (lib/metrics.ts), summed. */
  serviceMetric(name: MetricName | typeof HANDLER_ERRORS_METRIC, label?: string): Metric {
    return new Metric({
      namespace: METRIC_NAMESPACE,
      metricName: name,
      dimensionsMap: { service: this.props.serviceName },
      statistic: 'Sum',
      period: this.period,
      label,
    });
  }

  private alarm(id: string, metric: IMetric, description: string): void {
    const alarm = new Alarm(this, id, {
      metric,
      alarmDescription: description,
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    alarm.addAlarmAction(new SnsAction(this.topic));
    this.alarms.push(alarm);
  }

  private addAlarms(): void {
    const { period } = this;
    const { functions, stage, deadLetterQueue, expiryFailures, table, pushDeadLetters } = this.props;
    if (pushDeadLetters) {
      this.alarm(
        'PushDeadLetters',
        pushDeadLetters.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum' }),
        'Push notifications were given up on: an app server kept failing (pushMaxAttempts tries) or the push function did. Each dead letter names the user, the push service and the reason. Runbook: docs/architecture.md, "Push dead letters"',
      );
    }
    for (const [name, fn] of Object.entries(functions)) {
      this.alarm(`${name}Errors`, fn.metricErrors({ period }), `The ${name} function failed or timed out`);
      this.alarm(`${name}Throttles`, fn.metricThrottles({ period }), `The ${name} function was throttled`);
    }
    this.alarm(
      'HandlerErrors',
      this.serviceMetric(HANDLER_ERRORS_METRIC),
      'A handler logged an error (for example a frame failed; SQS delivers it again)',
    );
    this.alarm(
      'DeadLetters',
      deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum' }),
      'Frames failed on 3 receives (about a minute) and were moved to the dead-letter queue; their connections went on with the next frames. Runbook: docs/architecture.md, "Dead letters"',
    );
    this.alarm(
      'ExpiryFailures',
      expiryFailures.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum' }),
      'Expired sessions could not be ended (their contacts may still see them online). The expiry failure queue holds only batch metadata (shard, sequence numbers), not the items, and the stream keeps records for 24 hours: act within a day. Runbook: docs/architecture.md, "Expiry failures"',
    );
    this.alarm(
      'TableThrottles',
      new MathExpression({
        expression: 'reads + writes',
        usingMetrics: {
          reads: table.metric('ReadThrottleEvents', { period, statistic: 'Sum' }),
          writes: table.metric('WriteThrottleEvents', { period, statistic: 'Sum' }),
        },
        period,
        label: 'Throttled reads and writes',
      }),
      'DynamoDB throttled requests to the table',
    );
    // A WebSocket API's 5xx: an integration (the queue, the connect function) or API Gateway failed.
    this.alarm(
      'IntegrationErrors',
      stage.metric('IntegrationError', { period, statistic: 'Sum' }),
      'A route integration failed (a frame may not have reached the queue)',
    );
    this.alarm(
      'ExecutionErrors',
      stage.metric('ExecutionError', { period, statistic: 'Sum' }),
      'API Gateway failed to handle a request',
    );
  }

  private addDashboard(): Dashboard {
    const { period } = this;
    const { functions, stage, framesQueue, deadLetterQueue, table, serviceName } = this.props;
    const fns = Object.entries(functions);
    const apiMetric = (name: string, label: string) =>
      stage.metric(name, { period, statistic: 'Sum', label });
    const graph = (title: string, left: IMetric[], right?: IMetric[]) =>
      new GraphWidget({ title, left, right, width: 12, height: 6 });
    const named = (names: MetricName[]) =>
      names.map((name) => this.serviceMetric(name, METRIC_DESCRIPTIONS[name]));

    const dashboard = new Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.hours(3),
    });
    dashboard.addWidgets(
      new TextWidget({
        markdown: `# XMPP service ${serviceName}\nOwn metrics: namespace \`${METRIC_NAMESPACE}\`, dimension \`service=${serviceName}\`.`,
        width: 24,
        height: 2,
      }),
    );
    dashboard.addWidgets(
      new AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24, height: 3 }),
    );
    dashboard.addWidgets(
      graph(
        'Messages',
        named([
          'MessagesStored',
          'MessagesDelivered',
          'MessagesDrained',
          'ReceiptsRouted',
          'PushNotificationsSent',
        ]),
      ),
      graph('Stanzas', named(['StanzasHandled']), [
        apiMetric('ConnectCount', 'Connects'),
        apiMetric('MessageCount', 'Frames in and out'),
      ]),
    );
    dashboard.addWidgets(
      graph('Failures', [
        ...named(['SaslFailures', 'GoneConnections', 'PushNotificationsFailed']),
        this.serviceMetric(HANDLER_ERRORS_METRIC, 'Logged errors'),
      ]),
      graph('API Gateway errors', [
        apiMetric('IntegrationError', 'Integration errors (5xx)'),
        apiMetric('ExecutionError', 'Execution errors (5xx)'),
        apiMetric('ClientError', 'Client errors (4xx)'),
      ]),
    );
    dashboard.addWidgets(
      graph(
        'Functions: invocations, errors, throttles',
        fns.flatMap(([name, fn]) => [
          fn.metricInvocations({ period, label: `${name} invocations` }),
          fn.metricErrors({ period, label: `${name} errors` }),
          fn.metricThrottles({ period, label: `${name} throttles` }),
        ]),
      ),
      graph(
        'Functions: duration (p99) and concurrency',
        fns.map(([name, fn]) => fn.metricDuration({ period, statistic: 'p99', label: `${name} p99` })),
        fns.map(([name, fn]) =>
          fn.metric('ConcurrentExecutions', { period, statistic: 'Maximum', label: `${name} concurrency` }),
        ),
      ),
    );
    dashboard.addWidgets(
      graph(
        'Frame queue',
        [
          framesQueue.metricApproximateNumberOfMessagesVisible({ period, label: 'Frames waiting' }),
          deadLetterQueue.metricApproximateNumberOfMessagesVisible({
            period,
            statistic: 'Maximum',
            label: 'Dead letters',
          }),
        ],
        [framesQueue.metricApproximateAgeOfOldestMessage({ period, label: 'Oldest frame (s)' })],
      ),
      graph(
        'Table',
        [
          table.metric('ConsumedReadCapacityUnits', { period, statistic: 'Sum', label: 'Read units' }),
          table.metric('ConsumedWriteCapacityUnits', { period, statistic: 'Sum', label: 'Write units' }),
        ],
        [
          table.metric('ReadThrottleEvents', { period, statistic: 'Sum', label: 'Throttled reads' }),
          table.metric('WriteThrottleEvents', { period, statistic: 'Sum', label: 'Throttled writes' }),
        ],
      ),
    );
    return dashboard;
  }
}
