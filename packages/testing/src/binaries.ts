import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The Kubernetes release whose kube-apiserver the harness builds and tests against. */
export const KUBE_VERSION = 'v1.35.4';

/** Thrown when a real component a harness needs is not installed. */
export class ComponentMissingError extends Error {
  /** Stable error code. */
  readonly code = 'COMPONENT_MISSING';
  /** Installing the component is a human's job: retrying does not help. */
  readonly retryable = false;
  /** The component that is missing, e.g. `kube-apiserver`. */
  readonly component: string;

  /**
   * @param component - what is missing, e.g. `etcd`
   * @param hint - why, and how to install it; it becomes the message as it is
   */
  constructor(component: string, hint: string) {
    super(hint);
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
 * The directory where `klb-testing apiserver` caches what it builds: `KLB_CACHE_DIR`, else
 * `$XDG_CACHE_HOME/klb`, else `~/.cache/klb`.
 */
export function klbCacheDir(): string {
  return process.env.KLB_CACHE_DIR || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'klb');
}

/**
 * The path in environment variable `name`, if set; throws when it names no file.
 * @internal
 */
export function pathFromEnv(name: string, component: string): string | undefined {
  const value = process.env[name];
  if (!value) return undefined;
  if (!existsSync(value)) throw new ComponentMissingError(component, `${component}: ${name}=${value} does not exist`);
  return value;
}

/**
 * Finds a Kubernetes component's binary: the environment variable `KLB_<NAME>` (e.g.
 * `KLB_KUBE_APISERVER`, `KLB_KUBELET`); else the pinned build in the user's cache
 * ({@link klbCacheDir}, where `npx klb-testing apiserver` puts kube-apiserver); else the newest
 * build in a `.cache/kube/<version>/` directory of the working directory or one of its parents
 * (where the KLB repository's `scripts/build-kube-binaries.sh` caches them).
 *
 * @throws {@link ComponentMissingError} when it is nowhere.
 */
export function findKubeBinary(name: KubeBinary): string {
  const variable = `KLB_${name.toUpperCase().replaceAll('-', '_')}`;
  const fromEnv = pathFromEnv(variable, name);
  if (fromEnv) return fromEnv;
  const pinned = join(klbCacheDir(), 'kube', KUBE_VERSION, name);
  if (existsSync(pinned)) return pinned;
  const caches = [join(klbCacheDir(), 'kube')];
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
    name === 'kube-apiserver'
      ? `kube-apiserver is not installed: run \`npx klb-testing apiserver\` (builds ${KUBE_VERSION} from the Kubernetes Go module into ${klbCacheDir()}) or set KLB_KUBE_APISERVER`
      : `${name} is not installed: run scripts/build-kube-binaries.sh ${name} (builds it from the Kubernetes Go module) or set ${variable}`,
  );
}

/**
 * Finds the kube-apiserver binary (see {@link findKubeBinary}).
 *
 * @throws {@link ComponentMissingError} when there is none.
 */
export function findKubeApiserver(): string {
  return findKubeBinary('kube-apiserver');
}

/**
 * Finds the etcd binary: `KLB_ETCD`, else `etcd` on PATH.
 *
 * @throws {@link ComponentMissingError} when there is none.
 */
export function findEtcd(): string {
  const fromEnv = pathFromEnv('KLB_ETCD', 'etcd');
  if (fromEnv) return fromEnv;
  const found = which('etcd');
  if (found) return found;
  throw new ComponentMissingError(
    'etcd',
    'etcd is not installed: apt-get install etcd-server (Debian, Ubuntu), or set KLB_ETCD to an etcd 3.4+ binary',
  );
}
