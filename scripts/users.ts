// `npm run users -- add|passwd|delete|list`: manages accounts in the local system or,
// with --table and --region, in a deployed stack. Only SCRAM keys are stored.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../infra/local/dynamodb.ts';
import { DEFAULTS } from '../lib/config.ts';
import { parseJid } from '../lib/jid.ts';
import { makeCredentials } from '../lib/scram.ts';
import { DynamoStore } from '../lib/store/dynamo.ts';

const USAGE = `Usage: npm run users -- <command> [options]
  add JID PASSWORD      create a user, or set the password of an existing one
  passwd JID PASSWORD   change a user's password
  delete JID            remove a user
  list                  list users
Options:
  --table NAME          the deployed stack's table (output TableName); default: the running local system
  --region REGION       the deployed stack's region (credentials from the usual AWS sources)
  --endpoint URL        a DynamoDB endpoint (DynamoDB Local)
  --iterations N        SCRAM iteration count (default ${DEFAULTS.scramIterations}, at least 4096)
  --data-dir DIR        where the local system keeps local.json (default .data)
A password that starts with "-" goes after "--": npm run users -- add bob@localhost -- -secret`;

function parseCommandLine() {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        table: { type: 'string' },
        region: { type: 'string' },
        endpoint: { type: 'string' },
        iterations: { type: 'string', default: String(DEFAULTS.scramIterations) },
        'data-dir': { type: 'string', default: process.env.DATA_DIR ?? '.data' },
        help: { type: 'boolean', default: false },
      },
    });
  } catch (error) {
    return fail((error as Error).message);
  }
}

function fail(message: string): never {
  console.error(`${message}\n\n${USAGE}`);
  process.exit(2);
}

const { values, positionals } = parseCommandLine();

function target(): { client: DynamoDBClient; tableName: string } {
  if (values.table) {
    const region = values.region ?? process.env.AWS_REGION;
    if (!region && !values.endpoint) fail('--region is needed with --table');
    return {
      client: new DynamoDBClient({
        region: region ?? LOCAL_REGION,
        ...(values.endpoint ? { endpoint: values.endpoint, credentials: LOCAL_CREDENTIALS } : {}),
      }),
      tableName: values.table,
    };
  }
  const runtimeFile = resolve(values['data-dir'], 'local.json');
  if (!existsSync(runtimeFile))
    fail('No local system is running (start it with `npm start`), and no --table was given.');
  const local = JSON.parse(readFileSync(runtimeFile, 'utf8')) as {
    dynamoEndpoint: string;
    tableName: string;
  };
  return {
    client: new DynamoDBClient({
      endpoint: local.dynamoEndpoint,
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
    }),
    tableName: local.tableName,
  };
}

function userJid(text: string | undefined): string {
  const jid = text ? parseJid(text) : undefined;
  if (!jid?.local || jid.resource) fail(`"${text ?? ''}" is not a bare JID like alice@localhost`);
  return `${jid.local}@${jid.domain}`;
}

const [command, jidText, password] = positionals;
if (values.help || !command) {
  console.log(USAGE);
  process.exit(command ? 0 : 2);
}
const iterations = Number(values.iterations);
if (!Number.isInteger(iterations) || iterations < 4096)
  fail('--iterations must be a whole number of at least 4096');

const { client, tableName } = target();
const store = new DynamoStore(client, tableName);
try {
  switch (command) {
    case 'add':
    case 'passwd': {
      const user = userJid(jidText);
      if (!password) fail('a password is needed');
      const existing = await store.getUser(user);
      if (command === 'passwd' && !existing) fail(`no such user: ${user}`);
      await store.putUser({
        user,
        scram: makeCredentials(password, iterations),
        createdAt: existing?.createdAt ?? Date.now(),
      });
      console.log(`${existing ? 'updated' : 'added'} ${user}`);
      break;
    }
    case 'delete': {
      const user = userJid(jidText);
      if (!(await store.deleteUser(user))) fail(`no such user: ${user}`);
      console.log(`deleted ${user}`);
      break;
    }
    case 'list':
      for (const user of await store.listUsers()) console.log(user);
      break;
    default:
      fail(`unknown command: ${command}`);
  }
} finally {
  client.destroy();
}
