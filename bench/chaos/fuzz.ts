// Fuzz: bad frames from a fixed seed against a running system. Each frame is followed by a
// probe the server always answers (a ping once bound, a stream <open/> before), on the same
// connection: frames of one connection are handled in order, so the probe's answer (or the
// stream's end) says the frame was dealt with. A frame is a hang when neither arrives within
// `hangMs`; a crash is a frame the handler failed on (logged errors, dead letters) or an
// internal-server-error. Whatever closes a stream must close it with an RFC 6120 stream
// error and <close/>, or be a WebSocket close API Gateway itself makes (1009 over 32 KB,
// 1007 for invalid UTF-8).
import type { Element } from 'ltx';
import { seededRandom } from '../../infra/local/faults.ts';
import { NS_FRAMING, stanzaErrorCondition, streamErrorCondition, WireClient, xmlOpen } from './wire.ts';

export type Category =
  | 'random-bytes'
  | 'random-text'
  | 'truncated'
  | 'mutated'
  | 'deep-nesting'
  | 'huge-attribute'
  | 'doctype-entities'
  | 'processing-instruction'
  | 'binary'
  | 'invalid-utf8'
  | 'garbage-addressing';

export type StreamState = 'bound' | 'opened' | 'fresh';

export interface FuzzFrame {
  readonly category: Category;
  readonly data: string | Buffer;
  readonly binary: boolean;
  /**
   * Sent on a bound stream, on an opened unauthenticated one, or as the first frame of a new
   * connection (the cheapest: most bad frames end their stream, and the next needs another).
   */
  readonly stream: StreamState;
  /**
   * What must happen when the frame ends the stream: a stream error condition, or
   * `ws:<code>` for a WebSocket close. Undefined: any RFC 6120 condition but
   * internal-server-error.
   */
  readonly expected?: readonly string[];
}

const STREAM_CONDITIONS = new Set([
  'bad-format',
  'bad-namespace-prefix',
  'conflict',
  'connection-timeout',
  'host-gone',
  'host-unknown',
  'improper-addressing',
  'invalid-from',
  'invalid-namespace',
  'invalid-xml',
  'not-authorized',
  'not-well-formed',
  'policy-violation',
  'reset',
  'resource-constraint',
  'restricted-xml',
  'system-shutdown',
  'unsupported-encoding',
  'unsupported-feature',
  'unsupported-stanza-type',
  'unsupported-version',
]);

/** The frame limit of API Gateway (and the emulator): bigger closes with 1009. */
const FRAME_LIMIT = 32 * 1024;

interface Peers {
  readonly domain: string;
  /** A user who exists, so that messages to it are stored. */
  readonly peer: string;
}

export function generateFrames(seed: number, count: number, peers: Peers): FuzzFrame[] {
  const random = seededRandom(seed);
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)] as T;
  const { domain, peer } = peers;
  const muc = `room${int(5)}@conference.${domain}`;

  const garbageJids = [
    '',
    '@',
    '@@',
    '/',
    `${peer}/`,
    `@${domain}`,
    `a@b@${domain}`,
    `${'x'.repeat(1100)}@${domain}`,
    `u@${'d'.repeat(1100)}`,
    `${peer}/${'r'.repeat(1100)}`,
    'é@ÉÉÉ.example/ﬀ',
    '\u202e@localhost',
    `${domain}:5222`,
    '[::1]',
    'u@[not-an-ip]',
    'user@localhost/../../etc',
    '&amp;@&lt;',
    'conference.localhost',
    `${muc}/nick`,
    `${muc}`,
    'x'.repeat(3000),
    ' ',
    `${peer} `,
    `.${domain}`,
    `${domain}.`,
  ];
  const garbageTypes = ['', 'chat ', 'CHAT', 'get', 'set', 'result', 'error', 'subscribe', 'x'.repeat(500)];
  const garbageIds = ['', ' ', 'x'.repeat(3000), '&quot;', 'ü', 'bind', 'a\tb'];
  const escapeAttribute = (value: string) =>
    value
      .replace(/&(?!amp;|lt;|quot;)/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/"/g, '&quot;');
  const attrs = (entries: Record<string, string | undefined>) =>
    Object.entries(entries)
      .filter(([, value]) => value !== undefined)
      .map(([key, value]) => ` ${key}="${escapeAttribute(value as string)}"`)
      .join('');

  const id = () => `f${int(1e9)}`;
  /** Bound with this probability; otherwise mostly a fresh connection, sometimes an opened stream. */
  const streamFor = (boundShare: number): StreamState =>
    random() < boundShare ? 'bound' : random() < 0.8 ? 'fresh' : 'opened';
  /** Stanzas a real client sends: the material for truncation and mutation. */
  const templates = (): string[] => [
    `<message xmlns="jabber:client" to="${peer}" type="chat" id="${id()}"><body>hello ${int(1000)}</body><request xmlns="urn:xmpp:receipts"/></message>`,
    `<message xmlns="jabber:client" to="${peer}" id="${id()}"><received xmlns="urn:xmpp:receipts" id="${id()}"/></message>`,
    `<iq xmlns="jabber:client" type="get" id="${id()}"><query xmlns="jabber:iq:roster"/></iq>`,
    `<iq xmlns="jabber:client" type="set" id="${id()}"><query xmlns="jabber:iq:roster"><item jid="${peer}" name="P"><group>G</group></item></query></iq>`,
    `<presence xmlns="jabber:client"><show>away</show><status>fuzz</status><priority>5</priority></presence>`,
    `<presence xmlns="jabber:client" to="${peer}" type="subscribe"/>`,
    `<presence xmlns="jabber:client" to="${muc}/n${int(100)}"><x xmlns="http://jabber.org/protocol/muc"><history maxstanzas="5"/></x></presence>`,
    `<message xmlns="jabber:client" to="${muc}" type="groupchat" id="${id()}"><body>room</body></message>`,
    `<iq xmlns="jabber:client" type="get" to="${domain}" id="${id()}"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`,
    `<iq xmlns="jabber:client" type="set" id="${id()}"><block xmlns="urn:xmpp:blocking"><item jid="x@${domain}"/></block></iq>`,
    `<iq xmlns="jabber:client" type="get" id="${id()}"><blocklist xmlns="urn:xmpp:blocking"/></iq>`,
    `<iq xmlns="jabber:client" type="get" to="${domain}" id="${id()}"><ping xmlns="urn:xmpp:ping"/></iq>`,
    `<message xmlns="jabber:client" to="${peer}" type="chat"><active xmlns="http://jabber.org/protocol/chatstates"/></message>`,
  ];

  const randomText = (length: number) => {
    const alphabet = '<>/="\'&;:!?[]- abcxyz\n\tmessage iq presence xmlns jabber:client 0123456789é€😀';
    let text = '';
    for (let i = 0; i < length; i++) text += alphabet[int(alphabet.length)] ?? '';
    return text;
  };

  const mutate = (text: string) => {
    const chars = [...text];
    const edits = 1 + int(6);
    for (let i = 0; i < edits; i++) {
      const at = int(chars.length + 1);
      const operation = int(5);
      if (operation === 0) chars.splice(at, 1);
      else if (operation === 1)
        chars.splice(at, 0, pick(['<', '>', '&', '"', "'", '/', '=', '\u0000', ']]>']));
      else if (operation === 2) chars.splice(at, 0, ...chars.slice(int(chars.length), int(chars.length)));
      else if (operation === 3) chars[at] = String.fromCharCode(int(0x3000));
      else chars.splice(at, 0, pick(['<a>', '</a>', '<![CDATA[', 'xmlns="x"', 'xmlns:p="y"', '<p:b/>']));
    }
    return chars.join('');
  };

  const makers: Record<Category, () => Omit<FuzzFrame, 'category'>> = {
    'random-bytes': () => {
      const bytes = Buffer.alloc(1 + int(2000));
      for (let i = 0; i < bytes.length; i++) bytes[i] = int(256);
      // As text: the bytes decoded with replacement characters, still valid UTF-8.
      return { data: bytes.toString('utf8'), binary: false, stream: streamFor(0.1) };
    },
    'random-text': () => ({ data: randomText(1 + int(3000)), binary: false, stream: streamFor(0.15) }),
    truncated: () => {
      const stanza = pick(templates());
      return { data: stanza.slice(0, 1 + int(stanza.length - 1)), binary: false, stream: streamFor(0.2) };
    },
    mutated: () => ({ data: mutate(pick(templates())), binary: false, stream: streamFor(0.5) }),
    'deep-nesting': () => {
      const name = pick(['a', 'message', 'x', 'body', 'iq']);
      const depth = pick([101, 500, 2000, 10_000]);
      const inner = `${`<${name}>`.repeat(depth)}${random() < 0.5 ? `</${name}>`.repeat(depth) : ''}`;
      const data = random() < 0.5 ? `<message xmlns="jabber:client" to="${peer}">${inner}</message>` : inner;
      const tooBig = Buffer.byteLength(data) > FRAME_LIMIT;
      return {
        data,
        binary: false,
        stream: streamFor(0.2),
        expected: tooBig ? ['ws:1009'] : ['policy-violation'],
      };
    },
    'huge-attribute': () => {
      const size = pick([100 * 1024, 40 * 1024, 30 * 1024]);
      const name = pick(['id', 'to', 'type', 'xml:lang', 'foo']);
      const data = `<message xmlns="jabber:client" to="${peer}" type="chat" ${name}="${'v'.repeat(size)}"><body>x</body></message>`;
      const tooBig = Buffer.byteLength(data) > FRAME_LIMIT;
      return { data, binary: false, stream: streamFor(0.5), ...(tooBig ? { expected: ['ws:1009'] } : {}) };
    },
    'doctype-entities': () => {
      const lol = `<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><message xmlns="jabber:client" to="${peer}"><body>&lol3;</body></message>`;
      const data = pick([
        lol,
        `<!DOCTYPE message SYSTEM "file:///etc/passwd"><message/>`,
        `<message xmlns="jabber:client" to="${peer}"><body>&xxe;</body></message>`,
        `<message xmlns="jabber:client" to="${peer}" id="&foo;"><body>x</body></message>`,
        `<!ENTITY % x "y"><message/>`,
        `<message xmlns="jabber:client"><!-- comment --><body>x</body></message>`,
      ]);
      return { data, binary: false, stream: streamFor(0.15), expected: ['restricted-xml'] };
    },
    'processing-instruction': () => {
      const data = pick([
        `<?xml-stylesheet href="x.xsl"?><message xmlns="jabber:client" to="${peer}"/>`,
        `<message xmlns="jabber:client" to="${peer}"><?php echo 1; ?></message>`,
        `<presence xmlns="jabber:client"/><?pi?>`,
        `<?xml version="1.0"?><?xml version="1.0"?><presence/>`,
      ]);
      return { data, binary: false, stream: streamFor(0.15), expected: ['restricted-xml'] };
    },
    binary: () => {
      const data =
        random() < 0.5 ? Buffer.from(pick(templates())) : Buffer.from([int(256), int(256), 0, 255]);
      return { data, binary: true, stream: streamFor(0.15), expected: ['unsupported-encoding'] };
    },
    'invalid-utf8': () => {
      const stanza = Buffer.from(pick(templates()));
      const at = int(stanza.length);
      const bad = pick([
        Buffer.from([0xff]),
        Buffer.from([0xc3]),
        Buffer.from([0xed, 0xa0, 0x80]),
        Buffer.from([0x80, 0x80]),
      ]);
      const data = Buffer.concat([stanza.subarray(0, at), bad, stanza.subarray(at)]);
      // ws (like API Gateway) refuses a text frame that is not UTF-8 by closing with 1007.
      return { data, binary: false, stream: streamFor(0.15), expected: ['ws:1007'] };
    },
    'garbage-addressing': () => {
      const kind = pick(['message', 'iq', 'presence']);
      const children =
        kind === 'iq'
          ? pick(['<ping xmlns="urn:xmpp:ping"/>', '<query xmlns="jabber:iq:roster"/>', '', '<x/><y/>'])
          : kind === 'message'
            ? pick([
                '<body>hi</body><request xmlns="urn:xmpp:receipts"/>',
                '<received xmlns="urn:xmpp:receipts" id="x"/>',
                '',
              ])
            : pick(['', '<priority>999999999999</priority>', '<show>nonsense</show>']);
      const maybe = (values: readonly string[]) => (random() < 0.6 ? pick(values) : undefined);
      const data = `<${kind} xmlns="jabber:client"${attrs({
        to: maybe(garbageJids),
        from: maybe(garbageJids),
        type: maybe(garbageTypes),
        id: maybe(garbageIds),
      })}>${children}</${kind}>`;
      return { data, binary: false, stream: 'bound' };
    },
  };
  const weights: [Category, number][] = [
    ['random-bytes', 10],
    ['random-text', 10],
    ['truncated', 12],
    ['mutated', 20],
    ['deep-nesting', 6],
    ['huge-attribute', 6],
    ['doctype-entities', 6],
    ['processing-instruction', 5],
    ['binary', 5],
    ['invalid-utf8', 5],
    ['garbage-addressing', 15],
  ];
  const total = weights.reduce((sum, [, weight]) => sum + weight, 0);
  const frames: FuzzFrame[] = [];
  for (let i = 0; i < count; i++) {
    // Every category at least once, whatever the count.
    let category: Category;
    if (i < weights.length) category = (weights[i] as [Category, number])[0];
    else {
      let roll = random() * total;
      category = 'mutated';
      for (const [name, weight] of weights) {
        roll -= weight;
        if (roll < 0) {
          category = name;
          break;
        }
      }
    }
    frames.push({ category, ...makers[category]() });
  }
  return frames;
}

export interface FuzzOptions {
  readonly url: string;
  readonly domain: string;
  /** Users fuzzN@domain (N < workers) with this password must exist, and the peer. */
  readonly password: string;
  readonly peer: string;
  readonly frames: number;
  readonly seed: number;
  /** Connections fuzzing at once. */
  readonly workers: number;
  /** Longer than this without an answer is a hang. */
  readonly hangMs: number;
  /** Gives up waiting for an answer after this long (the frame is counted as a hang). */
  readonly giveUpMs: number;
  readonly onProgress?: (done: number) => void;
}

export interface CategoryResult {
  frames: number;
  answered: number;
  streamErrors: Record<string, number>;
  stanzaErrors: Record<string, number>;
  maxMs: number;
}

export interface FuzzResult {
  readonly frames: number;
  readonly seed: number;
  readonly categories: Record<string, CategoryResult>;
  /** Frames not answered, nor their stream closed, within hangMs. */
  readonly hangs: number;
  /** Stream closes with a wrong, unknown or missing condition, or no <close/>. */
  readonly wrongEnds: string[];
  /** internal-server-error (stream or stanza): the server failed on the frame. */
  readonly internalErrors: number;
  /** Frames the server sent that did not parse. */
  readonly unparsable: number;
  readonly answerMs: { p50: number; p99: number; max: number };
  readonly durationMs: number;
  /** Connections opened, and the time workers spent opening them and logging in. */
  readonly connections: number;
  readonly setupMs: number;
}

/** One frame's fate. */
interface Outcome {
  readonly ms: number;
  readonly hang: boolean;
  readonly streamError?: string;
  readonly closeCode?: number;
  readonly closedProperly: boolean;
  readonly stanzaErrors: string[];
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzResult> {
  const started = Date.now();
  const frames = generateFrames(options.seed, options.frames, { domain: options.domain, peer: options.peer });
  const categories: Record<string, CategoryResult> = {};
  const wrongEnds: string[] = [];
  const times: number[] = [];
  let hangs = 0;
  let internalErrors = 0;
  let unparsable = 0;
  let nextFrame = 0;
  let setupMs = 0;
  let connections = 0;
  let done = 0;

  const worker = async (index: number) => {
    const user = `fuzz${index}@${options.domain}`;
    let client: WireClient | undefined;
    let clientState: StreamState = 'fresh';
    let framesOnClient = 0;
    let openedAt = 0;
    let probes = 0;
    const retire = () => {
      if (!client) return;
      unparsable += client.unparsable.length;
      client.terminate();
      client = undefined;
    };
    for (;;) {
      const position = nextFrame++;
      const frame = frames[position];
      if (!frame) break;
      // A fresh connection when the last one closed, is in the wrong state, or has sent
      // enough to come near the per-connection rate limit or the authentication deadline.
      const stale = framesOnClient >= 40 || Date.now() - openedAt > 10_000;
      const reusable = frame.stream !== 'fresh' && clientState === frame.stream && !stale;
      if (!client?.isOpen || !reusable) {
        retire();
        const setupStarted = Date.now();
        client = await WireClient.connect(options.url);
        if (frame.stream === 'bound') await client.login(user, options.password, options.domain, 'fuzz');
        else if (frame.stream === 'opened') await client.open(options.domain);
        clientState = frame.stream;
        setupMs += Date.now() - setupStarted;
        connections++;
        framesOnClient = 0;
        openedAt = Date.now();
      }
      framesOnClient++;
      const probeId = `probe-${index}-${probes++}`;
      const sentAt = Date.now();
      client.send(frame.data, frame.binary);
      client.send(
        clientState === 'bound'
          ? `<iq xmlns="jabber:client" type="get" to="${options.domain}" id="${probeId}"><ping xmlns="urn:xmpp:ping"/></iq>`
          : xmlOpen(options.domain),
      );
      const outcome = await awaitOutcome(client, clientState === 'bound', probeId, sentAt, options);
      // A fresh connection that survived its frame is an opened (or negotiating) one now.
      if (clientState === 'fresh') clientState = 'opened';
      record(frame, outcome);
      if (outcome.streamError !== undefined || outcome.closeCode !== undefined || outcome.hang) retire();
      done++;
      if (done % 500 === 0) options.onProgress?.(done);
    }
    retire();
  };

  const record = (frame: FuzzFrame, outcome: Outcome) => {
    const result = categories[frame.category] ?? {
      frames: 0,
      answered: 0,
      streamErrors: {},
      stanzaErrors: {},
      maxMs: 0,
    };
    categories[frame.category] = result;
    result.frames++;
    result.maxMs = Math.max(result.maxMs, outcome.ms);
    times.push(outcome.ms);
    if (outcome.hang) hangs++;
    // Given up on: neither an answer nor the stream's end came.
    if (outcome.ms >= options.giveUpMs) return;
    if (outcome.streamError === undefined && outcome.closeCode === undefined) result.answered++;
    for (const condition of outcome.stanzaErrors) {
      result.stanzaErrors[condition] = (result.stanzaErrors[condition] ?? 0) + 1;
      if (condition === 'internal-server-error') internalErrors++;
    }
    const end =
      outcome.streamError !== undefined
        ? outcome.streamError
        : outcome.closeCode !== undefined
          ? `ws:${outcome.closeCode}`
          : undefined;
    if (end === undefined) return;
    result.streamErrors[end] = (result.streamErrors[end] ?? 0) + 1;
    if (end === 'internal-server-error') internalErrors++;
    const describe = `${frame.category}: ${end} (${String(frame.data).slice(0, 80)})`;
    if (outcome.streamError !== undefined) {
      // policy-violation is always right for a connection that sent too much (lib/limits.ts).
      const allowed = frame.expected ? [...frame.expected, 'policy-violation'] : undefined;
      if (!STREAM_CONDITIONS.has(end) || (allowed && !allowed.includes(end)) || !outcome.closedProperly) {
        wrongEnds.push(describe);
      }
    } else if (!frame.expected?.includes(end)) {
      wrongEnds.push(describe);
    }
  };

  await Promise.all(Array.from({ length: options.workers }, (_, index) => worker(index)));
  const sorted = [...times].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
  return {
    frames: frames.length,
    seed: options.seed,
    categories,
    hangs,
    wrongEnds,
    internalErrors,
    unparsable,
    answerMs: { p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] ?? 0 },
    durationMs: Date.now() - started,
    connections,
    setupMs,
  };
}

/** Waits for the probe's answer or the stream's end, whichever comes first. */
async function awaitOutcome(
  client: WireClient,
  bound: boolean,
  probeId: string,
  sentAt: number,
  options: FuzzOptions,
): Promise<Outcome> {
  const stanzaErrors: string[] = [];
  const deadline = sentAt + options.giveUpMs;
  const isProbeAnswer = (element: Element) =>
    bound ? element.name === 'iq' && element.attrs.id === probeId : element.name === 'stream:features';
  for (;;) {
    for (const element of client.received.splice(0)) {
      if (element.attrs.type === 'error') {
        const condition = stanzaErrorCondition(element);
        if (condition) stanzaErrors.push(condition);
      }
      if (element.name === 'stream:error') {
        const ms = Date.now() - sentAt;
        const streamError = streamErrorCondition(element) ?? 'none';
        // RFC 7395 §3.6: the error is followed by <close/>, then the socket closes.
        const closedProperly = await closesProperly(client, deadline);
        return { ms, hang: ms > options.hangMs, streamError, closedProperly, stanzaErrors };
      }
      if (isProbeAnswer(element)) {
        const ms = Date.now() - sentAt;
        return { ms, hang: ms > options.hangMs, closedProperly: true, stanzaErrors };
      }
    }
    if (client.closeCode !== undefined) {
      const ms = Date.now() - sentAt;
      return {
        ms,
        hang: ms > options.hangMs,
        closeCode: client.closeCode,
        closedProperly: false,
        stanzaErrors,
      };
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) return { ms: options.giveUpMs, hang: true, closedProperly: false, stanzaErrors };
    await client.waitForChange(remaining);
  }
}

async function closesProperly(client: WireClient, deadline: number): Promise<boolean> {
  let sawClose = false;
  for (;;) {
    for (const element of client.received.splice(0)) {
      if (element.name === 'close' && element.attrs.xmlns === NS_FRAMING) sawClose = true;
    }
    if (client.closeCode !== undefined) return sawClose;
    const remaining = deadline - Date.now();
    if (remaining <= 0) return false;
    await client.waitForChange(remaining);
  }
}
