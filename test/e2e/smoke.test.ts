// `npm run smoke` against the local system: the command passes every check and exits 0 with its
// table, the temporary users are gone afterwards, a check that fails makes the run fail and
// still deletes the users, and usage mistakes exit 2.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatResults, passed, runSmoke } from '../../scripts/smoke-checks.ts';
import { useLocalSystem } from '../helpers.ts';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const CHECKS = [
  'create two temporary users',
  'login (SASL, bind, presence)',
  'burst of 50 messages in order',
  'message and its server receipt',
  'delivery receipt (XEP-0184) back to the sender',
  'offline message drained at login',
  'room with history (3 messages)',
  'file upload (XEP-0363): slot, PUT, link, GET',
  'delete the users',
];

/** Runs scripts/smoke.ts with these arguments; never rejects on a failing exit code. */
function smoke(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
  for (const name of ['AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_PROFILE', 'DATA_DIR']) delete env[name];
  return new Promise((resolveRun) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'scripts/smoke.ts', ...args],
      { cwd: ROOT, env, timeout: 400_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolveRun({ code, stdout, stderr });
      },
    );
  });
}

describe('npm run smoke', () => {
  const system = useLocalSystem();
  const smokeUsers = async () =>
    (await system().context.store.listUsers()).filter((user) => user.startsWith('smoke-'));

  test('every check passes against the local system, and the users are deleted', async () => {
    const run = await smoke(
      '--url',
      system().url,
      '--domain',
      system().config.domain,
      '--table',
      system().tableName,
      '--dynamodb-endpoint',
      system().dynamo.endpoint,
      '--wait-seconds',
      '30',
      '--total-seconds',
      '300',
    );
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    const rows = run.stdout
      .split('\n')
      .map((line) => /^(\S.*?)\s{2,}(ok|failed|skipped)\s+(\d*)$/.exec(line))
      .filter((match) => match !== null);
    assert.deepEqual(
      rows.map(([, check, result]) => [check, result]),
      CHECKS.map((check) => [check, 'ok']),
      run.stdout,
    );
    assert.deepEqual(await smokeUsers(), []);
  });

  test('a failing check fails the run, the rest are skipped, and the users are deleted all the same', async () => {
    // Users of a domain the server does not serve: their login fails.
    const results = await runSmoke({
      url: system().url,
      domain: 'elsewhere.example',
      store: system().context.store,
      waitMs: 30_000,
      totalMs: 300_000,
    });
    assert.equal(passed(results), false);
    assert.deepEqual(
      results.map((result) => [result.check, result.result]),
      CHECKS.map((check, index) => [
        check,
        index === 0 || index === CHECKS.length - 1 ? 'ok' : index === 1 ? 'failed' : 'skipped',
      ]),
      formatResults(results),
    );
    assert.deepEqual(await smokeUsers(), []);
  });

  test('--help, and usage mistakes exit 2', async () => {
    const help = await smoke('--help');
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: npm run smoke/);
    const noUrl = await smoke('--domain', 'localhost', '--table', 't', '--region', 'eu-west-1');
    assert.equal(noUrl.code, 2);
    assert.match(noUrl.stderr, /--url is needed/);
    const noRegion = await smoke('--url', 'wss://example.invalid', '--table', 't');
    assert.equal(noRegion.code, 2);
    assert.match(noRegion.stderr, /--region is needed/);
  });
});
