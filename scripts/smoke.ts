// `npm run smoke`: checks a running stack end to end with two temporary users (see
// scripts/smoke-checks.ts), prints a table and exits non-zero when any check failed.
import { parseArgs } from 'node:util';
import { DynamoStore } from '../lib/store/dynamo.ts';
import { openTable, type TableTarget, UsageError } from './accounts.ts';
import { formatResults, passed, runSmoke } from './smoke-checks.ts';

const USAGE = `Usage: npm run smoke -- --url URL --domain DOMAIN [options]
Creates two temporary users, checks login, a burst of 50 messages in order, a message with its
server receipt and delivery receipt, an offline message drained at login and a room with
history, deletes the users and prints the results. Exit code 0 when every check passed.
Options:
  --url URL                  the WebSocket URL (the stack's WebSocketUrl output)
  --domain NAME              the XMPP domain (the stack's XmppDomain output); default: the local system's
  --muc-domain NAME          the group-chat service (default conference.<domain>)
  --upload-domain NAME       the XEP-0363 upload service (default upload.<domain>)
  --table NAME               the deployed stack's table (output TableName); default: the running local system
  --region REGION            the deployed stack's region (credentials from the usual AWS sources)
  --dynamodb-endpoint URL    a DynamoDB endpoint (DynamoDB Local)
  --data-dir DIR             where the local system keeps local.json (default .data)
  --wait-seconds N           longest wait for any one answer (default 20)
  --total-seconds N          deadline of the whole run before cleanup (default 180)
  --help                     this text`;

function fail(message: string): never {
  console.error(`${message}\n\n${USAGE}`);
  process.exit(2);
}

function parseCommandLine() {
  try {
    return parseArgs({
      options: {
        url: { type: 'string' },
        domain: { type: 'string' },
        'muc-domain': { type: 'string' },
        'upload-domain': { type: 'string' },
        table: { type: 'string' },
        region: { type: 'string' },
        'dynamodb-endpoint': { type: 'string' },
        'data-dir': { type: 'string', default: process.env.DATA_DIR ?? '.data' },
        'wait-seconds': { type: 'string', default: '20' },
        'total-seconds': { type: 'string', default: '180' },
        help: { type: 'boolean', default: false },
      },
    }).values;
  } catch (error) {
    return fail((error as Error).message);
  }
}

function seconds(text: string, flag: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) fail(`${flag} must be a positive number of seconds`);
  return value * 1000;
}

const values = parseCommandLine();
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
if (!values.url) fail('--url is needed');
const waitMs = seconds(values['wait-seconds'], '--wait-seconds');
const totalMs = seconds(values['total-seconds'], '--total-seconds');

let target: TableTarget;
try {
  target = openTable({
    table: values.table,
    region: values.region,
    endpoint: values['dynamodb-endpoint'],
    dataDir: values['data-dir'],
  });
} catch (error) {
  if (error instanceof UsageError) fail(error.message);
  throw error;
}
const domain = values.domain ?? target.domain;
if (!domain) fail('--domain is needed');

// Cleanup has its own bounded waits; this only stops a run that hangs where nothing can.
const watchdog = setTimeout(
  () => {
    console.error('the smoke test did not end in time');
    process.exit(1);
  },
  totalMs + 8 * waitMs,
);
watchdog.unref();

console.log(`Smoke test of ${values.url} (${domain})\n`);
try {
  const results = await runSmoke({
    url: values.url,
    domain,
    mucDomain: values['muc-domain'],
    uploadDomain: values['upload-domain'],
    store: new DynamoStore(target.client, target.tableName),
    waitMs,
    totalMs,
  });
  console.log(formatResults(results));
  process.exitCode = passed(results) ? 0 : 1;
} finally {
  target.client.destroy();
}
// Sessions that failed to end may keep sockets open.
process.exit();
