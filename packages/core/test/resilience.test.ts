import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Informer,
  KubeClient,
  type KubeObject,
  LoadBalancerController,
  type LoadBalancerSpec,
  type ServiceObject,
  silentLogger,
} from '@klb/core';
import { type ControlPlane, RecordingBackend, requireComponents, startControlPlane } from '@klb/testing';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseAllDocuments } from 'yaml';
import { ConfigMapBackend, type RecordObject } from './fixtures/configmap-backend.js';
import { createNode, lbService, namespace, waitUntil } from './helpers.js';

const test = suite('controller: processes, leader election, restarts, scale, RBAC');
const missing = requireComponents('kube-apiserver', 'etcd');
const it = missing ? test.skip : test;

let plane: ControlPlane | undefined;
let client: KubeClient;
const children = new Set<ChildProcess>();

if (!missing) {
  plane = await startControlPlane();
  client = new KubeClient(plane.kubeConfig);
  await createNode(client, 'node-r1', '192.0.2.21');
  await createNode(client, 'node-r2', '192.0.2.22');
  test.after(async () => {
    for (const child of children) child.kill('SIGKILL');
    client.close();
    await plane?.stop();
  });
}
const cp = () => plane as ControlPlane;

interface Proc {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function startController(env: Record<string, string>): Proc {
  const child = spawn(
    process.execPath,
    ['--conditions=klb-source', '--import', 'tsx', join(import.meta.dirname, 'fixtures', 'controller-process.ts')],
    { env: { ...process.env, KUBECONFIG_FILE: cp().writeKubeConfig(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.add(child);
  let out = '';
  child.stdout?.on('data', (c) => (out += c));
  child.stderr?.on('data', (c) => (out += c));
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  return { child, output: () => out, exited };
}

async function records(ns: string): Promise<RecordObject[]> {
  return (
    await client.list<RecordObject>(`/api/v1/namespaces/${ns}/configmaps`, { labelSelector: 'klb-test/record=true' })
  ).items;
}

const ingressOf = async (ns: string, name: string) =>
  (await client.get<ServiceObject>(`/api/v1/namespaces/${ns}/services/${name}`)).status?.loadBalancer?.ingress?.[0]?.ip;

const ctx = { signal: new AbortController().signal, log: silentLogger };

/** A load balancer with nothing in it, as left behind in a backend by an object now gone. */
function emptySpec(ns: string, name: string): LoadBalancerSpec {
  return {
    ref: { id: `service/${ns}/${name}`, kind: 'Service', namespace: ns, name },
    addresses: [],
    requestedAddresses: [],
    ipFamilies: ['IPv4'],
    listeners: [],
    upstreams: [],
    options: { algorithm: 'round-robin', proxyProtocol: false, sourceRanges: [], timeouts: {} },
    annotations: {},
  };
}

it('two controller processes: only the leader acts; the other takes over when the leader stops', async () => {
  const ns = await namespace(client, 'leader');
  const env = { RECORD_NAMESPACE: ns, LEASE_NAMESPACE: ns };
  const a = startController({ ...env, IDENTITY: 'ctrl-a' });
  await waitUntil('a leads', () => (a.output().includes('became leader') ? true : undefined));
  const b = startController({ ...env, IDENTITY: 'ctrl-b' });
  await waitUntil('b started', () =>
    b.output().includes('"started"') || b.output().includes('started') ? true : undefined,
  );
  for (let i = 0; i < 5; i++)
    await client.create(`/api/v1/namespaces/${ns}/services`, lbService(`s${i}`, [{ port: 80 }]));
  await waitUntil('5 ready', async () =>
    (await records(ns)).filter((r) => r.data.state === 'ready').length === 5 ? true : undefined,
  );
  assert.equal([...new Set((await records(ns)).map((r) => r.data.writer))], ['ctrl-a'], 'only the leader wrote');
  assert.not.ok(b.output().includes('became leader'), 'the follower never led');
  a.child.kill('SIGTERM');
  assert.is(await a.exited, 0, 'graceful stop');
  await waitUntil('b leads', () => (b.output().includes('became leader') ? true : undefined), 10_000);
  await client.create(`/api/v1/namespaces/${ns}/services`, lbService('after', [{ port: 80 }]));
  await waitUntil('after ensured', async () => ((await ingressOf(ns, 'after')) ? true : undefined));
  const after = (await records(ns)).find((r) => r.data.id === `service/${ns}/after`);
  assert.is(after?.data.writer, 'ctrl-b');
  b.child.kill('SIGTERM');
  await b.exited;
});

it('a controller killed with SIGKILL mid-reconcile converges after restart with no duplicate objects', async () => {
  const ns = await namespace(client, 'kill');
  const env = { RECORD_NAMESPACE: ns, LEASE_NAMESPACE: ns, STEP_DELAY_MS: '3000' };
  const first = startController({ ...env, IDENTITY: 'ctrl-1' });
  await waitUntil('leads', () => (first.output().includes('became leader') ? true : undefined));
  await client.create(`/api/v1/namespaces/${ns}/services`, lbService('victim', [{ port: 80 }, { port: 443 }]));
  await waitUntil('record half-created', async () =>
    (await records(ns)).some((r) => r.data.state === 'creating') ? true : undefined,
  );
  first.child.kill('SIGKILL');
  await first.exited;
  assert.is(await ingressOf(ns, 'victim'), undefined, 'killed before status was written');
  const second = startController({ ...env, STEP_DELAY_MS: '0', IDENTITY: 'ctrl-2' });
  // The killed leader's lease must expire first (it could not release it).
  await waitUntil('converged', async () => ((await ingressOf(ns, 'victim')) ? true : undefined), 20_000);
  const recs = (await records(ns)).filter((r) => r.data.id === `service/${ns}/victim`);
  assert.is(recs.length, 1, 'exactly one external object');
  assert.is(recs[0]?.data.state, 'ready');
  assert.is(recs[0]?.data.listeners, 'TCP/80,TCP/443');
  second.child.kill('SIGTERM');
  await second.exited;
});

it('orphans are removed at start only after a successful list; objects of live Services are kept', async () => {
  const ns = await namespace(client, 'orphan');
  await client.create(`/api/v1/namespaces/${ns}/services`, lbService('alive', [{ port: 80 }]));
  const backend = new ConfigMapBackend(client, ns, 'seed');
  // An external object whose Service no longer exists, and one whose Service does.
  await backend.ensure(emptySpec(ns, 'gone'), ctx);
  const proc = startController({ RECORD_NAMESPACE: ns, LEASE_NAMESPACE: ns, IDENTITY: 'ctrl-orphans' });
  // The controller serves every Service of its class in the cluster; look at this namespace's.
  await waitUntil('orphan removed, live kept', async () => {
    const ids = (await records(ns)).map((r) => r.data.id).filter((id) => id.startsWith(`service/${ns}/`));
    return ids.length === 1 && ids[0] === `service/${ns}/alive` ? true : undefined;
  });
  proc.child.kill('SIGTERM');
  await proc.exited;
});

it('a backend list() failure skips orphan clean-up: nothing is deleted', async () => {
  const backend = new RecordingBackend({ capabilities: { allocatesAddresses: true } });
  const ns = await namespace(client, 'listfail');
  await backend.ensure(emptySpec(ns, 'ghost'), ctx);
  backend.failNext('list', new Error('backend unreachable'));
  const controller = new LoadBalancerController({
    kubeConfig: cp().kubeConfig,
    backend,
    configMaps: false,
    ingress: false,
  });
  await controller.start();
  await new Promise((r) => setTimeout(r, 1000));
  await controller.stop();
  assert.ok(backend.ids().includes(`service/${ns}/ghost`), 'the unlisted object survived');
  assert.is(backend.callsOf('remove').length, 0, 'nothing was removed');
});

it('the apiserver restarted under a running controller: informers recover and it converges', async () => {
  const ns = await namespace(client, 'restart');
  const backend = new RecordingBackend({ capabilities: { allocatesAddresses: true } });
  const controller = new LoadBalancerController({
    kubeConfig: cp().kubeConfig,
    backend,
    configMaps: false,
    ingress: false,
    watchdogMs: 5000,
  });
  await controller.start();
  try {
    await client.create(`/api/v1/namespaces/${ns}/services`, lbService('before', [{ port: 80 }]));
    await waitUntil('before', async () => ((await ingressOf(ns, 'before')) ? true : undefined));
    await cp().restartApiserver({ hard: true, downMs: 1500 });
    await client.create(`/api/v1/namespaces/${ns}/services`, lbService('after', [{ port: 80 }]));
    await waitUntil('after', async () => ((await ingressOf(ns, 'after')) ? true : undefined), 60_000);
    const restarts = (await controller.metrics.informerRestarts.get()).values.reduce((n, v) => n + v.value, 0);
    assert.ok(restarts > 0, 'informer restarts counted');
  } finally {
    await controller.stop();
  }
});

it('an informer disconnected while objects change ends with exactly the API state', async () => {
  const ns = await namespace(client, 'informer');
  const path = `/api/v1/namespaces/${ns}/configmaps`;
  for (const name of ['keep', 'drop'])
    await client.create(path, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name } } as KubeObject);
  const reasons: string[] = [];
  const seen: string[] = [];
  const informer = new Informer<KubeObject>(new KubeClient(cp().kubeConfig), {
    resource: 'configmaps',
    path,
    backoff: { baseMs: 3000, maxMs: 3000 },
    onRestart: (reason) => reasons.push(reason),
  });
  informer.on({
    add: (o) => seen.push(`add ${o.metadata?.name}`),
    delete: (o) => seen.push(`delete ${o.metadata?.name}`),
  });
  informer.start();
  await informer.waitForSync();
  await cp().restartApiserver({ hard: true });
  // Changes while the informer is still backing off from the lost connection.
  await client.delete(`${path}/drop`);
  await client.create(path, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'new' } } as KubeObject);
  await waitUntil(
    'informer caught up',
    () => (informer.get(`${ns}/new`) && !informer.get(`${ns}/drop`) ? true : undefined),
    30_000,
  );
  assert.equal(
    informer
      .list()
      .map((o) => o.metadata?.name)
      .sort(),
    (await client.list<KubeObject>(path)).items.map((o) => o.metadata?.name).sort(),
  );
  assert.ok(seen.includes('delete drop') && seen.includes('add new'), seen.join(', '));
  assert.ok(
    reasons.some((r) => r === 'error' || r === 'gone'),
    `restarts: ${reasons.join(', ')}`,
  );
  await informer.stop();
});

it('200 Services created at once all converge', async () => {
  const ns = await namespace(client, 'many');
  const backend = new RecordingBackend({
    capabilities: { allocatesAddresses: true },
    allocateAddress: (n) => `10.${Math.floor(n / 250)}.${n % 250}.1`,
  });
  const controller = new LoadBalancerController({
    kubeConfig: cp().kubeConfig,
    backend,
    configMaps: false,
    ingress: false,
    workers: 8,
  });
  await controller.start();
  try {
    await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        client.create(`/api/v1/namespaces/${ns}/services`, lbService(`svc-${i}`, [{ port: 80 }])),
      ),
    );
    await waitUntil(
      '200 with status',
      async () => {
        const { items } = await client.list<ServiceObject>(`/api/v1/namespaces/${ns}/services`);
        return items.filter((s) => s.status?.loadBalancer?.ingress?.length).length === 200 ? true : undefined;
      },
      120_000,
    );
    const ips = new Set(backend.ids().filter((id) => id.includes(`/${ns}/`)));
    assert.is(ips.size, 200);
  } finally {
    await controller.stop();
  }
});

/** The shipped ClusterRole, bound to the `klb-controller` token user, optionally without one rule. */
async function grantShippedRbac(suffix: string, drop?: { resource: string }): Promise<void> {
  const docs = parseAllDocuments(
    readFileSync(join(import.meta.dirname, '../../../deploy/base/controller-rbac.yaml'), 'utf8'),
  ).map((d) => d.toJSON() as KubeObject & { rules: Array<{ resources: string[] }> });
  const role = docs.find((d) => d.kind === 'ClusterRole');
  if (!role) throw new Error('no ClusterRole in controller-rbac.yaml');
  const rules = role.rules.filter((r) => !drop || !r.resources.includes(drop.resource));
  await client.create('/apis/rbac.authorization.k8s.io/v1/clusterroles', {
    ...role,
    metadata: { name: `klb-controller-${suffix}` },
    rules,
  } as KubeObject);
  await client.create('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: `klb-controller-${suffix}` },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `klb-controller-${suffix}` },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'klb-controller' }],
  } as KubeObject);
}

it('runs under the shipped least-privilege ClusterRole as its own token user; without services/status it cannot converge', async () => {
  await grantShippedRbac('full');
  const ns = await namespace(client, 'rbac');
  const backend = new RecordingBackend({ capabilities: { allocatesAddresses: true } });
  const controller = new LoadBalancerController({
    kubeConfig: cp().kubeConfigFor('klb-controller'),
    backend,
    ingress: { ingressClassName: 'klb' },
  });
  await controller.start();
  try {
    await client.create(`/api/v1/namespaces/${ns}/services`, lbService('restricted', [{ port: 80 }]));
    await waitUntil('converged under RBAC', async () => ((await ingressOf(ns, 'restricted')) ? true : undefined));
  } finally {
    await controller.stop();
  }
  // The same controller with one rule removed from the role fails to write status.
  await client.delete('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/klb-controller-full');
  await grantShippedRbac('partial', { resource: 'services/status' });
  await waitUntil('RBAC revoked', async () => {
    const review = await client.create<KubeObject & { status?: { allowed?: boolean } }>(
      '/apis/authorization.k8s.io/v1/subjectaccessreviews',
      {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: 'klb-controller',
          resourceAttributes: { verb: 'patch', resource: 'services', subresource: 'status', namespace: ns },
        },
      } as KubeObject,
    );
    return review.status?.allowed ? undefined : true;
  });
  const crippled = new LoadBalancerController({
    kubeConfig: cp().kubeConfigFor('klb-controller'),
    backend,
    ingress: false,
  });
  await crippled.start();
  try {
    await client.create(`/api/v1/namespaces/${ns}/services`, lbService('denied', [{ port: 80 }]));
    await waitUntil('backend ensured', () => backend.specOf(`service/${ns}/denied`));
    await new Promise((r) => setTimeout(r, 1500));
    assert.is(await ingressOf(ns, 'denied'), undefined, 'no status without services/status');
    const errors = (await crippled.metrics.reconcileErrors.get()).values.reduce((n, v) => n + v.value, 0);
    assert.ok(errors > 0, 'the failure is counted');
  } finally {
    await crippled.stop();
  }
});

test.run();
