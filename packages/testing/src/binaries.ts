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

/** A Kubernetes component that `scripts/build-kube-binaries.sh` builds from the Kubernetes Go module. */
export type KubeBinary =
  | 'kube-apiserver'
  | 'kubelet'
  | 'kube-proxy'
  | 'kube-controller-manager'
  | 'kube-scheduler'
  | 'kubectl';

/**
 * Finds a Kubernetes component's binary: the environment variable `KLB_<NAME>` (e.g.
 * `KLB_KUBE_APISERVER`, `KLB_KUBELET`), else the newest build in a `.cache/kube/<version>/`
 * directory of the working directory or one of its parents, or of `KLB_CACHE_DIR` (where
 * `scripts/build-kube-binaries.sh` caches them).
 *
 * @throws ComponentMissingError when it is nowhere.
 */
export function findKubeBinary(name: KubeBinary): string {
  const variable = `KLB_${name.toUpperCase().replaceAll('-', '_')}`;
  const fromEnv = process.env[variable];
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new ComponentMissingError(name, `${variable}=${fromEnv} does not exist`);
    return fromEnv;
  }
  const caches: string[] = [];
  if (process.env.KLB_CACHE_DIR) caches.push(join(process.env.KLB_CACHE_DIR, 'kube'));
  for (const start of [process.cwd(), dirname(fileURLToPath(import.meta.url))]) {
    for (let dir = resolve(start); ; dir = dirname(dir)) {
      caches.push(join(dir, '.cache', 'kube'));
      if (dirname(dir) === dir) break;
    }
  }
  for (const cache of caches) {
    if (!existsSync(cache)) continue;
    const versions = readdirSync(cache)
      .filter((v) => existsSync(join(cache, v, name)))
      .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    const newest = versions.at(-1);
    if (newest) return join(cache, newest, name);
  }
  throw new ComponentMissingError(
    name,
    `run scripts/build-kube-binaries.sh ${name} (builds it from the Kubernetes Go module) or set ${variable}`,
  );
}

/**
 * Finds the kube-apiserver binary: `KLB_KUBE_APISERVER`, else the newest build in a
 * `.cache/kube/<version>/` directory (see {@link findKubeBinary}).
 */
export function findKubeApiserver(): string {
  return findKubeBinary('kube-apiserver');
}
