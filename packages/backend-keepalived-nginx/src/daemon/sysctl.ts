import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KlbError, type Logger, silentLogger } from '@klb/core';

/** A kernel setting has the wrong value and could not be written (no NET_ADMIN, or /proc/sys is read-only). */
export class SysctlError extends KlbError {
  /** The sysctl, e.g. `net.ipv4.ip_nonlocal_bind`. */
  readonly key: string;

  /**
   * @param key - the sysctl.
   * @param message - what went wrong.
   * @param cause - the underlying error.
   */
  constructor(key: string, message: string, cause?: unknown) {
    super('SYSCTL_FAILED', `${key}: ${message}`, false, { cause });
    this.key = key;
  }
}

/** The sysctls that let nginx bind VIPs this node does not hold (yet): backups must already listen. */
export const NONLOCAL_BIND_SYSCTLS = ['net.ipv4.ip_nonlocal_bind', 'net.ipv6.ip_nonlocal_bind'] as const;

/**
 * Makes `key` read `value` through `procSys` (default `/proc/sys`). The setting is read first and
 * left alone when it already has the value, so a read-only `/proc/sys` (a non-privileged
 * container's) is fine once the host has set it; otherwise it is written and read back. `net.*`
 * settings apply to the network namespace the daemon runs in only (the node's, with host
 * networking).
 *
 * @returns true when it was written, false when it already had the value.
 * @throws SysctlError when it has another value and cannot be written or does not stick; the
 * message names the `sysctl -w` the host must run.
 */
export async function setSysctl(key: string, value: string, procSys = '/proc/sys'): Promise<boolean> {
  if (!/^[a-z0-9_]+(\.[a-z0-9_]+)+$/.test(key)) throw new SysctlError(key, 'is not a sysctl name');
  const file = join(procSys, ...key.split('.'));
  let before: string;
  try {
    before = (await readFile(file, 'utf8')).trim();
  } catch (err) {
    throw new SysctlError(key, `could not read it: ${(err as Error).message}`, err);
  }
  if (before === value) return false;
  try {
    await writeFile(file, `${value}\n`);
    const now = (await readFile(file, 'utf8')).trim();
    if (now !== value) throw new Error(`reads back as ${now}`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const readOnly = code === 'EROFS' || code === 'EACCES' || code === 'EPERM';
    const hint = readOnly
      ? ` (${procSys} is not writable here, as in a non-privileged container): the host must set it, ` +
        `e.g. \`sysctl -w ${key}=${value}\` on the node (the DaemonSet's init container does this)`
      : '';
    throw new SysctlError(
      key,
      `is ${before}, must be ${value}; could not set it: ${(err as Error).message}${hint}`,
      err,
    );
  }
  return true;
}

/**
 * Turns on non-local binds for IPv4 and IPv6, writing only the settings that are not on yet.
 * IPv6's is skipped (with a warning) when the kernel has IPv6 disabled; returns the keys that are
 * on.
 *
 * @throws SysctlError when a present setting is off and cannot be written.
 */
export async function enableNonlocalBind(procSys = '/proc/sys', logger: Logger = silentLogger): Promise<string[]> {
  const on: string[] = [];
  const written: string[] = [];
  for (const key of NONLOCAL_BIND_SYSCTLS) {
    if (!existsSync(join(procSys, ...key.split('.')))) {
      logger.warn({ key }, 'sysctl not present (IPv6 disabled?); skipped');
      continue;
    }
    if (await setSysctl(key, '1', procSys)) written.push(key);
    on.push(key);
  }
  logger.info({ on, written }, 'non-local binds enabled');
  return on;
}
