// The conformance suite must pass correct backends and fail each deliberately broken one
// (fixtures/broken-backends.ts, fixtures/toy-appliance.ts) at the case that catches its bug.
import { spawn } from 'node:child_process';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('conformance suite catches broken backends');

function runFixture(which: string): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--conditions=klb-source', '--import', 'tsx', 'packages/testing/test/fixtures/broken-backends.ts', which],
      { env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('close', (status) => resolve({ status, output }));
  });
}

for (const correct of ['recording', 'toy']) {
  test(`the correct ${correct} backend passes every case`, async () => {
    const { status, output } = await runFixture(correct);
    assert.is(status, 0, output);
    assert.not.match(output, /FAIL/);
  });
}

const broken: Array<[fixture: string, failingCase: RegExp]> = [
  ['remove-absent-fails', /remove deletes it; removing again, or something never created, succeeds/],
  ['ensure-duplicates', /ensure is idempotent/],
  ['untyped-errors', /honours declared capabilities/],
  ['toy:accepts-unsupported-protocol', /honours declared capabilities/],
  ['toy:ignores-source-ranges', /honours declared capabilities: PROXY protocol and source ranges/],
  ['toy:stale-listener', /observed: a removed listener leaves nothing behind/],
  ['toy:stale-pool', /observed: a removed listener leaves nothing behind/],
  ['toy:targets-ignored', /observed: ensure realises every listener, sending to the ready targets only/],
  ['toy:not-ready-targets', /observed: ensure realises every listener, sending to the ready targets only/],
  ['toy:targets-frozen', /observed: target changes are realised/],
  ['toy:remove-leaves-pools', /observed: remove leaves nothing on the system/],
  ['toy:list-error-empty', /faults: list\(\) fails, never answers \[\], when the system fails to answer/],
  ['toy:list-malformed-empty', /faults: list\(\) fails, never answers \[\], when the answer is malformed/],
  ['toy:write-error-swallowed', /faults: ensure fails while writes fail/],
  ['toy:remove-swallows-errors', /faults: remove fails while writes fail/],
  ['deaf-watch', /watch: a change of the data plane names its load balancer/],
  ['unstoppable-watch', /watch: a change of the data plane names its load balancer, and nothing once stopped/],
];

for (const [fixture, failingCase] of broken) {
  test(`fails the broken backend ${fixture}, at the case that catches it, showing the spec sent`, async () => {
    const { status, output } = await runFixture(fixture);
    assert.is(status, 1, output);
    const failures = output.split('\n').filter((line) => line.includes(`FAIL  ${fixture}`));
    assert.ok(
      failures.some((line) => failingCase.test(line)),
      `expected a failure of ${failingCase}, got:\n${failures.join('\n')}`,
    );
    assert.match(output, /last spec sent to ensure\(\) \(call \d+\): \{"ref":/, 'the failure shows the spec sent');
  });
}

test.run();
