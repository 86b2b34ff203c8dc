// The reference controller and daemon when the apiserver is not there yet (a short outage, a
// control plane still coming up): they wait with /healthz up and /readyz not ready, and serve
// once it answers — no exit, so no CrashLoopBackOff. Exit status 2 stays for configuration that
// is wrong, including pools found invalid once the pools ConfigMap could be read.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeClient, type KubeObject } from '@klb/core';
import { type ControlPlane, eventually, freePort, requireComponents, startControlPlane } from '@klb/testing';
import { KubeConfig } from '@kubernetes/client-node';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { renderKustomization } from './kustomize.js';

const test = suite('reference binaries start before the apiserver answers');
const missing = requireComponents('kube-apiserver', 'etcd', 'nginx');
const it = missing ? test.skip : test;
const root = join(import.meta.dirname, '../../..');

let plane: ControlPlane | undefined;
let dir = '';
const children = new Set<ChildProcess>();

if (!missing) {
  dir = await mkdtemp(join(tmpdir(), 'klb-startup-'));
  test.after(async () => {
    for (const child of children) child.kill('SIGKILL');
    await plane?.stop();
    await rm(dir, { recursive: true, force: true });
  });
}

/** A kubeconfig for an apiserver on `port` (nothing listens there yet). */
async function kubeconfigFor(port: number): Promise<string> {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `https://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'x' }],
    contexts: [{ name: 'c', cluster: 'c', user: 'u' }],
    currentContext: 'c',
  });
  const file = join(dir, `kubeconfig-${port}`);
  await writeFile(file, kc.exportConfig());
  return file;
}

function start(
  script: string,
  args: string[],
): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--conditions=klb-source', '--import', 'tsx', join(root, script), ...args], {
    env: { ...process.env, POD_NAMESPACE: 'klb-system' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

async function statusOf(port: number, path: string): Promise<number | undefined> {
  try {
    return (await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2000) })).status;
  } catch {
    return undefined;
  }
}

it('with no apiserver yet, the controller and the daemon stay up, healthy and not ready', async () => {
  // The daemon turns on non-local binds; the test puts the machine's values back.
  const saved = ['/proc/sys/net/ipv4/ip_nonlocal_bind', '/proc/sys/net/ipv6/ip_nonlocal_bind']
    .filter((f) => existsSync(f))
    .map((f) => [f, readFileSync(f, 'utf8')] as const);
  try {
    await bothWait();
  } finally {
    for (const [file, value] of saved) writeFileSync(file, value);
  }
});

async function bothWait(): Promise<void> {
  const kubeconfig = await kubeconfigFor(await freePort());
  const controllerPort = await freePort();
  const daemonPort = await freePort();
  const controller = start('examples/reference-controller/src/main.ts', [
    '--backend=keepalived-nginx',
    `--kubeconfig=${kubeconfig}`,
    '--pools-configmap=klb-pools',
    `--port=${controllerPort}`,
    '--host=127.0.0.1',
  ]);
  const daemon = start('examples/reference-daemon/src/main.ts', [
    `--kubeconfig=${kubeconfig}`,
    '--node-name=node-1',
    `--state-dir=${join(dir, 'daemon')}`,
    '--no-keepalived',
    `--health-port=${daemonPort}`,
  ]);
  for (const [name, port, proc] of [
    ['controller', controllerPort, controller],
    ['daemon', daemonPort, daemon],
  ] as const) {
    await eventually(`${name} /healthz answers`, async () =>
      (await statusOf(port, '/healthz')) === 200 ? true : undefined,
    );
    assert.is(await statusOf(port, '/readyz'), 503, `${name} is not ready without the apiserver`);
    assert.is(proc.child.exitCode, null, `${name} keeps running: ${proc.output()}`);
  }
  // A graceful stop while still waiting.
  controller.child.kill('SIGTERM');
  daemon.child.kill('SIGTERM');
  assert.is(await controller.exited, 0, controller.output());
  assert.is(await daemon.exited, 0, daemon.output());
}

it('the controller becomes ready once the apiserver answers, and serves', async () => {
  plane = await startControlPlane();
  const client = new KubeClient(plane.kubeConfig);
  try {
    const kubeconfig = plane.writeKubeConfig();
    for (const crd of renderKustomization(join(root, 'deploy/base')).filter(
      (o) => o.kind === 'CustomResourceDefinition',
    )) {
      await client.create('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd as KubeObject);
    }
    await client.create('/api/v1/namespaces', { metadata: { name: 'klb-system' } });
    // The apiserver goes away for a while; the controller starts meanwhile.
    const restarted = plane.restartApiserver({ hard: true, downMs: 10_000 });
    await eventually('the apiserver down', async () =>
      client.get('/version').then(
        () => undefined,
        () => true,
      ),
    );
    const port = await freePort();
    const controller = start('examples/reference-controller/src/main.ts', [
      '--backend=keepalived-nginx',
      `--kubeconfig=${kubeconfig}`,
      '--pools-configmap=klb-pools',
      '--disable-leader-election',
      `--port=${port}`,
      '--host=127.0.0.1',
    ]);
    await eventually('/healthz answers', async () => ((await statusOf(port, '/healthz')) === 200 ? true : undefined));
    assert.is(await statusOf(port, '/readyz'), 503);
    assert.is(controller.child.exitCode, null, controller.output());
    await restarted;
    // The pools ConfigMap arrives after the controller started: it keeps retrying until then.
    await client.create('/api/v1/namespaces/klb-system/configmaps', {
      metadata: { name: 'klb-pools' },
      data: { 'pools.yaml': 'pools:\n  - name: default\n    addresses: [127.0.102.0/24]\n' },
    });
    await eventually(
      '/readyz says ready',
      async () => ((await statusOf(port, '/readyz')) === 200 ? true : undefined),
      90_000,
    );
    assert.is(controller.child.exitCode, null, controller.output());
    controller.child.kill('SIGTERM');
    assert.is(await controller.exited, 0, controller.output());
  } finally {
    client.close();
  }
});

it('pools found invalid once the ConfigMap is read end the controller with exit status 2', async () => {
  const client = new KubeClient((plane as ControlPlane).kubeConfig);
  try {
    await client.replace('/api/v1/namespaces/klb-system/configmaps/klb-pools', {
      metadata: { name: 'klb-pools', namespace: 'klb-system' },
      data: { 'pools.yaml': 'pools:\n  - name: default\n    addresses: [127.0.102.010/32]\n' },
    });
    const controller = start('examples/reference-controller/src/main.ts', [
      '--backend=keepalived-nginx',
      `--kubeconfig=${(plane as ControlPlane).writeKubeConfig()}`,
      '--pools-configmap=klb-pools',
      '--disable-leader-election',
      `--port=${await freePort()}`,
      '--host=127.0.0.1',
    ]);
    assert.is(await controller.exited, 2, controller.output());
    assert.match(controller.output(), /127\.0\.102\.010/);
  } finally {
    client.close();
  }
});

test.run();
