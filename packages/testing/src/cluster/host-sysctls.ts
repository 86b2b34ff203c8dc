import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Host sysctls that a cluster's components change (the kubelet: `vm.*`, `kernel.panic*`,
 * `kernel.keys.*`; the CNI bridge plugin: `net.ipv4.ip_forward`; the harness itself:
 * `net.bridge.*`; the KLB daemon's init container: the non-local binds; kube-proxy:
 * `route_localnet`, conntrack limits).
 */
export const CLUSTER_HOST_SYSCTLS = [
  'vm.overcommit_memory',
  'vm.panic_on_oom',
  'kernel.panic',
  'kernel.panic_on_oops',
  'kernel.keys.root_maxkeys',
  'kernel.keys.root_maxbytes',
  'net.ipv4.ip_forward',
  'net.ipv4.conf.all.route_localnet',
  'net.bridge.bridge-nf-call-iptables',
  'net.bridge.bridge-nf-call-ip6tables',
  'net.ipv4.ip_nonlocal_bind',
  'net.ipv6.ip_nonlocal_bind',
  'net.netfilter.nf_conntrack_max',
  'net.netfilter.nf_conntrack_tcp_timeout_established',
  'net.netfilter.nf_conntrack_tcp_timeout_close_wait',
] as const;

function path(key: string): string {
  return join('/proc/sys', ...key.split('.'));
}

/** Reads the current value of every present sysctl in `keys`. */
export function recordSysctls(keys: readonly string[] = CLUSTER_HOST_SYSCTLS): Map<string, string> {
  const saved = new Map<string, string>();
  for (const key of keys) {
    if (existsSync(path(key))) saved.set(key, readFileSync(path(key), 'utf8').trim());
  }
  return saved;
}

/** Writes `value` to a present sysctl; returns false when it is not there. */
export function writeSysctl(key: string, value: string): boolean {
  if (!existsSync(path(key))) return false;
  writeFileSync(path(key), `${value}\n`);
  return true;
}

/** Puts back every recorded value that changed since; returns `key: now -> restored` lines. */
export function restoreSysctls(saved: ReadonlyMap<string, string>): string[] {
  const restored: string[] = [];
  for (const [key, value] of saved) {
    const now = readFileSync(path(key), 'utf8').trim();
    if (now === value) continue;
    writeFileSync(path(key), `${value}\n`);
    restored.push(`${key}: ${now} -> ${value}`);
  }
  return restored;
}
