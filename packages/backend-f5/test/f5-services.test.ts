// Services on a real kube-apiserver, reconciled by the KLB engine with the F5 backend, against
// the iControl emulator.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { F5Backend, IControlClient } from '@klb/backend-f5';
import {
  type AddressAllocator,
  KubeClient,
  type KubeObject,
  LoadBalancerController,
  type Logger,
  type ServiceObject,
} from '@klb/core';
import { installAddressClaimCrd, KubeIpam, parsePoolConfig } from '@klb/ipam';
import {
  type ControlPlane,
  type F5Emulator,
  type LtmObject,
  requireComponents,
  startControlPlane,
  startF5Emulator,
} from '@klb/testing';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseAllDocuments } from 'yaml';
import { HashAllocator } from './fixtures/hash-allocator.js';
import { createNode, lbService, namespace, setNodeStatus, waitUntil } from './kube-helpers.js';

const test = suite('F5 backend driven by Services');
const missing = requireComponents('kube-apiserver', 'etcd', 'openssl');
const it = missing ? test.skip : test;

const CLASS = 'klb.io/load-balancer';
let plane: ControlPlane | undefined;
let client: KubeClient;
let f5: F5Emulator;
let controller: LoadBalancerController;
const dir = mkdtempSync(join(tmpdir(), 'klb-f5-svc-'));
const children = new Set<ChildProcess>();
const cp = (): ControlPlane => plane as ControlPlane;

function f5Client(retries?: number): IControlClient {
  return new IControlClient({
    host: f5.host,
    username: 'admin',
    password: 'admin',
    ca: f5.ca,
    retryBaseDelayMs: 10,
    ...(retries === undefined ? {} : { retries }),
  });
}

const line =
  (level: string, bindings: Record<string, unknown>) =>
  (obj: object | string, msg?: string): void => {
    if (process.env.KLB_TEST_LOG)
      console.log(
        JSON.stringify({ level, ...bindings, ...(typeof obj === 'string' ? { msg: obj } : { ...obj, msg }) }),
      );
  };
function testLogger(bindings: Record<string, unknown> = {}): Logger {
  return {
    debug: line('debug', bindings),
    info: line('info', bindings),
    warn: line('warn', bindings),
    error: line('error', bindings),
    child: (more) => testLogger({ ...bindings, ...more }),
  };
}

/** KLB's IPAM (AddressClaims in the API) with one pool, as the reference controller runs it. */
function ipam(): AddressAllocator {
  return new KubeIpam({
    kubeConfig: cp().kubeConfig,
    pools: parsePoolConfig({ pools: [{ name: 'f5-vips', addresses: ['10.200.0.0/22'] }] }),
    namespace: 'klb-ipam',
  });
}

function startController(
  options: { lbClass?: string; controllerId?: string; kubeUser?: string; allocator?: AddressAllocator } = {},
): LoadBalancerController {
  return new LoadBalancerController({
    kubeConfig: options.kubeUser ? cp().kubeConfigFor(options.kubeUser) : cp().kubeConfig,
    backend: new F5Backend({
      client: f5Client(),
      partition: 'klb',
      controllerId: options.controllerId ?? 'klb',
      snapshotMaxAgeMs: 1000,
      logger: testLogger({ c: options.controllerId ?? 'klb' }),
    }),
    logger: testLogger({ c: options.controllerId ?? 'klb' }),
    allocator: options.allocator ?? ipam(),
    services: { loadBalancerClass: options.lbClass ?? CLASS },
    configMaps: false,
    ingress: false,
    workers: 8,
    resyncPeriodMs: 0,
  });
}

if (!missing) {
  plane = await startControlPlane();
  client = new KubeClient(plane.kubeConfig);
  f5 = await startF5Emulator({ partitions: ['klb'], seed: 7 });
  for (let i = 1; i <= 3; i++) await createNode(client, `node-${i}`, `192.0.2.${i}`);
  await installAddressClaimCrd(plane.kubeConfig);
  await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'klb-ipam' } });
  controller = startController();
  await controller.start();
  test.after(async () => {
    for (const child of children) child.kill('SIGKILL');
    await controller.stop();
    client.close();
    await f5.stop();
    await plane?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
}
/** KLB objects of one namespace (by the names the backend gives them). */
function objectsOf(ns: string): { virtuals: LtmObject[]; pools: LtmObject[]; monitors: LtmObject[] } {
  const s = f5.state();
  const mine = (o: LtmObject) => o.name.startsWith(`klb_svc_${ns}_`);
  return {
    virtuals: s.virtuals.filter(mine),
    pools: s.pools.filter(mine),
    monitors: [...s.monitors.tcp, ...s.monitors.http].filter(mine),
  };
}

function memberNames(pool: LtmObject | undefined): string[] {
  return ((pool?.members ?? []) as { name: string }[]).map((m) => m.name).sort();
}

async function ingressIp(ns: string, name: string): Promise<string | undefined> {
  const svc = await client.get<ServiceObject>(`/api/v1/namespaces/${ns}/services/${name}`);
  return svc.status?.loadBalancer?.ingress?.[0]?.ip;
}

async function nodePorts(ns: string, name: string): Promise<number[]> {
  const svc = await client.get<ServiceObject>(`/api/v1/namespaces/${ns}/services/${name}`);
  return (svc.spec?.ports ?? []).map((p) => p.nodePort as number);
}

async function gone(ns: string, name: string): Promise<boolean> {
  try {
    await client.get(`/api/v1/namespaces/${ns}/services/${name}`);
    return false;
  } catch {
    return true;
  }
}

it('full lifecycle: a Service becomes F5 objects, its deletion leaves nothing', async () => {
  const ns = await namespace(client, 'f5life');
  await client.create(`/api/v1/namespaces/${ns}/services`, lbService('web', [80, 443], CLASS));
  const ip = await waitUntil('status', () => ingressIp(ns, 'web'));
  assert.match(ip, /^10\.200\.[0-3]\.\d+$/, 'the VIP comes from the @klb/ipam pool');
  const o = await waitUntil('F5 objects', () => {
    const found = objectsOf(ns);
    return found.virtuals.length === 2 ? found : undefined;
  });
  const ports = await nodePorts(ns, 'web');
  assert.equal(o.virtuals.map((v) => v.destination).sort(), [`/klb/${ip}:443`, `/klb/${ip}:80`]);
  assert.is(o.pools.length, 2);
  assert.is(o.monitors.length, 2);
  const pool80 = o.pools.find((p) => p.name.endsWith('_tcp-80'));
  assert.equal(
    memberNames(pool80),
    [1, 2, 3].map((i) => `192.0.2.${i}:${ports[0]}`),
  );
  assert.is(o.virtuals[0]?.description, `klb:klb service/${ns}/web`);
  await client.delete(`/api/v1/namespaces/${ns}/services/web`);
  await waitUntil('Service deleted after the F5 objects', () => gone(ns, 'web'));
  const after = objectsOf(ns);
  assert.equal([after.virtuals.length, after.pools.length, after.monitors.length], [0, 0, 0]);
  assert.not.ok(f5.state().virtualAddresses.some((a) => a.address === ip));
});

it('a node added or removed changes the members in one call', async () => {
  const ns = await namespace(client, 'f5nodes');
  await client.create(`/api/v1/namespaces/${ns}/services`, lbService('app', [80], CLASS));
  await waitUntil('converged', () =>
    objectsOf(ns).pools[0] && memberNames(objectsOf(ns).pools[0]).length === 3 ? true : undefined,
  );
  const [nodePort] = await nodePorts(ns, 'app');
  let mark = f5.calls.length;
  await createNode(client, 'node-4', '192.0.2.4');
  await waitUntil('4 members', () => (memberNames(objectsOf(ns).pools[0]).length === 4 ? true : undefined));
  assert.is(f5.calls.counts(mark).writes, 1, 'one write (a transaction: the new node and the pool members)');
  mark = f5.calls.length;
  await setNodeStatus(client, 'node-4', '192.0.2.4', false);
  await waitUntil('3 members', () => (memberNames(objectsOf(ns).pools[0]).length === 3 ? true : undefined));
  const memberWrites = f5.calls
    .records()
    .slice(mark)
    .filter((r) => r.category === 'write' && r.path.startsWith('/mgmt/tm/ltm/pool/'));
  assert.is(memberWrites.length, 1, 'one PATCH of the pool');
  assert.is(memberWrites[0]?.method, 'PATCH');
  assert.equal(
    memberNames(objectsOf(ns).pools[0]),
    [1, 2, 3].map((i) => `192.0.2.${i}:${nodePort}`),
  );
  await waitUntil('unused node deleted', () =>
    f5.state().nodes.some((n) => n.address === '192.0.2.4') ? undefined : true,
  );
  await client.delete('/api/v1/nodes/node-4');
  await client.delete(`/api/v1/namespaces/${ns}/services/app`);
  await waitUntil('deleted', () => gone(ns, 'app'));
});

it('externalTrafficPolicy Local: only nodes with ready endpoints are members, checked on the healthCheckNodePort', async () => {
  const ns = await namespace(client, 'f5local');
  await client.create(
    `/api/v1/namespaces/${ns}/services`,
    lbService('loc', [80], CLASS, { externalTrafficPolicy: 'Local' }),
  );
  await client.create(`/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`, {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'loc-1', labels: { 'kubernetes.io/service-name': 'loc' } },
    addressType: 'IPv4',
    endpoints: [
      { addresses: ['10.244.2.5'], nodeName: 'node-2', conditions: { ready: true } },
      { addresses: ['10.244.3.5'], nodeName: 'node-3', conditions: { ready: false } },
    ],
    ports: [{ name: 'p80', port: 8080, protocol: 'TCP' }],
  } as KubeObject);
  const [nodePort] = await nodePorts(ns, 'loc');
  await waitUntil('one member', () => (memberNames(objectsOf(ns).pools[0]).length === 1 ? true : undefined));
  assert.equal(memberNames(objectsOf(ns).pools[0]), [`192.0.2.2:${nodePort}`]);
  const svc = await client.get<ServiceObject>(`/api/v1/namespaces/${ns}/services/loc`);
  const monitor = f5.state().monitors.http.find((m) => m.name.startsWith(`klb_svc_${ns}_`));
  assert.ok(monitor, 'an http monitor');
  assert.is(monitor?.destination, `*:${svc.spec?.healthCheckNodePort}`);
  await client.delete(`/api/v1/namespaces/${ns}/services/loc`);
  await waitUntil('deleted', () => gone(ns, 'loc'));
});

it('sessionAffinity ClientIP: the virtual uses a persistence profile with the Service timeout, which follows it and goes with it', async () => {
  const ns = await namespace(client, 'f5sticky');
  const profilePath = `/klb/klb_svc_${ns}_sticky_source_addr`;
  const profile = () => f5.state().persistence.sourceAddr.find((p) => p.fullPath === profilePath);
  const persistOf = () =>
    objectsOf(ns).virtuals.map((v) =>
      ((v.persist ?? []) as { name: string; partition: string }[]).map((p) => `/${p.partition}/${p.name}`),
    );
  const affinity = (timeoutSeconds: number) => ({
    sessionAffinity: 'ClientIP',
    sessionAffinityConfig: { clientIP: { timeoutSeconds } },
  });
  await client.create(`/api/v1/namespaces/${ns}/services`, lbService('sticky', [80], CLASS, affinity(600)));
  await waitUntil('profile with 600 s', () => (profile()?.timeout === '600' ? true : undefined));
  await waitUntil('attached', () => (persistOf()[0]?.[0] === profilePath ? true : undefined));
  assert.equal(persistOf(), [[profilePath]]);
  assert.is(profile()?.description, `klb:klb service/${ns}/sticky`);
  await client.patch(`/api/v1/namespaces/${ns}/services/sticky`, { spec: affinity(30) });
  await waitUntil('profile with 30 s', () => (profile()?.timeout === '30' ? true : undefined));
  assert.equal(persistOf(), [[profilePath]]);
  await client.patch(`/api/v1/namespaces/${ns}/services/sticky`, {
    spec: { sessionAffinity: 'None', sessionAffinityConfig: null },
  });
  await waitUntil('profile gone', () => (profile() === undefined ? true : undefined));
  assert.equal(persistOf(), [[]], 'the virtual no longer uses it');
  await client.patch(`/api/v1/namespaces/${ns}/services/sticky`, { spec: affinity(600) });
  await waitUntil('profile back', () => (profile()?.timeout === '600' ? true : undefined));
  await client.delete(`/api/v1/namespaces/${ns}/services/sticky`);
  await waitUntil('deleted', () => gone(ns, 'sticky'));
  const after = objectsOf(ns);
  assert.equal([after.virtuals.length, after.pools.length, after.monitors.length], [0, 0, 0]);
  assert.is(profile(), undefined, 'nothing is left');
});

it('a token that expires mid-run is replaced and the reconcile goes on', async () => {
  const ns = await namespace(client, 'f5token');
  await client.create(`/api/v1/namespaces/${ns}/services`, lbService('tok', [80], CLASS));
  await waitUntil('converged', () => (objectsOf(ns).virtuals.length === 1 ? true : undefined));
  f5.expireTokens();
  await client.patch(`/api/v1/namespaces/${ns}/services/tok`, {
    spec: { ports: [80, 81].map((port) => ({ name: `p${port}`, port, protocol: 'TCP', targetPort: 8080 })) },
  });
  await waitUntil('second port', () => (objectsOf(ns).virtuals.length === 2 ? true : undefined));
  assert.ok(f5.activeTokens('admin') <= 2, 'tokens are reused, not piled up');
  await client.delete(`/api/v1/namespaces/${ns}/services/tok`);
  await waitUntil('deleted', () => gone(ns, 'tok'));
});

it('a failing transaction leaves nothing behind; the Service converges once the conflict is gone', async () => {
  const ns = await namespace(client, 'f5fail');
  const vip = '10.200.3.250';
  const admin = f5Client();
  await admin.request('POST', '/mgmt/tm/ltm/pool', { body: { name: 'squatter', partition: 'klb' } });
  await admin.request('POST', '/mgmt/tm/ltm/virtual', {
    body: { name: 'squatter', partition: 'klb', destination: `/klb/${vip}:80`, pool: '/klb/squatter' },
  });
  const mark = f5.calls.length;
  await client.create(
    `/api/v1/namespaces/${ns}/services`,
    lbService('clash', [80, 81], CLASS, { loadBalancerIP: vip }),
  );
  await waitUntil('a failed commit', () =>
    f5.calls
      .records()
      .slice(mark)
      .some((r) => r.method === 'PATCH' && r.path.startsWith('/mgmt/tm/transaction/'))
      ? true
      : undefined,
  );
  const none = objectsOf(ns);
  assert.equal([none.virtuals.length, none.pools.length, none.monitors.length], [0, 0, 0], 'nothing applied');
  await admin.request('DELETE', '/mgmt/tm/ltm/virtual/~klb~squatter');
  await admin.request('DELETE', '/mgmt/tm/ltm/pool/~klb~squatter');
  await admin.close();
  await waitUntil(
    'converged after the conflict',
    () => (objectsOf(ns).virtuals.length === 2 ? true : undefined),
    90_000,
  );
  await client.delete(`/api/v1/namespaces/${ns}/services/clash`);
  await waitUntil('deleted', () => gone(ns, 'clash'));
});

it('objects KLB does not own are never modified or deleted', async () => {
  const admin = f5Client();
  await admin.request('POST', '/mgmt/tm/ltm/node', {
    body: { name: 'user-node', partition: 'klb', address: '192.0.2.200' },
  });
  await admin.request('POST', '/mgmt/tm/ltm/pool', {
    body: {
      name: 'user-pool',
      partition: 'klb',
      members: [
        { name: 'user-node:80', partition: 'klb' },
        { name: '192.0.2.1:9000', partition: 'klb' },
      ],
    },
  });
  await admin.request('POST', '/mgmt/tm/ltm/virtual', {
    body: {
      name: 'user-vs',
      partition: 'klb',
      destination: '/klb/192.0.2.201:80',
      pool: '/klb/user-pool',
      description: 'klb:someone-else service/x/y',
    },
  });
  await admin.request('POST', '/mgmt/tm/ltm/monitor/tcp', {
    body: { name: 'user-mon', partition: 'klb', description: 'not klb' },
  });
  await admin.close();
  const foreign = () => {
    const s = f5.state();
    const pick = (list: LtmObject[]) =>
      list.filter((o) => o.name.startsWith('user-') || o.fullPath === '/klb/192.0.2.1');
    return JSON.stringify([pick(s.virtuals), pick(s.pools), pick(s.nodes), pick(s.monitors.tcp)]);
  };
  const before = foreign();
  const ns = await namespace(client, 'f5foreign');
  await client.create(`/api/v1/namespaces/${ns}/services`, lbService('mine', [80], CLASS));
  await waitUntil('converged', () => (objectsOf(ns).virtuals.length === 1 ? true : undefined));
  controller.resync();
  await client.delete(`/api/v1/namespaces/${ns}/services/mine`);
  await waitUntil('deleted', () => gone(ns, 'mine'));
  // A fresh controller runs orphan clean-up (list()) at start: the foreign objects are no orphans.
  const fresh = startController();
  await fresh.start();
  await new Promise((r) => setTimeout(r, 500));
  await fresh.stop();
  assert.is(foreign(), before);
});

it('200 Services with 10% injected 5xx converge, then leave nothing behind', async () => {
  const ns = await namespace(client, 'f5many');
  const stopFaults = f5.faults.add({ effect: 'service-unavailable', probability: 0.1, includeAuth: true });
  try {
    for (let i = 0; i < 200; i += 20) {
      await Promise.all(
        Array.from({ length: 20 }, (_, j) =>
          client.create(`/api/v1/namespaces/${ns}/services`, lbService(`s${i + j}`, [80], CLASS)),
        ),
      );
    }
    await waitUntil('200 virtuals', () => (objectsOf(ns).virtuals.length === 200 ? true : undefined), 240_000);
    const o = objectsOf(ns);
    assert.is(o.pools.length, 200);
    assert.is(o.monitors.length, 200);
    assert.ok(
      o.pools.every((p) => memberNames(p).length === 3),
      JSON.stringify(o.pools.map((p) => memberNames(p)).filter((m) => m.length !== 3)),
    );
    assert.ok(f5.faults.injected > 0, 'faults were injected');
    await waitUntil('all statuses', async () => {
      const list = await client.list<ServiceObject>(`/api/v1/namespaces/${ns}/services`);
      return list.items.every((s) => s.status?.loadBalancer?.ingress?.[0]?.ip) ? true : undefined;
    });
    for (let i = 0; i < 200; i += 20) {
      await Promise.all(
        Array.from({ length: 20 }, (_, j) => client.delete(`/api/v1/namespaces/${ns}/services/s${i + j}`)),
      );
    }
    await waitUntil(
      'no objects left',
      () => {
        const left = objectsOf(ns);
        return left.virtuals.length + left.pools.length + left.monitors.length === 0 ? true : undefined;
      },
      240_000,
    );
  } finally {
    stopFaults();
  }
});

/** The shipped ClusterRole bound to the `klb-controller` token user. */
async function grantShippedRbac(name: string): Promise<void> {
  const docs = parseAllDocuments(
    readFileSync(join(import.meta.dirname, '../../../deploy/base/controller-rbac.yaml'), 'utf8'),
  ).map((d) => d.toJSON() as KubeObject & { rules: unknown[] });
  const role = docs.find((d) => d.kind === 'ClusterRole');
  if (!role) throw new Error('no ClusterRole in controller-rbac.yaml');
  await client.create('/apis/rbac.authorization.k8s.io/v1/clusterroles', { ...role, metadata: { name } } as KubeObject);
  await client.create('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'klb-controller' }],
  } as KubeObject);
}

it("when the controller's Kubernetes credentials fail, nothing is deleted on the F5", async () => {
  await grantShippedRbac('klb-f5-creds');
  const ns = await namespace(client, 'f5creds');
  const rbacController = startController({
    lbClass: 'klb.io/f5-rbac',
    controllerId: 'rbac',
    kubeUser: 'klb-controller',
    allocator: new HashAllocator(),
  });
  await rbacController.start();
  try {
    for (const name of ['a', 'b'])
      await client.create(`/api/v1/namespaces/${ns}/services`, lbService(name, [80], 'klb.io/f5-rbac'));
    await waitUntil('converged', () => (objectsOf(ns).virtuals.length === 2 ? true : undefined));
    const before = JSON.stringify(objectsOf(ns));
    await client.delete('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/klb-f5-creds');
    await waitUntil('access revoked', async () => {
      const review = await client.create<KubeObject & { status?: { allowed?: boolean } }>(
        '/apis/authorization.k8s.io/v1/subjectaccessreviews',
        {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: { user: 'klb-controller', resourceAttributes: { verb: 'list', resource: 'services' } },
        } as KubeObject,
      );
      return review.status?.allowed ? undefined : true;
    });
    // Its informers now fail to relist and watch; a resync must not turn that into deletions.
    rbacController.resync();
    await new Promise((r) => setTimeout(r, 3000));
    assert.is(JSON.stringify(objectsOf(ns)), before, 'F5 objects untouched while Kubernetes cannot be read');
    await client.create('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'klb-f5-creds' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'klb-f5-creds' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'klb-controller' }],
    } as KubeObject);
    await waitUntil(
      'status written once access is back',
      async () => ((await ingressIp(ns, 'a')) && (await ingressIp(ns, 'b')) ? true : undefined),
      90_000,
    );
    assert.is(JSON.stringify(objectsOf(ns)), before, 'no duplicates after recovery');
    for (const name of ['a', 'b']) await client.delete(`/api/v1/namespaces/${ns}/services/${name}`);
    await waitUntil('deleted', async () => ((await gone(ns, 'a')) && (await gone(ns, 'b')) ? true : undefined), 90_000);
    await waitUntil('F5 objects removed', () => (objectsOf(ns).virtuals.length === 0 ? true : undefined));
  } finally {
    await rbacController.stop();
  }
});

function startChild(kubeconfig: string, caFile: string): { child: ChildProcess; output: () => string } {
  const child = spawn(
    process.execPath,
    ['--conditions=klb-source', '--import', 'tsx', join(import.meta.dirname, 'fixtures', 'f5-controller-process.ts')],
    {
      env: {
        ...process.env,
        KUBECONFIG_FILE: kubeconfig,
        F5_HOST: f5.host,
        F5_USER: 'admin',
        F5_PASSWORD: 'admin',
        F5_CA_FILE: caFile,
        LB_CLASS: 'klb.io/f5-child',
        CONTROLLER_ID: 'child',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.add(child);
  let out = '';
  child.stdout?.on('data', (c) => (out += c));
  child.stderr?.on('data', (c) => (out += c));
  child.on('exit', () => children.delete(child));
  return { child, output: () => out };
}

it('a controller killed mid-transaction and restarted converges without duplicates', async () => {
  const ns = await namespace(client, 'f5kill');
  const kubeconfig = cp().writeKubeConfig();
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, f5.ca);
  f5.faults.latencyMs = 40;
  try {
    const first = startChild(kubeconfig, caFile);
    await waitUntil('child started', () => (first.output().includes('"started"') ? true : undefined));
    await client.create(`/api/v1/namespaces/${ns}/services`, lbService('k', [80, 81, 82], 'klb.io/f5-child'));
    await waitUntil(
      'a transaction with queued commands',
      () => (f5.state().transactions.some((t) => t.state === 'STARTED' && t.commands >= 2) ? true : undefined),
      30_000,
    );
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    const half = objectsOf(ns);
    assert.equal(
      [half.virtuals.length, half.pools.length, half.monitors.length],
      [0, 0, 0],
      'an uncommitted transaction applied nothing',
    );
    const second = startChild(kubeconfig, caFile);
    await waitUntil('converged after restart', () => (objectsOf(ns).virtuals.length === 3 ? true : undefined), 60_000);
    const o = objectsOf(ns);
    assert.equal([o.virtuals.length, o.pools.length, o.monitors.length], [3, 3, 3]);
    assert.ok(o.virtuals.every((v) => v.description === `klb:child service/${ns}/k`));
    second.child.kill('SIGTERM');
    await new Promise((r) => second.child.once('exit', r));
  } finally {
    f5.faults.latencyMs = 0;
  }
  // The main controller does not own these (another controller id): it leaves them alone.
  assert.is(objectsOf(ns).virtuals.length, 3);
});

test.run();
