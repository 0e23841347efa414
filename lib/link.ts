// One frame's view of its connection: the stored record and a way to answer on it. A
// handler that must end the stream only asks for it (`end`, `fail`): the lifecycle
// (session.ts) takes the session out of every routing path first, then sends the last
// frames and closes the socket, so that nothing can reach the client after its <close/>.
import { StanzaError, type StreamErrorCondition, stanzaErrorReply, streamError } from './errors.ts';
import { NS } from './ns.ts';
import type { ConnectionRecord, Context } from './ports.ts';
import { type Element, xml } from './xml.ts';

export const closeElement = () => xml('close', { xmlns: NS.framing });

export const openElement = (ctx: Context, streamId: string) =>
  xml('open', { xmlns: NS.framing, id: streamId, from: ctx.config.domain, version: '1.0', 'xml:lang': 'en' });

export class Link {
  /** True once the stream is closed or closing; later elements of the same frame are ignored. */
  closed = false;
  /** True when the handler changed the record and it must be saved. */
  dirty = false;
  /** The frames to send once the session is out of every routing path, ending with <close/>. */
  ending?: Element[];

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

  /** Posts one element; a connection found gone (410) ends its session (session.ts) and this link. */
  async send(element: Element): Promise<void> {
    if (this.closed) return;
    const result = await this.ctx.gateway.post(this.connectionId, element.toString());
    if (result === 'gone') this.closed = true;
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

  /** RFC 7395 §3.6: the stream ends with `frames` (the last one a <close/>), then the socket closes. */
  end(frames: Element[] = [closeElement()]): void {
    if (this.closed) return;
    this.closed = true;
    this.ending = frames;
  }

  /**
   * RFC 6120 §4.9 / RFC 7395 §3.6: stream error, then <close/>, then the socket is closed.
   * Before the stream is open the server opens it first, so that the client can read the error.
   */
  fail(condition: StreamErrorCondition, text?: string): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.ctx.logger.info('stream error', { connectionId: this.connectionId, condition, text });
    const opening =
      this.record.state === 'connected' ? [openElement(this.ctx, this.record.streamId ?? 'none')] : [];
    this.end([...opening, streamError(condition, text), closeElement()]);
    return Promise.resolve();
  }
}
