// A local stand-in for API Gateway's WebSocket API and its Management API, in front of
// the real handlers. It builds the events AWS builds, honours AWS's limits, and keeps
// the production ordering path: $default and $disconnect go through a FIFO queue with
// one message group per connection (as the SQS FIFO integration does), consumed in
// batches of up to 10 with partial batch failures and redrive, while different
// connections run concurrently.
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type {
  APIGatewayProxyResultV2,
  Context as LambdaContext,
  SQSBatchResponse,
  SQSEvent,
  SQSRecord,
} from 'aws-lambda';
import { WebSocket, WebSocketServer } from 'ws';
import type { ConnectEvent } from '../../functions/connect.ts';
import { FRAME_BODY_PREFIX } from '../../functions/frames.ts';
import type { LatencyModel } from './latency.ts';
import { sqsRefusal } from './sqs.ts';

export type ConnectHandler = (event: ConnectEvent) => Promise<APIGatewayProxyResultV2>;
export type FramesHandler = (
  event: SQSEvent,
  invocation?: LambdaContext,
) => Promise<SQSBatchResponse | undefined>;

export interface LocalWebSocketApiOptions {
  readonly connectHandler: ConnectHandler;
  readonly framesHandler: FramesHandler;
  /** 0 picks a free port. */
  readonly port?: number;
  readonly host?: string;
  /** The WebSocket path, `/xmpp-websocket`. */
  readonly path?: string;
  readonly stage?: string;
  /** AWS: 128 KB per message (and per post); bigger closes the socket with 1009. */
  readonly maxMessageBytes?: number;
  /**
   * AWS: 32 KB per WebSocket frame; a bigger frame closes the socket with 1009. A message
   * up to `maxMessageBytes` passes only when the client splits it into frames (browsers and
   * `ws` send each message as one frame).
   */
  readonly maxFrameBytes?: number;
  /**
   * Fault injection for posts (PostToConnection): return a status to answer a post with it
   * instead of delivering (429 LimitExceededException, 500, 413 PayloadTooLargeException).
   */
  readonly postFault?: (connectionId: string, body: string) => PostFault | undefined;
  /** AWS: 10 minutes without a frame either way. */
  readonly idleTimeoutMs?: number;
  /** AWS: 2 hours. */
  readonly maxConnectionMs?: number;
  /** SQS FIFO: records per invocation (Lambda's batch size). */
  readonly batchSize?: number;
  /** SQS: how often a record is tried before it moves to the dead-letter queue. */
  readonly maxReceiveCount?: number;
  /** SQS visibility timeout, shortened locally: the wait before a failed record is retried. */
  readonly retryDelayMs?: number;
  /**
   * The frames function's timeout (15 s on AWS). When set, each invocation gets a Lambda
   * context whose getRemainingTimeInMillis counts down from it, so the handlers' time budget
   * runs as on AWS; an invocation that outlasts it is counted (`counters.overTimeout`), not
   * killed. 0 (the default): no context, no budget.
   */
  readonly functionTimeoutMs?: number;
  readonly log?: (message: string, fields?: Record<string, unknown>) => void;
  /**
   * AWS's latency per hop, modelled (infra/local/latency.ts): each batch of frames waits for API
   * Gateway and SQS FIFO to Lambda, each post for PostToConnection. @default - none
   */
  readonly latency?: LatencyModel;
  /**
   * Other AWS services on this HTTP server, asked first: true when it answered the request (the
   * local SQS of infra/local/sqs.ts, for functions that run in processes of their own).
   */
  readonly services?: (request: IncomingMessage, response: ServerResponse) => Promise<boolean>;
}

/** The statuses `postFault` may answer a post with. */
export type PostFault = 429 | 500 | 413;

/** What the Management API answers with each injected status (x-amzn-ErrorType). */
const POST_FAULT_ERRORS: Record<PostFault, string> = {
  429: 'LimitExceededException',
  500: 'InternalServerErrorException',
  413: 'PayloadTooLargeException',
};

interface QueuedRecord {
  readonly messageId: string;
  readonly body: string;
  readonly eventType: 'MESSAGE' | 'DISCONNECT' | 'CONTINUE';
  readonly isBinary: boolean;
  /** When it was queued: SQS's SentTimestamp (the rate limits count frames by it). */
  readonly sentAt: number;
  receiveCount: number;
}

interface LocalConnection {
  readonly id: string;
  readonly socket: WebSocket;
  readonly connectedAt: number;
  lastActiveAt: number;
  readonly queue: QueuedRecord[];
  draining: boolean;
  disconnected: boolean;
  timers: NodeJS.Timeout[];
  idleTimer?: NodeJS.Timeout;
  /** With a latency model: when the last post is delivered (posts keep their order). */
  lastPostDue?: number;
}

/** API Gateway connection ids look like `L0SM9cOFvHcCIhw=`: base64, with `=` and `/`. */
const newConnectionId = () => randomBytes(10).toString('base64');

export class LocalWebSocketApi {
  private readonly server: Server;
  private readonly wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (_offered, request) => (request.headers['x-selected-protocol'] as string) ?? false,
  });
  private readonly connections = new Map<string, LocalConnection>();
  /** Frames taken out of a queue but not finished yet. */
  private inFlight = 0;
  readonly deadLetters: QueuedRecord[] = [];
  /** Handler invocations and records handled, as Lambda would bill and SQS would count them. */
  readonly counters = {
    connectInvocations: 0,
    framesInvocations: 0,
    queuedRecords: 0,
    posts: 0,
    /** Posts answered by `postFault` instead of being delivered. */
    failedPosts: 0,
    /** The longest frames invocation so far (the function's timeout is 15 s on AWS). */
    longestInvocationMs: 0,
    /** Invocations that ran longer than `functionTimeoutMs` (AWS would have failed the batch). */
    overTimeout: 0,
  };
  private readonly options: Required<
    Omit<LocalWebSocketApiOptions, 'log' | 'postFault' | 'services' | 'latency'>
  > &
    Pick<LocalWebSocketApiOptions, 'log' | 'postFault' | 'services' | 'latency'>;

  constructor(options: LocalWebSocketApiOptions) {
    this.options = {
      port: 0,
      host: '127.0.0.1',
      path: '/xmpp-websocket',
      stage: 'local',
      maxMessageBytes: 128 * 1024,
      maxFrameBytes: 32 * 1024,
      idleTimeoutMs: 10 * 60 * 1000,
      maxConnectionMs: 2 * 60 * 60 * 1000,
      batchSize: 10,
      maxReceiveCount: 3,
      retryDelayMs: 200,
      functionTimeoutMs: 0,
      ...options,
    };
    this.server = createServer((request, response) => void this.onHttp(request, response));
    this.server.on('upgrade', (request, socket, head) => void this.onUpgrade(request, socket, head));
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => resolve());
    });
  }

  get port(): number {
    const address = this.server.address();
    return typeof address === 'object' && address ? address.port : this.options.port;
  }

  get url(): string {
    return `ws://${this.options.host}:${this.port}${this.options.path}`;
  }

  /** What the handlers get as MANAGEMENT_ENDPOINT (on AWS: the stage's callback URL). */
  get managementEndpoint(): string {
    return `http://${this.options.host}:${this.port}/${this.options.stage}`;
  }

  get connectionIds(): string[] {
    return [...this.connections.keys()];
  }

  /** The modelled AWS latency it adds, with what it applied so far (none unless asked for). */
  get latency(): LatencyModel | undefined {
    return this.options.latency;
  }

  /** The frames function's timeout this emulator runs with (0: none). */
  get functionTimeoutMs(): number {
    return this.options.functionTimeoutMs;
  }

  /** Resolves once every queued frame and disconnect has been handled. */
  async idle(): Promise<void> {
    while (
      this.inFlight > 0 ||
      [...this.connections.values()].some((c) => c.queue.length > 0 || c.draining)
    ) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /**
   * Test hook for the seed's "problem 1": the client's network vanishes. The socket is
   * destroyed with no close frame, and API Gateway does not notice (no $disconnect):
   * posts to it still succeed until the connection is found dead.
   */
  killSilently(connectionId: string): void {
    const connection = this.connections.get(connectionId);
    if (!connection) return;
    connection.disconnected = true; // no $disconnect will be queued
    connection.socket.terminate();
    this.zombies.add(connectionId);
  }

  /** What the handlers' SendMessage to the frames queue does on AWS: queue in the connection's group. */
  enqueueContinuation(connectionId: string, body: string): void {
    const connection = this.connections.get(connectionId);
    if (connection) this.enqueue(connection, { eventType: 'CONTINUE', body, isBinary: false });
  }

  /** Connections killed silently: AWS still accepts posts to them for a while. */
  private readonly zombies = new Set<string>();

  /** Test hook: makes later posts to a silently killed connection answer 410 Gone. */
  expire(connectionId: string): void {
    this.zombies.delete(connectionId);
    this.connections.delete(connectionId);
  }

  /** Closes every connection (their $disconnect runs first, as on AWS), then the server. */
  async close(): Promise<void> {
    const closed = [...this.connections.values()].map((connection) =>
      connection.socket.readyState === WebSocket.CLOSED
        ? Promise.resolve()
        : new Promise<void>((resolve) => connection.socket.once('close', () => resolve())),
    );
    for (const connection of this.connections.values()) connection.socket.terminate();
    await Promise.all(closed);
    await this.idle();
    this.connections.clear();
    this.server.closeAllConnections?.();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // $connect -----------------------------------------------------------------------

  private async onUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (url.pathname !== this.options.path) {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const connectionId = newConnectionId();
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(request.headers)) {
      if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(',') : value;
    }
    const event = {
      headers,
      isBase64Encoded: false,
      requestContext: {
        routeKey: '$connect',
        eventType: 'CONNECT' as const,
        connectionId,
        requestId: randomUUID(),
        extendedRequestId: randomUUID(),
        messageDirection: 'IN',
        stage: this.options.stage,
        domainName: `${this.options.host}:${this.port}`,
        apiId: 'local',
        connectedAt: Date.now(),
        requestTimeEpoch: Date.now(),
        identity: { sourceIp: request.socket.remoteAddress ?? '127.0.0.1' },
      },
    };
    let result: APIGatewayProxyResultV2;
    try {
      this.counters.connectInvocations++;
      result = await this.options.connectHandler(event);
    } catch (error) {
      this.options.log?.('$connect failed', { connectionId, error: String(error) });
      socket.end('HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const statusCode = typeof result === 'object' ? (result.statusCode ?? 200) : 200;
    if (statusCode < 200 || statusCode > 299) {
      socket.end(`HTTP/1.1 ${statusCode} Refused\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    const responseHeaders = typeof result === 'object' ? (result.headers ?? {}) : {};
    const protocol = Object.entries(responseHeaders).find(
      ([name]) => name.toLowerCase() === 'sec-websocket-protocol',
    );
    request.headers['x-selected-protocol'] = protocol ? String(protocol[1]) : undefined;
    this.wss.handleUpgrade(request, socket, head, (ws) => {
      this.limitFrames(ws);
      this.onOpen(connectionId, ws);
    });
  }

  /**
   * API Gateway's limits are per frame (32 KB) and per message (128 KB, the sum of its
   * fragments); `ws` only knows the second. Its receiver reads each frame's header in
   * `haveLength` (ws 8.x), where `_payloadLength` is the frame's length and
   * `_totalPayloadLength` the message's so far: checking there closes the connection with
   * 1009 before the frame's payload is read, as API Gateway does.
   */
  private limitFrames(ws: WebSocket): void {
    const receiver = (ws as unknown as { _receiver?: FrameReceiver })._receiver;
    if (!receiver || typeof receiver.haveLength !== 'function') {
      throw new Error('ws internals changed: the frame limit cannot be enforced');
    }
    const { maxFrameBytes, maxMessageBytes } = this.options;
    const haveLength = receiver.haveLength;
    receiver.haveLength = function (this: FrameReceiver, callback: (error?: Error) => void) {
      const dataFrame = this._opcode < 0x08;
      const tooBig =
        this._payloadLength > maxFrameBytes ||
        this._totalPayloadLength + this._payloadLength > maxMessageBytes;
      if (dataFrame && tooBig) {
        const reason = this._payloadLength > maxFrameBytes ? 'Frame too big' : 'Message too big';
        return callback(
          this.createError(RangeError, reason, false, 1009, 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'),
        );
      }
      return haveLength.call(this, callback);
    };
  }

  private onOpen(id: string, socket: WebSocket): void {
    const connection: LocalConnection = {
      id,
      socket,
      connectedAt: Date.now(),
      lastActiveAt: Date.now(),
      queue: [],
      draining: false,
      disconnected: false,
      timers: [],
    };
    this.connections.set(id, connection);
    connection.timers.push(setTimeout(() => socket.close(1001, 'Going away'), this.options.maxConnectionMs));
    this.touch(connection);
    socket.on('message', (data, isBinary) => this.onMessage(connection, data as Buffer, isBinary));
    socket.on('close', () => this.onSocketClosed(connection));
    socket.on('error', () => {});
  }

  private touch(connection: LocalConnection): void {
    connection.lastActiveAt = Date.now();
    if (connection.idleTimer) clearTimeout(connection.idleTimer);
    connection.idleTimer = setTimeout(
      () => connection.socket.close(1001, 'Going away'),
      this.options.idleTimeoutMs,
    );
  }

  // $default -------------------------------------------------------------------------

  private onMessage(connection: LocalConnection, data: Buffer, isBinary: boolean): void {
    if (data.length > this.options.maxMessageBytes) {
      connection.socket.close(1009, 'Message too big');
      return;
    }
    this.touch(connection);
    // As the $default integration's request template writes it (infra/ordered-route.ts).
    const body = FRAME_BODY_PREFIX + data.toString('base64');
    if (sqsRefusal(body)) {
      // API Gateway's answer when SendMessage fails: a JSON frame to the client, the frame lost.
      connection.socket.send(
        JSON.stringify({ message: 'Internal server error', connectionId: connection.id }),
      );
      return;
    }
    this.enqueue(connection, { eventType: 'MESSAGE', body, isBinary });
  }

  private onSocketClosed(connection: LocalConnection): void {
    for (const timer of connection.timers) clearTimeout(timer);
    if (connection.idleTimer) clearTimeout(connection.idleTimer);
    if (connection.disconnected) return;
    connection.disconnected = true;
    // $disconnect goes through the same FIFO group: it runs after every earlier frame.
    this.enqueue(connection, { eventType: 'DISCONNECT', body: 'DISCONNECT', isBinary: false });
  }

  private enqueue(
    connection: LocalConnection,
    record: Omit<QueuedRecord, 'messageId' | 'receiveCount' | 'sentAt'>,
  ): void {
    this.counters.queuedRecords++;
    connection.queue.push({ ...record, messageId: randomUUID(), receiveCount: 0, sentAt: Date.now() });
    void this.drain(connection);
  }

  /** One consumer per message group: the next batch starts when the previous one ended. */
  private async drain(connection: LocalConnection): Promise<void> {
    if (connection.draining) return;
    connection.draining = true;
    try {
      while (connection.queue.length > 0) {
        const latency = this.options.latency;
        if (latency) {
          // From the client's frame to the integration, then through the FIFO queue to Lambda;
          // frames that arrive meanwhile join the batch, as they would on AWS.
          await latency.wait('apiGateway');
          await latency.wait('sqsFifoToLambda');
        }
        const batch = connection.queue.splice(0, this.options.batchSize);
        this.inFlight += batch.length;
        let failed: QueuedRecord[] = [];
        try {
          for (const record of batch) record.receiveCount++;
          this.counters.framesInvocations++;
          const started = Date.now();
          const response = await this.options.framesHandler(
            { Records: batch.map((r) => this.sqsRecord(connection, r)) },
            this.invocationContext(started),
          );
          const took = Date.now() - started;
          this.counters.longestInvocationMs = Math.max(this.counters.longestInvocationMs, took);
          if (this.options.functionTimeoutMs > 0 && took > this.options.functionTimeoutMs) {
            this.counters.overTimeout++;
            this.options.log?.('frames invocation outlasted the function timeout', { took });
          }
          const failedIds = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
          failed = batch.filter((record) => failedIds.has(record.messageId));
        } catch (error) {
          this.options.log?.('frames handler threw', { connectionId: connection.id, error: String(error) });
          failed = batch;
        } finally {
          this.inFlight -= batch.length;
        }
        if (failed.length > 0) {
          const retry = failed.filter((record) => record.receiveCount < this.options.maxReceiveCount);
          for (const record of failed.filter((r) => r.receiveCount >= this.options.maxReceiveCount)) {
            this.options.log?.('frame moved to the dead-letter queue', { connectionId: connection.id });
            this.deadLetters.push(record);
          }
          connection.queue.unshift(...retry);
          await new Promise((resolve) => setTimeout(resolve, this.options.retryDelayMs));
        }
      }
    } finally {
      connection.draining = false;
      if (connection.disconnected && connection.queue.length === 0 && !this.zombies.has(connection.id)) {
        this.connections.delete(connection.id);
      }
    }
  }

  /** What Lambda hands the frames function besides the event, when a timeout is set. */
  private invocationContext(started: number): LambdaContext | undefined {
    const timeout = this.options.functionTimeoutMs;
    if (timeout <= 0) return undefined;
    const context = {
      functionName: 'frames',
      functionVersion: '$LATEST',
      invokedFunctionArn: 'arn:aws:lambda:local:000000000000:function:frames',
      memoryLimitInMB: '512',
      awsRequestId: randomUUID(),
      logGroupName: 'frames',
      logStreamName: 'local',
      callbackWaitsForEmptyEventLoop: false,
      getRemainingTimeInMillis: () => Math.max(0, started + timeout - Date.now()),
      done: () => {},
      fail: () => {},
      succeed: () => {},
    };
    return context as LambdaContext;
  }

  private sqsRecord(connection: LocalConnection, record: QueuedRecord): SQSRecord {
    const now = String(Date.now());
    const stringAttribute = (value: string) => ({
      stringValue: value,
      dataType: 'String' as const,
      stringListValues: [],
      binaryListValues: [],
    });
    return {
      messageId: record.messageId,
      receiptHandle: record.messageId,
      body: record.body,
      attributes: {
        ApproximateReceiveCount: String(record.receiveCount),
        SentTimestamp: String(record.sentAt),
        SenderId: 'apigateway',
        ApproximateFirstReceiveTimestamp: now,
        MessageGroupId: connection.id,
        MessageDeduplicationId: record.messageId,
        SequenceNumber: now,
      },
      messageAttributes: {
        connectionId: stringAttribute(connection.id),
        eventType: stringAttribute(record.eventType),
        ...(record.isBinary ? { isBinary: stringAttribute('true') } : {}),
      },
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:local:000000000000:frames.fifo',
      awsRegion: 'local',
    };
  }

  // Management API ---------------------------------------------------------------------

  private async onHttp(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (await this.options.services?.(request, response)) return;
    const url = new URL(request.url ?? '/', 'http://localhost');
    const prefix = `/${this.options.stage}/@connections/`;
    if (!url.pathname.startsWith(prefix)) return this.reply(response, 404, 'NotFoundException');
    const connectionId = decodeURIComponent(url.pathname.slice(prefix.length));
    const connection = this.connections.get(connectionId);
    const zombie = this.zombies.has(connectionId);
    const open =
      connection &&
      (connection.socket.readyState === WebSocket.OPEN || zombie) &&
      !(connection.disconnected && !zombie);
    if (request.method === 'POST') {
      const chunks: Buffer[] = [];
      for await (const chunk of request) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks);
      if (!connection || !open) return this.reply(response, 410, 'GoneException');
      if (body.length > this.options.maxMessageBytes)
        return this.reply(response, 413, 'PayloadTooLargeException');
      const fault = this.options.postFault?.(connectionId, body.toString('utf8'));
      if (fault) {
        this.counters.failedPosts++;
        return this.reply(response, fault, POST_FAULT_ERRORS[fault]);
      }
      this.counters.posts++;
      if (this.options.latency) {
        // The call's own latency; a connection's posts stay in the order they were made.
        const due = Math.max(
          Date.now() + this.options.latency.sample('postToConnection'),
          connection.lastPostDue ?? 0,
        );
        connection.lastPostDue = due;
        await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
      }
      if (!zombie) {
        connection.socket.send(body.toString('utf8'));
        this.touch(connection);
      }
      return this.reply(response, 200);
    }
    if (request.method === 'DELETE') {
      if (!connection || !open) return this.reply(response, 410, 'GoneException');
      if (zombie) this.expire(connectionId);
      else connection.socket.close(1000);
      return this.reply(response, 204);
    }
    if (request.method === 'GET') {
      if (!connection || !open) return this.reply(response, 410, 'GoneException');
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(
        JSON.stringify({
          connectedAt: new Date(connection.connectedAt).toISOString(),
          lastActiveAt: new Date(connection.lastActiveAt).toISOString(),
          identity: { sourceIp: '127.0.0.1' },
        }),
      );
      return;
    }
    return this.reply(response, 405, 'MethodNotAllowed');
  }

  private reply(response: ServerResponse, status: number, errorType?: string): void {
    // The SDK raises a named error only with this header (FIELD-NOTES.md).
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (errorType) headers['x-amzn-ErrorType'] = errorType;
    response.writeHead(status, headers);
    response.end(errorType ? JSON.stringify({ message: errorType }) : undefined);
  }
}

/** The parts of ws's (internal) Receiver that `limitFrames` uses. */
interface FrameReceiver {
  _opcode: number;
  _payloadLength: number;
  _totalPayloadLength: number;
  haveLength(callback: (error?: Error) => void): void;
  createError(
    ctor: typeof RangeError,
    message: string,
    prefix: boolean,
    statusCode: number,
    errorCode: string,
  ): Error;
}
