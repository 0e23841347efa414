// infra/bundle.ts: how the stack bundles every function. The bundles themselves run in
// test/synth (each in a process of its own, as Lambda runs them); this checks their shape.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { bundleFunction, HANDLER, startupFiles } from '../../infra/bundle.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** What each function imports on first use (functions/runtime.ts, uploads.ts), never at its start. */
const ON_FIRST_USE: Record<string, readonly string[]> = {
  // $connect never posts nor queues on its path; nor does any function need the credential
  // providers other than the environment's.
  'functions/connect.ts': [
    'client-apigatewaymanagementapi',
    'client-sqs',
    'nested-clients/dist-es/submodules/sts',
  ],
  // The frames function posts on most frames, queues rarely (a long drain), presigns on upload.
  'functions/frames.ts': ['client-sqs', 'client-s3', 'nested-clients/dist-es/submodules/sts'],
};

for (const [entry, clients] of Object.entries(ON_FIRST_USE)) {
  test(`${entry} is split: what it imports on first use is not loaded at its start`, (t) => {
    const outdir = mkdtempSync(join(tmpdir(), 'bundle-test-'));
    t.after(() => rmSync(outdir, { recursive: true, force: true }));
    const metafile = bundleFunction(join(ROOT, entry), outdir);

    // Lambda imports the module the handler setting names; the rest sits in chunks/.
    const handlerModule = `${HANDLER.slice(0, HANDLER.lastIndexOf('.'))}.mjs`;
    assert.deepEqual(readdirSync(outdir).sort(), ['chunks', handlerModule, `${handlerModule}.map`]);

    const startup = startupFiles(metafile);
    assert.match(startup[0] ?? '', /(^|\/)index\.mjs$/);
    const inputsOf = (outputs: readonly string[]) =>
      outputs.flatMap((output) => Object.keys(metafile.outputs[output]?.inputs ?? {}));
    const atStart = inputsOf(startup);
    const later = inputsOf(Object.keys(metafile.outputs).filter((output) => !startup.includes(output)));
    assert.ok(atStart.some((input) => input.includes('@aws-sdk/client-dynamodb/')));
    for (const client of clients) {
      assert.ok(!atStart.some((input) => input.includes(`@aws-sdk/${client}/`)), `${client} at start`);
      assert.ok(
        later.some((input) => input.includes(`@aws-sdk/${client}/`)),
        `${client} in a chunk`,
      );
    }

    // The asset, source maps aside, stays under 1 MB with the SDK inside.
    const files = readdirSync(outdir, { recursive: true, encoding: 'utf8' });
    const bytes = files
      .filter((file) => file.endsWith('.mjs'))
      .reduce((sum, file) => sum + statSync(join(outdir, file)).size, 0);
    assert.ok(bytes < 1024 * 1024, `${bytes} bytes`);
  });
}
