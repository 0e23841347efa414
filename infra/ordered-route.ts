// Per-connection order (docs DESIGN §4). API Gateway invokes an integration once per frame without
// waiting for the previous one, so a Lambda behind `$default` could handle two frames of one stream
// at once. Instead `$default` and `$disconnect` call SQS SendMessage directly (an AWS service
// integration, no Lambda in between) on a FIFO queue with one message group per connection: SQS
// then hands a connection's frames to functions/frames.ts strictly one after another, its
// `$disconnect` last, while different connections still run in parallel.
import { Duration } from 'aws-cdk-lib';
import {
  HttpMethod,
  PassthroughBehavior,
  type WebSocketApi,
  type WebSocketRoute,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketAwsIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { DeduplicationScope, FifoThroughputLimit, Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/** Message attributes functions/frames.ts reads (its FRAME_ATTRIBUTES). */
export const FRAME_ATTRIBUTE_NAMES = { connectionId: 'connectionId', eventType: 'eventType' } as const;

/** SQS rejects an empty body, and `$disconnect` has none: its message carries this instead. */
export const DISCONNECT_BODY = 'DISCONNECT';

/**
 * A frame goes on the queue as this prefix and its base64 (functions/frames.ts FRAME_BODY_PREFIX
 * decodes it): SQS refuses an empty body and characters outside XML's set (InvalidMessageContents),
 * and API Gateway would answer such a frame with a JSON error frame, the frame lost. Encoded, every
 * frame reaches the handler, which answers it in XMPP. base64's `+`, `/` and `=` are URL-encoded.
 */
export const FRAME_BODY_PREFIX = 'b64:';
export const FRAME_MESSAGE_BODY = `${encodeURIComponent(FRAME_BODY_PREFIX)}$util.urlEncode($util.base64Encode($input.body))`;

/**
 * How long a received frame stays invisible beyond the consumer's timeout. SQS FIFO hands a
 * message group's next frames out only when none of its frames is in flight, and Lambda refuses
 * a queue whose visibility timeout is shorter than the function's timeout; the margin covers the
 * time between the poller's receive and the invocation's start. A frame that keeps failing
 * is received again every (timeout + margin) and reaches the dead-letter queue after
 * maxReceiveCount receives: 3 × 20 s ≈ 1 minute with the stack's 15 s timeout, during which
 * its connection's later frames wait.
 *
 * Lambda advises 6× the timeout so that records whose invocation is throttled (the poller
 * retries for up to the visibility timeout) are not received again meanwhile; with the short
 * timeout here, a throttled frame may use up receives and reach the dead-letter queue untried
 * (an alarm fires; the sender got no server receipt and resends, README "Delivery semantics").
 */
const VISIBILITY_MARGIN = Duration.seconds(5);

/** Receives of a failing frame before the dead-letter queue (see VISIBILITY_MARGIN). */
export const DEFAULT_MAX_RECEIVE_COUNT = 3;

/**
 * The SendMessage request (SQS query protocol, form-encoded) API Gateway builds for each frame.
 * Connection and request ids are base64 and may contain `+`, `/` and `=`, so every value is
 * URL-encoded. `$context.eventType` is `MESSAGE` for a frame and `DISCONNECT` for `$disconnect`.
 */
export function sendMessageTemplate(messageBody: string): string {
  const { connectionId, eventType } = FRAME_ATTRIBUTE_NAMES;
  return [
    'Action=SendMessage',
    'MessageGroupId=$util.urlEncode($context.connectionId)',
    'MessageDeduplicationId=$util.urlEncode($context.requestId)',
    `MessageAttribute.1.Name=${connectionId}`,
    'MessageAttribute.1.Value.DataType=String',
    'MessageAttribute.1.Value.StringValue=$util.urlEncode($context.connectionId)',
    `MessageAttribute.2.Name=${eventType}`,
    'MessageAttribute.2.Value.DataType=String',
    'MessageAttribute.2.Value.StringValue=$util.urlEncode($context.eventType)',
    `MessageBody=${messageBody}`,
  ].join('&');
}

export interface OrderedRoutesProps {
  /** The API whose `$default` and `$disconnect` routes this construct adds. */
  readonly webSocketApi: WebSocketApi;
  /** Timeout of the function that consumes the queue; the visibility timeout is 5 s more. */
  readonly consumerTimeout: Duration;
  /**
   * Receives before a frame that keeps failing moves to the dead-letter queue (and stops
   * blocking the frames after it).
   * @default 3
   */
  readonly maxReceiveCount?: number;
}

export class OrderedRoutes extends Construct {
  /** FIFO queue of frames, one message group per connection. */
  public readonly queue: Queue;
  /** Frames that failed `maxReceiveCount` times, kept 14 days for inspection. */
  public readonly deadLetterQueue: Queue;
  /** The role API Gateway assumes to call SendMessage, on this queue only. */
  public readonly role: Role;
  public readonly defaultRoute: WebSocketRoute;
  public readonly disconnectRoute: WebSocketRoute;

  constructor(scope: Construct, id: string, props: OrderedRoutesProps) {
    super(scope, id);

    this.deadLetterQueue = new Queue(this, 'DeadLetters', {
      fifo: true,
      retentionPeriod: Duration.days(14),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    this.queue = new Queue(this, 'Frames', {
      fifo: true,
      // High-throughput FIFO: limits apply per message group, i.e. per connection.
      deduplicationScope: DeduplicationScope.MESSAGE_GROUP,
      fifoThroughputLimit: FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: props.consumerTimeout.plus(VISIBILITY_MARGIN),
      deadLetterQueue: {
        queue: this.deadLetterQueue,
        maxReceiveCount: props.maxReceiveCount ?? DEFAULT_MAX_RECEIVE_COUNT,
      },
    });

    this.role = new Role(this, 'SendMessageRole', {
      assumedBy: new ServicePrincipal('apigateway.amazonaws.com'),
      description: 'API Gateway puts WebSocket frames on the ordered frame queue',
    });
    this.queue.grant(this.role, 'sqs:SendMessage');

    this.defaultRoute = props.webSocketApi.addRoute('$default', {
      integration: this.integration('DefaultToQueue', FRAME_MESSAGE_BODY),
    });
    this.disconnectRoute = props.webSocketApi.addRoute('$disconnect', {
      integration: this.integration('DisconnectToQueue', DISCONNECT_BODY),
    });
  }

  private integration(id: string, messageBody: string): WebSocketAwsIntegration {
    const { account, region, partition } = this.queue.stack;
    return new WebSocketAwsIntegration(id, {
      integrationUri: `arn:${partition}:apigateway:${region}:sqs:path/${account}/${this.queue.queueName}`,
      integrationMethod: HttpMethod.POST,
      credentialsRole: this.role,
      requestParameters: {
        'integration.request.header.Content-Type': "'application/x-www-form-urlencoded'",
      },
      // One template for every frame, whatever its content.
      templateSelectionExpression: '\\$default',
      requestTemplates: { $default: sendMessageTemplate(messageBody) },
      passthroughBehavior: PassthroughBehavior.NEVER,
    });
  }
}
