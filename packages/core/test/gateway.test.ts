// Gateway API on a real apiserver with the Standard channel CRDs: a Gateway is a load balancer,
// its Routes (from the namespaces its listeners allow) feed it; what users read back is the
// Gateway's, the listeners' and the Routes' status.
import {
  type ConditionJson,
  FINALIZER,
  type GatewayObject,
  KubeClient,
  type KubeObject,
  LoadBalancerController,
  type RouteObject,
} from '@klb/core';
import {
  type ControlPlane,
  installGatewayApiCrds,
  RecordingBackend,
  requireComponents,
  startControlPlane,
} from '@klb/testing';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createNode, namespace, waitUntil } from './helpers.js';

const test = suite('controller: Gateway API');
const missing = requireComponents('kube-apiserver', 'etcd');
const it = missing ? test.skip : test;

const GW = '/apis/gateway.networking.k8s.io/v1';
const CONTROLLER = 'klb.io/test-gateway-controller';
let plane: ControlPlane | undefined;
let client: KubeClient;
let controller: LoadBalancerController;
const backend = new RecordingBackend({
  capabilities: {
    allocatesAddresses: true,
    protocols: ['TCP', 'UDP', 'HTTP', 'HTTPS', 'TLS'],
    targetKinds: ['clusterIP', 'node', 'pod'],
  },
  allocateAddress: (n) => `198.51.100.${n}`,
});

if (!missing) {
  plane = await startControlPlane();
  client = new KubeClient(plane.kubeConfig);
  await installGatewayApiCrds(plane.kubeConfig);
  await createNode(client, 'node-a', '192.0.2.11');
  await client.create(`${GW}/gatewayclasses`, {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'GatewayClass',
    metadata: { name: 'klb' },
    spec: { controllerName: CONTROLLER },
  } as KubeObject);
  await client.create(`${GW}/gatewayclasses`, {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'GatewayClass',
    metadata: { name: 'other' },
    spec: { controllerName: 'example.com/other' },
  } as KubeObject);
  controller = new LoadBalancerController({
    kubeConfig: plane.kubeConfig,
    backend,
    gateways: { controllerName: CONTROLLER },
    workers: 4,
  });
  await controller.start();
  test.after(async () => {
    await controller.stop();
    client.close();
    await plane?.stop();
  });
}

type Condition = ConditionJson;
type GatewayRead = GatewayObject & {
  status?: {
    addresses?: { type?: string; value: string }[];
    conditions?: Condition[];
    listeners?: { name: string; attachedRoutes: number; conditions: Condition[] }[];
  };
};

function service(name: string, port: number, protocol = 'TCP'): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name },
    spec: { selector: { app: name }, ports: [{ name: 'p', port, protocol, targetPort: 8080 }] },
  } as KubeObject;
}

async function createServices(ns: string, ...svcs: KubeObject[]): Promise<void> {
  for (const s of svcs) await client.create(`/api/v1/namespaces/${ns}/services`, s);
}

function gateway(name: string, listeners: unknown[], className = 'klb'): KubeObject {
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

const plural = (kind: string) => `${kind.toLowerCase()}s`;
const getGateway = (ns: string, name: string) => client.get<GatewayRead>(`${GW}/namespaces/${ns}/gateways/${name}`);
const getRoute = (ns: string, kind: string, name: string) =>
  client.get<RouteObject>(`${GW}/namespaces/${ns}/${plural(kind)}/${name}`);

function cond(list: readonly Condition[] | undefined, type: string): Condition | undefined {
  return list?.find((c) => c.type === type);
}

async function routeCondition(ns: string, kind: string, name: string, type: string): Promise<Condition | undefined> {
  const r = await getRoute(ns, kind, name);
  const parent = r.status?.parents?.find((p) => p.controllerName === CONTROLLER);
  return cond(parent?.conditions as Condition[] | undefined, type);
}

it('a Gateway with HTTP, HTTPS, TLS passthrough, TCP and UDP listeners: one load balancer, every Route attached, status written', async () => {
  const ns = await namespace(client, 'gw');
  const other = await namespace(client, 'gwcert');
  await createServices(ns, service('web', 80), service('api', 8080), service('db', 5432), service('dns', 53, 'UDP'));
  await createServices(ns, service('tls-app', 443));
  const pem = (label: string) =>
    Buffer.from(`-----BEGIN ${label}-----\nMIIBtest\n-----END ${label}-----\n`).toString('base64');
  const tlsSecret = (name: string) =>
    ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': pem('CERTIFICATE'), 'tls.key': pem('PRIVATE KEY') },
    }) as KubeObject;
  await client.create(`/api/v1/namespaces/${ns}/secrets`, tlsSecret('a-cert'));
  await client.create(`/api/v1/namespaces/${other}/secrets`, tlsSecret('b-cert'));
  await client.create(`${GW}/namespaces/${other}/referencegrants`, {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'ReferenceGrant',
    metadata: { name: 'gateways-may-use-b' },
    spec: {
      from: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: ns }],
      to: [{ group: '', kind: 'Secret', name: 'b-cert' }],
    },
  } as KubeObject);
  await client.create(
    `${GW}/namespaces/${ns}/gateways`,
    gateway('edge', [
      { name: 'http', port: 80, protocol: 'HTTP' },
      {
        name: 'https-a',
        port: 443,
        protocol: 'HTTPS',
        hostname: 'a.example.com',
        tls: { certificateRefs: [{ name: 'a-cert' }] },
      },
      {
        name: 'https-b',
        port: 443,
        protocol: 'HTTPS',
        hostname: 'b.example.com',
        tls: { certificateRefs: [{ name: 'b-cert', namespace: other }] },
      },
      { name: 'tls', port: 8443, protocol: 'TLS', tls: { mode: 'Passthrough' } },
      { name: 'db', port: 5432, protocol: 'TCP' },
      { name: 'dns', port: 53, protocol: 'UDP' },
    ]),
  );
  const parent = { name: 'edge' };
  await client.create(
    `${GW}/namespaces/${ns}/httproutes`,
    route('HTTPRoute', 'web', {
      parentRefs: [parent],
      hostnames: ['a.example.com', 'b.example.com', 'www.example.com'],
      rules: [
        { matches: [{ path: { type: 'PathPrefix', value: '/api' } }], backendRefs: [{ name: 'api', port: 8080 }] },
        { backendRefs: [{ name: 'web', port: 80 }] },
      ],
    }),
  );
  await client.create(
    `${GW}/namespaces/${ns}/tlsroutes`,
    route('TLSRoute', 'secure', {
      parentRefs: [{ name: 'edge', sectionName: 'tls' }],
      hostnames: ['secure.example.com'],
      rules: [{ backendRefs: [{ name: 'tls-app', port: 443 }] }],
    }),
  );
  await client.create(
    `${GW}/namespaces/${ns}/tcproutes`,
    route('TCPRoute', 'db', {
      parentRefs: [{ name: 'edge', sectionName: 'db' }],
      rules: [{ backendRefs: [{ name: 'db', port: 5432 }] }],
    }),
  );
  await client.create(
    `${GW}/namespaces/${ns}/udproutes`,
    route('UDPRoute', 'dns', {
      parentRefs: [{ name: 'edge', sectionName: 'dns' }],
      rules: [{ backendRefs: [{ name: 'dns', port: 53 }] }],
    }),
  );

  const id = `gateway/${ns}/edge`;
  const spec = await waitUntil('every listener with its routes', () => {
    const s = backend.specOf(id);
    return s && s.listeners.length === 5 && s.listeners.find((l) => l.protocol === 'UDP') ? s : undefined;
  });
  assert.equal(
    spec.listeners.map((l) => `${l.protocol}/${l.port}`),
    ['HTTP/80', 'HTTPS/443', 'TLS/8443', 'TCP/5432', 'UDP/53'],
  );
  const http = spec.listeners[0];
  // The listener without a hostname serves every hostname of the Route; /api before the catch-all.
  assert.equal(
    http?.routes?.map((r) => `${r.host} ${r.pathType} ${r.path} ${r.upstream}`),
    [
      `a.example.com Prefix /api http-${ns}-web-0`,
      `b.example.com Prefix /api http-${ns}-web-0`,
      `www.example.com Prefix /api http-${ns}-web-0`,
      `a.example.com Prefix / http-${ns}-web-1`,
      `b.example.com Prefix / http-${ns}-web-1`,
      `www.example.com Prefix / http-${ns}-web-1`,
    ].map((s) => s),
  );
  const https = spec.listeners[1];
  // On 443, each HTTPS listener's hostname narrows the Route: www.example.com matches neither.
  assert.equal([...new Set(https?.routes?.map((r) => r.host))], ['a.example.com', 'b.example.com']);
  assert.equal(
    https?.tls?.map((t) => `${t.secret.namespace}/${t.secret.name} ${t.hosts.join(',')}`),
    [`${ns}/a-cert a.example.com`, `${other}/b-cert b.example.com`],
  );
  assert.equal(spec.listeners[2]?.sniRoutes, [{ host: 'secure.example.com', upstream: `tls-${ns}-secure-0` }]);
  assert.is(spec.listeners[3]?.upstream, `tcp-${ns}-db-0`);
  assert.is(spec.listeners[4]?.upstream, `udp-${ns}-dns-0`);

  const gw = await waitUntil('the Gateway is Programmed', async () => {
    const g = await getGateway(ns, 'edge');
    return cond(g.status?.conditions, 'Programmed')?.status === 'True' ? g : undefined;
  });
  assert.ok(gw.metadata?.finalizers?.includes(FINALIZER));
  assert.equal(cond(gw.status?.conditions, 'Accepted')?.status, 'True');
  assert.is(cond(gw.status?.conditions, 'Accepted')?.observedGeneration, gw.metadata?.generation);
  assert.match(gw.status?.addresses?.[0]?.value ?? '', /^198\.51\.100\./);
  assert.equal(
    gw.status?.listeners?.map((l) => `${l.name}:${l.attachedRoutes}`),
    ['http:1', 'https-a:1', 'https-b:1', 'tls:1', 'db:1', 'dns:1'],
  );
  for (const l of gw.status?.listeners ?? []) {
    assert.is(cond(l.conditions, 'Programmed')?.status, 'True', l.name);
    assert.is(cond(l.conditions, 'ResolvedRefs')?.status, 'True', l.name);
    assert.is(cond(l.conditions, 'Conflicted')?.status, 'False', l.name);
  }
  for (const [kind, name] of [
    ['HTTPRoute', 'web'],
    ['TLSRoute', 'secure'],
    ['TCPRoute', 'db'],
    ['UDPRoute', 'dns'],
  ] as const) {
    const accepted = await waitUntil(`${kind} accepted`, () => routeCondition(ns, kind, name, 'Accepted'));
    assert.is(accepted.status, 'True', `${kind} ${name}`);
  }

  // A backendRef change reaches the load balancer; nothing else is rewritten.
  await client.patch(`${GW}/namespaces/${ns}/tcproutes/db`, {
    spec: { rules: [{ backendRefs: [{ name: 'web', port: 80 }] }] },
  });
  await waitUntil('the TCP listener follows', () => {
    const t = backend.specOf(id)?.upstreams.find((u) => u.name === `tcp-${ns}-db-0`)?.targets;
    return t?.[0]?.port === 80 ? t : undefined;
  });

  // Deleting the Gateway removes its load balancer and KLB's entry from every Route.
  await client.delete(`${GW}/namespaces/${ns}/gateways/edge`);
  await waitUntil('removed', () => (backend.specOf(id) === undefined ? true : undefined));
  await waitUntil('route entries removed', async () =>
    (await getRoute(ns, 'HTTPRoute', 'web')).status?.parents?.some((p) => p.controllerName === CONTROLLER)
      ? undefined
      : true,
  );
});

it('listener and route conditions follow their causes and clear when the cause is fixed', async () => {
  const ns = await namespace(client, 'gwc');
  const elsewhere = await namespace(client, 'gwo');
  await createServices(ns, service('web', 80));
  await client.create(
    `${GW}/namespaces/${ns}/gateways`,
    gateway('gw', [
      { name: 'web', port: 80, protocol: 'HTTP', hostname: 'web.example.com' },
      { name: 'clash', port: 80, protocol: 'TCP' },
      { name: 'nocert', port: 443, protocol: 'HTTPS', tls: { certificateRefs: [{ name: 'missing' }] } },
      { name: 'term', port: 8443, protocol: 'TLS', tls: { mode: 'Terminate', certificateRefs: [{ name: 'missing' }] } },
    ]),
  );
  await client.create(
    `${GW}/namespaces/${ns}/httproutes`,
    route('HTTPRoute', 'wrong-host', {
      parentRefs: [{ name: 'gw', sectionName: 'web' }],
      hostnames: ['other.example.com'],
      rules: [{ backendRefs: [{ name: 'web', port: 80 }] }],
    }),
  );
  await client.create(
    `${GW}/namespaces/${ns}/httproutes`,
    route('HTTPRoute', 'no-backend', {
      parentRefs: [{ name: 'gw', sectionName: 'web' }],
      rules: [{ backendRefs: [{ name: 'nope', port: 80 }] }],
    }),
  );
  await client.create(
    `${GW}/namespaces/${ns}/httproutes`,
    route('HTTPRoute', 'no-section', {
      parentRefs: [{ name: 'gw', sectionName: 'absent' }],
      rules: [{ backendRefs: [{ name: 'web', port: 80 }] }],
    }),
  );
  await client.create(
    `${GW}/namespaces/${elsewhere}/httproutes`,
    route('HTTPRoute', 'foreign', {
      parentRefs: [{ name: 'gw', namespace: ns }],
      rules: [{ backendRefs: [{ name: 'web', port: 80 }] }],
    }),
  );
  await client.create(
    `${GW}/namespaces/${ns}/httproutes`,
    route('HTTPRoute', 'cross-ns-backend', {
      parentRefs: [{ name: 'gw', sectionName: 'web' }],
      rules: [{ backendRefs: [{ name: 'web', namespace: elsewhere, port: 80 }] }],
    }),
  );
  await client.create(
    `${GW}/namespaces/${ns}/httproutes`,
    route('HTTPRoute', 'filtered', {
      parentRefs: [{ name: 'gw', sectionName: 'web' }],
      rules: [
        {
          filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { name: 'web', port: 80 } } }],
          backendRefs: [{ name: 'web', port: 80 }],
        },
      ],
    }),
  );

  const gw = await waitUntil('listener conditions', async () => {
    const g = await getGateway(ns, 'gw');
    return g.status?.listeners?.length === 4 ? g : undefined;
  });
  const listener = (name: string) => gw.status?.listeners?.find((l) => l.name === name);
  assert.is(cond(listener('web')?.conditions, 'Conflicted')?.reason, 'ProtocolConflict');
  assert.is(cond(listener('clash')?.conditions, 'Conflicted')?.reason, 'ProtocolConflict');
  assert.is(cond(listener('nocert')?.conditions, 'ResolvedRefs')?.reason, 'InvalidCertificateRef');
  assert.is(cond(listener('term')?.conditions, 'Accepted')?.reason, 'UnsupportedProtocol');
  // Nothing valid: the Gateway is not accepted, and says so.
  assert.is(cond(gw.status?.conditions, 'Accepted')?.reason, 'ListenersNotValid');

  // Fix the conflict: the HTTP listener becomes valid and the Routes get their verdicts.
  await client.patch(`${GW}/namespaces/${ns}/gateways/gw`, {
    spec: {
      listeners: [
        { name: 'web', port: 80, protocol: 'HTTP', hostname: 'web.example.com' },
        { name: 'clash', port: 8080, protocol: 'TCP' },
        { name: 'nocert', port: 443, protocol: 'HTTPS', tls: { certificateRefs: [{ name: 'missing' }] } },
      ],
    },
  });
  const reasons = async () =>
    Object.fromEntries(
      await Promise.all(
        [
          ['wrong-host', 'Accepted'],
          ['no-backend', 'ResolvedRefs'],
          ['no-section', 'Accepted'],
          ['cross-ns-backend', 'ResolvedRefs'],
          ['filtered', 'Accepted'],
        ].map(async ([name, type]) => [
          name,
          (await routeCondition(ns, 'HTTPRoute', name as string, type as string))?.reason,
        ]),
      ),
    );
  const expected = {
    'wrong-host': 'NoMatchingListenerHostname',
    'no-backend': 'BackendNotFound',
    'no-section': 'NoMatchingParent',
    'cross-ns-backend': 'RefNotPermitted',
    filtered: 'UnsupportedValue',
  };
  let verdicts: Record<string, unknown> = {};
  await waitUntil('route verdicts', async () => {
    verdicts = await reasons();
    return JSON.stringify(verdicts) === JSON.stringify(expected) ? true : undefined;
  }).catch(() => undefined);
  assert.equal(verdicts, expected);
  const foreign = await waitUntil('foreign route verdict', () =>
    routeCondition(elsewhere, 'HTTPRoute', 'foreign', 'Accepted'),
  );
  assert.is(foreign.reason, 'NotAllowedByListeners');

  // Fix causes: the backend appears; the Secret appears; the foreign namespace is allowed.
  await createServices(ns, service('nope', 80));
  await waitUntil('backend found', async () =>
    (await routeCondition(ns, 'HTTPRoute', 'no-backend', 'ResolvedRefs'))?.status === 'True' ? true : undefined,
  );
  const pem = (label: string) =>
    Buffer.from(`-----BEGIN ${label}-----\nMIIBtest\n-----END ${label}-----\n`).toString('base64');
  await client.create(`/api/v1/namespaces/${ns}/secrets`, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'missing' },
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': pem('CERTIFICATE'), 'tls.key': pem('PRIVATE KEY') },
  } as KubeObject);
  await waitUntil('certificate resolved', async () => {
    const g = await getGateway(ns, 'gw');
    const l = g.status?.listeners?.find((x) => x.name === 'nocert');
    return cond(l?.conditions, 'ResolvedRefs')?.status === 'True' &&
      cond(l?.conditions, 'Programmed')?.status === 'True'
      ? true
      : undefined;
  });
  await client.patch(`${GW}/namespaces/${ns}/gateways/gw`, {
    spec: {
      listeners: [
        {
          name: 'web',
          port: 80,
          protocol: 'HTTP',
          allowedRoutes: { namespaces: { from: 'Selector', selector: { matchLabels: { team: 'web' } } } },
        },
      ],
    },
  });
  await client.patch(`/api/v1/namespaces/${elsewhere}`, { metadata: { labels: { team: 'web' } } });
  await waitUntil('a labelled namespace attaches', async () =>
    (await routeCondition(elsewhere, 'HTTPRoute', 'foreign', 'Accepted'))?.status === 'True' ? true : undefined,
  );
});

it("Gateways of another class are left alone; KLB's GatewayClass is Accepted, the other is not touched", async () => {
  const ns = await namespace(client, 'gwx');
  await client.create(
    `${GW}/namespaces/${ns}/gateways`,
    gateway('theirs', [{ name: 'tcp', port: 9000, protocol: 'TCP' }], 'other'),
  );
  await new Promise((r) => setTimeout(r, 1000));
  const g = await getGateway(ns, 'theirs');
  assert.not.ok(g.metadata?.finalizers?.includes(FINALIZER));
  assert.is(backend.specOf(`gateway/${ns}/theirs`), undefined);
  const gc = await client.get<KubeObject & { status?: { conditions?: Condition[] } }>(`${GW}/gatewayclasses/klb`);
  assert.is(cond(gc.status?.conditions, 'Accepted')?.status, 'True');
  const theirs = await client.get<KubeObject & { status?: { conditions?: Condition[] } }>(`${GW}/gatewayclasses/other`);
  assert.is.not(cond(theirs.status?.conditions, 'Accepted')?.status, 'True');
  // Moved to KLB's class, the Gateway is served.
  await client.patch(`${GW}/namespaces/${ns}/gateways/theirs`, { spec: { gatewayClassName: 'klb' } });
  await waitUntil('served once in KLB class', () => backend.specOf(`gateway/${ns}/theirs`));
});

it('a no-op resync writes nothing', async () => {
  const ns = await namespace(client, 'gwr');
  await createServices(ns, service('web', 80));
  await client.create(
    `${GW}/namespaces/${ns}/gateways`,
    gateway('quiet', [{ name: 'http', port: 80, protocol: 'HTTP' }]),
  );
  await client.create(
    `${GW}/namespaces/${ns}/httproutes`,
    route('HTTPRoute', 'r', { parentRefs: [{ name: 'quiet' }], rules: [{ backendRefs: [{ name: 'web', port: 80 }] }] }),
  );
  await waitUntil('accepted', async () =>
    (await routeCondition(ns, 'HTTPRoute', 'r', 'Accepted'))?.status === 'True' ? true : undefined,
  );
  await new Promise((r) => setTimeout(r, 1500));
  const before = [
    (await getGateway(ns, 'quiet')).metadata?.resourceVersion,
    (await getRoute(ns, 'HTTPRoute', 'r')).metadata?.resourceVersion,
  ];
  controller.resync();
  await new Promise((r) => setTimeout(r, 1500));
  const after = [
    (await getGateway(ns, 'quiet')).metadata?.resourceVersion,
    (await getRoute(ns, 'HTTPRoute', 'r')).metadata?.resourceVersion,
  ];
  assert.equal(after, before);
});

test.run();
