// `npm run smoke` against the local system: every check passes, the temporary users and
// their room are gone afterwards, and a check that fails makes the run fail and still cleans up.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatResults, passed, runSmoke } from '../../scripts/smoke-checks.ts';
import { useLocalSystem } from '../helpers.ts';

describe('npm run smoke', () => {
  const system = useLocalSystem();
  const smokeUsers = async () =>
    (await system().context.store.listUsers()).filter((user) => user.startsWith('smoke-'));

  test('every check passes against the local system, and the users are deleted', async () => {
    const results = await runSmoke({
      url: system().url,
      domain: system().config.domain,
      store: system().context.store,
      waitMs: 30_000,
      totalMs: 300_000,
    });
    assert.ok(passed(results), formatResults(results));
    assert.deepEqual(
      results.map((result) => result.check),
      [
        'create two temporary users',
        'login (SASL, bind, presence)',
        'burst of 50 messages in order',
        'message and its server receipt',
        'delivery receipt (XEP-0184) back to the sender',
        'offline message drained at login',
        'room with history (3 messages)',
        'delete the users',
      ],
    );
    assert.deepEqual(await smokeUsers(), []);
  });

  test('a failing check fails the run, and the users are deleted all the same', async () => {
    const results = await runSmoke({
      url: system().url,
      domain: system().config.domain,
      mucDomain: 'nowhere.localhost',
      store: system().context.store,
      waitMs: 30_000,
      totalMs: 300_000,
    });
    assert.equal(passed(results), false);
    const room = results.find((result) => result.check.startsWith('room'));
    assert.equal(room?.result, 'failed', formatResults(results));
    assert.match(room?.detail ?? '', /got an error/);
    assert.equal(results.at(-1)?.check, 'delete the users');
    assert.equal(results.at(-1)?.result, 'ok', formatResults(results));
    assert.deepEqual(await smokeUsers(), []);
  });
});
