// Gateways on a real kube-apiserver with the Gateway API CRDs, reconciled by the KLB engine with
// the F5 backend in both modes (iControl transactions, AS3), against the iControl emulator: what
// a user writes (Gateway, TCPRoute, UDPRoute) and what the user reads back (Gateway and Route
// status), next to what the BIG-IP holds.
import { as3ApplicationName, as3Declaration, F5As3Backend, F5Backend, IControlClient } from '@klb/backend-f5';
import {
  type BackendContext,
  type ConditionJson,
  type GatewayObject,
  KubeClient,
  type KubeObject,
  type LoadBalancerBackend,
  LoadBalancerController,
  type LoadBalancerRef,
  type RouteObject,
  type ServiceObject,
  silentLogger,
} from '@klb/core';
import { installAddressClaimCrd, KubeIpam, parsePoolConfig } from '@klb/ipam';
import {
  as3SchemaValidator,
  type ControlPlane,
  type F5Emulator,
  installGatewayApiCrds,
  type LtmObject,
  requireComponents,
  startControlPlane,
  startF5Emulator,
} from '@klb/testing';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createNode, namespace, waitUntil } from './kube-helpers.js';

const test = suite('F5 backend driven by Gateways (iControl and AS3 modes)');
const missing = requireComponents('kube-apiserver', 'etcd', 'openssl');
const it = missing ? test.skip : test;

const GW = '/apis/gateway.networking.k8s.io/v1';
const schemaPath = new URL('../../../../shared/data/f5-as3/as3-schema-3.56.0.json', import.meta.url).pathname;
const validate = as3SchemaValidator(schemaPath);
const ctx: BackendContext = { signal: new AbortController().signal, log: silentLogger };

/** One way of running the F5 backend, with its own GatewayClass, controller and address pool. */
interface Mode {
  readonly name: 'iControl' | 'AS3';
  readonly gatewayClass: string;
  readonly controllerName: string;
  readonly ipamNamespace: string;
  readonly pool: string;
  backend?: LoadBalancerBackend;
  controller?: LoadBalancerController;
}

const modes: Mode[] = [
  {
    name: 'iControl',
    gatewayClass: 'klb-f5',
    controllerName: 'klb.io/f5',
    ipamNamespace: 'klb-ipam',
    pool: '10.200.0.0/24',
  },
  {
    name: 'AS3',
    gatewayClass: 'klb-f5-as3',
    controllerName: 'klb.io/f5-as3',
    ipamNamespace: 'klb-ipam-as3',
    pool: '10.201.0.0/24',
  },
];
const PARTITION = 'klb';
const TENANT = 'klb_as3';

let plane: ControlPlane | undefined;
let client: KubeClient;
let f5: F5Emulator;
const cp = (): ControlPlane => plane as ControlPlane;

function f5Client(): IControlClient {
  return new IControlClient({ host: f5.host, username: 'admin', password: 'admin', ca: f5.ca, retryBaseDelayMs: 10 });
}

async function startMode(mode: Mode): Promise<void> {
  await client.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: mode.ipamNamespace },
  } as KubeObject);
  await client.create(`${GW}/gatewayclasses`, {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'GatewayClass',
    metadata: { name: mode.gatewayClass },
    spec: { controllerName: mode.controllerName },
  } as KubeObject);
  mode.backend =
    mode.name === 'iControl'
      ? new F5Backend({ client: f5Client(), partition: PARTITION, controllerId: 'klb', snapshotMaxAgeMs: 1000 })
      : new F5As3Backend({ client: f5Client(), tenant: TENANT, taskPollMs: 5 });
  mode.controller = new LoadBalancerController({
    kubeConfig: cp().kubeConfig,
    backend: mode.backend,
    allocator: new KubeIpam({
      kubeConfig: cp().kubeConfig,
      pools: parsePoolConfig({ pools: [{ name: `vips-${mode.name.toLowerCase()}`, addresses: [mode.pool] }] }),
      namespace: mode.ipamNamespace,
      ownerKinds: ['Service', 'Gateway'],
    }),
    services: false,
    configMaps: false,
    ingress: false,
    gateways: { controllerName: mode.controllerName },
    workers: 4,
    resyncPeriodMs: 0,
  });
  await mode.controller.start();
}

if (!missing) {
  plane = await startControlPlane();
  client = new KubeClient(plane.kubeConfig);
  await installGatewayApiCrds(plane.kubeConfig);
  await installAddressClaimCrd(plane.kubeConfig);
  f5 = await startF5Emulator({ partitions: [PARTITION], as3SchemaPath: schemaPath, seed: 11 });
  for (let i = 1; i <= 3; i++) await createNode(client, `node-${i}`, `192.0.2.${i}`);
  for (const mode of modes) await startMode(mode);
  test.after(async () => {
    for (const mode of modes) await mode.controller?.stop();
    for (const mode of modes) await mode.backend?.close?.();
    client.close();
    await f5.stop();
    await plane?.stop();
  });
}

// --- what the user writes -------------------------------------------------------------------

function nodePortService(name: string, port: number, protocol: 'TCP' | 'UDP' = 'TCP'): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name },
    spec: { type: 'NodePort', selector: { app: name }, ports: [{ name: 'p', port, protocol, targetPort: 8080 }] },
  } as KubeObject;
}

function gateway(name: string, className: string, listeners: unknown[]): KubeObject {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name },
    spec: { gatewayClassName: className, listeners },
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

async function routeParent(ns: string, resource: string, name: string, controllerName: string) {
  const r = await client.get<RouteObject>(`${GW}/namespaces/${ns}/${resource}/${name}`);
  return r.status?.parents?.find((p) => p.controllerName === controllerName);
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

// --- what the BIG-IP holds --------------------------------------------------------------------

const gatewayRef = (ns: string, name: string): LoadBalancerRef => ({
  id: `gateway/${ns}/${name}`,
  kind: 'Gateway',
  namespace: ns,
  name,
});

/**
 * The load balancer's services as `<protocol> <VIP>:<port> -> <member>,…` (sorted), read from
 * the LTM objects (iControl mode) or from the AS3 application (AS3 mode).
 */
function served(mode: Mode, ref: LoadBalancerRef): string[] {
  const base = as3ApplicationName(ref);
  const s = f5.state();
  if (mode.name === 'iControl') {
    return s.virtuals
      .filter((v) => v.name.startsWith(`${base}_`))
      .map((v) => {
        const pool = s.pools.find((p) => p.fullPath === v.pool);
        const members = ((pool?.members ?? []) as { name: string }[]).map((m) => m.name).sort();
        const dest = String(v.destination).replace(`/${PARTITION}/`, '');
        return `${v.ipProtocol} ${dest} -> ${members.join(',')}`;
      })
      .sort();
  }
  const app = s.as3[TENANT]?.[base] as Record<string, Record<string, unknown>> | undefined;
  if (!app) return [];
  return Object.values(app)
    .filter((o) => o?.class === 'Service_TCP' || o?.class === 'Service_UDP')
    .flatMap((svc) => {
      const pool = app[String(svc.pool)] as { members?: { servicePort: number; serverAddresses: string[] }[] };
      const members = (pool?.members ?? [])
        .flatMap((m) => m.serverAddresses.map((a) => `${a}:${m.servicePort}`))
        .sort();
      const protocol = svc.class === 'Service_UDP' ? 'udp' : 'tcp';
      return (svc.virtualAddresses as string[]).map(
        (a) => `${protocol} ${a}:${String(svc.virtualPort)} -> ${members.join(',')}`,
      );
    })
    .sort();
}

/** Every F5 object of the load balancer (LTM objects, or the AS3 application), by name. */
function leftovers(mode: Mode, ref: LoadBalancerRef): string[] {
  const base = as3ApplicationName(ref);
  const s = f5.state();
  if (mode.name === 'AS3') return s.as3[TENANT]?.[base] ? [base] : [];
  const all: LtmObject[] = [
    ...s.virtuals,
    ...s.pools,
    ...s.monitors.tcp,
    ...s.monitors.http,
    ...s.persistence.sourceAddr,
  ];
  return all.filter((o) => o.name.startsWith(base)).map((o) => o.name);
}

function schemaValid(): void {
  const apps = (f5.state().as3[TENANT] ?? {}) as Record<string, Record<string, unknown>>;
  const ok = validate(structuredClone(as3Declaration(TENANT, apps)));
  assert.ok(ok, JSON.stringify(validate.errors?.slice(0, 5)));
}

const members = (nodePort: number) => [1, 2, 3].map((i) => `192.0.2.${i}:${nodePort}`);

for (const mode of modes) {
  it(`${mode.name}: TCP and UDP listeners from a TCPRoute and a UDPRoute; HTTP and TLS listeners UnsupportedProtocol; members follow the backendRefs; deletion leaves nothing`, async () => {
    const ns = await namespace(client, `f5gw-${mode.name.toLowerCase()}`);
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
      gateway('edge', mode.gatewayClass, [
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
          rules: [{ backendRefs: backendRefs(['web', 80]) }],
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

    const gw = await waitUntil(
      'the Gateway programmed, with an address',
      async () => {
        const g = await getGateway(ns, 'edge');
        const listeners = g.status?.listeners ?? [];
        return cond(g.status?.conditions, 'Programmed')?.status === 'True' &&
          g.status?.addresses?.length &&
          listeners.find((l) => l.name === 'db')?.attachedRoutes === 1 &&
          listeners.find((l) => l.name === 'dns')?.attachedRoutes === 1
          ? g
          : undefined;
      },
      90_000,
    );
    const ip = gw.status?.addresses?.[0]?.value as string;
    assert.equal(gw.status?.addresses, [{ type: 'IPAddress', value: ip }]);
    assert.ok(ip.startsWith(mode.pool.slice(0, 7)), `the VIP ${ip} comes from the mode's pool`);
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
      assert.is(sr(cond(listener(name)?.conditions, 'ResolvedRefs')), 'True ResolvedRefs', `listener ${name}`);
    }
    // TCPRoute and UDPRoute attached and resolved; the HTTPRoute and TLSRoute not accepted, as
    // their listeners are not.
    for (const [resource, name, accepted] of [
      ['tcproutes', 'db', 'True Accepted'],
      ['udproutes', 'dns', 'True Accepted'],
      ['httproutes', 'web', 'False'],
      ['tlsroutes', 'secure', 'False'],
    ] as const) {
      const parent = await waitUntil(`${resource}/${name} status`, () =>
        routeParent(ns, resource, name, mode.controllerName),
      );
      const got = cond(parent.conditions, 'Accepted');
      assert.is(accepted === 'False' ? got?.status : sr(got), accepted, `${resource}/${name} Accepted`);
      if (accepted !== 'False') {
        assert.is(sr(cond(parent.conditions, 'ResolvedRefs')), 'True ResolvedRefs', `${resource}/${name}`);
      }
    }

    // The BIG-IP: a virtual (or AS3 service) per TCP and UDP listener, members on each Service's
    // node port, nothing on 80 or 8443.
    const ref = gatewayRef(ns, 'edge');
    const [db, db2, dns] = [await nodePort(ns, 'db'), await nodePort(ns, 'db2'), await nodePort(ns, 'dns')];
    const want = (dbMembers: string[]) => [
      `tcp ${ip}:5432 -> ${dbMembers.sort().join(',')}`,
      `udp ${ip}:53 -> ${members(dns).join(',')}`,
    ];
    assert.equal(served(mode, ref), want(members(db)));
    if (mode.name === 'iControl') {
      const virtual = f5.state().virtuals.find((v) => v.name === `klb_gw_${ns}_edge_tcp-5432`);
      assert.is(virtual?.description, `klb:klb gateway/${ns}/edge`, 'named and marked from the gateway ref');
    } else {
      const app = f5.state().as3[TENANT]?.[`klb_gw_${ns}_edge`] as Record<string, unknown> | undefined;
      assert.is(app?.label, `gateway/${ns}/edge`, 'the application is named and labelled from the gateway ref');
      schemaValid();
    }

    // The TCPRoute's backend changes: the members follow; two backends: both Services' members.
    const tcpRoutePath = `${GW}/namespaces/${ns}/tcproutes/db`;
    await client.patch(tcpRoutePath, { spec: { rules: [{ backendRefs: backendRefs(['db2', 5432]) }] } });
    await waitUntil('members of db2', () => JSON.stringify(served(mode, ref)) === JSON.stringify(want(members(db2))));
    await client.patch(tcpRoutePath, {
      spec: { rules: [{ backendRefs: backendRefs(['db', 5432], ['db2', 5432]) }] },
    });
    await waitUntil(
      'members of db and db2',
      () => JSON.stringify(served(mode, ref)) === JSON.stringify(want([...members(db), ...members(db2)])),
    );
    if (mode.name === 'AS3') schemaValid();

    // Deleting the Gateway leaves nothing: no F5 object, no claim, no Route entry of KLB's.
    assert.ok(
      (await mode.backend?.list(ctx))?.some((r) => r.id === ref.id),
      'list() finds it',
    );
    await client.delete(gatewayPath(ns, 'edge'));
    await waitUntil('the Gateway gone', () => gone(gatewayPath(ns, 'edge')), 60_000);
    assert.equal(leftovers(mode, ref), []);
    assert.not.ok(
      (await mode.backend?.list(ctx))?.some((r) => r.id === ref.id),
      'list() no longer finds it',
    );
    const claims = await client.list<KubeObject>(
      `/apis/ipam.klb.io/v1alpha1/namespaces/${mode.ipamNamespace}/addressclaims`,
    );
    assert.equal(
      claims.items.filter((c) => JSON.stringify(c).includes(`"${ns}"`)).map((c) => c.metadata?.name),
      [],
      'the address claim is released',
    );
    for (const [resource] of routes) {
      for (const name of ['web', 'secure', 'db', 'dns']) {
        const path = `${GW}/namespaces/${ns}/${resource}/${name}`;
        if (await gone(path)) continue;
        await waitUntil(`${resource}/${name} without KLB's entry`, async () =>
          (await routeParent(ns, resource, name, mode.controllerName)) === undefined ? true : undefined,
        );
      }
    }
    if (mode.name === 'AS3') schemaValid();
  });

  it(`${mode.name}: a Gateway named with 253 characters in a 63-character namespace is served, listed and removed`, async () => {
    const ns = `f5gw-long-${mode.name.toLowerCase()}-`.padEnd(63, 'n');
    await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    const name = ['a', 'b', 'c', 'd'].map((c, i) => c.repeat(i === 3 ? 61 : 63)).join('.');
    assert.is(name.length, 253);
    await client.create(`/api/v1/namespaces/${ns}/services`, nodePortService('db', 7000));
    await client.create(
      `${GW}/namespaces/${ns}/gateways`,
      gateway(name, mode.gatewayClass, [{ name: 'db', port: 7000, protocol: 'TCP' }]),
    );
    await client.create(
      `${GW}/namespaces/${ns}/tcproutes`,
      route('TCPRoute', 'db', { parentRefs: [{ name }], rules: [{ backendRefs: backendRefs(['db', 7000]) }] }),
    );
    const gw = await waitUntil(
      'the Gateway programmed',
      async () => {
        const g = await getGateway(ns, name);
        return cond(g.status?.conditions, 'Programmed')?.status === 'True' &&
          g.status?.listeners?.[0]?.attachedRoutes === 1
          ? g
          : undefined;
      },
      90_000,
    );
    const ip = gw.status?.addresses?.[0]?.value as string;
    const ref = gatewayRef(ns, name);
    const port = await nodePort(ns, 'db');
    assert.equal(served(mode, ref), [`tcp ${ip}:7000 -> ${members(port).join(',')}`]);
    const base = as3ApplicationName(ref);
    assert.match(base, /^klb_gw_[0-9a-f]{24}$/, 'a name too long for the BIG-IP is a digest');
    if (mode.name === 'AS3') {
      const app = f5.state().as3[TENANT]?.[base] as Record<string, unknown>;
      assert.ok(String(app.label).length <= 64, 'the label fits AS3');
      assert.equal(app.constants, { class: 'Constants', klbRef: ref.id }, 'the whole id is kept');
      schemaValid();
    } else {
      const virtual = f5.state().virtuals.find((v) => v.name === `${base}_tcp-7000`);
      assert.is(virtual?.description, `klb:klb ${ref.id}`);
    }
    assert.ok(
      (await mode.backend?.list(ctx))?.some((r) => r.id === ref.id),
      'list() reads the whole id back (orphan clean-up finds it)',
    );
    await client.delete(gatewayPath(ns, name));
    await waitUntil('the Gateway gone', () => gone(gatewayPath(ns, name)), 60_000);
    assert.equal(leftovers(mode, ref), []);
  });
}

it('a TCPRoute to a ClusterIP Service (no node port for the F5 to reach) says so in ResolvedRefs', async () => {
  const mode = modes[0] as Mode;
  const ns = await namespace(client, 'f5gw-cip');
  await client.create(`/api/v1/namespaces/${ns}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'db' },
    spec: { selector: { app: 'db' }, ports: [{ port: 5432, targetPort: 8080 }] },
  } as KubeObject);
  await client.create(
    `${GW}/namespaces/${ns}/gateways`,
    gateway('edge', mode.gatewayClass, [{ name: 'db', port: 5432, protocol: 'TCP' }]),
  );
  await client.create(
    `${GW}/namespaces/${ns}/tcproutes`,
    route('TCPRoute', 'db', { parentRefs: [{ name: 'edge' }], rules: [{ backendRefs: backendRefs(['db', 5432]) }] }),
  );
  const parent = await waitUntil('route status', () => routeParent(ns, 'tcproutes', 'db', mode.controllerName));
  const resolved = parent.conditions.find((c) => c.type === 'ResolvedRefs');
  assert.is(resolved?.status, 'False');
  assert.is(resolved?.reason, 'BackendNotFound');
  assert.match(resolved?.message ?? '', /nodePort/);
  await client.delete(`${GW}/namespaces/${ns}/gateways/edge`);
});

test.run();
