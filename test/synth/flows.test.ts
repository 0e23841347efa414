// The tier that runs what `cdk deploy` ships (infra/local/synth-system.ts): the stack synthesised
// with its esbuild bundles, each function's bundle in processes of its own with exactly the
// environment its template gives it (references resolved to local stand-ins, endpoints through the
// SDK's standard settings). The core flows with real clients, and checks that a function whose
// template environment lacks what its code reads fails here, as it would on AWS.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { xml } from '@xmpp/client';
import type { SQSBatchResponse } from 'aws-lambda';
import type { Element } from 'ltx';
import { LambdaProcess } from '../../infra/local/lambda-process.ts';
import { type SynthesizedSystem, startSynthesizedSystem } from '../../infra/local/synth-system.ts';
import { sequenceId } from '../../lib/ids.ts';
import { abandon, addUser, befriend, eventually, RawClient, waitForStanza } from '../helpers.ts';

const ACK = 'urn:serverless-xmpp:ack:0';
const RECEIPTS = 'urn:xmpp:receipts';
const MUC = 'http://jabber.org/protocol/muc';
/** A slow, shared machine: waits are generous, never assertions about time. */
const WAIT = 30_000;

const bodyIs = (body: string) => (stanza: Element) => stanza.getChildText('body') === body;
const presenceFrom = (from: string, type?: string) => (stanza: Element) =>
  stanza.name === 'presence' && stanza.attrs.from === from && stanza.attrs.type === type;

describe('the synthesised stack, each bundle in its own process', () => {
  let running: SynthesizedSystem | undefined;
  const system = () => running ?? assert.fail('the synthesised system is not started');
  const errors: string[] = [];

  /**
   * A real @xmpp/client, logged in, its initial presence handled (a ping after it answered). Its
   * own 2 s limit on each step is raised: here every frame crosses processes on a shared machine.
   */
  async function online(user: string, resource: string) {
    const { client } = await import('@xmpp/client');
    const xmpp = client({
      service: system().url,
      domain: system().config.domain,
      username: user,
      password: 'pw',
      resource,
      timeout: WAIT,
    } as Parameters<typeof client>[0]);
    const stanzas: Element[] = [];
    xmpp.on('stanza', (stanza: Element) => stanzas.push(stanza));
    xmpp.on('error', () => {});
    await xmpp.start();
    await xmpp.send(xml('presence'));
    await xmpp.iqCaller.request(xml('iq', { type: 'get' }, xml('ping', { xmlns: 'urn:xmpp:ping' })), WAIT);
    return { xmpp, stanzas };
  }

  /** An app server for the push path: records what the push function POSTs. */
  const notifications: { body: string; signature: string }[] = [];
  const appServer = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    notifications.push({
      body: Buffer.concat(chunks).toString('utf8'),
      signature: String(request.headers['x-xmpp-push-signature'] ?? ''),
    });
    response.writeHead(204).end();
  });

  before(async () => {
    await new Promise<void>((resolve) => appServer.listen(0, '127.0.0.1', resolve));
    const appPort = (appServer.address() as AddressInfo).port;
    running = await startSynthesizedSystem({
      // The push path deployed: its queue, function and secret run here too.
      stack: { pushServices: `push.localhost=http://127.0.0.1:${appPort}/push` },
      ttlSweepMs: 0, // the expiry test says when TTL comes by
      // An error a function logs, or output that is no log line (a crash), is a finding of this
      // tier; warnings are not (a slow machine meets the functions' time limits).
      onOutput: (fn, line) => {
        const json = line.startsWith('{');
        if (!json || line.includes('"level":"ERROR"')) errors.push(`${fn}: ${line}`);
      },
    });
    for (const user of ['alice', 'bob', 'carol', 'dave']) await addUser(system(), `${user}@localhost`, 'pw');
  });
  after(async () => {
    await running?.stop();
    appServer.close();
  });

  test('the functions run their bundles: Node.js with no loader, nothing but the template and Lambda', () => {
    const { stack, environments } = system();
    assert.equal(stack.functions.length, environments.size);
    // Each its own bundle (CDK stages one asset per source path and options: infra/function.ts).
    assert.equal(new Set(stack.functions.map((fn) => fn.assetDir)).size, stack.functions.length);
    for (const fn of stack.functions) {
      assert.ok(readdirSync(fn.assetDir).includes('index.mjs'), fn.logicalId);
      const environment = environments.get(fn.logicalId) ?? {};
      assert.deepEqual(Object.keys(environment).sort(), Object.keys(fn.environment).sort(), fn.logicalId);
      // No project-specific endpoint switch: the endpoints come through AWS_ENDPOINT_URL_*.
      assert.equal(environment.DYNAMODB_ENDPOINT, undefined);
    }
  });

  test('login, a message with its server receipt and delivery receipt', async () => {
    const alice = await online('alice', 'desk');
    const bob = await online('bob', 'phone');
    await alice.xmpp.send(
      xml(
        'message',
        { type: 'chat', to: 'bob@localhost', id: 'm1' },
        xml('body', {}, 'hello from the bundle'),
        xml('request', { xmlns: RECEIPTS }),
      ),
    );
    await waitForStanza(alice.stanzas, (s) => s.getChild('ack', ACK)?.attrs.id === 'm1', WAIT);
    const received = await waitForStanza(bob.stanzas, bodyIs('hello from the bundle'), WAIT);
    assert.equal(received.attrs.from, 'alice@localhost/desk');
    await bob.xmpp.send(
      xml(
        'message',
        { to: received.attrs.from, type: 'chat' },
        xml('received', { xmlns: RECEIPTS, id: 'm1' }),
      ),
    );
    await waitForStanza(alice.stanzas, (s) => s.getChild('received', RECEIPTS)?.attrs.id === 'm1', WAIT);
    await alice.xmpp.stop();
    await bob.xmpp.stop();
  });

  test('XEP-0363: the bundle presigns a slot from its template environment; PUT and GET on the stand-ins', async () => {
    const alice = await online('alice', 'camera');
    const NS = 'urn:xmpp:http:upload:0';
    const bytes = Buffer.from('a voice message, as bytes');
    const result = (await alice.xmpp.iqCaller.request(
      xml(
        'iq',
        { type: 'get', to: 'upload.localhost' },
        xml('request', {
          xmlns: NS,
          filename: 'voice.ogg',
          size: String(bytes.length),
          'content-type': 'audio/ogg',
        }),
      ),
      WAIT,
    )) as Element;
    const slot = result.getChild('slot', NS);
    const put = slot?.getChild('put')?.attrs.url as string;
    const get = slot?.getChild('get')?.attrs.url as string;
    // UPLOAD_BUCKET and UPLOAD_BASE_URL came from the template (the bucket's Ref, the distribution's domain).
    const origin = new URL(system().url.replace(/^ws/, 'http')).origin;
    assert.ok(put.startsWith(`${origin}/`), put);
    assert.match(get, new RegExp(`^${origin}/[A-Za-z0-9_-]{22}/voice\\.ogg$`));
    const stored = await fetch(put, {
      method: 'PUT',
      body: new Uint8Array(bytes),
      headers: { 'content-type': 'audio/ogg' },
    });
    assert.equal(stored.status, 200, await stored.text());
    const read = await fetch(get);
    assert.deepEqual(Buffer.from(await read.arrayBuffer()), bytes);
    assert.match(read.headers.get('content-disposition') ?? '', /^inline; /);
    await alice.xmpp.stop();
  });

  test('a backlog of more than one invocation drains in order, continued through SQS SendMessage', async () => {
    // DRAIN_PER_INVOCATION is not a stack parameter: the template's functions drain 1,000 each.
    const count = 1_010;
    const { store } = system().context;
    const now = Date.now();
    for (let start = 0; start < count; start += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, count - start) }, (_, offset) => {
          const index = start + offset;
          return store.storeMessage(
            {
              recipient: 'carol@localhost',
              sender: 'dave@localhost',
              id: `backlog-${index}`,
              seq: sequenceId(now + index),
              stanza: `<message xmlns="jabber:client" type="chat" from="dave@localhost/x" to="carol@localhost" id="backlog-${index}"><body>${index}</body></message>`,
              storedAt: now + index,
              receiptRequested: false,
              expiresAt: Math.floor(now / 1000) + 3600,
            },
            { listed: true },
          );
        }),
      );
    }
    const framesQueue = `/000000000000/${system().stack.framesQueueId}.fifo`;
    const sentBefore = system().sqs.counters.get(framesQueue) ?? 0;
    const carol = await online('carol', 'reader');
    const bodies = () => carol.stanzas.filter((s) => s.getChild('body'));
    await eventually(() => bodies().length >= count, 120_000);
    await system().api.idle();
    assert.deepEqual(
      bodies().map((s) => Number(s.getChildText('body'))),
      Array.from({ length: count }, (_, index) => index),
    );
    assert.ok((system().sqs.counters.get(framesQueue) ?? 0) > sentBefore, 'a continuation went through SQS');
    await carol.xmpp.stop();
  });

  test('a room: created, joined, a message reflected to every occupant', async () => {
    const room = 'synth@conference.localhost';
    const alice = await online('alice', 'room');
    const bob = await online('bob', 'room');
    await alice.xmpp.send(xml('presence', { to: `${room}/Alice` }, xml('x', { xmlns: MUC })));
    await waitForStanza(alice.stanzas, (s) => s.getChild('subject') !== undefined, WAIT);
    await alice.xmpp.iqCaller.request(
      xml(
        'iq',
        { type: 'set', to: room },
        xml('query', { xmlns: `${MUC}#owner` }, xml('x', { xmlns: 'jabber:x:data', type: 'submit' })),
      ),
      WAIT,
    );
    await bob.xmpp.send(xml('presence', { to: `${room}/Bob` }, xml('x', { xmlns: MUC })));
    await waitForStanza(bob.stanzas, (s) => s.getChild('subject') !== undefined, WAIT);
    await alice.xmpp.send(xml('message', { to: room, type: 'groupchat' }, xml('body', {}, 'to the room')));
    for (const occupant of [alice, bob]) {
      const reflected = await waitForStanza(occupant.stanzas, bodyIs('to the room'), WAIT);
      assert.equal(reflected.attrs.from, `${room}/Alice`);
    }
    await alice.xmpp.stop();
    await bob.xmpp.stop();
  });

  test('push: a message to an absent user queues a job; the push bundle signs and POSTs the notification', async () => {
    const dave = await online('dave', 'phone');
    await dave.xmpp.iqCaller.request(
      xml(
        'iq',
        { type: 'set' },
        xml('enable', { xmlns: 'urn:xmpp:push:0', jid: 'push.localhost', node: 'dave-node' }),
      ),
      WAIT,
    );
    await dave.xmpp.stop();
    await eventually(
      async () => (await system().context.store.getAccount('dave@localhost')).sessions.length === 0,
      WAIT,
    );
    const alice = await online('alice', 'push');
    await alice.xmpp.send(
      xml('message', { type: 'chat', to: 'dave@localhost', id: 'p1' }, xml('body', {}, 'wake up')),
    );
    const notification = await eventually(
      () => notifications.find((note) => note.body.includes('node="dave-node"')),
      WAIT,
    );
    assert.match(notification.body, /<field var="message-count"><value>1<\/value><\/field>/);
    assert.match(notification.body, /<field var="last-message-sender"><value>alice@localhost\/push<\/value>/);
    const [secret] = [...system().secrets.values()];
    const expected = `sha256=${createHmac('sha256', secret as string)
      .update(notification.body)
      .digest('hex')}`;
    assert.equal(notification.signature, expected);
    await alice.xmpp.stop();
  });

  test('a session whose $disconnect never came ends by expiry, through the expired bundle', async () => {
    const { store } = system().context;
    await befriend(system(), 'alice@localhost', 'bob@localhost');
    const alice = await online('alice', 'watch');
    const bob = await online('bob', 'gone');
    await waitForStanza(alice.stanzas, presenceFrom('bob@localhost/gone'), WAIT);
    const session = (await store.getSessions('bob@localhost')).find((s) => s.resource === 'gone');
    assert.ok(session);
    system().api.killSilently(session.connectionId);
    abandon(bob);
    const connection = await store.getConnection(session.connectionId);
    assert.ok(connection);
    await store.saveConnection({ ...connection, expiresAt: Math.floor(Date.now() / 1000) - 1 });
    const invocations = system().functions.get(system().stack.expired.logicalId)?.counters.invocations ?? 0;
    await system().expiry.sweep();
    await waitForStanza(alice.stanzas, presenceFrom('bob@localhost/gone', 'unavailable'), WAIT);
    assert.deepEqual(system().expiry.failed, []);
    assert.ok(
      (system().functions.get(system().stack.expired.logicalId)?.counters.invocations ?? 0) > invocations,
    );
    await alice.xmpp.stop();
  });

  test('no function logged an error or crashed', async () => {
    await system().api.idle();
    assert.deepEqual(errors, []);
  });

  describe('a template environment that lacks what the code reads fails in this tier', () => {
    /** The bundle of `role` in a container of its own, with its environment minus `without`. */
    function bundleWithout(role: 'connect' | 'frames', without: string) {
      const fn = system().stack[role];
      const { [without]: _dropped, ...environment } = system().environments.get(fn.logicalId) ?? {};
      const lines: string[] = [];
      const process = new LambdaProcess({
        functionName: `${fn.logicalId}-without-${without}`,
        assetDir: fn.assetDir,
        handler: fn.handler,
        environment,
        runtimeEnvironment: {
          AWS_REGION: 'us-east-1',
          AWS_ACCESS_KEY_ID: 'local',
          AWS_SECRET_ACCESS_KEY: 'local',
          AWS_ENDPOINT_URL_DYNAMODB: system().dynamo.endpoint,
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        },
        timeoutSeconds: fn.timeoutSeconds,
        memorySize: fn.memorySize,
        maxContainers: 1,
        onOutput: (_, line) => lines.push(line),
      });
      return { process, lines };
    }

    test('$connect without TABLE_NAME: the upgrade fails', async () => {
      const { process } = bundleWithout('connect', 'TABLE_NAME');
      try {
        await assert.rejects(
          process.invoke({
            requestContext: { connectionId: 'no-table', routeKey: '$connect', eventType: 'CONNECT' },
          }),
          /TABLE_NAME is not set/,
        );
      } finally {
        await process.close();
      }
    });

    test('frames without MANAGEMENT_ENDPOINT: the frame fails and goes back to the queue', async () => {
      const raw = await RawClient.connect(system().url);
      const connectionId = system().api.connectionIds.at(-1) ?? '';
      const { process, lines } = bundleWithout('frames', 'MANAGEMENT_ENDPOINT');
      try {
        const result = await process.invoke<SQSBatchResponse>({
          Records: [
            {
              messageId: 'frame-1',
              body: '<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="localhost" version="1.0"/>',
              attributes: { MessageGroupId: connectionId, SentTimestamp: String(Date.now()) },
              messageAttributes: {
                connectionId: { dataType: 'String', stringValue: connectionId },
                eventType: { dataType: 'String', stringValue: 'MESSAGE' },
              },
            },
          ],
        });
        assert.deepEqual(result.batchItemFailures, [{ itemIdentifier: 'frame-1' }]);
        assert.ok(lines.some((line) => line.includes('MANAGEMENT_ENDPOINT is not set')));
      } finally {
        await process.close();
        raw.close();
      }
    });

    test('the variables the code reads and those the template sets are the same names', () => {
      const read = new Set<string>();
      for (const file of ['../../functions/runtime.ts', '../../lib/config.ts']) {
        const source = readFileSync(new URL(file, import.meta.url), 'utf8');
        for (const match of source.matchAll(/\benv\.([A-Z][A-Z0-9_]+)/g)) read.add(match[1] as string);
      }
      // Set by Lambda itself, or tuning with a code default that no stack parameter changes.
      const byLambda = ['AWS_REGION'];
      const codeDefaults = [
        'SCRAM_ITERATIONS',
        'MAX_CONNECTION_SECONDS',
        'DRAIN_PAGE_SIZE',
        'DRAIN_PER_INVOCATION',
        'ROSTER_LIMIT',
        'PUSH_MAX_ATTEMPTS',
        'PUSH_RETRY_SECONDS',
      ];
      // Set only where a parameter turns the feature on (pushEvents=true; test/infra/push.test.ts).
      const byOptionalParameter = ['PUSH_EVENT_BUS'];
      const { stack } = system();
      const inTemplate = new Set(stack.functions.flatMap((fn) => Object.keys(fn.environment)));
      const unset = [...read].filter(
        (name) =>
          !inTemplate.has(name) && ![...byLambda, ...codeDefaults, ...byOptionalParameter].includes(name),
      );
      assert.deepEqual(unset, [], 'read by the code, set for no function by the template');
      // Node.js reads NODE_OPTIONS (source maps); every other variable is one the code reads.
      const unread = [...inTemplate].filter((name) => !read.has(name) && name !== 'NODE_OPTIONS');
      assert.deepEqual(unread, [], 'set by the template, read by no code');
      for (const fn of stack.functions) assert.ok('TABLE_NAME' in fn.environment, fn.logicalId);
    });
  });
});
