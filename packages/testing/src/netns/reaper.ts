import { ipQuietSync } from './ip.js';

/** Prefix of every network namespace a lab creates: `klbt-<pid>-<lab>-<node>`. */
export const NETNS_PREFIX = 'klbt-';

const live = new Map<string, readonly string[]>();
let hooksInstalled = false;

/** Sends SIGKILL to every process inside `netns` and deletes it; ignores what is already gone. */
export function destroyNamespaceSync(netns: string): void {
  for (const pid of ipQuietSync(['netns', 'pids', netns]).split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // already gone
    }
  }
  ipQuietSync(['netns', 'del', netns]);
}

/** Remembers a lab's namespaces so they are deleted when the process exits or is interrupted. */
export function registerLab(id: string, namespaces: readonly string[]): void {
  live.set(id, namespaces);
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const namespaces of live.values()) for (const ns of [...namespaces].reverse()) destroyNamespaceSync(ns);
    live.clear();
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      for (const namespaces of live.values()) for (const ns of [...namespaces].reverse()) destroyNamespaceSync(ns);
      live.clear();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
}

/** Forgets a lab after it was torn down. */
export function unregisterLab(id: string): void {
  live.delete(id);
}

/** True when process `pid` exists (also when it belongs to another user). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Deletes namespaces left behind by lab runs whose process no longer exists (killed with
 * SIGKILL, so their exit hooks never ran), together with the processes still inside them.
 * Only names with the lab's own prefix and a dead creator pid are touched. Returns their names.
 */
export function sweepStaleNamespaces(): string[] {
  const names = ipQuietSync(['netns', 'list'])
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((name) => name.startsWith(NETNS_PREFIX));
  const stale = names.filter((name) => {
    const pid = Number(/^klbt-(\d+)-/.exec(name)?.[1]);
    return Number.isInteger(pid) && pid > 0 && pid !== process.pid && !alive(pid);
  });
  for (const name of stale) destroyNamespaceSync(name);
  return stale;
}
