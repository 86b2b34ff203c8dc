// Gateways through the engine: real kube-apiserver + etcd with the Gateway API CRDs, the
// reconcile engine of @klb/core, and the Octavia backend against real Keystone, Octavia API and
// Neutron servers (Octavia allocates the VIP on a real Neutron subnet). What a user writes
// (Gateway, TCPRoute, UDPRoute) and reads back (Gateway and Route status), next to what Octavia
// holds.
import {
  type ConditionJson,
  type GatewayObject,
  KubeClient,
  type KubeObject,
  LoadBalancerController,
  type LoadBalancerRef,
  type RouteObject,
  type ServiceObject,
  silentLogger,
} from '@klb/core';
import {
  type ControlPlane,
  createNode,
  createTestNamespace,
  eventually,
  installGatewayApiCrds,
  type OpenStack,
  requireComponents,
  startControlPlane,
  startOpenStack,
} from '@klb/testing';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { OctaviaBackend } from '../src/index.js';
import { backendFor, ctx, stopSuite } from './helpers.js';

const test = suite('octavia: Gateways through the engine (real apiserver, Keystone, Octavia, Neutron)');
const missing = requireComponents('kube-apiserver', 'etcd', 'keystone', 'octavia', 'neutron');
const it = missing ? test.skip : test;

const GW = '/apis/gateway.networking.k8s.io/v1';
const CONTROLLER = 'klb.io/octavia';
const CLASS = 'klb-octavia';

let plane: ControlPlane | undefined;
let stack: OpenStack | undefined;
let client: KubeClient;
let controller: LoadBalancerController | undefined;
let backend: OctaviaBackend;

if (!missing) {
  plane = await startControlPlane();
  stack = await startOpenStack({ provisioningDelaySeconds: 0.3, neutron: true });
  client = new KubeClient(plane.kubeConfig);
  await installGatewayApiCrds(plane.kubeConfig);
  await createNode(client, 'node-a', '192.0.2.11');
  await createNode(client, 'node-b', '192.0.2.12');
  await client.create(`${GW}/gatewayclasses`, {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'GatewayClass',
    metadata: { name: CLASS },
    spec: { controllerName: CONTROLLER },
  } as KubeObject);
  backend = backendFor(stack);
  controller = new LoadBalancerController({
    kubeConfig: plane.kubeConfig,
    backend,
    services: false,
    configMaps: false,
    gateways: { controllerName: CONTROLLER },
    workers: 4,
    resyncPeriodMs: 0,
    logger: silentLogger,
  });
  await controller.start();
  test.after(() => stopSuite({ controller, client, stack, plane }));
}
const os = (): OpenStack => stack as OpenStack;

/** {@link eventually} with this suite's 90 s default. */
const waitUntil = <T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 90_000): Promise<T> =>
  eventually(what, fn, timeoutMs);

// --- what the user writes -------------------------------------------------------------------

function nodePortService(name: string, port: number, protocol: 'TCP' | 'UDP' = 'TCP'): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name },
    spec: { type: 'NodePort', selector: { app: name }, ports: [{ name: 'p', port, protocol, targetPort: 8080 }] },
  } as KubeObject;
}

function gateway(name: string, listeners: unknown[], addresses?: unknown[]): KubeObject {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name },
    spec: { gatewayClassName: CLASS, listeners, ...(addresses ? { addresses } : {}) },
  } as KubeObject;
}

function route(kind: string, name: string, spec: Record<string, unknown>): KubeObject {
  return { apiVersion: 'gateway.networking.k8s.io/v1', kind, metadata: { name }, spec } as KubeObject;
}

const backendRefs = (...refs: [string, number][]) => refs.map(([name, port]) => ({ name, port }));

// --- what the user reads back ----------------------------------------------------------------

const gatewayPath = (ns: string, name: string) => `${GW}/namespaces/${ns}/gateways/${name}`;
const getGateway = (ns: string, name: string) => client.get<GatewayObject>(gatewayPath(ns, name));

function cond(list: readonly ConditionJson[] | undefined, type: string): ConditionJson | undefined {
  return list?.find((c) => c.type === type);
}

/** `status reason` of a condition, for compact assertions. */
function sr(c: ConditionJson | undefined): string {
  return `${c?.status} ${c?.reason}`;
}

async function routeParent(ns: string, resource: string, name: string) {
  const r = await client.get<RouteObject>(`${GW}/namespaces/${ns}/${resource}/${name}`);
  return r.status?.parents?.find((p) => p.controllerName === CONTROLLER);
}

async function nodePort(ns: string, name: string): Promise<number> {
  const svc = await client.get<ServiceObject>(`/api/v1/namespaces/${ns}/services/${name}`);
  return svc.spec?.ports?.[0]?.nodePort as number;
}

async function gone(path: string): Promise<boolean> {
  try {
    await client.get(path);
    return false;
  } catch {
    return true;
  }
}

async function programmed(ns: string, name: string, attached: Record<string, number>): Promise<GatewayObject> {
  return waitUntil(`Gateway ${name} programmed with its routes attached`, async () => {
    const g = await getGateway(ns, name);
    const listeners = g.status?.listeners ?? [];
    return (
      cond(g.status?.conditions, 'Programmed')?.status === 'True' &&
      !!g.status?.addresses?.length &&
      Object.entries(attached).every(([l, n]) => listeners.find((x) => x.name === l)?.attachedRoutes === n) &&
      g
    );
  });
}

// --- what Octavia holds -----------------------------------------------------------------------

interface Lb {
  id: string;
  name: string;
  provisioning_status: string;
  vip_address: string;
  tags: string[];
}

async function octavia<T>(path: string): Promise<T> {
  const { token } = await os().issueToken();
  const res = await fetch(`${os().octaviaDirectUrl}${path}`, { headers: { 'x-auth-token': token } });
  if (!res.ok) throw new Error(`GET ${path}: ${res.status}`);
  return (await res.json()) as T;
}

const gatewayRef = (ns: string, name: string): LoadBalancerRef => ({
  id: `gateway/${ns}/${name}`,
  kind: 'Gateway',
  namespace: ns,
  name,
});

async function lbsOf(ref: LoadBalancerRef): Promise<Lb[]> {
  const name = backend.loadBalancerName(ref);
  return (await octavia<{ loadbalancers: Lb[] }>(`/v2/lbaas/loadbalancers?name=${encodeURIComponent(name)}`))
    .loadbalancers;
}

/**
 * The load balancer's listeners as `<protocol>/<port> -> <member>,…` (sorted), each with its
 * default pool's members.
 */
async function served(lbId: string): Promise<string[]> {
  const listeners = (
    await octavia<{ listeners: { protocol: string; protocol_port: number; default_pool_id: string | null }[] }>(
      `/v2/lbaas/listeners?loadbalancer_id=${lbId}`,
    )
  ).listeners;
  const out: string[] = [];
  for (const l of listeners) {
    const members = l.default_pool_id
      ? (
          await octavia<{ members: { address: string; protocol_port: number }[] }>(
            `/v2/lbaas/pools/${l.default_pool_id}/members`,
          )
        ).members
          .map((m) => `${m.address}:${m.protocol_port}`)
          .sort()
      : [];
    out.push(`${l.protocol}/${l.protocol_port} -> ${members.join(',')}`);
  }
  return out.sort();
}

/** Everything Octavia still holds for a load balancer id (listeners, pools). */
async function leftovers(lbId: string): Promise<string[]> {
  const listeners = (await octavia<{ listeners: { id: string }[] }>(`/v2/lbaas/listeners?loadbalancer_id=${lbId}`))
    .listeners;
  const pools = (await octavia<{ pools: { id: string }[] }>(`/v2/lbaas/pools?loadbalancer_id=${lbId}`)).pools;
  return [...listeners.map((l) => `listener ${l.id}`), ...pools.map((p) => `pool ${p.id}`)];
}

const members = (port: number) => [`192.0.2.11:${port}`, `192.0.2.12:${port}`];

it('TCP and UDP listeners from a TCPRoute and a UDPRoute; HTTP and TLS listeners UnsupportedProtocol; members follow the backendRefs; deletion leaves nothing', async () => {
  const ns = await createTestNamespace(client, 'octgw');
  for (const svc of [
    nodePortService('db', 5432),
    nodePortService('db2', 5432),
    nodePortService('dns', 53, 'UDP'),
    nodePortService('web', 80),
    nodePortService('secure', 443),
  ]) {
    await client.create(`/api/v1/namespaces/${ns}/services`, svc);
  }
  await client.create(
    `${GW}/namespaces/${ns}/gateways`,
    gateway('edge', [
      { name: 'http', port: 80, protocol: 'HTTP' },
      { name: 'tls', port: 8443, protocol: 'TLS', tls: { mode: 'Passthrough' } },
      { name: 'db', port: 5432, protocol: 'TCP' },
      { name: 'dns', port: 53, protocol: 'UDP' },
    ]),
  );
  const routes: [string, KubeObject][] = [
    [
      'httproutes',
      route('HTTPRoute', 'web', {
        parentRefs: [{ name: 'edge', sectionName: 'http' }],
        hostnames: ['www.example.com'],
        rules: [
          {
            matches: [{ path: { type: 'PathPrefix', value: '/' } }],
            backendRefs: backendRefs(['web', 80]),
          },
        ],
      }),
    ],
    [
      'tlsroutes',
      route('TLSRoute', 'secure', {
        parentRefs: [{ name: 'edge', sectionName: 'tls' }],
        hostnames: ['secure.example.com'],
        rules: [{ backendRefs: backendRefs(['secure', 443]) }],
      }),
    ],
    [
      'tcproutes',
      route('TCPRoute', 'db', {
        parentRefs: [{ name: 'edge', sectionName: 'db' }],
        rules: [{ backendRefs: backendRefs(['db', 5432]) }],
      }),
    ],
    [
      'udproutes',
      route('UDPRoute', 'dns', {
        parentRefs: [{ name: 'edge', sectionName: 'dns' }],
        rules: [{ backendRefs: backendRefs(['dns', 53]) }],
      }),
    ],
  ];
  for (const [resource, r] of routes) await client.create(`${GW}/namespaces/${ns}/${resource}`, r);

  const gw = await programmed(ns, 'edge', { db: 1, dns: 1 });
  const ref = gatewayRef(ns, 'edge');
  const [lb, ...more] = await lbsOf(ref);
  assert.is(more.length, 0, 'one Octavia load balancer for the Gateway');
  assert.ok(lb);
  assert.is(lb.name, `klb_test_gateway_${ns}_edge`);
  assert.ok(lb.tags.includes(`klb-ref=gateway/${ns}/edge`), `tagged with the ref: ${lb.tags}`);
  assert.ok(lb.vip_address.startsWith('198.51.100.'), 'Octavia allocated the VIP on the VIP subnet');
  assert.equal(gw.status?.addresses, [{ type: 'IPAddress', value: lb.vip_address }], 'the Gateway shows the VIP');
  assert.is(sr(cond(gw.status?.conditions, 'Accepted')), 'True Accepted');

  const listener = (name: string) => gw.status?.listeners?.find((l) => l.name === name);
  for (const [name, protocol] of [
    ['http', 'HTTP'],
    ['tls', 'TLS'],
  ] as const) {
    const accepted = cond(listener(name)?.conditions, 'Accepted');
    assert.is(sr(accepted), 'False UnsupportedProtocol', `listener ${name}`);
    assert.match(accepted?.message ?? '', `does not serve ${protocol} listeners`);
    assert.is(cond(listener(name)?.conditions, 'Programmed')?.status, 'False', `listener ${name} not programmed`);
    assert.is(listener(name)?.attachedRoutes, 0);
  }
  for (const name of ['db', 'dns']) {
    assert.is(sr(cond(listener(name)?.conditions, 'Accepted')), 'True Accepted', `listener ${name}`);
    assert.is(sr(cond(listener(name)?.conditions, 'Programmed')), 'True Programmed', `listener ${name}`);
  }
  for (const [resource, name, accepted] of [
    ['tcproutes', 'db', 'True'],
    ['udproutes', 'dns', 'True'],
    ['httproutes', 'web', 'False'],
    ['tlsroutes', 'secure', 'False'],
  ] as const) {
    const parent = await waitUntil(`${resource}/${name} status`, () => routeParent(ns, resource, name));
    assert.is(cond(parent.conditions, 'Accepted')?.status, accepted, `${resource}/${name} Accepted`);
  }

  // Octavia: a TCP and a UDP listener, members on each Service's node port; nothing on 80 or 8443.
  const [db, db2, dns] = [await nodePort(ns, 'db'), await nodePort(ns, 'db2'), await nodePort(ns, 'dns')];
  const want = (dbMembers: string[]) => [
    `TCP/5432 -> ${dbMembers.sort().join(',')}`,
    `UDP/53 -> ${members(dns).join(',')}`,
  ];
  assert.equal(await served(lb.id), want(members(db)));

  // The TCPRoute's backend changes: the members follow; two backends: both Services' members.
  const tcpRoutePath = `${GW}/namespaces/${ns}/tcproutes/db`;
  await client.patch(tcpRoutePath, { spec: { rules: [{ backendRefs: backendRefs(['db2', 5432]) }] } });
  await waitUntil(
    'members of db2',
    async () => JSON.stringify(await served(lb.id)) === JSON.stringify(want(members(db2))),
  );
  await client.patch(tcpRoutePath, { spec: { rules: [{ backendRefs: backendRefs(['db', 5432], ['db2', 5432]) }] } });
  await waitUntil(
    'members of db and db2',
    async () => JSON.stringify(await served(lb.id)) === JSON.stringify(want([...members(db), ...members(db2)])),
  );
  assert.ok(
    (await backend.list(ctx())).some((r) => r.id === ref.id),
    'list() finds it by its tag',
  );

  // Deleting the Gateway: the Octavia load balancer goes with its listeners, pools and members
  // before the finalizer does, and KLB's Route entries go.
  await client.delete(gatewayPath(ns, 'edge'));
  await waitUntil('the Gateway gone', () => gone(gatewayPath(ns, 'edge')));
  assert.equal(await lbsOf(ref), []);
  assert.equal(await leftovers(lb.id), []);
  assert.not.ok((await backend.list(ctx())).some((r) => r.id === ref.id));
  for (const [resource, r] of routes) {
    const name = r.metadata?.name as string;
    await waitUntil(`${resource}/${name} without KLB's entry`, async () =>
      (await routeParent(ns, resource, name)) === undefined ? true : undefined,
    );
  }
});

it('spec.addresses: the Gateway asks Octavia for its VIP; a VIP Octavia cannot give (outside the subnet, taken, a second one, a changed one) is said on the Gateway', async () => {
  const ns = await createTestNamespace(client, 'octgw');
  await client.create(`/api/v1/namespaces/${ns}/services`, nodePortService('db', 5432));
  const create = async (name: string, addresses: string[]) => {
    await client.create(
      `${GW}/namespaces/${ns}/gateways`,
      gateway(
        name,
        [{ name: 'db', port: 5432, protocol: 'TCP' }],
        addresses.map((value) => ({ type: 'IPAddress', value })),
      ),
    );
    await client.create(
      `${GW}/namespaces/${ns}/tcproutes`,
      route('TCPRoute', name, { parentRefs: [{ name }], rules: [{ backendRefs: backendRefs(['db', 5432]) }] }),
    );
  };
  const notProgrammed = (name: string, message: RegExp) =>
    waitUntil(`Gateway ${name} not programmed: ${message}`, async () => {
      const g = await getGateway(ns, name);
      const c = cond(g.status?.conditions, 'Programmed');
      return c?.status === 'False' && message.test(c.message ?? '') && g;
    });
  const warned = (name: string) =>
    waitUntil(`a Warning AddressNotAssigned on ${name}`, async () =>
      (
        await client.list<KubeObject & { reason: string; type: string; involvedObject: { name: string } }>(
          `/api/v1/namespaces/${ns}/events`,
        )
      ).items.some((e) => e.involvedObject.name === name && e.type === 'Warning' && e.reason === 'AddressNotAssigned'),
    );

  await create('fixed', ['198.51.100.77']);
  const gw = await programmed(ns, 'fixed', { db: 1 });
  assert.equal(gw.status?.addresses, [{ type: 'IPAddress', value: '198.51.100.77' }]);
  const [lb] = await lbsOf(gatewayRef(ns, 'fixed'));
  assert.is(lb?.vip_address, '198.51.100.77');

  // Neutron refuses the address: no load balancer, and the Gateway says why (no endless retry).
  await create('outside', ['10.9.9.9']);
  await notProgrammed('outside', /requested VIP 10\.9\.9\.9: .*not a valid IP for the specified subnet/);
  await create('taken', ['198.51.100.77']);
  await notProgrammed('taken', /requested VIP 198\.51\.100\.77: .*already allocated/);
  await warned('taken');
  for (const name of ['outside', 'taken']) assert.equal(await lbsOf(gatewayRef(ns, name)), [], name);

  // One VIP per Octavia load balancer: a second address is not assigned; it serves on the first.
  await create('two', ['198.51.100.81', '198.51.100.82']);
  await notProgrammed('two', /has one VIP \(198\.51\.100\.81\): 198\.51\.100\.82 not assigned/);
  assert.is((await lbsOf(gatewayRef(ns, 'two')))[0]?.vip_address, '198.51.100.81');

  // Octavia cannot move a VIP: the load balancer keeps its VIP, the Gateway says so.
  await client.patch(gatewayPath(ns, 'fixed'), {
    spec: { addresses: [{ type: 'IPAddress', value: '198.51.100.78' }] },
  });
  const moved = await notProgrammed('fixed', /requested VIP 198\.51\.100\.78 is not the VIP 198\.51\.100\.77/);
  assert.equal(moved.status?.addresses, [{ type: 'IPAddress', value: '198.51.100.77' }], 'still the VIP it has');
  assert.is((await lbsOf(gatewayRef(ns, 'fixed')))[0]?.vip_address, '198.51.100.77');
  // Back to the VIP it has: programmed again.
  await client.patch(gatewayPath(ns, 'fixed'), {
    spec: { addresses: [{ type: 'IPAddress', value: '198.51.100.77' }] },
  });
  await programmed(ns, 'fixed', { db: 1 });

  for (const name of ['fixed', 'outside', 'taken', 'two']) await client.delete(gatewayPath(ns, name));
  for (const name of ['fixed', 'outside', 'taken', 'two']) {
    await waitUntil(`Gateway ${name} gone`, () => gone(gatewayPath(ns, name)));
    assert.equal(await lbsOf(gatewayRef(ns, name)), [], name);
  }
});

test.run();
