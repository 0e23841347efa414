// Shared by the test tiers: a local system per test file, users, real clients.
import { after, before } from 'node:test';
import { DynamoDBClient, QueryCommand } from '@aws-sdk/client-dynamodb';
import { type Element, parse } from 'ltx';
import { WebSocket } from 'ws';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../infra/local/dynamodb.ts';
import { type LocalSystem, type LocalSystemOptions, startLocalSystem } from '../infra/local/system.ts';
import { makeCredentials } from '../lib/scram.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
// @xmpp/client uses the global WebSocket (Node 20 has none).
(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;

/** Starts a system before the suite's tests and stops it after them; call it inside describe(). */
export function useLocalSystem(options: LocalSystemOptions = {}): () => LocalSystem {
  let system: LocalSystem | undefined;
  before(async () => {
    system = await startLocalSystem(options);
  });
  after(async () => {
    await system?.stop();
  });
  return () => {
    if (!system) throw new Error('the local system is not started');
    return system;
  };
}

export async function addUser(
  system: Pick<LocalSystem, 'context'>,
  user: string,
  password: string,
): Promise<void> {
  await system.context.store.putUser({ user, scram: makeCredentials(password, 4096), createdAt: Date.now() });
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * How long a test waits for what it expects before it fails. Generous: a test waits for the
 * thing itself, so a passing test is as fast as the system, and a slow (shared, 2-core)
 * machine only makes a failure take longer to report.
 */
export const WAIT_MS = 30_000;

export async function eventually<T>(
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = WAIT_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}

/**
 * A WebSocket client that speaks raw frames, for what a library would not send.
 * Every received frame is parsed and queued.
 */
export class RawClient {
  readonly received: Element[] = [];
  private waiters: Array<() => void> = [];
  closeCode?: number;
  readonly closed: Promise<number>;

  private constructor(readonly socket: WebSocket) {
    // A socket error (a reset the server caused) is followed by 'close', which the waits see;
    // without a listener, the error would be thrown, uncaught, and end the test process.
    socket.on('error', () => {});
    socket.on('message', (data) => {
      this.received.push(parse(data.toString()));
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.closed = new Promise((resolve) =>
      socket.on('close', (code) => {
        this.closeCode = code;
        resolve(code);
        for (const wake of this.waiters.splice(0)) wake();
      }),
    );
  }

  static async connect(url: string, protocols: string[] = ['xmpp']): Promise<RawClient> {
    const socket = new WebSocket(url, protocols);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
      socket.once('unexpected-response', (_request, response) =>
        reject(new Error(`HTTP ${response.statusCode}`)),
      );
    });
    return new RawClient(socket);
  }

  send(frame: string | Buffer, binary = false): void {
    this.socket.send(frame, { binary });
  }

  /** Waits for the next received element that matches, and removes it from the queue. */
  async next(match: (element: Element) => boolean = () => true, timeoutMs = WAIT_MS): Promise<Element> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.received.findIndex(match);
      if (index !== -1) return this.received.splice(index, 1)[0] as Element;
      if (this.closeCode !== undefined) throw new Error(`socket closed (${this.closeCode}) while waiting`);
      const remaining = deadline - Date.now();
      if (remaining <= 0)
        throw new Error(`nothing matched in ${timeoutMs} ms; received ${this.received.join(' ')}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Opens the stream and returns the features element. */
  async open(domain = 'localhost'): Promise<Element> {
    this.send(`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="${domain}" version="1.0"/>`);
    await this.next((element) => element.name === 'open');
    return this.next((element) => element.name === 'stream:features');
  }

  /** SASL PLAIN, restart and bind: ready for stanzas. Returns the bound JID. */
  async login(user: string, password: string, resource?: string): Promise<string> {
    await this.open();
    const local = user.split('@')[0];
    this.send(
      `<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${Buffer.from(`\0${local}\0${password}`).toString('base64')}</auth>`,
    );
    const result = await this.next();
    if (result.name !== 'success') throw new Error(`login failed: ${result}`);
    await this.open();
    this.send(
      `<iq xmlns="jabber:client" type="set" id="bind"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind">${resource ? `<resource>${resource}</resource>` : ''}</bind></iq>`,
    );
    const bound = await this.next((element) => element.name === 'iq' && element.attrs.id === 'bind');
    return bound.getChild('bind')?.getChildText('jid') ?? '';
  }

  close(): void {
    this.socket.close();
  }
}

type XmppClient = ReturnType<typeof import('@xmpp/client').client>;

/**
 * A real @xmpp/client, started; `stanzas` collects what it receives. Its own limit on each
 * stream step (2 s by default) is raised to WAIT_MS: the server answers `<close/>` only after
 * its close fence (lib/session.ts, 1 s) and the session's end, which on a loaded 2-core
 * machine can pass 2 s. xmpp.js 0.14 then detaches its parser and throws, uncaught, on the
 * late `</close>`.
 */
export async function connectClient(
  system: Pick<LocalSystem, 'url' | 'config'>,
  user: string,
  password: string,
  resource?: string,
): Promise<{ xmpp: XmppClient; jid: string; stanzas: Element[] }> {
  const { client } = await import('@xmpp/client');
  const [username] = user.split('@');
  const xmpp = client({
    service: system.url,
    domain: system.config.domain,
    username,
    password,
    resource,
    timeout: WAIT_MS,
  } as Parameters<typeof client>[0]);
  const stanzas: Element[] = [];
  xmpp.on('stanza', (stanza: Element) => stanzas.push(stanza));
  xmpp.on('error', () => {});
  const address = await xmpp.start();
  return { xmpp, jid: address.toString(), stanzas };
}

/**
 * Forgets a client whose socket the test killed (`api.killSilently`): it must not reconnect
 * by itself, and there is no stream left to close (a `stop()` would wait WAIT_MS for a
 * `</close>` that cannot come, and reconnect meanwhile).
 */
export function abandon(client: { xmpp: XmppClient }): void {
  client.xmpp.reconnect.stop();
}

/** Waits until a stanza matching `match` is in `stanzas`, and returns it. */
export function waitForStanza(
  stanzas: readonly Element[],
  match: (stanza: Element) => boolean,
  timeoutMs = WAIT_MS,
): Promise<Element> {
  return eventually(() => stanzas.find(match), timeoutMs);
}

let roundTrips = 0;

/**
 * A barrier for asserting that something did not arrive, instead of a sleep: once a ping
 * sent now is answered, the frames this client sent before it are handled (one connection's
 * frames are handled in order) and whatever the server had sent it before is here (posts
 * reach a socket in order). Frames of other connections: `api.idle()` first.
 */
export async function roundTrip(client: RawClient | { xmpp: XmppClient }): Promise<void> {
  if (client instanceof RawClient) {
    const id = `round-trip-${++roundTrips}`;
    client.send(`<iq xmlns="jabber:client" type="get" id="${id}"><ping xmlns="urn:xmpp:ping"/></iq>`);
    await client.next((element) => element.name === 'iq' && element.attrs.id === id, 30_000);
    return;
  }
  const { xml } = await import('@xmpp/client');
  await client.xmpp.iqCaller.request(xml('iq', { type: 'get' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
}

/** Connects, sends initial presence and waits until the server has handled it. */
export async function goOnline(
  system: Pick<LocalSystem, 'url' | 'config'>,
  user: string,
  password: string,
  resource?: string,
) {
  const session = await connectClient(system, user, password, resource);
  const { xml } = await import('@xmpp/client');
  await session.xmpp.send(xml('presence'));
  // Frames of one connection are handled in order: once a ping sent after the presence is
  // answered, the presence (broadcast, probes and drain) is done.
  await session.xmpp.iqCaller.request(xml('iq', { type: 'get' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
  return session;
}

/** Two users who are contacts both ways (RFC 6121 subscription `both`), written straight to the store. */
export async function befriend(system: Pick<LocalSystem, 'context'>, a: string, b: string): Promise<void> {
  for (const [user, contact] of [
    [a, b],
    [b, a],
  ] as const) {
    await system.context.store.saveRosterItem(
      user,
      { contact, groups: [], subscription: 'both', askOut: false, pendingIn: false, listed: true },
      { adds: true, limit: 100 },
    );
  }
}

/**
 * Messages kept for `user` and not delivered yet, listed for the drain or not (a message
 * pushed live waits unlisted for its receipt: lib/store/messages.ts). Read straight from the
 * table, so that counting changes nothing.
 */
export async function waiting(
  system: Pick<LocalSystem, 'dynamo' | 'tableName'>,
  user: string,
): Promise<number> {
  const client = new DynamoDBClient({
    endpoint: system.dynamo.endpoint,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
  });
  try {
    const { Items = [] } = await client.send(
      new QueryCommand({
        TableName: system.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :msg)',
        // Expired ones are as good as gone: TTL deletes them, and no drain reads them.
        FilterExpression: '(attribute_exists(s) OR attribute_exists(z)) AND expiresAt > :now',
        ExpressionAttributeValues: {
          ':pk': { S: `INBOX#${user}` },
          ':msg': { S: 'MSG#' },
          ':now': { N: String(Math.floor(Date.now() / 1000)) },
        },
        ConsistentRead: true,
      }),
    );
    return Items.length;
  } finally {
    client.destroy();
  }
}
