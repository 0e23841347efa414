// One frame's view of its connection: the stored record and a way to answer on it.
import { StanzaError, type StreamErrorCondition, stanzaErrorReply, streamError } from './errors.ts';
import { type LeaveOptions, leaveAllRooms } from './muc/room.ts';
import { NS } from './ns.ts';
import type { ConnectionRecord, Context } from './ports.ts';
import { becomeUnavailable } from './presence.ts';
import { type Element, xml } from './xml.ts';

export const closeElement = () => xml('close', { xmlns: NS.framing });

export const openElement = (ctx: Context, streamId: string) =>
  xml('open', { xmlns: NS.framing, id: streamId, from: ctx.config.domain, version: '1.0', 'xml:lang': 'en' });

export class Link {
  /** True once the stream is closed; later elements of the same frame are ignored. */
  closed = false;
  /** True when the handler changed the record and it must be saved. */
  dirty = false;

  constructor(
    readonly ctx: Context,
    readonly record: ConnectionRecord,
  ) {}

  get connectionId() {
    return this.record.connectionId;
  }

  /** The bound full JID, or the bare JID before binding. */
  get jid(): string | undefined {
    const { user, resource } = this.record;
    return user && resource ? `${user}/${resource}` : user;
  }

  async send(element: Element): Promise<void> {
    if (this.closed) return;
    const result = await this.ctx.gateway.post(this.connectionId, element.toString());
    if (result === 'gone') {
      this.ctx.metrics?.count('GoneConnections');
      this.closed = true;
      await forgetConnection(this.ctx, this.record);
    }
    // Over API Gateway's 128 KB (a roster near its limit): the request gets an error instead
    // (RFC 6120 §8.3.3.18), without the payload that did not fit. Other failures of a post
    // were logged by the gateway; the connection lives on.
    if (result === 'too-large' && element.name === 'iq' && element.attrs.type === 'result') {
      const request = xml('iq', { id: element.attrs.id, from: element.attrs.to });
      const error = new StanzaError(
        'resource-constraint',
        'the answer exceeds the 128 KB a message may have',
      );
      await this.send(stanzaErrorReply(request, error, element.attrs.from));
    }
  }

  update(changes: Partial<ConnectionRecord>): void {
    Object.assign(this.record, changes);
    this.dirty = true;
  }

  /**
   * RFC 6120 §4.9 / RFC 7395 §3.6: stream error, then <close/>, then the socket is closed.
   * Before the stream is open the server opens it first, so that the client can read the error.
   */
  async fail(condition: StreamErrorCondition, text?: string): Promise<void> {
    if (this.closed) return;
    this.ctx.logger.info('stream error', { connectionId: this.connectionId, condition, text });
    if (this.record.state === 'connected') {
      await this.send(openElement(this.ctx, this.record.streamId ?? 'none'));
    }
    await this.send(streamError(condition, text));
    await this.send(closeElement());
    this.closed = true;
    await this.ctx.gateway.close(this.connectionId);
  }
}

/**
 * Removes what a connection left behind: its session (only while it is still this
 * connection's) and its record. Used on $disconnect, when a post meets 410 Gone, and when
 * TTL deleted the record.
 */
export async function forgetConnection(
  ctx: Context,
  connection: Pick<ConnectionRecord, 'connectionId' | 'user' | 'resource'>,
  options: LeaveOptions = {},
): Promise<void> {
  const { connectionId, user, resource } = connection;
  if (user && resource) {
    await ctx.store.deleteSession(user, resource, connectionId);
    await becomeUnavailable(ctx, { user, resource, connectionId });
    await leaveAllRooms(ctx, { user, resource, connectionId }, options);
  }
  await ctx.store.deleteConnection(connectionId);
}
