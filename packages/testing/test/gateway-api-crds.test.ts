// The Gateway API CRDs @klb/testing ships (Standard channel, GATEWAY_API_VERSION) installed into a
// real kube-apiserver: every CRD Established and serving the versions KLB uses, the objects KLB
// reads created and read back as sent (nothing pruned), and the statuses it writes accepted
// through the /status subresource.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeClient, type KubeObject } from '@klb/core';
import {
  type ControlPlane,
  createTestNamespace,
  eventually,
  GATEWAY_API_VERSION,
  installGatewayApiCrds,
  requireComponents,
  startControlPlane,
} from '@klb/testing';
import { loadAllYaml } from '@kubernetes/client-node';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('Gateway API CRDs');
const missing = requireComponents('kube-apiserver', 'etcd');
const it = missing ? test.skip : test;

const CRDS = join(import.meta.dirname, '../crds/gateway-api');
const GROUP = 'gateway.networking.k8s.io';
const V1 = `/apis/${GROUP}/v1`;
/** Each CRD's served versions and its storage version. */
const SERVED: Record<string, { served: string[]; storage: string }> = {
  backendtlspolicies: { served: ['v1'], storage: 'v1' },
  gatewayclasses: { served: ['v1', 'v1beta1'], storage: 'v1' },
  gateways: { served: ['v1', 'v1beta1'], storage: 'v1' },
  grpcroutes: { served: ['v1'], storage: 'v1' },
  httproutes: { served: ['v1', 'v1beta1'], storage: 'v1' },
  listenersets: { served: ['v1'], storage: 'v1' },
  referencegrants: { served: ['v1', 'v1beta1'], storage: 'v1beta1' },
  tcproutes: { served: ['v1'], storage: 'v1' },
  tlsroutes: { served: ['v1'], storage: 'v1' },
  udproutes: { served: ['v1'], storage: 'v1' },
};
const CONTROLLER = 'klb.io/keepalived-nginx';
const NOW = '2026-01-01T00:00:00Z';

type Crd = KubeObject & {
  spec: {
    group: string;
    names: { plural: string };
    versions: Array<{ name: string; served: boolean; storage: boolean }>;
  };
  status?: { conditions?: Array<{ type: string; status: string }> };
};
type Gw = KubeObject & { spec?: Record<string, unknown>; status?: Record<string, unknown> };

let plane: ControlPlane | undefined;
let client: KubeClient;
if (!missing) {
  plane = await startControlPlane();
  client = new KubeClient(plane.kubeConfig);
  test.after(async () => {
    client.close();
    await plane?.stop();
  });
}

/** Fails unless every field of `expected` is in `actual` with the same value (arrays item by item). */
function assertKept(actual: unknown, expected: unknown, at: string): void {
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual) && actual.length === expected.length, `${at}: ${JSON.stringify(actual)}`);
    for (const [i, item] of expected.entries()) assertKept((actual as unknown[])[i], item, `${at}[${i}]`);
  } else if (typeof expected === 'object' && expected !== null) {
    assert.ok(typeof actual === 'object' && actual !== null, `${at}: ${JSON.stringify(actual)}`);
    for (const [key, value] of Object.entries(expected)) {
      assertKept((actual as Record<string, unknown>)[key], value, `${at}.${key}`);
    }
  } else {
    assert.is(actual, expected, at);
  }
}

/** Creates the object at `collection`, reads it back from `collection/name` and checks its spec was kept. */
async function createAndRead(collection: string, body: Gw): Promise<Gw> {
  await client.create(collection, body);
  const got = await client.get<Gw>(`${collection}/${body.metadata?.name}`);
  assertKept(got.spec, body.spec, `${body.kind} ${body.metadata?.name} spec`);
  return got;
}

/** Merge-patches `status` through the object's /status subresource and checks it was kept. */
async function writeStatus(path: string, status: Record<string, unknown>): Promise<void> {
  await client.patch(`${path}/status`, { status });
  assertKept((await client.get<Gw>(path)).status, status, `${path} status`);
}

function condition(type: string, reason: string, generation = 1): Record<string, unknown> {
  return {
    type,
    status: 'True',
    reason,
    message: `${type} by KLB`,
    observedGeneration: generation,
    lastTransitionTime: NOW,
  };
}

test('the shipped files are the Standard channel of GATEWAY_API_VERSION, the release the fetch script pins', () => {
  const files = readdirSync(CRDS).sort();
  assert.equal(files, [
    ...Object.keys(SERVED).map((plural) => `${GROUP}_${plural}.yaml`),
    `${GROUP}_vap_safeupgrades.yaml`,
  ]);
  for (const file of files) {
    const objects = loadAllYaml(readFileSync(join(CRDS, file), 'utf8')) as KubeObject[];
    assert.ok(objects.length > 0, file);
    for (const o of objects) {
      assert.is(o.metadata?.annotations?.[`${GROUP}/bundle-version`], GATEWAY_API_VERSION, `${file}: ${o.kind}`);
      assert.is(o.metadata?.annotations?.[`${GROUP}/channel`], 'standard', `${file}: ${o.kind}`);
    }
  }
  const script = readFileSync(join(import.meta.dirname, '../../../scripts/fetch-gateway-api-crds.sh'), 'utf8');
  assert.match(script, new RegExp(`^GATEWAY_API_VERSION=${GATEWAY_API_VERSION.replaceAll('.', '\\.')}$`, 'm'));
});

it('installs every CRD Established, serving the versions KLB uses, and replaces them in place when run again', async () => {
  const kc = (plane as ControlPlane).kubeConfig;
  await installGatewayApiCrds(kc);
  const first = await client.list<Crd>('/apis/apiextensions.k8s.io/v1/customresourcedefinitions');
  await installGatewayApiCrds(kc);
  const crds = (await client.list<Crd>('/apis/apiextensions.k8s.io/v1/customresourcedefinitions')).items.filter(
    (c) => c.spec.group === GROUP,
  );
  assert.equal(crds.map((c) => c.spec.names.plural).sort(), Object.keys(SERVED));
  for (const crd of crds) {
    const plural = crd.spec.names.plural;
    assert.ok(
      crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True'),
      plural,
    );
    assert.is(crd.metadata?.annotations?.[`${GROUP}/bundle-version`], GATEWAY_API_VERSION);
    const served = crd.spec.versions.filter((v) => v.served).map((v) => v.name);
    assert.equal({ served: served.sort(), storage: crd.spec.versions.find((v) => v.storage)?.name }, SERVED[plural]);
    const before = first.items.find((c) => c.metadata?.name === crd.metadata?.name);
    assert.is(crd.metadata?.uid, before?.metadata?.uid, `${plural}: replaced, not recreated`);
  }
  // Discovery: every kind under /apis/gateway.networking.k8s.io/v1, each with /status but ReferenceGrant.
  const plurals = Object.keys(SERVED);
  const expected = [...plurals, ...plurals.filter((p) => p !== 'referencegrants').map((p) => `${p}/status`)].sort();
  await eventually('the v1 discovery document', async () => {
    const list = await client.get<KubeObject & { resources: Array<{ name: string }> }>(V1);
    const names = list.resources.map((r) => r.name).sort();
    return JSON.stringify(names) === JSON.stringify(expected) || undefined;
  });
});

it('serves GatewayClass, Gateway (HTTP, HTTPS, TLS, TCP, UDP listeners), HTTPRoute, TLSRoute, TCPRoute, UDPRoute and ReferenceGrant as sent, and takes their status', async () => {
  const ns = await createTestNamespace(client, 'gateway');
  const certs = await createTestNamespace(client, 'certs');
  const gatewayClass = await createAndRead(`${V1}/gatewayclasses`, {
    apiVersion: `${GROUP}/v1`,
    kind: 'GatewayClass',
    metadata: { name: 'klb-test' },
    spec: { controllerName: CONTROLLER, description: 'KLB, keepalived + nginx' },
  } as Gw);
  const gateway = await createAndRead(`${V1}/namespaces/${ns}/gateways`, {
    apiVersion: `${GROUP}/v1`,
    kind: 'Gateway',
    metadata: { name: 'cafe' },
    spec: {
      gatewayClassName: 'klb-test',
      addresses: [{ type: 'IPAddress', value: '192.0.2.10' }],
      listeners: [
        {
          name: 'http',
          protocol: 'HTTP',
          port: 80,
          hostname: 'cafe.example.com',
          allowedRoutes: { namespaces: { from: 'Same' } },
        },
        {
          name: 'https',
          protocol: 'HTTPS',
          port: 443,
          hostname: 'cafe.example.com',
          tls: {
            mode: 'Terminate',
            certificateRefs: [{ group: '', kind: 'Secret', name: 'cafe-tls', namespace: certs }],
          },
        },
        {
          name: 'tls',
          protocol: 'TLS',
          port: 8443,
          hostname: 'db.example.com',
          tls: { mode: 'Passthrough' },
          allowedRoutes: {
            namespaces: { from: 'Selector', selector: { matchLabels: { 'klb.io/gateway-access': 'true' } } },
            kinds: [{ group: GROUP, kind: 'TLSRoute' }],
          },
        },
        { name: 'mysql', protocol: 'TCP', port: 3306, allowedRoutes: { kinds: [{ group: GROUP, kind: 'TCPRoute' }] } },
        { name: 'dns', protocol: 'UDP', port: 53 },
      ],
    },
  } as Gw);
  const parent = (sectionName: string) => ({ group: GROUP, kind: 'Gateway', name: 'cafe', sectionName });
  const backend = (name: string, port: number) => ({ group: '', kind: 'Service', name, port, weight: 1 });
  const routes: Array<[string, Gw]> = [
    [
      'httproutes',
      {
        apiVersion: `${GROUP}/v1`,
        kind: 'HTTPRoute',
        metadata: { name: 'coffee' },
        spec: {
          parentRefs: [parent('http'), parent('https')],
          hostnames: ['cafe.example.com'],
          rules: [
            {
              matches: [{ path: { type: 'PathPrefix', value: '/coffee' } }],
              backendRefs: [backend('coffee-svc', 80)],
            },
          ],
        },
      },
    ],
    [
      'tlsroutes',
      {
        apiVersion: `${GROUP}/v1`,
        kind: 'TLSRoute',
        metadata: { name: 'db' },
        spec: {
          parentRefs: [parent('tls')],
          hostnames: ['db.example.com'],
          rules: [{ backendRefs: [backend('db', 5432)] }],
        },
      },
    ],
    [
      'tcproutes',
      {
        apiVersion: `${GROUP}/v1`,
        kind: 'TCPRoute',
        metadata: { name: 'mysql' },
        spec: { parentRefs: [parent('mysql')], rules: [{ backendRefs: [backend('mysql-svc', 3306)] }] },
      },
    ],
    [
      'udproutes',
      {
        apiVersion: `${GROUP}/v1`,
        kind: 'UDPRoute',
        metadata: { name: 'dns' },
        spec: { parentRefs: [parent('dns')], rules: [{ backendRefs: [backend('dns', 53)] }] },
      },
    ],
  ];
  for (const [plural, route] of routes) await createAndRead(`${V1}/namespaces/${ns}/${plural}`, route);
  // The Gateway's HTTPS certificate is in another namespace: a ReferenceGrant there allows it.
  const grant = {
    apiVersion: `${GROUP}/v1`,
    kind: 'ReferenceGrant',
    metadata: { name: 'gateways-read-certs' },
    spec: {
      from: [{ group: GROUP, kind: 'Gateway', namespace: ns }],
      to: [{ group: '', kind: 'Secret', name: 'cafe-tls' }],
    },
  } as Gw;
  await createAndRead(`${V1}/namespaces/${certs}/referencegrants`, grant);
  const stored = await client.get<Gw>(`/apis/${GROUP}/v1beta1/namespaces/${certs}/referencegrants/gateways-read-certs`);
  assertKept(stored.spec, grant.spec, 'ReferenceGrant read as v1beta1');

  // The statuses the controller writes.
  await writeStatus(`${V1}/gatewayclasses/klb-test`, {
    conditions: [condition('Accepted', 'Accepted', gatewayClass.metadata?.generation)],
  });
  const supported = (kind: string) => [{ group: GROUP, kind }];
  await writeStatus(`${V1}/namespaces/${ns}/gateways/cafe`, {
    addresses: [{ type: 'IPAddress', value: '192.0.2.10' }],
    conditions: [
      condition('Accepted', 'Accepted', gateway.metadata?.generation),
      condition('Programmed', 'Programmed', gateway.metadata?.generation),
    ],
    listeners: [
      ['http', 'HTTPRoute', 1],
      ['https', 'HTTPRoute', 1],
      ['tls', 'TLSRoute', 1],
      ['mysql', 'TCPRoute', 1],
      ['dns', 'UDPRoute', 1],
    ].map(([name, kind, attachedRoutes]) => ({
      name,
      supportedKinds: supported(kind as string),
      attachedRoutes,
      conditions: [
        condition('Accepted', 'Accepted'),
        condition('ResolvedRefs', 'ResolvedRefs'),
        condition('Programmed', 'Programmed'),
      ],
    })),
  });
  for (const [plural, route] of routes) {
    const refs = (route.spec as { parentRefs: unknown[] }).parentRefs;
    await writeStatus(`${V1}/namespaces/${ns}/${plural}/${route.metadata?.name}`, {
      parents: refs.map((parentRef) => ({
        parentRef,
        controllerName: CONTROLLER,
        conditions: [condition('Accepted', 'Accepted'), condition('ResolvedRefs', 'ResolvedRefs')],
      })),
    });
  }
});

test.run();
