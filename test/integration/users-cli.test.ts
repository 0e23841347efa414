// The `npm run users` command, run for real as a subprocess against DynamoDB Local:
// exit codes, output, and the SCRAM keys it leaves in the table.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import {
  ensureTable,
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  type LocalDynamo,
  startDynamoLocal,
} from '../../infra/local/dynamodb.ts';
import { SCRAM_HASHES, verifyPassword } from '../../lib/scram.ts';
import { DynamoStore } from '../../lib/store/dynamo.ts';
import { assertOnlyScramKeys } from './raw-items.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs scripts/users.ts with these arguments; never rejects on a failing exit code. */
function users(...args: string[]): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
  // The command must not pick these up from whoever runs the tests.
  for (const name of ['AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_PROFILE', 'DATA_DIR']) delete env[name];
  return new Promise((resolveRun) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'scripts/users.ts', ...args],
      { cwd: ROOT, env, timeout: 20_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolveRun({ code, stdout, stderr });
      },
    );
  });
}

describe('npm run users', () => {
  let dynamo: LocalDynamo;
  let client: DynamoDBClient;
  let store: DynamoStore;
  const tableName = 'xmpp-users-cli-test';
  const temporaryDirs: string[] = [];
  /** Options that point the command at the test table. */
  let remote: string[];

  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'xmpp-users-cli-'));
    temporaryDirs.push(dir);
    return dir;
  };

  /** The user's keys, read fresh (DynamoStore does not cache users). */
  async function keysOf(user: string) {
    const record = await store.getUser(user);
    assert.ok(record, `${user} is stored`);
    return record.scram;
  }

  async function assertPassword(user: string, password: string, matches: boolean) {
    const scram = await keysOf(user);
    for (const hash of SCRAM_HASHES) {
      const keys = scram[hash];
      assert.equal(verifyPassword(hash, keys, password), matches, `${hash} keys for "${password}"`);
    }
  }

  before(async () => {
    dynamo = await startDynamoLocal({});
    client = new DynamoDBClient({
      endpoint: dynamo.endpoint,
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
    });
    await ensureTable(client, tableName);
    store = new DynamoStore(client, tableName);
    remote = ['--table', tableName, '--endpoint', dynamo.endpoint, '--region', 'us-east-1'];
  });

  after(async () => {
    for (const dir of temporaryDirs) rmSync(dir, { recursive: true, force: true });
    client?.destroy();
    await dynamo?.stop();
  });

  test('add creates a user whose SCRAM keys match the password', async () => {
    const run = await users('add', 'alice@localhost', 'wonderland', ...remote);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), 'added alice@localhost');
    await assertPassword('alice@localhost', 'wonderland', true);
    await assertPassword('alice@localhost', 'Wonderland', false);
  });

  test('the stored item holds keys only, with the default 4096 iterations', async () => {
    const { Item } = await client.send(
      new GetItemCommand({
        TableName: tableName,
        Key: { pk: { S: 'USER#alice@localhost' }, sk: { S: '#USER' } },
      }),
    );
    assert.ok(Item);
    assertOnlyScramKeys(Item, 'wonderland');
    const scram = await keysOf('alice@localhost');
    for (const hash of SCRAM_HASHES) assert.equal(scram[hash].iterations, 4096);
    assert.notEqual(scram['SHA-1'].salt, scram['SHA-256'].salt, 'each hash has its own salt');
  });

  test('add of an existing user updates it and keeps createdAt', async () => {
    const before = await store.getUser('alice@localhost');
    const run = await users('add', 'alice@localhost', 'looking-glass', ...remote);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), 'updated alice@localhost');
    await assertPassword('alice@localhost', 'looking-glass', true);
    await assertPassword('alice@localhost', 'wonderland', false);
    assert.equal((await store.getUser('alice@localhost'))?.createdAt, before?.createdAt);
  });

  test('passwd of an unknown user fails with exit code 2 and creates nothing', async () => {
    const run = await users('passwd', 'nobody@localhost', 'secret', ...remote);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /no such user: nobody@localhost/);
    assert.equal(run.stdout, '');
    assert.equal(await store.getUser('nobody@localhost'), undefined);
  });

  test('passwd changes the password: the new one matches, the old one does not', async () => {
    const before = await keysOf('alice@localhost');
    const run = await users('passwd', 'alice@localhost', 'rabbit hole', ...remote);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), 'updated alice@localhost');
    await assertPassword('alice@localhost', 'rabbit hole', true);
    await assertPassword('alice@localhost', 'looking-glass', false);
    const after = await keysOf('alice@localhost');
    for (const hash of SCRAM_HASHES) assert.notEqual(after[hash].salt, before[hash].salt, 'a new salt');
  });

  test('add normalises the JID to the bare JID the server uses, and honours --iterations', async () => {
    const run = await users('add', 'Bob@LocalHost', 'builder', '--iterations', '5000', ...remote);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), 'added bob@localhost');
    await assertPassword('bob@localhost', 'builder', true);
    const scram = await keysOf('bob@localhost');
    for (const hash of SCRAM_HASHES) assert.equal(scram[hash].iterations, 5000);
  });

  test('list prints the users one per line, sorted, and nothing else', async () => {
    // Neither sessions nor the server secret show up as users.
    await store.putSession({
      user: 'dave@localhost',
      resource: 'desk',
      connectionId: 'c1',
      available: true,
      priority: 0,
      expiresAt: Math.floor(Date.now() / 1000) + 3600,
    });
    await store.getServerSecret();
    const run = await users('list', ...remote);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'alice@localhost\nbob@localhost\n');
  });

  test('delete removes a user and what the account kept; deleting an unknown user fails with exit code 2', async () => {
    const item = (contact: string) => ({
      contact,
      groups: [],
      subscription: 'both' as const,
      askOut: false,
      pendingIn: false,
      listed: true,
    });
    await store.saveRosterItem('bob@localhost', item('alice@localhost'), { adds: true, limit: 10 });
    await store.saveRosterItem('alice@localhost', item('bob@localhost'), { adds: true, limit: 10 });
    await store.block('bob@localhost', ['spam@localhost']);
    const run = await users('delete', 'bob@localhost', ...remote);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), 'deleted bob@localhost');
    assert.equal(await store.getUser('bob@localhost'), undefined);
    assert.deepEqual((await store.getRoster('bob@localhost')).items, []);
    assert.deepEqual(await store.getBlocklist('bob@localhost'), []);
    assert.equal(await store.getRosterItem('alice@localhost', 'bob@localhost'), undefined);

    const again = await users('delete', 'bob@localhost', ...remote);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /no such user: bob@localhost/);
    assert.equal(again.stdout, '');
  });

  test('an invalid JID fails with exit code 2 and stores nothing', async () => {
    // A domain alone, and a full JID: parseJid accepts both, the command must not.
    const runs = await Promise.all(
      ['localhost', 'erin@localhost/desk'].map(async (jid) => ({
        jid,
        run: await users('add', jid, 'secret', ...remote),
      })),
    );
    for (const { jid, run } of runs) {
      assert.equal(run.code, 2, `exit code for ${jid}`);
      assert.match(run.stderr, /is not a bare JID/, `message for ${jid}`);
      assert.equal(run.stdout, '');
    }
    assert.deepEqual(await store.listUsers(), ['alice@localhost']);
  });

  test('fewer than 4096 iterations, or not a number, fails with exit code 2', async () => {
    const runs = await Promise.all(
      ['4095', 'many'].map(async (iterations) => ({
        iterations,
        run: await users('add', 'erin@localhost', 'secret', '--iterations', iterations, ...remote),
      })),
    );
    for (const { iterations, run } of runs) {
      assert.equal(run.code, 2, `exit code for --iterations ${iterations}`);
      assert.match(run.stderr, /--iterations must be a whole number of at least 4096/);
    }
    assert.equal(await store.getUser('erin@localhost'), undefined);
  });

  test('--table without --region (and no AWS_REGION) fails with exit code 2', async () => {
    const run = await users('list', '--table', tableName);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--region is needed with --table/);
  });

  describe('the local system, found through local.json', () => {
    test('with local.json in the data dir, no --table is needed', async () => {
      const dataDir = tempDir();
      writeFileSync(
        join(dataDir, 'local.json'),
        JSON.stringify({ dynamoEndpoint: dynamo.endpoint, tableName, domain: 'localhost' }),
      );
      const list = await users('list', '--data-dir', dataDir);
      assert.equal(list.code, 0, list.stderr);
      assert.equal(list.stdout, 'alice@localhost\n');
    });

    test('without it, the command says to start the system with npm start', async () => {
      const run = await users('list', '--data-dir', tempDir());
      assert.equal(run.code, 2);
      assert.match(run.stderr, /npm start/);
      assert.match(run.stderr, /No local system is running/);
      assert.equal(run.stdout, '');
    });
  });
});
