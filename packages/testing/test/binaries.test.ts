// Finding the real components: requireComponents' messages, and the `klb-testing apiserver`
// command, run as a process with environments that lack Go, etcd or a cached kube-apiserver.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ComponentMissingError, KUBE_VERSION, requireComponents } from '@klb/testing';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('binaries: requireComponents and klb-testing apiserver');
let dir = '';
test.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'klb-binaries-'));
});
test.after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `klb-testing <args>` from the package's source with `env` and a PATH where nothing is found. */
function cli(
  args: string[],
  env: Record<string, string>,
): Promise<{ status: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--conditions=klb-source', '--import', 'tsx', 'packages/testing/src/cli.ts', ...args],
      {
        env: { HOME: dir, PATH: '/nonexistent', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (status) => resolve({ status, out, err }));
  });
}

test('under CI=true a missing component throws once, with the same words as the skip line', () => {
  const saved = { CI: process.env.CI, KLB_ETCD: process.env.KLB_ETCD };
  try {
    process.env.KLB_ETCD = join(dir, 'no-etcd');
    delete process.env.CI;
    const skip = requireComponents('etcd');
    process.env.CI = 'true';
    let thrown: unknown;
    try {
      requireComponents('etcd');
    } catch (err) {
      thrown = err;
    }
    assert.instance(thrown, ComponentMissingError);
    const message = (thrown as Error).message;
    assert.is(`skip: ${message}`, skip);
    assert.is(message.split('does not exist').length, 2, 'said once');
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});

test('klb-testing apiserver without a cached build and without Go names Go and exits 1', async () => {
  const { status, out, err } = await cli(['apiserver'], { KLB_CACHE_DIR: join(dir, 'empty') });
  assert.is(status, 1);
  assert.is(out, '');
  assert.match(err, `kube-apiserver ${KUBE_VERSION} is not in ${join(dir, 'empty')}`);
  assert.match(err, 'needs the Go toolchain');
});

test('klb-testing apiserver prints both paths from the cache, and names etcd when it is missing', async () => {
  const cache = join(dir, 'cache');
  const bin = join(cache, 'kube', KUBE_VERSION, 'kube-apiserver');
  mkdirSync(dirname(bin), { recursive: true });
  writeFileSync(bin, '', { mode: 0o755 });
  const etcd = join(dir, 'etcd');
  writeFileSync(etcd, '', { mode: 0o755 });
  const found = await cli(['apiserver', '--no-build'], { KLB_CACHE_DIR: cache, KLB_ETCD: etcd });
  assert.is(found.status, 0, found.err);
  assert.is(found.out, `KLB_KUBE_APISERVER=${bin}\nKLB_ETCD=${etcd}\n`);
  const noEtcd = await cli(['apiserver', '--no-build'], { KLB_CACHE_DIR: cache });
  assert.is(noEtcd.status, 1);
  assert.match(noEtcd.err, 'etcd is not installed: apt-get install etcd-server');
  const usage = await cli(['apiserve'], {});
  assert.is(usage.status, 2);
  assert.match(usage.err, 'usage: klb-testing apiserver');
});

test.run();
