// Service-driven tests: real kube-apiserver + etcd, the real reconcile engine of @klb/core, and
// the Octavia backend against real Keystone + Octavia API servers.
import { KubeClient, type KubeObject, LoadBalancerController, type ServiceObject, silentLogger } from '@klb/core';
import {
  type ControlPlane,
  eventually,
  type OpenStack,
  requireComponents,
  startControlPlane,
  startOpenStack,
} from '@klb/testing';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { OctaviaBackend } from '../src/index.js';
import { backendFor, stopSuite, userConfig } from './helpers.js';

const test = suite('octavia: Services through the engine (real apiserver, Keystone, Octavia)');
const missing = requireComponents('kube-apiserver', 'etcd', 'keystone', 'octavia');
const it = missing ? test.skip : test;
const LB_CLASS = 'klb.io/load-balancer';
const TOKEN_SECONDS = 20;

let plane: ControlPlane | undefined;
let stack: OpenStack | undefined;
let client: KubeClient;
let controller: LoadBalancerController | undefined;
let backend: OctaviaBackend;

function startController(b: OctaviaBackend): LoadBalancerController {
  const c = new LoadBalancerController({
    kubeConfig: (plane as ControlPlane).kubeConfig,
    backend: b,
    workers: 4,
    logger: silentLogger,
  });
  return c;
}

if (!missing) {
  plane = await startControlPlane();
  // Short-lived tokens: the run outlives several of them (token expiry is part of the test).
  stack = await startOpenStack({ provisioningDelaySeconds: 0.3, tokenExpirationSeconds: TOKEN_SECONDS });
  client = new KubeClient(plane.kubeConfig);
  await createNode('node-a', '192.0.2.11');
  await createNode('node-b', '192.0.2.12');
  backend = backendFor(stack);
  controller = startController(backend);
  await controller.start();
  test.after(() => stopSuite({ controller, client, stack, plane }));
}
const os = (): OpenStack => stack as OpenStack;

/** {@link eventually} with this suite's 90 s default. */
const waitUntil = <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> =>
  eventually(what, fn, timeoutMs);

async function createNode(name: string, address: string): Promise<void> {
  await client.create('/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name } } as KubeObject);
  await client.patch(`/api/v1/nodes/${name}/status`, {
    status: {
      conditions: [{ type: 'Ready', status: 'True', reason: 'Test', message: 'set by test' }],
      addresses: [{ type: 'InternalIP', address }],
    },
  });
}

let nsCount = 0;
async function namespace(): Promise<string> {
  const name = `oct-${process.pid}-${++nsCount}`;
  await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } as KubeObject);
  return name;
}

async function createService(ns: string, name: string, ports: number[]): Promise<void> {
  await client.create(`/api/v1/namespaces/${ns}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name },
    spec: {
      type: 'LoadBalancer',
      loadBalancerClass: LB_CLASS,
      selector: { app: name },
      ports: ports.map((port) => ({ name: `p${port}`, port, protocol: 'TCP', targetPort: 8080 })),
    },
  } as KubeObject);
}

const svcPath = (ns: string, name: string) => `/api/v1/namespaces/${ns}/services/${name}`;

async function statusIp(ns: string, name: string): Promise<string> {
  return waitUntil(`status of ${ns}/${name}`, async () => {
    const svc = await client.get<ServiceObject>(svcPath(ns, name));
    return svc.status?.loadBalancer?.ingress?.[0]?.ip ?? undefined;
  });
}

interface Lb {
  id: string;
  name: string;
  provisioning_status: string;
  vip_address: string;
}

async function octavia<T>(path: string): Promise<T> {
  const { token } = await os().issueToken();
  const res = await fetch(`${os().octaviaDirectUrl}${path}`, { headers: { 'x-auth-token': token } });
  if (!res.ok) throw new Error(`GET ${path}: ${res.status}`);
  return (await res.json()) as T;
}

async function lbsOf(ns: string, name: string): Promise<Lb[]> {
  const lbName = backend.loadBalancerName({ id: `service/${ns}/${name}`, kind: 'Service', namespace: ns, name });
  return (await octavia<{ loadbalancers: Lb[] }>(`/v2/lbaas/loadbalancers?name=${lbName}`)).loadbalancers;
}

async function membersOf(lbId: string): Promise<Record<string, string[]>> {
  const pools = (
    await octavia<{ pools: Array<{ id: string; name: string }> }>(`/v2/lbaas/pools?loadbalancer_id=${lbId}`)
  ).pools;
  const out: Record<string, string[]> = {};
  for (const pool of pools) {
    const members = (
      await octavia<{ members: Array<{ address: string; protocol_port: number }> }>(
        `/v2/lbaas/pools/${pool.id}/members`,
      )
    ).members;
    out[pool.id] = members.map((m) => `${m.address}:${m.protocol_port}`).sort();
  }
  return out;
}

async function events(ns: string, name: string): Promise<Array<{ reason: string; message: string }>> {
  const list = await client.list<KubeObject & { reason: string; message: string; involvedObject: { name: string } }>(
    `/api/v1/namespaces/${ns}/events`,
  );
  return list.items
    .filter((e) => e.involvedObject.name === name)
    .map((e) => ({ reason: e.reason, message: e.message }));
}

it('a two-port Service: Keystone + Octavia and back (status = the Octavia VIP), then deleted', async () => {
  const ns = await namespace();
  await createService(ns, 'web', [80, 443]);
  const ip = await statusIp(ns, 'web');
  const [lb, ...more] = await lbsOf(ns, 'web');
  assert.is(more.length, 0);
  assert.is(ip, lb?.vip_address);
  const svc = await client.get<ServiceObject>(svcPath(ns, 'web'));
  const nodePorts = (svc.spec?.ports ?? []).map((p) => p.nodePort).sort();
  const members = await membersOf((lb as Lb).id);
  assert.equal(
    Object.values(members).flat().sort(),
    nodePorts.flatMap((np) => [`192.0.2.11:${np}`, `192.0.2.12:${np}`]).sort(),
  );
  await client.delete(svcPath(ns, 'web'));
  await waitUntil('the Service is gone', async () =>
    (await client.get(svcPath(ns, 'web')).then(
      () => false,
      () => true,
    ))
      ? true
      : undefined,
  );
  assert.equal(await lbsOf(ns, 'web'), [], 'the Octavia load balancer is deleted (cascade) before the finalizer goes');
});

it('a node joins: one batch member PUT per pool', async () => {
  const ns = await namespace();
  await createService(ns, 'nodes', [80, 81]);
  await statusIp(ns, 'nodes');
  const [lb] = await lbsOf(ns, 'nodes');
  const poolIds = Object.keys(await membersOf((lb as Lb).id));
  await waitUntil('the load balancer settles', async () =>
    (await lbsOf(ns, 'nodes'))[0]?.provisioning_status === 'ACTIVE' ? true : undefined,
  );
  await os().provider.reset();
  await createNode('node-c', '192.0.2.13');
  await waitUntil('three members in both pools', async () => {
    const m = await membersOf((lb as Lb).id);
    return Object.values(m).every((list) => list.length === 3) ? true : undefined;
  });
  const writes = (await os().provider.requests()).filter(
    (r) => r.method !== 'GET' && (r.path.includes((lb as Lb).id) || poolIds.some((id) => r.path.includes(id))),
  );
  assert.equal(writes.map((w) => w.method).sort(), ['PUT', 'PUT']);
  assert.equal(writes.map((w) => w.path).sort(), poolIds.map((id) => `/v2/lbaas/pools/${id}/members`).sort());
  await client.delete(svcPath(ns, 'nodes'));
});

it('a load balancer that goes ERROR is recreated', async () => {
  const ns = await namespace();
  await createService(ns, 'broken', [80]);
  await statusIp(ns, 'broken');
  const [before] = await lbsOf(ns, 'broken');
  await os().provider.failNextProvisioning((before as Lb).name);
  await client.patch(svcPath(ns, 'broken'), {
    spec: {
      ports: [
        { name: 'p80', port: 80, protocol: 'TCP', targetPort: 8080 },
        { name: 'p90', port: 90, protocol: 'TCP', targetPort: 8080 },
      ],
    },
  });
  const after = await waitUntil('a new, ACTIVE load balancer with both ports', async () => {
    const lbs = await lbsOf(ns, 'broken');
    const [lb] = lbs;
    if (lbs.length !== 1 || !lb || lb.id === before?.id || lb.provisioning_status !== 'ACTIVE') return undefined;
    const listeners = (await octavia<{ listeners: unknown[] }>(`/v2/lbaas/listeners?loadbalancer_id=${lb.id}`))
      .listeners;
    return listeners.length === 2 ? lb : undefined;
  });
  assert.ok((await os().provider.transitions()).some((t) => t.id === before?.id && t.to === 'ERROR'));
  assert.is(await statusIp(ns, 'broken'), after.vip_address);
  await client.delete(svcPath(ns, 'broken'));
});

it('while one load balancer is slowly PENDING_UPDATE, other Services keep converging', async () => {
  const ns = await namespace();
  await createService(ns, 'slow', [80]);
  await statusIp(ns, 'slow');
  const [slow] = await lbsOf(ns, 'slow');
  await os().provider.setLoadBalancerDelay((slow as Lb).name, 3600);
  await client.patch(svcPath(ns, 'slow'), {
    spec: {
      ports: [
        { name: 'p80', port: 80, protocol: 'TCP', targetPort: 8080 },
        { name: 'p81', port: 81, protocol: 'TCP', targetPort: 8080 },
      ],
    },
  });
  await waitUntil('slow is PENDING_UPDATE', async () =>
    (await lbsOf(ns, 'slow'))[0]?.provisioning_status === 'PENDING_UPDATE' ? true : undefined,
  );
  for (const name of ['fast-1', 'fast-2', 'fast-3', 'fast-4', 'fast-5']) await createService(ns, name, [80]);
  for (const name of ['fast-1', 'fast-2', 'fast-3', 'fast-4', 'fast-5']) await statusIp(ns, name);
  assert.is(
    (await lbsOf(ns, 'slow'))[0]?.provisioning_status,
    'PENDING_UPDATE',
    'still pending: nothing waited for it',
  );
  await os().provider.setLoadBalancerDelay((slow as Lb).name, null);
  await waitUntil('slow gets its second listener', async () => {
    const listeners = (await octavia<{ listeners: unknown[] }>(`/v2/lbaas/listeners?loadbalancer_id=${slow?.id}`))
      .listeners;
    return listeners.length === 2 ? true : undefined;
  });
  for (const name of ['slow', 'fast-1', 'fast-2', 'fast-3', 'fast-4', 'fast-5']) await client.delete(svcPath(ns, name));
});

it('a 409 (immutable) from a stale read is requeued and converges', async () => {
  const ns = await namespace();
  await createService(ns, 'race', [80]);
  await statusIp(ns, 'race');
  const [lb] = await lbsOf(ns, 'race');
  await waitUntil('ACTIVE', async () =>
    (await lbsOf(ns, 'race'))[0]?.provisioning_status === 'ACTIVE' ? true : undefined,
  );
  await os().provider.reset();
  // The controller's next read of the load balancer answers late, and meanwhile someone else
  // changes it: the controller acts on a stale ACTIVE, and Octavia refuses its write with 409.
  await os().provider.holdAnswers({ count: 1, method: 'GET', pathContains: '/v2/lbaas/loadbalancers', ms: 2000 });
  await client.patch(svcPath(ns, 'race'), {
    spec: {
      ports: [
        { name: 'p80', port: 80, protocol: 'TCP', targetPort: 8080 },
        { name: 'p82', port: 82, protocol: 'TCP', targetPort: 8080 },
      ],
    },
  });
  await waitUntil('the read is held', async () => ((await os().provider.holding()) > 0 ? true : undefined));
  await os().provider.pause(true);
  const { token } = await os().issueToken();
  const put = await fetch(`${os().octaviaDirectUrl}/v2/lbaas/loadbalancers/${lb?.id}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', 'x-auth-token': token },
    body: JSON.stringify({ loadbalancer: { description: 'changed by someone else' } }),
  });
  assert.is(put.status, 200);
  await waitUntil('the 409', async () =>
    (await os().provider.requests()).some((r) => r.method === 'POST' && r.status === 409) ? true : undefined,
  );
  await os().provider.pause(false);
  await waitUntil('the second listener', async () => {
    const listeners = (await octavia<{ listeners: unknown[] }>(`/v2/lbaas/listeners?loadbalancer_id=${lb?.id}`))
      .listeners;
    return listeners.length === 2 ? true : undefined;
  });
  await os().provider.holdAnswers(null);
  await client.delete(svcPath(ns, 'race'));
});

it('the controller restarted mid-provisioning adopts the load balancer: no duplicates', async () => {
  const ns = await namespace();
  await os().provider.pause(true);
  await os().provider.reset();
  await createService(ns, 'restart', [80]);
  await waitUntil('the create reached Octavia', async () => ((await lbsOf(ns, 'restart')).length ? true : undefined));
  await controller?.stop();
  backend = backendFor(os());
  controller = startController(backend);
  await controller.start();
  await os().provider.pause(false);
  const ip = await statusIp(ns, 'restart');
  const lbs = await lbsOf(ns, 'restart');
  assert.is(lbs.length, 1);
  assert.is(ip, lbs[0]?.vip_address);
  const creates = (await os().provider.requests()).filter(
    (r) => r.method === 'POST' && r.path === '/v2/lbaas/loadbalancers',
  );
  assert.is(creates.length, 1, 'one create in total');
  await client.delete(svcPath(ns, 'restart'));
});

it('tokens expire during the run and are renewed', async () => {
  // Every Keystone token lives TOKEN_SECONDS; by now the run has outlived several.
  assert.ok(backend.session.authentications >= 1);
  const ns = await namespace();
  const first = await backend.session.token();
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, first.expiresAt - Date.now() + 500)));
  await createService(ns, 'after-expiry', [80]);
  await statusIp(ns, 'after-expiry');
  assert.ok(backend.session.authentications >= 2, 're-authenticated');
  await client.delete(svcPath(ns, 'after-expiry'));
});

it('externalTrafficPolicy Local: only nodes with ready endpoints, HTTP monitor on healthCheckNodePort', async () => {
  const ns = await namespace();
  await client.create(`/api/v1/namespaces/${ns}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'local' },
    spec: {
      type: 'LoadBalancer',
      loadBalancerClass: LB_CLASS,
      externalTrafficPolicy: 'Local',
      selector: { app: 'local' },
      ports: [{ name: 'p80', port: 80, protocol: 'TCP', targetPort: 8080 }],
    },
  } as KubeObject);
  await client.create(`/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`, {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'local-slice', labels: { 'kubernetes.io/service-name': 'local' } },
    addressType: 'IPv4',
    endpoints: [{ addresses: ['10.244.1.5'], nodeName: 'node-b', conditions: { ready: true } }],
    ports: [{ name: 'p80', port: 8080, protocol: 'TCP' }],
  } as KubeObject);
  await statusIp(ns, 'local');
  const svc = await client.get<ServiceObject>(svcPath(ns, 'local'));
  const nodePort = svc.spec?.ports?.[0]?.nodePort;
  const hcPort = (svc.spec as { healthCheckNodePort?: number } | undefined)?.healthCheckNodePort;
  assert.ok(hcPort, 'the apiserver allocated a healthCheckNodePort');
  const [lb] = await lbsOf(ns, 'local');
  const [pool] = (
    await octavia<{ pools: Array<{ id: string; healthmonitor_id: string }> }>(
      `/v2/lbaas/pools?loadbalancer_id=${lb?.id}`,
    )
  ).pools;
  const members = (
    await octavia<{ members: Array<{ address: string; protocol_port: number; monitor_port: number }> }>(
      `/v2/lbaas/pools/${pool?.id}/members`,
    )
  ).members;
  assert.equal(
    members.map((m) => [m.address, m.protocol_port, m.monitor_port]),
    [['192.0.2.12', nodePort, hcPort]],
  );
  const monitor = (
    await octavia<{ healthmonitor: { type: string; url_path: string } }>(
      `/v2/lbaas/healthmonitors/${pool?.healthmonitor_id}`,
    )
  ).healthmonitor;
  assert.is(monitor.type, 'HTTP');
  assert.is(monitor.url_path, '/healthz');
  await client.delete(svcPath(ns, 'local'));
});

it('bad credentials: a clear error on the Service, nothing deleted', async () => {
  const ns = await namespace();
  await createService(ns, 'kept', [80]);
  await statusIp(ns, 'kept');
  const [kept] = await lbsOf(ns, 'kept');
  await controller?.stop();
  const bad = backendFor(os(), {
    config: userConfig(os(), {
      credentials: { type: 'password', username: 'klb', password: 'wrong-password', projectName: 'klb' },
    }),
  });
  controller = startController(bad);
  await controller.start();
  await os().provider.reset();
  await createService(ns, 'denied', [80]);
  const event = await waitUntil('a warning event', async () =>
    (await events(ns, 'denied')).find((e) => /Keystone refused the credentials of user klb/.test(e.message)),
  );
  assert.is(event.reason, 'SyncLoadBalancerFailed');
  assert.not.match(event.message, /wrong-password/);
  await client.delete(svcPath(ns, 'kept'));
  await new Promise((resolve) => setTimeout(resolve, 2000));
  assert.equal(
    (await os().provider.requests()).filter((r) => r.method !== 'GET'),
    [],
    'no writes to Octavia',
  );
  assert.is(
    (await lbsOf(ns, 'kept'))[0]?.id,
    kept?.id,
    'the load balancer of a deleted Service is not deleted blindly',
  );
  // Fixed credentials: the finalizer work completes.
  await controller.stop();
  backend = backendFor(os());
  controller = startController(backend);
  await controller.start();
  await statusIp(ns, 'denied');
  await client.delete(svcPath(ns, 'denied'));
  await waitUntil('kept is cleaned up', async () => ((await lbsOf(ns, 'kept')).length === 0 ? true : undefined));
});

test.run();
