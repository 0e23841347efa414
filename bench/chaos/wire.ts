// A bare XMPP-over-WebSocket client for the chaos runs: raw frames out (also what no
// library would send), every received frame parsed and kept with the time it arrived, and
// the socket's close code. Logs in with SASL PLAIN and binds a resource.
import { type Element, parse } from 'ltx';
import { WebSocket } from 'ws';

export const NS_FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';
export const NS_STREAMS = 'urn:ietf:params:xml:ns:xmpp-streams';
export const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

export class WireClient {
  /** What arrived and was not taken by `next()` yet. */
  readonly received: Element[] = [];
  /** Frames that did not parse (the server must never send one). */
  readonly unparsable: string[] = [];
  closeCode?: number;
  readonly closed: Promise<number>;
  /** When set, received elements go here instead of `received`. */
  onElement?: (element: Element) => void;
  /** Called once the socket closed. */
  onClose?: (code: number) => void;
  private waiters: Array<() => void> = [];

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      const text = data.toString();
      let element: Element;
      try {
        element = parse(text) as Element;
      } catch {
        this.unparsable.push(text);
        return;
      }
      if (this.onElement) this.onElement(element);
      else this.received.push(element);
      this.wake();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.on('close', (code) => {
        this.closeCode = code;
        resolve(code);
        this.wake();
        this.onClose?.(code);
      }),
    );
  }

  static async connect(url: string, timeoutMs = 30_000): Promise<WireClient> {
    const socket = new WebSocket(url, ['xmpp']);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.terminate();
        reject(new Error('connect timed out'));
      }, timeoutMs);
      socket.once('open', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      socket.once('unexpected-response', (_request, response) => {
        clearTimeout(timer);
        reject(new Error(`HTTP ${response.statusCode}`));
      });
    });
    return new WireClient(socket);
  }

  get isOpen(): boolean {
    return this.closeCode === undefined && this.socket.readyState === WebSocket.OPEN;
  }

  send(frame: string | Buffer, binary = false): void {
    if (this.isOpen) this.socket.send(frame, { binary });
  }

  private wake(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Resolves when something arrives or the socket closes, or after `ms`. */
  waitForChange(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** The next received element that matches (removed from `received`); throws when closed first. */
  async next(match: (element: Element) => boolean, timeoutMs = 30_000): Promise<Element> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.received.findIndex(match);
      if (index !== -1) return this.received.splice(index, 1)[0] as Element;
      if (this.closeCode !== undefined) throw new Error(`socket closed (${this.closeCode})`);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`nothing matched in ${timeoutMs} ms`);
      await this.waitForChange(remaining);
    }
  }

  async open(domain: string): Promise<void> {
    this.send(xmlOpen(domain));
    await this.next((element) => element.name === 'stream:features');
  }

  /** SASL PLAIN, restart and bind. Returns the bound full JID. */
  async login(user: string, password: string, domain: string, resource: string): Promise<string> {
    await this.open(domain);
    const local = user.split('@')[0];
    const token = Buffer.from(`\0${local}\0${password}`).toString('base64');
    this.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${token}</auth>`);
    const result = await this.next((element) => element.name === 'success' || element.name === 'failure');
    if (result.name !== 'success') throw new Error(`login failed: ${result}`);
    await this.open(domain);
    this.send(
      `<iq xmlns="jabber:client" type="set" id="bind"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>${resource}</resource></bind></iq>`,
    );
    const bound = await this.next((element) => element.name === 'iq' && element.attrs.id === 'bind');
    const jid = bound.getChild('bind')?.getChildText('jid');
    if (bound.attrs.type !== 'result' || !jid) throw new Error(`bind failed: ${bound}`);
    return jid;
  }

  /** From now on every element, those queued first, goes to `handler`. */
  deliverTo(handler: (element: Element) => void): void {
    this.onElement = handler;
    for (const element of this.received.splice(0)) handler(element);
  }

  close(): void {
    if (this.isOpen) this.socket.send(`<close xmlns="${NS_FRAMING}"/>`);
  }

  terminate(): void {
    this.socket.terminate();
  }
}

export const xmlOpen = (domain: string) => `<open xmlns="${NS_FRAMING}" to="${domain}" version="1.0"/>`;

/** The condition of a stream error element. */
export function streamErrorCondition(error: Element): string | undefined {
  return error.getChildElements().find((child) => child.attrs.xmlns === NS_STREAMS && child.name !== 'text')
    ?.name;
}

/** The condition of a stanza of type error. */
export function stanzaErrorCondition(stanza: Element): string | undefined {
  return stanza
    .getChild('error')
    ?.getChildElements()
    .find((child) => child.attrs.xmlns === NS_STANZAS && child.name !== 'text')?.name;
}
