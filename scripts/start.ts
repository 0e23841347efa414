// `npm start`: the whole system on this machine, data kept under .data/ between runs.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { hasFaults, parseFaults } from '../infra/local/faults.ts';
import { awsLatencyWanted } from '../infra/local/latency.ts';
import { startSynthesizedSystem } from '../infra/local/synth-system.ts';
import { startLocalSystem } from '../infra/local/system.ts';
import { parsePushServices } from '../lib/config.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.XMPP_PORT ?? '5280' },
    host: { type: 'string', default: process.env.XMPP_HOST ?? '127.0.0.1' },
    domain: { type: 'string', default: process.env.XMPP_DOMAIN ?? 'localhost' },
    'muc-domain': { type: 'string', default: process.env.MUC_DOMAIN },
    'dynamodb-port': { type: 'string', default: process.env.DYNAMODB_PORT ?? '8001' },
    'data-dir': { type: 'string', default: process.env.DATA_DIR ?? '.data' },
    'in-memory': { type: 'boolean', default: false },
    'log-level': { type: 'string', default: process.env.LOG_LEVEL ?? 'info' },
    'message-policy': { type: 'string', default: process.env.MESSAGE_POLICY ?? 'open' },
    'max-frames-per-second': { type: 'string', default: process.env.MAX_FRAMES_PER_SECOND },
    'max-bytes-per-second': { type: 'string', default: process.env.MAX_BYTES_PER_SECOND },
    'max-sessions-per-user': { type: 'string', default: process.env.MAX_SESSIONS_PER_USER },
    'auth-timeout': { type: 'string', default: process.env.AUTH_TIMEOUT_SECONDS },
    'archive-days': { type: 'string', default: process.env.ARCHIVE_DAYS },
    faults: { type: 'string', default: process.env.FAULTS ?? '' },
    'push-service': { type: 'string', multiple: true, default: [] },
    'push-events': { type: 'boolean', default: false },
    registration: { type: 'string', default: process.env.REGISTRATION ?? 'on' },
    'from-synth': { type: 'boolean', default: false },
    'aws-latency': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});

if (values.help) {
  console.log(`Usage: npm start -- [options]
  --port N            WebSocket port (default 5280, env XMPP_PORT)
  --host ADDR         address to listen on (default 127.0.0.1, env XMPP_HOST)
  --domain NAME       XMPP domain (default localhost, env XMPP_DOMAIN)
  --muc-domain NAME   group chat service (default conference.<domain>, env MUC_DOMAIN)
  --dynamodb-port N   DynamoDB Local port (default 8001, env DYNAMODB_PORT)
  --data-dir DIR      where data is kept (default .data, env DATA_DIR)
  --in-memory         keep nothing on disk
  --log-level LEVEL   debug, info, warn, error (default info, env LOG_LEVEL)
  --from-synth        run what cdk deploy ships: synthesise the stack, run each function's bundle
                      in its own process with its template environment (infra/local/synth-system.ts)
  --message-policy P  open, or roster: chats only from approved contacts (default open, env MESSAGE_POLICY)
  --max-frames-per-second N  frames one connection may send per second, bursts of 5 s of it
                      (default 200, env MAX_FRAMES_PER_SECOND); over it: policy-violation
  --max-bytes-per-second N   bytes one connection may send per second (default 262144,
                      env MAX_BYTES_PER_SECOND); over it: policy-violation
  --max-sessions-per-user N  sessions one user may have at once (default 10,
                      env MAX_SESSIONS_PER_USER); one more bind gets resource-constraint
  --auth-timeout S    seconds a connection has to authenticate before it is closed (default 30,
                      env AUTH_TIMEOUT_SECONDS)
  --registration on|off  XEP-0077 in-band registration: anyone may create an account from a
                      client or the chat page (default on, env REGISTRATION; on AWS it is off
                      unless the context parameter registration=open)
  --archive-days N    days the XEP-0313 message archive keeps messages; 0 turns it off
                      (default 365, env ARCHIVE_DAYS)
  --push-service JID=URL  a XEP-0357 push service clients may enable, and the app server's
                      endpoint its notifications are POSTed to (repeatable; env PUSH_SERVICES,
                      e.g. push.localhost=http://127.0.0.1:8080/push; none by default)
  --push-events       also put each notification on the local EventBridge stand-in
  --faults LIST       inject faults, e.g. ddb=0.05,post=0.05,kill=0.02 (shares of DynamoDB calls,
                      posts and frames invocations that fail; seed=N; env FAULTS; none by default)
  --aws-latency       add AWS's modelled latency per hop (API Gateway, SQS FIFO to Lambda, DynamoDB,
                      PostToConnection; docs/costs.md), env AWS_LATENCY=1; off by default`);
  process.exit(0);
}

const messagePolicy = values['message-policy'];
if (messagePolicy !== 'open' && messagePolicy !== 'roster') {
  console.error(`--message-policy must be open or roster, not "${messagePolicy}"`);
  process.exit(2);
}
if (values.registration !== 'on' && values.registration !== 'off') {
  console.error(`--registration must be on or off, not "${values.registration}"`);
  process.exit(2);
}
const registration = values.registration === 'on';
let faults: ReturnType<typeof parseFaults>;
try {
  faults = parseFaults(values.faults);
} catch (error) {
  console.error((error as Error).message);
  process.exit(2);
}
// The abuse limits (lib/limits.ts): only those given, the others keep lib/config.ts's defaults.
const limitFlags = {
  maxFramesPerSecond: 'max-frames-per-second',
  maxBytesPerSecond: 'max-bytes-per-second',
  maxSessionsPerUser: 'max-sessions-per-user',
  authTimeoutSeconds: 'auth-timeout',
} as const;
const limits: Partial<Record<keyof typeof limitFlags, number>> = {};
for (const [key, flag] of Object.entries(limitFlags) as [keyof typeof limitFlags, string][]) {
  const value = values[flag as keyof typeof values];
  if (value === undefined || value === '') continue;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed <= 0) {
    console.error(`--${flag} must be a positive integer, not "${value}"`);
    process.exit(2);
  }
  limits[key] = parsed;
}
const archiveText = values['archive-days'];
const archiveDays = archiveText === undefined || archiveText === '' ? undefined : Number(archiveText);
if (
  archiveDays !== undefined &&
  !(Number.isInteger(archiveDays) && archiveDays >= 0 && archiveDays <= 3650)
) {
  console.error(`--archive-days must be an integer from 0 to 3650, not "${archiveText}"`);
  process.exit(2);
}
const archive = archiveDays === undefined ? {} : { archiveDays };
const pushText = [process.env.PUSH_SERVICES ?? '', ...(values['push-service'] ?? [])]
  .filter(Boolean)
  .join(',');
let pushServices: Map<string, string>;
try {
  pushServices = parsePushServices(pushText);
} catch (error) {
  console.error(`--push-service: ${(error as Error).message}`);
  process.exit(2);
}
const push =
  pushServices.size > 0
    ? { pushServices: [...pushServices].map(([jid, url]) => `${jid}=${url}`).join(',') }
    : {};
const dataDir = resolve(values['data-dir']);
const domain = values.domain.toLowerCase();
if (values['from-synth'] && hasFaults(faults)) {
  console.error('--faults needs the in-process handlers: it cannot be combined with --from-synth');
  process.exit(2);
}
const awsLatency = awsLatencyWanted(values['aws-latency'] ? ['--aws-latency'] : []);
if (values['from-synth'] && awsLatency) {
  console.error('--aws-latency needs the in-process emulator: it cannot be combined with --from-synth');
  process.exit(2);
}
const logWarning = (message: string, fields?: Record<string, unknown>) =>
  console.error(JSON.stringify({ level: 'WARN', message, ...fields }));
const system = values['from-synth']
  ? await startSynthesizedSystem({
      port: Number(values.port),
      host: values.host,
      dynamoPort: Number(values['dynamodb-port']),
      dataDir: values['in-memory'] ? undefined : resolve(dataDir, 'dynamodb'),
      uploadsDir: values['in-memory'] ? undefined : resolve(dataDir, 'uploads'),
      // Stack parameters, as `cdk deploy -c` takes them.
      stack: {
        domain,
        mucDomain: values['muc-domain'] ?? `conference.${domain}`,
        messagePolicy,
        registration: registration ? 'open' : 'closed',
        ...limits,
        ...archive,
        ...push,
        ...(values['push-events'] ? { pushEvents: true } : {}),
      },
      logLevel: values['log-level'] as 'info',
      api: { log: logWarning },
      // Each function's log lines (JSON, as CloudWatch Logs would get them), after its name; the
      // metrics (EMF, one line per invocation) only at debug level.
      onOutput: (fn, line) => {
        if (values['log-level'] === 'debug' || !line.includes('"_aws":')) console.error(`${fn} ${line}`);
      },
    })
  : await startLocalSystem({
      port: Number(values.port),
      host: values.host,
      dynamoPort: Number(values['dynamodb-port']),
      dataDir: values['in-memory'] ? undefined : resolve(dataDir, 'dynamodb'),
      uploadsDir: values['in-memory'] ? undefined : resolve(dataDir, 'uploads'),
      config: {
        domain,
        mucDomain: values['muc-domain'] ?? `conference.${domain}`,
        messagePolicy,
        registration,
        ...limits,
        ...archive,
        pushServices,
      },
      pushEvents: values['push-events'],
      logLevel: values['log-level'] as 'info',
      api: { log: (message, fields) => console.error(JSON.stringify({ level: 'WARN', message, ...fields })) },
      ...(hasFaults(faults) ? { faults } : {}),
      awsLatency,
    });

// `npm run users` finds the running system through this file.
mkdirSync(dataDir, { recursive: true });
const runtimeFile = resolve(dataDir, 'local.json');
writeFileSync(
  runtimeFile,
  JSON.stringify({ dynamoEndpoint: system.dynamo.endpoint, tableName: system.tableName, domain }, null, 2),
);

const pageUrl = system.url.replace(/^ws:/, 'http:').replace(/\/xmpp-websocket$/, '/');
console.log(`serverless-xmpp is running
  Chat page:      ${pageUrl} (Converse.js${registration ? '; registration open' : ''})
  WebSocket URL:  ${system.url}
  XMPP domain:    ${system.config.domain}
  Group chat:     ${system.config.mucDomain}
  File upload:    ${system.config.uploadDomain} (XEP-0363; files ${values['in-memory'] ? 'in a temporary folder' : `in ${resolve(dataDir, 'uploads')}`})
  DynamoDB Local: ${system.dynamo.endpoint} (table ${system.tableName}${values['in-memory'] ? ', in memory' : `, data in ${dataDir}`})
${awsLatency ? '  AWS latency:    modelled per hop (infra/local/latency.ts, docs/costs.md)\n' : ''}${hasFaults(faults) ? `  Faults:         ${values.faults} (infra/local/faults.ts)\n` : ''}${pushBanner()}Add a user:  npm run users -- add alice@${system.config.domain} secret
Stop:        Ctrl-C`);

/** The push services and the key app servers check the notifications' signature with. */
function pushBanner(): string {
  if (pushServices.size === 0) return '';
  const secret =
    'push' in system && system.push
      ? system.push.secret
      : 'secrets' in system
        ? [...system.secrets.values()][0]
        : undefined;
  const services = [...pushServices].map(([jid, url]) => `${jid} -> ${url}`).join(', ');
  return `  Push:           ${services}\n                  signing secret (x-xmpp-push-signature): ${secret}\n`;
}

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  console.log('stopping…');
  rmSync(runtimeFile, { force: true });
  await system.stop();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
