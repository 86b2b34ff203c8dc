import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KlbError, type Logger, silentLogger } from '@klb/core';

/** A kernel setting could not be written (the daemon lacks NET_ADMIN, or /proc/sys is read-only). */
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
 * Sets `key` to `value` through `procSys` (default `/proc/sys`) and reads it back. `net.*`
 * settings apply to the network namespace the daemon runs in only.
 *
 * @throws SysctlError when it cannot be written or does not stick.
 */
export async function setSysctl(key: string, value: string, procSys = '/proc/sys'): Promise<void> {
  if (!/^[a-z0-9_]+(\.[a-z0-9_]+)+$/.test(key)) throw new SysctlError(key, 'is not a sysctl name');
  const file = join(procSys, ...key.split('.'));
  try {
    await writeFile(file, `${value}\n`);
    const now = (await readFile(file, 'utf8')).trim();
    if (now !== value) throw new Error(`reads back as ${now}`);
  } catch (err) {
    throw new SysctlError(key, `could not set it to ${value}: ${(err as Error).message}`, err);
  }
}

/**
 * Turns on non-local binds for IPv4 and IPv6. IPv6's is skipped (with a warning) when the kernel
 * has IPv6 disabled; returns the keys that were set.
 *
 * @throws SysctlError when a present setting cannot be written.
 */
export async function enableNonlocalBind(procSys = '/proc/sys', logger: Logger = silentLogger): Promise<string[]> {
  const set: string[] = [];
  for (const key of NONLOCAL_BIND_SYSCTLS) {
    if (!existsSync(join(procSys, ...key.split('.')))) {
      logger.warn({ key }, 'sysctl not present (IPv6 disabled?); skipped');
      continue;
    }
    await setSysctl(key, '1', procSys);
    set.push(key);
  }
  logger.info({ set }, 'non-local binds enabled');
  return set;
}
