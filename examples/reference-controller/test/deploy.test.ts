// deploy/: every kustomization rendered and applied with server-side dry-run to a real
// kube-apiserver (CRDs, KLB's and the Gateway API's, applied for real first), the controller's
// RBAC checked rule by rule with SubjectAccessReviews, and the reference controller process run
// under the shipped RBAC as its own ServiceAccount user: it realises a Service and an original
// ConfigMap with the keepalived-nginx backend, and fails to when one permission is taken away.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import type { ConfigMapObject, KubeObject, ServiceObject } from '@klb/core';
import { isConflict, KubeClient } from '@klb/core';
import {
  type ControlPlane,
  eventually,
  freePort,
  requireComponents,
  startControlPlane,
  startF5Emulator,
  startOpenStack,
  which,
} from '@klb/testing';
import { KubernetesObjectApi } from '@kubernetes/client-node';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Manifest, readManifests, renderKustomization } from './kustomize.js';

const test = suite('deploy manifests and the reference controller under its shipped RBAC');
const missing = requireComponents('kube-apiserver', 'etcd');
const it = missing ? test.skip : test;
const itF5 = missing || requireComponents('openssl') ? test.skip : test;
const itDaemon = missing || requireComponents('nginx') || process.getuid?.() !== 0 ? test.skip : test;
const itOpenStack = missing || requireComponents('keystone', 'octavia') ? test.skip : test;

const root = join(import.meta.dirname, '../../..');
const deploy = join(root, 'deploy');
const KUSTOMIZATIONS = [
  'base',
  'gateway-api',
  'keepalived-nginx',
  'f5',
  'octavia',
  'examples/coffee',
  'examples/mysql',
];
const CRDS = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
const GATEWAY_GROUP = 'gateway.networking.k8s.io';
const CONTROLLER_USER = 'system:serviceaccount:klb-system:klb-controller';
const DAEMON_USER = 'system:serviceaccount:klb-system:klb-daemon';
const SA_GROUPS = ['system:serviceaccounts', 'system:serviceaccounts:klb-system', 'system:authenticated'];

let plane: ControlPlane | undefined;
let client: KubeClient;
let objects: KubernetesObjectApi;
const children = new Set<ChildProcess>();
const cp = (): ControlPlane => plane as ControlPlane;

/** {@link eventually} with this suite's 90 s default. */
const waitUntil = <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> =>
  eventually(what, fn, timeoutMs);

/** The tests' pool: loopback addresses, so that the daemon test's nginx binds nothing else. */
const TEST_POOLS = 'pools:\n  - name: default\n    addresses: [127.0.101.0/24]\n    avoidBuggyIPs: true\n';

/** A rendered object as the tests apply it for real: klb-pools points at the loopback pool. */
function forTest(o: Manifest): Manifest {
  return o.kind === 'ConfigMap' && o.metadata.name === 'klb-pools' ? { ...o, data: { 'pools.yaml': TEST_POOLS } } : o;
}

/**
 * A CRD for real, as parsed: KubernetesObjectApi would serialize it through the client's model,
 * which drops the YAML's x-kubernetes-* and other non-camelCase fields of its schema.
 */
async function applyCrdForReal(crd: Manifest): Promise<void> {
  const body = crd as KubeObject;
  try {
    await client.create(CRDS, body);
  } catch (err) {
    if (!isConflict(err)) throw err;
    const current = await client.get(`${CRDS}/${crd.metadata.name}`);
    await client.replace(`${CRDS}/${crd.metadata.name}`, {
      ...body,
      metadata: { ...crd.metadata, resourceVersion: current.metadata?.resourceVersion ?? '' },
    });
  }
}

/** Whether the apiserver allows the controller's ServiceAccount `attributes` (a SubjectAccessReview). */
async function controllerMay(attributes: Record<string, string>): Promise<boolean> {
  const review = await client.create<KubeObject & { status?: { allowed?: boolean } }>(
    '/apis/authorization.k8s.io/v1/subjectaccessreviews',
    {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: { user: CONTROLLER_USER, groups: SA_GROUPS, resourceAttributes: attributes },
    } as KubeObject,
  );
  return review.status?.allowed === true;
}

async function applyForReal(manifest: Manifest): Promise<void> {
  try {
    await objects.create(manifest);
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err;
    const current = await objects.read(manifest);
    await objects.replace({
      ...manifest,
      metadata: { ...manifest.metadata, resourceVersion: current.metadata?.resourceVersion ?? '' },
    });
  }
}

if (!missing) {
  plane = await startControlPlane({
    users: [
      { name: CONTROLLER_USER, groups: SA_GROUPS },
      { name: DAEMON_USER, groups: SA_GROUPS },
    ],
  });
  client = new KubeClient(plane.kubeConfig);
  objects = KubernetesObjectApi.makeApiClient(plane.kubeConfig);
  // CRDs (KLB's, and the Gateway API's the overlays' GatewayClasses need) and the klb-system
  // namespace for real: namespaced objects and custom resources need them.
  const crds = ['base', 'gateway-api'].flatMap((k) => renderKustomization(join(deploy, k)));
  for (const crd of crds.filter((o) => o.kind === 'CustomResourceDefinition')) {
    await applyCrdForReal(crd);
    await waitUntil(`CRD ${crd.metadata.name} established`, async () => {
      const got = await client.get<KubeObject & { status?: { conditions?: Array<{ type: string; status: string }> } }>(
        `${CRDS}/${crd.metadata.name}`,
      );
      return got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? true : undefined;
    });
  }
  await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'klb-system' } });
  await client.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'klb-examples' },
  });
  test.after(async () => {
    for (const child of children) child.kill('SIGKILL');
    client.close();
    await plane?.stop();
  });
}

it('the AddressClaim CRD in deploy/base is the one @klb/ipam ships', () => {
  assert.equal(
    readManifests(join(deploy, 'base/addressclaim-crd.yaml')),
    readManifests(join(root, 'packages/ipam/crds/addressclaims.ipam.klb.io.yaml')),
  );
});

it('deploy/gateway-api holds the Gateway API CRDs @klb/testing ships, unchanged, and installs every one', () => {
  const shipped = join(root, 'packages/testing/crds/gateway-api');
  const files = readdirSync(shipped).sort();
  assert.ok(files.length > 0);
  for (const file of files) {
    assert.ok(readFileSync(join(deploy, 'gateway-api', file)).equals(readFileSync(join(shipped, file))), file);
  }
  const [k] = readManifests(join(deploy, 'gateway-api/kustomization.yaml')) as unknown as Array<{
    resources: string[];
  }>;
  assert.equal([...(k?.resources ?? [])].sort(), files);
});

it("each backend overlay has its own GatewayClass, whose controllerName its controller's --gateway-controller-name names; the base has none", () => {
  const classes = (k: string) =>
    renderKustomization(join(deploy, k))
      .filter((o) => o.kind === 'GatewayClass')
      .map((o) => [o.apiVersion, o.metadata.name, (o.spec as { controllerName: string }).controllerName]);
  assert.equal(classes('base'), []);
  for (const backend of ['keepalived-nginx', 'f5', 'octavia']) {
    assert.equal(classes(backend), [[`${GATEWAY_GROUP}/v1`, `klb-${backend}`, `klb.io/${backend}`]]);
    assert.ok(controllerArgs(backend).includes(`--gateway-controller-name=klb.io/${backend}`), backend);
  }
});

it("the controller's RBAC: Gateway API reads, the Gateway finalizer, status of classes, Gateways and routes, namespace reads, and no more", async () => {
  for (const o of renderKustomization(join(deploy, 'base'))) {
    if (o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding') await applyForReal(o);
  }
  const group = GATEWAY_GROUP;
  const reads = ['gatewayclasses', 'gateways', 'httproutes', 'tlsroutes', 'tcproutes', 'udproutes', 'grpcroutes'];
  const allowed: Array<Record<string, string>> = [
    ...[...reads, 'referencegrants', 'backendtlspolicies'].flatMap((resource) =>
      ['get', 'list', 'watch'].map((verb) => ({ group, resource, verb })),
    ),
    ...['patch', 'update'].map((verb) => ({ group, resource: 'gateways', verb, namespace: 'team-a' })),
    ...reads.flatMap((resource) =>
      ['patch', 'update'].map((verb) => ({ group, resource, subresource: 'status', verb, namespace: 'team-a' })),
    ),
    ...['get', 'list', 'watch'].map((verb) => ({ resource: 'namespaces', verb })),
  ];
  const denied: Array<Record<string, string>> = [
    { group, resource: 'gatewayclasses', verb: 'create' },
    { group, resource: 'gatewayclasses', verb: 'update' },
    { group, resource: 'gateways', verb: 'create', namespace: 'team-a' },
    { group, resource: 'gateways', verb: 'delete', namespace: 'team-a' },
    { group, resource: 'httproutes', verb: 'patch', namespace: 'team-a' },
    { group, resource: 'referencegrants', verb: 'update', namespace: 'team-a' },
    { group, resource: 'backendtlspolicies', subresource: 'status', verb: 'patch', namespace: 'team-a' },
    { resource: 'namespaces', verb: 'patch' },
  ];
  // The authorizer sees new RBAC objects shortly after they are written.
  await waitUntil(
    'the Gateway API rules in effect',
    async () => (await Promise.all(allowed.map(controllerMay))).every(Boolean) || undefined,
  );
  for (const attributes of allowed) assert.ok(await controllerMay(attributes), JSON.stringify(attributes));
  for (const attributes of denied) assert.not.ok(await controllerMay(attributes), JSON.stringify(attributes));
});

if (which('kubectl')) {
  it('renders like `kubectl kustomize`', () => {
    for (const k of KUSTOMIZATIONS) {
      // deploy/gateway-api renders more than execFileSync's default 1 MiB of output.
      const rendered = execFileSync('kubectl', ['kustomize', join(deploy, k)], {
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
      });
      const theirs = readManifestsText(rendered);
      const key = (o: Manifest) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
      const mine = new Map(renderKustomization(join(deploy, k)).map((o) => [key(o), o]));
      assert.equal([...mine.keys()].sort(), theirs.map(key).sort(), `${k}: same objects`);
      for (const o of theirs) assert.equal(mine.get(key(o)), o, `${k}: ${key(o)}`);
    }
  });
}

function readManifestsText(text: string): Manifest[] {
  const file = join(cp().dir, `rendered-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, text);
  return readManifests(file);
}

for (const k of KUSTOMIZATIONS) {
  it(`deploy/${k}: every object is accepted by the apiserver (server-side dry run)`, async () => {
    const rendered = renderKustomization(join(deploy, k));
    assert.ok(rendered.length > 0);
    for (const o of rendered) {
      // Applied for real, as parsed, before the suite (applyCrdForReal).
      if (o.kind === 'CustomResourceDefinition') continue;
      const namespaced = o.metadata.namespace ?? (k.startsWith('examples/') ? 'klb-examples' : undefined);
      const body = { ...o, metadata: { ...o.metadata, ...(namespaced ? { namespace: namespaced } : {}) } };
      try {
        const created = await objects.create(body, undefined, 'All');
        assert.is(created.kind, o.kind);
      } catch (err) {
        const status = (err as { code?: number; body?: unknown }).code;
        // Already there for real (the CRD, the namespace): a dry-run update must be accepted instead.
        if (status !== 409) throw new Error(`${k}: ${o.kind} ${o.metadata.name}: ${String((err as Error).message)}`);
        const current = await objects.read(body);
        await objects.replace(
          { ...body, metadata: { ...body.metadata, resourceVersion: current.metadata?.resourceVersion ?? '' } },
          undefined,
          'All',
        );
      }
    }
  });
}

it('the daemon runs with host networking and adds only NET_ADMIN and NET_RAW (its init container only sets the host sysctls); the controller runs as non-root with 2 replicas', () => {
  const rendered = renderKustomization(join(deploy, 'keepalived-nginx'));
  type Container = { securityContext: Record<string, unknown>; command?: string[] };
  const ds = rendered.find((o) => o.kind === 'DaemonSet') as unknown as {
    spec: {
      template: { spec: Record<string, unknown> & { containers: Container[]; initContainers: Container[] } };
    };
  };
  const pod = ds.spec.template.spec;
  assert.is(pod.hostNetwork, true);
  assert.ok(pod.nodeSelector, 'only on labelled nodes');
  for (const c of pod.containers) {
    assert.is(c.securityContext.privileged, false);
    assert.equal(c.securityContext.capabilities, { add: ['NET_ADMIN', 'NET_RAW'] });
  }
  assert.equal(
    pod.initContainers.map((c) => c.command),
    [['sysctl', '-e', '-w', 'net.ipv4.ip_nonlocal_bind=1', 'net.ipv6.ip_nonlocal_bind=1']],
  );
  const deployment = rendered.find((o) => o.kind === 'Deployment') as unknown as {
    spec: { replicas: number; template: { spec: { securityContext: Record<string, unknown> } } };
  };
  assert.is(deployment.spec.replicas, 2);
  assert.is(deployment.spec.template.spec.securityContext.runAsNonRoot, true);
});

/** The args of the controller container in an overlay's rendered Deployment. */
function controllerArgs(overlay: string): string[] {
  const deployment = renderKustomization(join(deploy, overlay)).find((o) => o.kind === 'Deployment') as unknown as {
    spec: { template: { spec: { containers: Array<{ args: string[] }> } } };
  };
  return deployment.spec.template.spec.containers[0]?.args ?? [];
}

/** The controller's args and env from the rendered Deployment, run as a local process. */
function startReferenceController(
  port: number,
  podName: string,
  overlay = 'keepalived-nginx',
  env: Record<string, string> = {},
): { child: ChildProcess; output: () => string } {
  const args = controllerArgs(overlay);
  const kubeconfig = cp().writeKubeConfig(CONTROLLER_USER);
  const child = spawn(
    process.execPath,
    [
      '--conditions=klb-source',
      '--import',
      'tsx',
      join(root, 'examples/reference-controller/src/main.ts'),
      ...args,
      `--kubeconfig=${kubeconfig}`,
      `--port=${port}`,
      '--host=127.0.0.1',
    ],
    {
      env: { ...process.env, ...env, POD_NAME: podName, POD_NAMESPACE: 'klb-system' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.add(child);
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  child.on('exit', () => children.delete(child));
  return { child, output: () => out };
}

async function stopProcess(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  return exited;
}

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(name))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

async function setup(ns: string): Promise<void> {
  await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  await client
    .create('/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: 'lb-node-1' } } as KubeObject)
    .catch(() => {});
  await client.patch('/api/v1/nodes/lb-node-1/status', {
    status: {
      conditions: [{ type: 'Ready', status: 'True', reason: 'Test', message: 'set by test' }],
      addresses: [{ type: 'InternalIP', address: '127.0.0.1' }],
    },
  });
  // The coffee example's Service (NodePort) in this namespace, and its two load balancer forms.
  for (const o of renderKustomization(join(deploy, 'examples/coffee'))) {
    if (o.kind !== 'Service' && o.kind !== 'ConfigMap') continue;
    const body = o.kind === 'ConfigMap' ? { ...o, data: { ...(o.data as object), namespace: ns } } : o;
    await objects.create({ ...body, metadata: { ...body.metadata, namespace: ns } });
  }
}

it('the reference controller under the shipped RBAC realises the coffee Service and ConfigMap (keepalived-nginx)', async () => {
  for (const o of renderKustomization(join(deploy, 'keepalived-nginx'))) {
    if (o.kind !== 'Deployment' && o.kind !== 'DaemonSet') await applyForReal(forTest(o));
  }
  const ns = 'rbac-ok';
  await setup(ns);
  const port = await freePort();
  const { child, output } = startReferenceController(port, 'klb-controller-test-0');
  try {
    const lb = await waitUntil(
      'coffee-lb status',
      async () =>
        (await client.get<ServiceObject>(`/api/v1/namespaces/${ns}/services/coffee-lb`)).status?.loadBalancer
          ?.ingress?.[0]?.ip,
    );
    assert.match(lb, /^127\.0\.101\.\d+$/, 'the VIP comes from the klb-pools ConfigMap');
    const cm = await waitUntil('coffee-configmap status', async () => {
      const got = await client.get<ConfigMapObject>(`/api/v1/namespaces/${ns}/configmaps/coffee-configmap`);
      return got.data?.status ? got.data : undefined;
    });
    assert.is(cm.status, 'SUCCESS');
    assert.match(cm['bind-ip'] ?? '', /^127\.0\.101\.\d+$/);
    assert.is.not(cm['bind-ip'], lb);
    // The daemon configs the daemons read, the claims, the lease, metrics and readiness.
    for (const name of [`service.${ns}.coffee-lb`, `configmap.${ns}.coffee-configmap`]) {
      const secret = await client.get<KubeObject & { type?: string }>(`/api/v1/namespaces/klb-system/secrets/${name}`);
      assert.is(secret.type, 'klb.io/daemon-config');
    }
    const claims = await client.list('/apis/ipam.klb.io/v1alpha1/namespaces/klb-system/addressclaims');
    assert.ok(claims.items.length >= 2);
    const lease = await client.get<KubeObject & { spec?: { holderIdentity?: string } }>(
      '/apis/coordination.k8s.io/v1/namespaces/klb-system/leases/klb-controller',
    );
    assert.is(lease.spec?.holderIdentity, 'klb-controller-test-0');
    assert.is((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200);
    assert.ok((await metric(port, 'klb_reconcile_total')) >= 2);
    assert.ok((await metric(port, 'klb_ipam_pool_used')) >= 2);
    const firstLog = output()
      .split('\n')
      .find((l) => l.startsWith('{'));
    assert.ok(firstLog && JSON.parse(firstLog).level !== undefined, 'logs are JSON lines');
  } finally {
    assert.is(await stopProcess(child), 0, output());
  }
});

itDaemon(
  'the reference daemon under the shipped daemon RBAC applies the published configs and serves the VIP',
  async () => {
    // The daemon configs the previous test published: the coffee Service's and the ConfigMap's.
    const ns = 'rbac-ok';
    const svc = await client.get<ServiceObject>(`/api/v1/namespaces/${ns}/services/coffee-lb`);
    const vip = svc.status?.loadBalancer?.ingress?.[0]?.ip as string;
    const nodePort = svc.spec?.ports?.[0]?.nodePort as number;
    // What kube-proxy would do on the node: the app answers on the Service's nodePort.
    const app = createServer((_req, res) => res.end('coffee through the daemon\n'));
    await new Promise<void>((resolve) => app.listen(nodePort, '127.0.0.1', resolve));
    // The daemon turns on non-local binds; the test puts the machine's values back.
    const saved = ['/proc/sys/net/ipv4/ip_nonlocal_bind', '/proc/sys/net/ipv6/ip_nonlocal_bind']
      .filter((f) => existsSync(f))
      .map((f) => [f, readFileSync(f, 'utf8')] as const);
    const daemon = spawn(
      process.execPath,
      [
        '--conditions=klb-source',
        '--import',
        'tsx',
        join(root, 'examples/reference-daemon/src/main.ts'),
        `--kubeconfig=${cp().writeKubeConfig(DAEMON_USER)}`,
        '--node-name=lb-node-1',
        `--state-dir=${join(cp().dir, 'daemon-state')}`,
        '--no-keepalived',
        `--health-port=${await freePort()}`,
      ],
      { env: { ...process.env, POD_NAMESPACE: 'klb-system' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.add(daemon);
    let out = '';
    daemon.stdout?.on('data', (d) => (out += d));
    daemon.stderr?.on('data', (d) => (out += d));
    try {
      const applied = await waitUntil('the node report with both configs applied', async () => {
        const cm = await client.get<ConfigMapObject>('/api/v1/namespaces/klb-system/configmaps/klb-daemon-lb-node-1');
        const report = JSON.parse(cm.data?.['report.json'] ?? '{}') as { applied?: Record<string, string> };
        const ids = Object.keys(report.applied ?? {});
        return ids.length >= 2 ? ids : undefined;
      });
      assert.ok(applied.length >= 2, out);
      const body = await waitUntil(`HTTP through ${vip}`, async () => {
        const res = await fetch(`http://${vip}/`, { signal: AbortSignal.timeout(2000) });
        return res.ok ? await res.text() : undefined;
      });
      assert.is(body, 'coffee through the daemon\n');
    } finally {
      assert.is(await stopProcess(daemon), 0, out);
      app.close();
      for (const [file, value] of saved) writeFileSync(file, value);
    }
  },
);

it('without `create` on Secrets in klb-system the same controller cannot realise a Service', async () => {
  const roleName = 'klb-controller-keepalived-nginx';
  const role = renderKustomization(join(deploy, 'keepalived-nginx')).find(
    (o) => o.kind === 'Role' && o.metadata.name === roleName,
  ) as Manifest & { rules: Array<{ resources: string[]; verbs: string[] }> };
  const crippled = {
    ...role,
    rules: role.rules.map((r) =>
      r.resources.includes('secrets') ? { ...r, verbs: r.verbs.filter((v) => v !== 'create') } : r,
    ),
  };
  await applyForReal(crippled);
  try {
    await waitUntil('permission revoked', async () => {
      return (await controllerMay({ verb: 'create', resource: 'secrets', namespace: 'klb-system' })) ? undefined : true;
    });
    const ns = 'rbac-denied';
    await setup(ns);
    const port = await freePort();
    const { child, output } = startReferenceController(port, 'klb-controller-test-1');
    try {
      await waitUntil('a failed reconcile', async () =>
        (await metric(port, 'klb_reconcile_errors_total')) > 0 ? true : undefined,
      );
      const svc = await client.get<ServiceObject>(`/api/v1/namespaces/${ns}/services/coffee-lb`);
      assert.is(svc.status?.loadBalancer?.ingress, undefined, 'no VIP without a published daemon config');
      const published = await client.list(`/api/v1/namespaces/klb-system/secrets`);
      assert.not.ok(
        published.items.some((s) => s.metadata?.name === `service.${ns}.coffee-lb`),
        'no daemon config was published',
      );
    } finally {
      assert.is(await stopProcess(child), 0, output());
    }
  } finally {
    await applyForReal(role);
  }
});

itF5(
  'the reference controller with the f5 overlay realises a Service on the F5 (emulator), credentials from the env',
  async () => {
    const f5 = await startF5Emulator({ partitions: ['klb'] });
    try {
      for (const o of renderKustomization(join(deploy, 'f5'))) {
        if (o.kind !== 'Deployment' && o.kind !== 'Secret') await applyForReal(forTest(o));
      }
      const ns = 'f5-ok';
      await setup(ns);
      const caFile = join(cp().dir, 'f5-ca.pem');
      writeFileSync(caFile, f5.ca);
      const port = await freePort();
      // The env the overlay's Deployment takes from the Secret klb-f5-credentials.
      const { child, output } = startReferenceController(port, 'klb-controller-f5', 'f5', {
        F5_HOST: f5.host,
        F5_USER: 'admin',
        F5_PASSWORD: 'admin',
        F5_CA_FILE: caFile,
      });
      try {
        const ip = await waitUntil(
          'coffee-lb status',
          async () =>
            (await client.get<ServiceObject>(`/api/v1/namespaces/${ns}/services/coffee-lb`)).status?.loadBalancer
              ?.ingress?.[0]?.ip,
        );
        assert.match(ip, /^127\.0\.101\.\d+$/);
        const virtuals = f5.state().virtuals.filter((v) => String(v.destination ?? '').includes(ip));
        assert.is(virtuals.length, 1, 'one virtual server on the VIP');
        assert.not.match(output(), /admin"|password/i, 'no credential in the logs');
      } finally {
        assert.is(await stopProcess(child), 0, output());
      }
    } finally {
      await f5.stop();
    }
  },
);

itOpenStack(
  'the reference controller with the octavia overlay realises a Service on a real Octavia, VIP from Octavia',
  async () => {
    const stack = await startOpenStack({ provisioningDelaySeconds: 0.3 });
    try {
      for (const o of renderKustomization(join(deploy, 'octavia'))) {
        if (o.kind !== 'Deployment' && o.kind !== 'Secret') await applyForReal(forTest(o));
      }
      const ns = 'octavia-ok';
      await setup(ns);
      const port = await freePort();
      // The original OS_* names, as the overlay's Deployment takes them from its Secret.
      const { child, output } = startReferenceController(port, 'klb-controller-octavia', 'octavia', {
        OS_AUTH_URL: stack.authUrl,
        OS_USERNAME: stack.user.username,
        OS_PASSWORD: stack.user.password,
        OS_TENANT_NAME: stack.user.projectName,
        OS_USER_DOMAIN_NAME: 'Default',
        OS_PROJECT_DOMAIN_NAME: 'Default',
        OS_REGION_NAME: stack.region,
        OS_SUBNET_ID: stack.subnetId,
      });
      try {
        const ip = await waitUntil(
          'coffee-lb status from Octavia',
          async () =>
            (await client.get<ServiceObject>(`/api/v1/namespaces/${ns}/services/coffee-lb`)).status?.loadBalancer
              ?.ingress?.[0]?.ip,
          180_000,
        );
        assert.not.match(ip, /^127\.0\.101\./, "the VIP is Octavia's, not from the pools");
        assert.not.ok(output().includes(stack.user.password), 'no password in the logs');
      } finally {
        assert.is(await stopProcess(child), 0, output());
      }
    } finally {
      await stack.stop();
    }
  },
);

test.run();
