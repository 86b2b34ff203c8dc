import { spawnSync } from 'node:child_process';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('conformance suite catches broken backends');

function runBroken(which: string): { status: number | null; output: string } {
  const res = spawnSync(
    process.execPath,
    ['--conditions=klb-source', '--import', 'tsx', 'packages/testing/test/fixtures/broken-backends.ts', which],
    { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } },
  );
  return { status: res.status, output: `${res.stdout}${res.stderr}` };
}

test('a backend whose remove fails on an absent load balancer fails the suite', () => {
  const { status, output } = runBroken('remove-absent-fails');
  assert.is(status, 1);
  assert.match(output, /FAIL.*remove deletes it; removing again, or something never created, succeeds/);
});

test('a backend that duplicates on a repeated ensure fails the suite', () => {
  const { status, output } = runBroken('ensure-duplicates');
  assert.is(status, 1);
  assert.match(output, /FAIL.*ensure is idempotent/);
});

test('a backend that throws untyped errors for unsupported protocols fails the suite', () => {
  const { status, output } = runBroken('untyped-errors');
  assert.is(status, 1);
  assert.match(output, /FAIL.*honours declared capabilities/);
});

test.run();
