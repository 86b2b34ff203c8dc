#!/usr/bin/env node
// `klb-testing`: the command @klb/testing installs (npx klb-testing apiserver).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ComponentMissingError, findEtcd, KUBE_VERSION, klbCacheDir, pathFromEnv, which } from './binaries.js';

const usage = `usage: klb-testing apiserver [--no-build]

Finds, or builds from the official Kubernetes Go module (needs the Go toolchain; several minutes
the first time), kube-apiserver ${KUBE_VERSION}, cached in ${klbCacheDir()} (KLB_CACHE_DIR), and
finds etcd (KLB_ETCD or PATH). Prints, one per line, the variables startControlPlane() reads:
  KLB_KUBE_APISERVER=<path>
  KLB_ETCD=<path>
--no-build: fail instead of building when kube-apiserver is not cached.
KLB_KUBE_APISERVER, when set, is used as it is.`;

function apiserver(build: boolean): string {
  const fromEnv = pathFromEnv('KLB_KUBE_APISERVER', 'kube-apiserver');
  if (fromEnv) return fromEnv;
  const cached = join(klbCacheDir(), 'kube', KUBE_VERSION, 'kube-apiserver');
  if (existsSync(cached)) return cached;
  if (!build) {
    throw new ComponentMissingError(
      'kube-apiserver',
      `kube-apiserver ${KUBE_VERSION} is not in ${klbCacheDir()} (run klb-testing apiserver without --no-build to build it)`,
    );
  }
  if (!which('go')) {
    throw new ComponentMissingError(
      'go',
      `kube-apiserver ${KUBE_VERSION} is not in ${klbCacheDir()} and building it needs the Go toolchain (1.24 or newer), which is not on PATH: install Go, or set KLB_KUBE_APISERVER to a kube-apiserver binary`,
    );
  }
  const script = fileURLToPath(new URL('../scripts/build-kube-binaries.sh', import.meta.url));
  const run = spawnSync('bash', [script, 'kube-apiserver'], {
    env: { ...process.env, KLB_CACHE_DIR: klbCacheDir(), KUBE_VERSION },
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  });
  const path = run.stdout?.trim().split('\n').at(-1);
  if (run.status !== 0 || !path || !existsSync(path)) {
    throw new ComponentMissingError(
      'kube-apiserver',
      `kube-apiserver ${KUBE_VERSION} could not be built (exit ${run.status ?? run.signal}); the lines above say why`,
    );
  }
  return path;
}

function main(args: string[]): number {
  const [command, ...rest] = args;
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  if (command !== 'apiserver' || rest.some((a) => a !== '--no-build')) {
    process.stderr.write(`${usage}\n`);
    return 2;
  }
  const problems: string[] = [];
  const found: string[] = [];
  for (const [name, find] of [
    ['KLB_KUBE_APISERVER', () => apiserver(!rest.includes('--no-build'))],
    ['KLB_ETCD', findEtcd],
  ] as const) {
    try {
      found.push(`${name}=${find()}`);
    } catch (err) {
      if (!(err instanceof ComponentMissingError)) throw err;
      problems.push(`klb-testing: ${err.message}`);
    }
  }
  if (problems.length > 0) {
    process.stderr.write(`${problems.join('\n')}\n`);
    return 1;
  }
  process.stdout.write(`${found.join('\n')}\n`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));
