// `npm run users -- add|passwd|delete|list`: manages accounts in the local system or,
// with --table and --region, in a deployed stack. Only SCRAM keys are stored.
import { parseArgs } from 'node:util';
import { DEFAULTS } from '../lib/config.ts';
import { parseJid } from '../lib/jid.ts';
import { DynamoStore } from '../lib/store/dynamo.ts';
import { deleteAccount, openTable, setPassword, type TableTarget, UsageError } from './accounts.ts';

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

function target(): TableTarget {
  try {
    return openTable({
      table: values.table,
      region: values.region,
      endpoint: values.endpoint,
      dataDir: values['data-dir'],
    });
  } catch (error) {
    if (error instanceof UsageError) fail(error.message);
    throw error;
  }
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
      if (command === 'passwd' && !(await store.getUser(user))) fail(`no such user: ${user}`);
      console.log(`${await setPassword(store, user, password, iterations)} ${user}`);
      break;
    }
    case 'delete': {
      const user = userJid(jidText);
      if (!(await deleteAccount(store, user))) fail(`no such user: ${user}`);
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
