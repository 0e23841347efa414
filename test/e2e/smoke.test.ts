// `npm run smoke` against the local system: every check passes, the temporary users and
// their room are gone afterwards, and a check that fails makes the run fail and still cleans up.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatResults, passed, runSmoke } from '../../scripts/smoke-checks.ts';
import { useLocalSystem } from '../helpers.ts';

describe('npm run smoke', () => {
  const system = useLocalSystem();

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
    const users = await system().context.store.listUsers();
    assert.deepEqual(
      users.filter((user) => user.startsWith('smoke-')),
      [],
    );
  });
});
