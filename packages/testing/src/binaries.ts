import { existsSync, readdirSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Thrown when a real component a harness needs is not installed. */
export class ComponentMissingError extends Error {
  /** Stable error code. */
  readonly code = 'COMPONENT_MISSING';
  /** Installing the component is a human's job: retrying does not help. */
  readonly retryable = false;
  /** The component that is missing, e.g. `kube-apiserver`. */
  readonly component: string;

  constructor(component: string, hint: string) {
    super(`${component} is not installed: ${hint}`);
    this.name = 'ComponentMissingError';
    this.component = component;
  }
}

/** Returns the absolute path of `name` on PATH, or undefined. */
export function which(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, name);
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

/**
 * Finds the kube-apiserver binary: `KLB_KUBE_APISERVER`, else the newest build in a
 * `.cache/kube/<version>/` directory of the working directory or one of its parents (where
 * `scripts/build-kube-apiserver.sh` caches it).
 */
export function findKubeApiserver(): string {
  const fromEnv = process.env.KLB_KUBE_APISERVER;
  if (fromEnv) {
    if (!existsSync(fromEnv))
      throw new ComponentMissingError('kube-apiserver', `KLB_KUBE_APISERVER=${fromEnv} does not exist`);
    return fromEnv;
  }
  const starts = [process.cwd(), dirname(fileURLToPath(import.meta.url))];
  for (const start of starts) {
    for (let dir = resolve(start); ; dir = dirname(dir)) {
      const cache = join(dir, '.cache', 'kube');
      if (existsSync(cache)) {
        const versions = readdirSync(cache)
          .filter((v) => existsSync(join(cache, v, 'kube-apiserver')))
          .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
        const newest = versions.at(-1);
        if (newest) return join(cache, newest, 'kube-apiserver');
      }
      if (dirname(dir) === dir) break;
    }
  }
  throw new ComponentMissingError(
    'kube-apiserver',
    'run scripts/build-kube-apiserver.sh (builds it from the Kubernetes Go module) or set KLB_KUBE_APISERVER',
  );
}
