// The daemon's sysctls against real files: a setting that already has the value is never written
// (so a read-only /proc/sys, as in a non-privileged container, is fine), a wrong one is written,
// and a wrong one that cannot be written is a SysctlError naming what the host must set. The
// read-only case uses a real read-only tmpfs (EROFS, as /proc/sys in a container), so it needs root.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { enableNonlocalBind, SysctlError, setSysctl } from '@klb/backend-keepalived-nginx';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('sysctl');

function procSysWith(dir: string, values: Record<string, string>): void {
  for (const [key, value] of Object.entries(values)) {
    const parts = key.split('.');
    mkdirSync(join(dir, ...parts.slice(0, -1)), { recursive: true });
    writeFileSync(join(dir, ...parts), `${value}\n`);
  }
}

/** A tmpfs holding `values`, remounted read-only: writes fail with EROFS like /proc/sys in a container. */
async function readOnlyProcSys(values: Record<string, string>): Promise<{ dir: string; close: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'klb-sysctl-ro-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'klb-sysctl-test', dir]);
  const close = async () => {
    execFileSync('umount', [dir]);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    procSysWith(dir, values);
    execFileSync('mount', ['-o', 'remount,ro', dir]);
  } catch (err) {
    await close();
    throw err;
  }
  return { dir, close };
}

const root = process.getuid?.() === 0;
if (!root) process.stdout.write('skip: the read-only /proc/sys cases mount a tmpfs and need root\n');
const asRoot = root ? test : test.skip;

test('a setting with another value is written and read back', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'klb-sysctl-'));
  try {
    procSysWith(dir, { 'net.ipv4.ip_nonlocal_bind': '0' });
    assert.is(await setSysctl('net.ipv4.ip_nonlocal_bind', '1', dir), true);
    assert.is(readFileSync(join(dir, 'net/ipv4/ip_nonlocal_bind'), 'utf8').trim(), '1');
    assert.is(await setSysctl('net.ipv4.ip_nonlocal_bind', '1', dir), false, 'second call writes nothing');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a name that is not a sysctl is refused', async () => {
  const err = await setSysctl('../etc/passwd', '1', tmpdir()).catch((e: unknown) => e);
  assert.instance(err, SysctlError);
});

asRoot('read-only /proc/sys with the right values: nothing is written, no error', async () => {
  const ro = await readOnlyProcSys({ 'net.ipv4.ip_nonlocal_bind': '1', 'net.ipv6.ip_nonlocal_bind': '1' });
  try {
    assert.is(await setSysctl('net.ipv4.ip_nonlocal_bind', '1', ro.dir), false);
    assert.equal(await enableNonlocalBind(ro.dir), ['net.ipv4.ip_nonlocal_bind', 'net.ipv6.ip_nonlocal_bind']);
  } finally {
    await ro.close();
  }
});

asRoot('read-only /proc/sys with a wrong value: a SysctlError that names what the host must set', async () => {
  const ro = await readOnlyProcSys({ 'net.ipv4.ip_nonlocal_bind': '1', 'net.ipv6.ip_nonlocal_bind': '0' });
  try {
    const err = await enableNonlocalBind(ro.dir).catch((e: unknown) => e);
    assert.instance(err, SysctlError);
    const sysctlErr = err as SysctlError;
    assert.is(sysctlErr.key, 'net.ipv6.ip_nonlocal_bind');
    assert.is(sysctlErr.code, 'SYSCTL_FAILED');
    assert.is(sysctlErr.retryable, false);
    assert.match(sysctlErr.message, 'is 0, must be 1');
    assert.match(sysctlErr.message, 'sysctl -w net.ipv6.ip_nonlocal_bind=1');
    assert.match(sysctlErr.message, 'EROFS');
  } finally {
    await ro.close();
  }
});

test('IPv6 disabled (no setting): skipped, IPv4 still set', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'klb-sysctl-'));
  try {
    procSysWith(dir, { 'net.ipv4.ip_nonlocal_bind': '0' });
    assert.equal(await enableNonlocalBind(dir), ['net.ipv4.ip_nonlocal_bind']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
