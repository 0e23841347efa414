// DynamoStore against a real (in-memory) DynamoDB Local, with the real SDK client: the
// table definition, the conditions and the key design, which unit tests cannot check.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  DynamoDBClient,
  GetItemCommand,
} from '@aws-sdk/client-dynamodb';
import {
  ensureTable,
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  type LocalDynamo,
  startDynamoLocal,
} from '../../infra/local/dynamodb.ts';
import { sequenceFloor, sequenceId } from '../../lib/ids.ts';
import type { ConnectionRecord, SessionRecord } from '../../lib/ports.ts';
import { makeCredentials, SCRAM_HASHES, verifyPassword } from '../../lib/scram.ts';
import { MOST_HELD } from '../../lib/store/accounts.ts';
import { meterCapacity, newMeter } from '../../lib/store/capacity.ts';
import { DynamoStore } from '../../lib/store/dynamo.ts';
import { TABLE_SCHEMA } from '../../lib/store/schema.ts';
import { assertOnlyScramKeys } from './raw-items.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const HOUR = 3600;
const nowSeconds = () => Math.floor(Date.now() / 1000);
const unique = (prefix: string) => `${prefix}-${randomUUID()}`;
/**
 * An id of lib/ids.ts's shape made at `ms`, without sequenceId: that keeps a process-wide
 * clock, and a later test that makes ids in the past (lastRoomSeq) must not inherit it.
 */
const idAt = (ms: number) => `${sequenceFloor(ms)}0000${randomUUID().slice(0, 8)}`;

function connection(overrides: Partial<ConnectionRecord> = {}): ConnectionRecord {
  return {
    connectionId: unique('conn'),
    state: 'connected',
    connectedAt: Date.now(),
    expiresAt: nowSeconds() + 2 * HOUR,
    ...overrides,
  };
}

function session(user: string, resource: string, overrides: Partial<SessionRecord> = {}): SessionRecord {
  return {
    user,
    resource,
    connectionId: unique('conn'),
    available: false,
    priority: 0,
    expiresAt: nowSeconds() + 2 * HOUR,
    ...overrides,
  };
}

describe('DynamoStore on DynamoDB Local', () => {
  let dynamo: LocalDynamo;
  let client: DynamoDBClient;
  const tableName = 'xmpp-store-test';
  let tableCount = 0;

  /** A table of its own, for tests that look at the whole table (scan, the secret). */
  async function freshTable(): Promise<string> {
    const name = `${tableName}-${++tableCount}`;
    await ensureTable(client, name);
    return name;
  }

  async function rawItem(table: string, pk: string, sk: string) {
    const { Item } = await client.send(
      new GetItemCommand({ TableName: table, Key: { pk: { S: pk }, sk: { S: sk } }, ConsistentRead: true }),
    );
    return Item;
  }

  before(async () => {
    dynamo = await startDynamoLocal({});
    client = new DynamoDBClient({
      endpoint: dynamo.endpoint,
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
    });
    await ensureTable(client, tableName);
  });

  after(async () => {
    client?.destroy();
    await dynamo?.stop();
  });

  describe('the table', () => {
    test('ensureTable can run again on an existing table', async () => {
      await ensureTable(client, tableName);
      await ensureTable(client, tableName);
      const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
      assert.equal(Table?.TableStatus, 'ACTIVE');
    });

    test('keys are pk (hash) and sk (range)', async () => {
      const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
      assert.deepEqual(Table?.KeySchema, [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ]);
    });

    test('TTL is enabled on expiresAt', async () => {
      const { TimeToLiveDescription } = await client.send(
        new DescribeTimeToLiveCommand({ TableName: tableName }),
      );
      assert.equal(TimeToLiveDescription?.TimeToLiveStatus, 'ENABLED');
      assert.equal(TimeToLiveDescription?.AttributeName, 'expiresAt');
      assert.equal(TABLE_SCHEMA.timeToLiveAttribute, 'expiresAt');
    });

    test('the local index byOrder is keyed on (pk, seq) and projects everything', async () => {
      const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
      const index = Table?.LocalSecondaryIndexes?.find((lsi) => lsi.IndexName === 'byOrder');
      assert.ok(index, 'the table has the LSI byOrder');
      assert.deepEqual(index.KeySchema, [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'seq', KeyType: 'RANGE' },
      ]);
      assert.equal(index.Projection?.ProjectionType, 'ALL');
    });
  });

  describe('connections', () => {
    test('create, get, save and delete', async () => {
      const store = new DynamoStore(client, tableName);
      const record = connection();
      await store.createConnection(record);
      assert.deepEqual(await store.getConnection(record.connectionId), record);

      const opened: ConnectionRecord = { ...record, state: 'opened', streamId: 'stream-1' };
      await store.saveConnection(opened);
      assert.deepEqual(await store.getConnection(record.connectionId), opened);

      await store.deleteConnection(record.connectionId);
      assert.equal(await store.getConnection(record.connectionId), undefined);
      assert.equal(await rawItem(tableName, `CONN#${record.connectionId}`, '#CONN'), undefined);
    });

    test('an unknown connection is undefined, and deleting it is not an error', async () => {
      const store = new DynamoStore(client, tableName);
      assert.equal(await store.getConnection(unique('nobody')), undefined);
      await store.deleteConnection(unique('nobody'));
    });

    test('undefined fields are dropped rather than rejected', async () => {
      const store = new DynamoStore(client, tableName);
      const record = connection({ user: undefined, sasl: undefined });
      await store.createConnection(record);
      const read = await store.getConnection(record.connectionId);
      assert.ok(read);
      assert.equal('user' in read, false);
      assert.equal('sasl' in read, false);
    });

    test('saveConnection does not bring back a deleted connection', async () => {
      const store = new DynamoStore(client, tableName);
      const record = connection();
      await store.createConnection(record);
      await store.deleteConnection(record.connectionId);

      await store.saveConnection({ ...record, state: 'opened' });
      assert.equal(await rawItem(tableName, `CONN#${record.connectionId}`, '#CONN'), undefined);
      assert.equal(await store.getConnection(record.connectionId), undefined);

      // Nor does a bound one find its way into the cache.
      await store.saveConnection({ ...record, state: 'bound', user: 'a@localhost', resource: 'r' });
      assert.equal(await store.getConnection(record.connectionId), undefined);
      assert.equal(await rawItem(tableName, `CONN#${record.connectionId}`, '#CONN'), undefined);
    });

    test('saveConnection of a connection never created does nothing', async () => {
      const store = new DynamoStore(client, tableName);
      const record = connection({ state: 'opened' });
      await store.saveConnection(record);
      assert.equal(await store.getConnection(record.connectionId), undefined);
    });

    test('getConnection ignores an expired record', async () => {
      const record = connection({ expiresAt: nowSeconds() + 2 * HOUR });
      const store = new DynamoStore(client, tableName);
      await store.createConnection(record);
      const later = new DynamoStore(client, tableName, () => Date.now() + 3 * HOUR * 1000);
      assert.equal(await later.getConnection(record.connectionId), undefined);
      // Still there for a reader whose clock has not passed expiresAt.
      assert.deepEqual(await store.getConnection(record.connectionId), record);
    });

    test('an expired bound record is ignored too (and not cached)', async () => {
      const record = connection({ state: 'bound', user: 'a@localhost', resource: 'r' });
      await new DynamoStore(client, tableName).createConnection(record);
      const later = new DynamoStore(client, tableName, () => Date.now() + 3 * HOUR * 1000);
      assert.equal(await later.getConnection(record.connectionId), undefined);
      assert.equal(await later.getConnection(record.connectionId), undefined);
    });

    // Intended: a bound record changes only when the connection ends, so each container
    // keeps the bound records it has seen and does not read them again per frame. A
    // deletion by another container (the $disconnect handler) is not seen by this cache;
    // the connection is gone anyway, so frames for it stop arriving. The container's own
    // deleteConnection does clear its entry.
    test('bound connections are cached: another instance deleting is not seen, own delete is', async () => {
      const first = new DynamoStore(client, tableName);
      const second = new DynamoStore(client, tableName);
      const record = connection();
      await first.createConnection(record);
      const bound: ConnectionRecord = {
        ...record,
        state: 'bound',
        user: 'alice@localhost',
        resource: 'desk',
      };
      await first.saveConnection(bound);

      await second.deleteConnection(record.connectionId);
      assert.equal(await second.getConnection(record.connectionId), undefined);
      assert.deepEqual(await first.getConnection(record.connectionId), bound, 'served from the cache');

      await first.deleteConnection(record.connectionId);
      assert.equal(await first.getConnection(record.connectionId), undefined);
    });

    test('a read that began before the own delete does not bring the record back into the cache', async () => {
      // The read's answer is held back until the delete has finished (two handlers of one
      // container, or a test polling while a handler ends the session).
      let release: () => void = () => {};
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      let answered: () => void = () => {};
      const readAnswered = new Promise<void>((resolve) => {
        answered = resolve;
      });
      const slow = new DynamoDBClient({
        endpoint: dynamo.endpoint,
        region: LOCAL_REGION,
        credentials: LOCAL_CREDENTIALS,
      });
      slow.middlewareStack.add(
        (next, context) => async (args) => {
          const result = await next(args);
          if (context.commandName === 'GetItemCommand') {
            answered();
            await held;
          }
          return result;
        },
        { step: 'initialize', name: 'holdReads' },
      );
      const store = new DynamoStore(slow, tableName);
      const bound = connection({ state: 'bound', user: 'alice@localhost', resource: 'desk' });
      await new DynamoStore(client, tableName).createConnection(bound);
      const early = store.getConnection(bound.connectionId);
      // The table has answered the read (with the record) before the delete is sent.
      await readAnswered;
      await store.deleteConnection(bound.connectionId);
      release();
      assert.deepEqual(await early, bound, 'the early read saw the record');
      assert.equal(await store.getConnection(bound.connectionId), undefined, 'later reads do not');
      slow.destroy();
    });

    test('a bound record read from the table is cached as well', async () => {
      const first = new DynamoStore(client, tableName);
      const second = new DynamoStore(client, tableName);
      const bound = connection({ state: 'bound', user: 'alice@localhost', resource: 'desk' });
      await second.createConnection(bound);
      assert.deepEqual(await first.getConnection(bound.connectionId), bound);
      await second.deleteConnection(bound.connectionId);
      assert.deepEqual(await first.getConnection(bound.connectionId), bound);
    });

    test('records before binding are not cached: every read sees the table', async () => {
      const first = new DynamoStore(client, tableName);
      const second = new DynamoStore(client, tableName);
      const record = connection({ state: 'opened' });
      await first.createConnection(record);
      assert.deepEqual(await first.getConnection(record.connectionId), record);

      await second.saveConnection({ ...record, state: 'authenticated', user: 'alice@localhost' });
      assert.equal((await first.getConnection(record.connectionId))?.state, 'authenticated');

      await second.deleteConnection(record.connectionId);
      assert.equal(await first.getConnection(record.connectionId), undefined);
    });

    test('the cache hands out copies', async () => {
      const store = new DynamoStore(client, tableName);
      const record = connection({ state: 'bound', user: 'alice@localhost', resource: 'desk' });
      await store.createConnection(record);
      const read = await store.getConnection(record.connectionId);
      assert.ok(read);
      read.state = 'connected';
      read.resource = 'changed';
      assert.deepEqual(await store.getConnection(record.connectionId), record);
    });
  });

  describe('users', () => {
    test('put, get and delete', async () => {
      const store = new DynamoStore(client, tableName);
      const user = `${unique('u')}@localhost`;
      const record = { user, scram: makeCredentials('pencil', 4096), createdAt: Date.now() };
      assert.equal(await store.getUser(user), undefined);
      await store.putUser(record);
      assert.deepEqual(await store.getUser(user), record);
      for (const hash of SCRAM_HASHES) {
        const keys = (await store.getUser(user))?.scram[hash];
        assert.ok(keys);
        assert.equal(verifyPassword(hash, keys, 'pencil'), true);
      }
      assert.equal(await store.deleteUser(user), true);
      assert.equal(await store.getUser(user), undefined);
      assert.equal(await store.deleteUser(user), false);
    });

    test('deleting an unknown user returns false', async () => {
      const store = new DynamoStore(client, tableName);
      assert.equal(await store.deleteUser(`${unique('nobody')}@localhost`), false);
    });

    test('the stored item holds SCRAM keys only, never the password', async () => {
      const store = new DynamoStore(client, tableName);
      const user = `${unique('u')}@localhost`;
      const password = 'correct horse battery staple';
      await store.putUser({ user, scram: makeCredentials(password, 4096), createdAt: Date.now() });
      const item = await rawItem(tableName, `USER#${user}`, '#USER');
      assert.ok(item);
      assertOnlyScramKeys(item, password);
    });

    test('listUsers is sorted and lists neither sessions, connections nor the secret', async () => {
      const table = await freshTable();
      const store = new DynamoStore(client, table);
      for (const user of ['carol@localhost', 'alice@localhost', 'bob@example.com']) {
        await store.putUser({ user, scram: makeCredentials('x', 4096), createdAt: Date.now() });
      }
      await store.putSession(session('alice@localhost', 'desk'));
      await store.putSession(session('dave@localhost', 'phone'));
      await store.createConnection(connection({ user: 'erin@localhost' }));
      await store.getServerSecret();
      assert.deepEqual(await store.listUsers(), ['alice@localhost', 'bob@example.com', 'carol@localhost']);

      await store.deleteUser('carol@localhost');
      assert.deepEqual(await store.listUsers(), ['alice@localhost', 'bob@example.com']);
    });

    test('listUsers of an empty table is empty', async () => {
      const store = new DynamoStore(client, await freshTable());
      assert.deepEqual(await store.listUsers(), []);
    });
  });

  describe('server secret', () => {
    test('created once: 32 bytes, the same for every store on the table', async () => {
      const table = await freshTable();
      const first = new DynamoStore(client, table);
      const secret = await first.getServerSecret();
      assert.equal(secret.length, 32);
      assert.deepEqual(await first.getServerSecret(), secret);
      assert.deepEqual(await new DynamoStore(client, table).getServerSecret(), secret);
      const item = await rawItem(table, 'SERVER', '#SECRET');
      assert.equal(Buffer.from(item?.secret?.S ?? '', 'base64').toString('hex'), secret.toString('hex'));
    });

    test('stores racing to create it agree on one secret', async () => {
      const table = await freshTable();
      const secrets = await Promise.all(
        Array.from({ length: 5 }, () => new DynamoStore(client, table).getServerSecret()),
      );
      for (const secret of secrets) assert.deepEqual(secret, secrets[0]);
    });

    test('each table has its own secret', async () => {
      const a = await new DynamoStore(client, await freshTable()).getServerSecret();
      const b = await new DynamoStore(client, await freshTable()).getServerSecret();
      assert.notDeepEqual(a, b);
    });
  });

  describe('sessions', () => {
    test('putSession returns undefined first, then the record it replaced', async () => {
      const store = new DynamoStore(client, tableName);
      const user = `${unique('u')}@localhost`;
      const first = session(user, 'desk');
      assert.equal(await store.putSession(first), undefined);
      const second = session(user, 'desk', { available: true, priority: 5 });
      assert.deepEqual(await store.putSession(second), first);
      assert.deepEqual(await store.getSessions(user), [second]);
    });

    test('putSession does not report an expired session it replaced', async () => {
      const store = new DynamoStore(client, tableName);
      const user = `${unique('u')}@localhost`;
      await store.putSession(session(user, 'desk', { expiresAt: nowSeconds() - 10 }));
      assert.equal(await store.putSession(session(user, 'desk')), undefined);
    });

    test("getSessions returns the user's live sessions only", async () => {
      const store = new DynamoStore(client, tableName);
      const alice = `${unique('alice')}@localhost`;
      const bob = `${unique('bob')}@localhost`;
      await store.putUser({ user: alice, scram: makeCredentials('x', 4096), createdAt: Date.now() });
      const desk = session(alice, 'desk');
      const phone = session(alice, 'phone', { available: true, priority: -1 });
      await store.putSession(desk);
      await store.putSession(phone);
      await store.putSession(session(alice, 'old', { expiresAt: nowSeconds() - 1 }));
      await store.putSession(session(bob, 'desk'));
      // A user whose name extends alice's shares no partition with her.
      await store.putSession(session(`${alice}x`, 'desk'));

      const sessions = await store.getSessions(alice);
      assert.deepEqual(
        sessions.sort((a, b) => a.resource.localeCompare(b.resource)),
        [desk, phone],
      );
      assert.equal((await store.getSessions(bob)).length, 1);
      assert.deepEqual(await store.getSessions(`${unique('nobody')}@localhost`), []);
    });

    test('getSessions ignores sessions expired by the clock of the store', async () => {
      const store = new DynamoStore(client, tableName);
      const user = `${unique('u')}@localhost`;
      await store.putSession(session(user, 'desk', { expiresAt: nowSeconds() + HOUR }));
      assert.equal((await store.getSessions(user)).length, 1);
      const later = new DynamoStore(client, tableName, () => Date.now() + 2 * HOUR * 1000);
      assert.deepEqual(await later.getSessions(user), []);
    });

    test('deleteSession deletes only while the session belongs to that connection', async () => {
      const store = new DynamoStore(client, tableName);
      const user = `${unique('u')}@localhost`;
      const first = session(user, 'desk');
      const second = session(user, 'desk');
      await store.putSession(first);
      await store.putSession(second); // the resource moved to another connection

      await store.deleteSession(user, 'desk', first.connectionId);
      assert.deepEqual(await store.getSessions(user), [second]);

      await store.deleteSession(user, 'desk', second.connectionId);
      assert.deepEqual(await store.getSessions(user), []);

      // Deleting a session that is gone is not an error.
      await store.deleteSession(user, 'desk', second.connectionId);
    });

    test('getAccounts reads several accounts in one request, each as getAccount reads it', async (t) => {
      const meter = newMeter();
      const metered = new DynamoDBClient({
        endpoint: dynamo.endpoint,
        region: LOCAL_REGION,
        credentials: LOCAL_CREDENTIALS,
      });
      meterCapacity(metered, meter);
      t.after(() => metered.destroy());
      const store = new DynamoStore(metered, tableName);
      const alice = `${unique('alice')}@localhost`;
      const bob = `${unique('bob')}@localhost`;
      const nobody = `${unique('nobody')}@localhost`;
      await store.putUser({ user: alice, scram: makeCredentials('x', 4096), createdAt: Date.now() });
      await store.putUser({ user: bob, scram: makeCredentials('x', 4096), createdAt: Date.now() });
      await store.putSession(session(alice, 'desk', { available: true }));
      await store.putSession(session(bob, 'phone'));
      await store.block(bob, [alice]);
      // About 9 KB in alice's partition: her read costs 3 units (bob's 1, nobody's none).
      const contacts = Array.from(
        { length: 150 },
        (_, index) => `contact-${index}-${randomUUID()}@localhost`,
      );
      await store.setArchivePrefs(alice, { default: 'roster', always: [bob, ...contacts], never: [] });
      // A user whose name extends alice's shares no partition with her.
      await store.putSession(session(`${alice}x`, 'desk'));

      const before = { ...meter };
      const accounts = await store.getAccounts([alice, bob, nobody, alice]);
      assert.equal(meter.requests - before.requests, 1);
      const selectUnits = meter.readUnits - before.readUnits;
      const one = [];
      for (const user of [alice, bob, nobody]) one.push(await store.getAccount(user));
      // Charged as the strongly consistent queries of each partition, whose units DynamoDB
      // Local reports (DynamoDB Local reports none for PartiQL: capacity.ts sizes the items).
      assert.equal(selectUnits, meter.readUnits - before.readUnits - selectUnits);
      assert.equal(selectUnits, 4);
      assert.deepEqual(accounts, [...one, one[0]]);
      assert.equal(accounts[1]?.blocks.has(alice), true);
      assert.equal(accounts[0]?.blockedBy.has(bob), true);
      assert.equal(accounts[2]?.exists, false);
    });

    test('sessions and credentials share the partition without disturbing each other', async () => {
      const store = new DynamoStore(client, tableName);
      const user = `${unique('u')}@localhost`;
      const record = { user, scram: makeCredentials('x', 4096), createdAt: Date.now() };
      await store.putUser(record);
      const desk = session(user, 'desk');
      await store.putSession(desk);
      assert.deepEqual(await store.getUser(user), record);
      assert.equal(await store.deleteUser(user), true);
      assert.deepEqual(await store.getSessions(user), [desk]);
    });
  });

  describe('inbox: listed and unlisted messages', () => {
    const stored = (recipient: string, id: string, seq: string) => ({
      recipient,
      sender: 'sender@localhost',
      id,
      seq,
      stanza: `<message xmlns="jabber:client" id="${id}"><body>${id}</body></message>`,
      storedAt: Date.now(),
      receiptRequested: true,
      expiresAt: nowSeconds() + HOUR,
    });

    test('an unlisted message is not in the drain’s pages until listed; a drain’s start lists it', async () => {
      const store = new DynamoStore(client, tableName);
      const user = `${unique('inbox')}@localhost`;
      const first = stored(user, 'live-1', idAt(Date.now()));
      const second = stored(user, 'live-2', idAt(Date.now() + 1));
      const third = stored(user, 'offline-3', idAt(Date.now() + 2));
      assert.deepEqual(await store.storeMessage(first, { listed: false }), { stored: true });
      await store.storeMessage(second, { listed: false });
      await store.storeMessage(third, { listed: true });
      assert.deepEqual(
        (await store.undelivered(user, 10)).messages.map((m) => m.id),
        ['offline-3'],
      );
      await store.listForDrain(second);
      assert.deepEqual(
        (await store.undelivered(user, 10)).messages.map((m) => m.id),
        ['live-2', 'offline-3'],
      );
      assert.equal(await store.listUnlisted(user), 1);
      // In storage order, whatever order they were listed in.
      const page = await store.undelivered(user, 10);
      assert.deepEqual(
        page.messages.map((m) => m.id),
        ['live-1', 'live-2', 'offline-3'],
      );
      assert.deepEqual(
        page.messages.map((m) => m.seq),
        [first.seq, second.seq, third.seq],
      );
      assert.equal(await store.listUnlisted(user), 0);
    });

    test('delivered: the route of the sender comes back with the mark, and the tombstone drops it', async () => {
      const store = new DynamoStore(client, tableName);
      const user = `${unique('inbox')}@localhost`;
      const route = { connectionId: 'conn-1', resource: 'desk', alone: true, at: 1_700_000_000_000 };
      const message = { ...stored(user, 'r1', '0000000000000bbbbbbbb'), route };
      await store.storeMessage(message, { listed: false });
      assert.deepEqual(await store.markDelivered(user, message.sender, 'r1'), { route });
      const item = await rawItem(tableName, `INBOX#${user}`, 'MSG#sender@localhost#r1');
      assert.equal(item?.route, undefined);
    });

    test('delivered: a tombstone that keeps the server id for a day; a retry sees it as delivered', async () => {
      const store = new DynamoStore(client, tableName);
      const user = `${unique('inbox')}@localhost`;
      const message = stored(user, 'm1', '0000000000000aaaaaaaa');
      await store.storeMessage(message, { listed: false });
      const retried = await store.storeMessage(message, { listed: false });
      assert.equal(retried.stored, false);
      assert.equal(!retried.stored && retried.delivered, false);
      assert.deepEqual(await store.markDelivered(user, message.sender, 'm1'), {});
      assert.equal(await store.markDelivered(user, message.sender, 'm1'), false);
      const after = await store.storeMessage(message, { listed: false });
      assert.ok(!after.stored && after.delivered && after.existing.seq === message.seq);
      const item = await rawItem(tableName, `INBOX#${user}`, 'MSG#sender@localhost#m1');
      assert.equal(item?.s, undefined);
      assert.equal(item?.seq, undefined);
      assert.ok(Number(item?.expiresAt?.N) <= nowSeconds() + 24 * HOUR + 1);
      // Listing a delivered message does nothing.
      await store.listForDrain(message);
      assert.equal(await store.listUnlisted(user), 0);
      assert.deepEqual((await store.undelivered(user, 10)).messages, []);
    });
  });

  describe('the drain gate: holds, opening, lease renewal', () => {
    const message = (id: string) => ({ sender: 'sender@localhost', id });

    test('a hold succeeds only while the lease runs, for that connection, up to MOST_HELD', async () => {
      const store = new DynamoStore(client, tableName);
      const user = `${unique('gate')}@localhost`;
      const desk = session(user, 'desk', { available: true });
      await store.putSession(desk);
      const now = Date.now();
      assert.equal(await store.holdForDrain(desk, message('no-lease'), now), false);
      await store.updateSession(user, 'desk', desk.connectionId, {
        available: true,
        priority: 0,
        drainingUntil: now + 60_000,
      });
      assert.equal(await store.holdForDrain(desk, message('m-1'), now), true);
      assert.equal(
        await store.holdForDrain({ ...desk, connectionId: 'another' }, message('m-2'), now),
        false,
      );
      assert.equal(await store.holdForDrain(desk, message('late'), now + 61_000), false, 'the lease ran out');
      for (let index = 2; index <= MOST_HELD; index++)
        assert.equal(await store.holdForDrain(desk, message(`m-${index}`), now), true);
      assert.equal(await store.holdForDrain(desk, message('one-too-many'), now), false);
    });

    test('the gate opens only when every held message was handled; the held ones read in order', async () => {
      const store = new DynamoStore(client, tableName);
      const user = `${unique('gate')}@localhost`;
      const desk = session(user, 'desk', { available: true });
      await store.putSession(desk);
      const now = Date.now();
      await store.updateSession(user, 'desk', desk.connectionId, {
        available: true,
        priority: 0,
        drainingUntil: now + 60_000,
      });
      const inbox = (id: string) => ({
        recipient: user,
        sender: 'sender@localhost',
        id,
        seq: idAt(now),
        stanza: `<message xmlns="jabber:client" id="${id}"><body>${id}</body></message>`,
        storedAt: now,
        receiptRequested: false,
        expiresAt: nowSeconds() + HOUR,
      });
      for (const id of ['b', 'a']) {
        await store.storeMessage(inbox(id), { listed: false });
        assert.equal(await store.holdForDrain(desk, message(id), now), true);
      }
      assert.equal(await store.openDrainGate(user, 'desk', 'another', 0), 'gone');
      const held = await store.openDrainGate(user, 'desk', desk.connectionId, 0);
      assert.ok(Array.isArray(held) && held.length === 2, String(held));
      const messages = await store.heldMessages(user, held as string[]);
      assert.deepEqual(
        messages.map((m) => m?.id),
        ['b', 'a'],
        'in the order they were held',
      );
      await store.markAllDelivered([inbox('a')]);
      assert.deepEqual(
        (await store.heldMessages(user, held as string[])).map((m) => m?.id),
        ['b', undefined],
        'a delivered one is left out',
      );
      assert.deepEqual(
        await store.openDrainGate(user, 'desk', desk.connectionId, 1),
        held,
        'one more than handled',
      );
      assert.equal(await store.openDrainGate(user, 'desk', desk.connectionId, 2), 'open');
      const [after] = await store.getSessions(user);
      assert.equal(after?.drainingUntil, undefined);
      assert.equal(await store.holdForDrain(desk, message('c'), now), false, 'open: the sender pushes');
    });

    test('a lease is renewed only while it is there, and only by the drain that holds it', async () => {
      const store = new DynamoStore(client, tableName);
      const user = `${unique('gate')}@localhost`;
      const desk = session(user, 'desk', { available: true });
      await store.putSession(desk);
      const now = Date.now();
      assert.equal(
        await store.setDraining(user, 'desk', desk.connectionId, now + 1),
        false,
        'no lease to renew',
      );
      await store.updateSession(user, 'desk', desk.connectionId, {
        available: true,
        priority: 0,
        drainingUntil: now,
      });
      assert.equal(
        await store.setDraining(user, 'desk', desk.connectionId, now + 1, now - 5),
        false,
        'another drain',
      );
      assert.equal(await store.setDraining(user, 'desk', desk.connectionId, now + 1, now), true);
      // The drain's id is its first lease: a continuation retried after it renewed still resumes.
      assert.equal(
        await store.setDraining(user, 'desk', desk.connectionId, now + 2, now),
        true,
        'same drain',
      );
      assert.equal(await store.setDraining(user, 'desk', desk.connectionId, now + 3), true, 'no drain named');
      assert.equal(await store.setDraining(user, 'desk', desk.connectionId, undefined), true);
      assert.equal((await store.getSessions(user))[0]?.drainingUntil, undefined);
    });
  });

  describe('archives', () => {
    test('pages by id range, exclusive ends, last pages, with, ids; preferences and carbons on the account', async () => {
      const store = new DynamoStore(client, tableName);
      const user = `${unique('archive')}@localhost`;
      const base = Date.now();
      const ids = Array.from({ length: 6 }, (_, i) => idAt(base + i));
      await store.archive(
        ids.map((id, i) => ({
          user,
          message: {
            id,
            with: i % 2 === 0 ? 'even@localhost' : 'odd@localhost',
            withResource: i === 4 ? 'phone' : undefined,
            stanza: `<message xmlns="jabber:client"><body>${i}</body></message>`,
            at: base + i,
          },
        })),
        nowSeconds() + HOUR,
      );
      const owner = { user };
      const page = (range: Parameters<DynamoStore['queryArchive']>[1]) =>
        store
          .queryArchive(owner, range)
          .then((p) => ({ ids: p.messages.map((m) => ids.indexOf(m.id)), complete: p.complete }));
      assert.deepEqual(await page({ max: 10, last: false }), { ids: [0, 1, 2, 3, 4, 5], complete: true });
      assert.deepEqual(await page({ max: 2, last: false }), { ids: [0, 1], complete: false });
      assert.deepEqual(await page({ max: 2, last: false, after: ids[1] }), { ids: [2, 3], complete: false });
      assert.deepEqual(await page({ max: 2, last: true }), { ids: [4, 5], complete: false });
      assert.deepEqual(await page({ max: 10, last: true, before: ids[2] }), { ids: [0, 1], complete: true });
      assert.deepEqual(await page({ max: 10, last: false, after: ids[0], before: ids[3] }), {
        ids: [1, 2],
        complete: true,
      });
      assert.deepEqual(await page({ max: 10, last: false, with: 'even@localhost' }), {
        ids: [0, 2, 4],
        complete: true,
      });
      assert.deepEqual(await page({ max: 10, last: false, with: 'even@localhost', withResource: 'phone' }), {
        ids: [4],
        complete: true,
      });
      assert.deepEqual(await page({ max: 10, last: false, from: ids[3], until: ids[5] }), {
        ids: [3, 4],
        complete: true,
      });
      assert.deepEqual(await page({ max: 10, last: false, after: ids[4], before: ids[1] }), {
        ids: [],
        complete: true,
      });
      const picked = await store.getArchived(owner, [ids[3] as string, ids[1] as string, 'nope']);
      assert.deepEqual(
        picked.map((m) => ids.indexOf(m.id)),
        [1, 3],
      );
      assert.equal(picked[0]?.stanza, '<message xmlns="jabber:client"><body>1</body></message>');

      await store.putUser({ user, scram: makeCredentials('pw', 4096), createdAt: base });
      await store.setArchivePrefs(user, { default: 'roster', always: ['a@localhost'], never: [] });
      const account = await store.getAccount(user);
      assert.equal(account.createdAt, base);
      assert.deepEqual(account.archivePrefs, { default: 'roster', always: ['a@localhost'], never: [] });
      const mine = session(user, 'phone');
      await store.putSession(mine);
      await store.setCarbons(user, 'phone', mine.connectionId, true);
      assert.equal((await store.getAccount(user)).sessions[0]?.carbons, true);
      await store.setCarbons(user, 'phone', 'another-connection', false);
      assert.equal((await store.getAccount(user)).sessions[0]?.carbons, true);
      await store.setCarbons(user, 'phone', mine.connectionId, false);
      assert.equal((await store.getAccount(user)).sessions[0]?.carbons, undefined);
    });

    test('setInactive marks the session, and its presence entry when it has one, only while they are the connection’s', async () => {
      const store = new DynamoStore(client, tableName);
      const user = `${unique('csi')}@localhost`;
      const mine = session(user, 'phone');
      await store.putSession(mine);
      const flags = async () => ({
        session: (await store.getAccount(user)).sessions[0]?.inactive,
        presence: (await store.getPresences([user])).get(user)?.[0]?.inactive,
      });
      // Not available yet: no presence entry, and none is made.
      await store.setInactive(user, 'phone', mine.connectionId, true);
      assert.deepEqual(await flags(), { session: true, presence: undefined });
      assert.equal((await store.getPresences([user])).get(user), undefined);
      await store.setPresence(user, {
        resource: 'phone',
        connectionId: mine.connectionId,
        priority: 0,
        stanza: '<presence/>',
        expiresAt: mine.expiresAt,
        directed: [],
        inactive: true,
      });
      await store.setInactive(user, 'phone', 'another-connection', false);
      assert.deepEqual(await flags(), { session: true, presence: true });
      await store.setInactive(user, 'phone', mine.connectionId, false);
      assert.deepEqual(await flags(), { session: undefined, presence: undefined });
      await store.setInactive(user, 'phone', mine.connectionId, true);
      assert.deepEqual(await flags(), { session: true, presence: true });
    });
  });

  describe('rooms', () => {
    test('markClosing and isClosing: gone or ending reads as closing', async () => {
      const store = new DynamoStore(client, tableName);
      const now = Math.floor(Date.now() / 1000);
      await store.createConnection({
        connectionId: 'closing-1',
        state: 'connected',
        connectedAt: 0,
        expiresAt: now + 60,
      });
      assert.equal(await store.isClosing('closing-1'), false);
      await store.markClosing('closing-1', Date.now());
      assert.equal(await store.isClosing('closing-1'), true);
      assert.equal(await store.isClosing('never-there'), true);
      await store.markClosing('never-there', Date.now());
      assert.equal(await store.isClosing('never-there'), true, 'marking a gone connection creates nothing');
    });

    test('deleteRoom removes the room and everything in its partition', async () => {
      const store = new DynamoStore(client, tableName);
      const room = 'gone-soon@conference.localhost';
      const config = {
        name: '',
        description: '',
        persistent: false,
        membersOnly: false,
        public: true,
        maxUsers: 10,
        historyLength: 10,
      };
      assert.equal(await store.createRoom({ room, config, locked: false, createdAt: Date.now() }), true);
      await store.setAffiliation(room, 'owner@localhost', 'owner');
      await store.deleteRoom(room);
      const state = await store.getRoomState(room);
      assert.equal(state.room, undefined);
      assert.equal(state.affiliations.size, 0);
      assert.deepEqual(await store.listPublicRooms(), []);
    });
  });

  describe('room markers', () => {
    test('set moves a marker anywhere; lower only moves an existing one back', async () => {
      const store = new DynamoStore(client, tableName);
      const room = 'markers@conference.localhost';
      await store.lowerPushedMarker(room, 'nobody@localhost', 'b');
      assert.equal(await store.getPushedMarker(room, 'nobody@localhost'), undefined);
      await store.setPushedMarker(room, 'erin@localhost', 'm');
      await store.lowerPushedMarker(room, 'erin@localhost', 'x');
      assert.equal(await store.getPushedMarker(room, 'erin@localhost'), 'm');
      await store.lowerPushedMarker(room, 'erin@localhost', 'c');
      assert.equal(await store.getPushedMarker(room, 'erin@localhost'), 'c');
      await store.setPushedMarker(room, 'erin@localhost', 'z');
      assert.equal(await store.getPushedMarker(room, 'erin@localhost'), 'z');
    });

    test('lastRoomSeq: the newest message, or the newest one before a seq or a time', async () => {
      const store = new DynamoStore(client, tableName);
      const room = 'order@conference.localhost';
      const at = [1_000_000, 2_000_000, 3_000_000];
      const seqs = at.map((time) => sequenceId(time));
      for (const [index, seq] of seqs.entries()) {
        await store.storeRoomMessage({
          room,
          seq,
          stanza: `<message id="${index}"/>`,
          postedAt: at[index] as number,
          expiresAt: Math.floor(Date.now() / 1000) + 3600,
        });
      }
      assert.equal(await store.lastRoomSeq(room), seqs[2]);
      assert.equal(await store.lastRoomSeq(room, seqs[2]), seqs[1]);
      assert.equal(await store.lastRoomSeq(room, seqs[0]), undefined);
      assert.equal(await store.lastRoomSeq(room, sequenceFloor(2_000_000)), seqs[0]);
      assert.equal(await store.lastRoomSeq(room, sequenceFloor(2_000_001)), seqs[1]);
    });
  });
});
