// The entry points the WebSocket routes call ($connect, one frame, $disconnect), the
// drain's continuation, and the end of what TTL deleted. Every frame of one connection
// arrives here in order (docs/architecture.md, "Order"). Each runs the core with a context
// in which a post that meets a gone connection ends that session (session.ts), and a
// stream a handler ended is closed only after its session left every routing path.
import { archiveHandlers } from './archive.ts';
import { blockingHandlers } from './blocking.ts';
import { carbonsHandlers } from './carbons.ts';
import { handleCsi, isCsi } from './csi.ts';
import { discoHandlers } from './disco.ts';
import { streamError } from './errors.ts';
import { sequenceFloor } from './ids.ts';
import { admitFrame, closeIfUnauthenticated, failFlooding, scheduleAuthDeadline } from './limits.ts';
import { closeElement, Link } from './link.ts';
import { handleMessage } from './message.ts';
import { mucIqHandlers } from './muc/admin.ts';
import { handleRoomPresence, occupantExpired } from './muc/room.ts';
import { NS } from './ns.ts';
import { drain } from './offline.ts';
import { pingHandlers } from './ping.ts';
import type { ConnectionRecord, Context, ExpiredItem } from './ports.ts';
import { handlePresence } from './presence.ts';
import { pushHandlers } from './push.ts';
import { registerHandlers } from './register.ts';
import { handleSubscription, isSubscriptionStanza, rosterHandlers } from './roster.ts';
import { routeStanza, type StanzaHandlers } from './router.ts';
import { endSession, withSessionEnds } from './session.ts';
import { handleClose, handleNegotiation, handleOpen, handleSessionIq } from './stream.ts';
import { uploadHandlers } from './upload.ts';
import { parseFrame } from './xml.ts';

export const SUBPROTOCOL = 'xmpp';

export interface ConnectRequest {
  readonly connectionId: string;
  /** The values of Sec-WebSocket-Protocol the client offered. */
  readonly subprotocols: readonly string[];
  /** The client's IP address (API Gateway's requestContext.identity.sourceIp). */
  readonly sourceAddress?: string;
}

export interface ConnectResponse {
  readonly statusCode: number;
  /** The subprotocol to echo (RFC 7395 §3.1). */
  readonly subprotocol?: string;
}

export function stanzaHandlers(): StanzaHandlers {
  return {
    iq: {
      ...pingHandlers,
      ...discoHandlers,
      ...rosterHandlers,
      ...blockingHandlers,
      ...registerHandlers,
      ...mucIqHandlers,
      ...archiveHandlers,
      ...carbonsHandlers,
      ...uploadHandlers,
      ...pushHandlers,
    },
    message: handleMessage,
    presence: (link, stanza, target) =>
      target.kind === 'user' && target.jid.domain === link.ctx.config.mucDomain
        ? handleRoomPresence(link, stanza, target.jid)
        : isSubscriptionStanza(stanza)
          ? handleSubscription(link, stanza, target)
          : handlePresence(link, stanza, target),
  };
}

/** $connect: record the connection; it must exist before its first frame is handled. */
export async function onConnect(ctx: Context, request: ConnectRequest): Promise<ConnectResponse> {
  const now = ctx.now();
  await ctx.store.createConnection({
    connectionId: request.connectionId,
    state: 'connected',
    connectedAt: now,
    expiresAt: Math.ceil(now / 1000) + ctx.config.maxConnectionSeconds + 60,
    ...(request.sourceAddress ? { sourceAddress: request.sourceAddress } : {}),
  });
  await scheduleAuthDeadline(ctx, request.connectionId);
  const subprotocol = request.subprotocols.includes(SUBPROTOCOL) ? SUBPROTOCOL : undefined;
  return { statusCode: 200, subprotocol };
}

export interface Frame {
  readonly connectionId: string;
  readonly body: string;
  readonly isBinary?: boolean;
  /** Epoch ms the frame reached the queue (SQS SentTimestamp): the rate limits count by it. */
  readonly receivedAt?: number;
}

/** One WebSocket message from a client. */
export async function onFrame(context: Context, frame: Frame, handlers = stanzaHandlers()): Promise<void> {
  const ctx = withSessionEnds(context, frame.connectionId);
  const admission = admitFrame(ctx, frame);
  // Queued behind the frame that closed the stream for flooding: dropped, nothing read.
  if (admission === 'closed') return;
  const record = await ctx.store.getConnection(frame.connectionId);
  if (!record) {
    // Forgotten (replaced, expired or already disconnected): tell the client to start over.
    ctx.logger.warn('frame for an unknown connection', { connectionId: frame.connectionId });
    await ctx.gateway.post(frame.connectionId, streamError('reset', 'unknown connection').toString());
    await ctx.gateway.post(frame.connectionId, closeElement().toString());
    await ctx.gateway.close(frame.connectionId);
    return;
  }
  await onLink(ctx, record, (link) =>
    admission === 'exceeded' ? failFlooding(link) : handleFrame(link, frame, handlers),
  );
}

/**
 * Runs `handle` on the connection, then saves what it changed, or, when it ended the
 * stream, ends the session before the last frames go out (session.ts).
 */
async function onLink(ctx: Context, record: ConnectionRecord, handle: (link: Link) => Promise<void>) {
  const link = new Link(ctx, record);
  try {
    await handle(link);
  } finally {
    if (link.dirty && !link.ending) await ctx.store.saveConnection(record);
  }
  if (link.ending) await endSession(ctx, record, { lastFrames: link.ending });
}

async function handleFrame(link: Link, frame: Frame, handlers: StanzaHandlers): Promise<void> {
  // RFC 7395 §3.2: XMPP frames are UTF-8 text.
  if (frame.isBinary) return link.fail('unsupported-encoding', 'frames must be text');
  if (Buffer.byteLength(frame.body, 'utf8') > link.ctx.config.maxStanzaBytes) {
    return link.fail('policy-violation', `frames are limited to ${link.ctx.config.maxStanzaBytes} bytes`);
  }
  const parsed = parseFrame(frame.body);
  if (parsed.kind === 'empty') return;
  if (parsed.kind === 'restricted') return link.fail('restricted-xml', `${parsed.reason} not allowed`);
  if (parsed.kind === 'malformed') return link.fail('not-well-formed');
  if (parsed.kind === 'too-deep') return link.fail('policy-violation', parsed.reason);
  for (const element of parsed.elements) {
    if (link.closed) return;
    if (element.name === 'open') await handleOpen(link, element);
    else if (element.name === 'close' && element.attrs.xmlns === NS.framing) await handleClose(link);
    // XEP-0352 (csi.ts): once authenticated and restarted; before that, out of place.
    else if (isCsi(element) && ['restarted', 'bound'].includes(link.record.state))
      await handleCsi(link, element);
    else if (link.record.state !== 'bound') await handleNegotiation(link, element);
    else if (
      element.name === 'iq' &&
      element.getChild('session', NS.session) &&
      element.attrs.type === 'set'
    ) {
      await handleSessionIq(link, element);
    } else await routeStanza(link, handlers, element);
  }
}

/** $disconnect (best effort on AWS; the connection's TTL covers the rest). */
export async function onDisconnect(context: Context, connectionId: string): Promise<void> {
  const ctx = withSessionEnds(context, connectionId);
  const record = await ctx.store.getConnection(connectionId);
  if (!record) return;
  await endSession(ctx, record);
  ctx.logger.info('disconnected', { connectionId, user: record.user });
}

/** The authentication deadline of a connection passed (lib/limits.ts). */
export async function onAuthDeadline(context: Context, connectionId: string): Promise<void> {
  const ctx = withSessionEnds(context, connectionId);
  const record = await ctx.store.getConnection(connectionId);
  if (record) await onLink(ctx, record, closeIfUnauthenticated);
}

/** A drain handed on by an earlier invocation (offline.ts), in the connection's order. */
export async function onContinueDrain(context: Context, connectionId: string, after: string): Promise<void> {
  const ctx = withSessionEnds(context, connectionId);
  const record = await ctx.store.getConnection(connectionId);
  if (record?.state !== 'bound' || !record.user || !record.resource) return;
  await drain(ctx, { connectionId, user: record.user, resource: record.resource }, after);
}

/**
 * DynamoDB's TTL deleted a connection or a room occupant (the table's stream): the session
 * ended without a $disconnect and nobody posted to it. Its contacts get unavailable
 * presence and its rooms see it leave, as after a $disconnect. Run again (a retried record),
 * it never moves a marker past a message that was not pushed; at worst a departure is
 * announced twice.
 */
export async function onExpired(context: Context, item: ExpiredItem): Promise<void> {
  const ctx = withSessionEnds(context);
  if (item.kind === 'connection') {
    ctx.logger.info('connection expired', { connectionId: item.connection.connectionId });
    // Room messages posted since it expired were not pushed to it: its rooms drain them.
    const notPushedFrom = sequenceFloor(item.connection.expiresAt * 1000);
    await endSession(ctx, item.connection, { notPushedFrom });
  } else {
    ctx.logger.info('room occupant expired', {
      room: item.occupant.room,
      connectionId: item.occupant.connectionId,
    });
    await occupantExpired(ctx, item.occupant);
  }
}
