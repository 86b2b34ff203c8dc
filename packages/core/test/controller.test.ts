import {
  FINALIZER,
  KubeClient,
  type KubeObject,
  LoadBalancerController,
  SERVICE_CONDITION,
  type ServiceObject,
  TerminalError,
} from '@klb/core';
import { type ControlPlane, RecordingBackend, requireComponents, startControlPlane } from '@klb/testing';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createNode, endpointSlice, events, lbService, namespace, setNodeStatus, waitUntil } from './helpers.js';

const test = suite('controller: sources, status, events, failures');
const missing = requireComponents('kube-apiserver', 'etcd');
const it = missing ? test.skip : test;

let plane: ControlPlane | undefined;
let client: KubeClient;
let controller: LoadBalancerController;
const backend = new RecordingBackend({
  capabilities: { allocatesAddresses: true, targetKinds: ['node', 'pod', 'clusterIP'] },
  allocateAddress: (n) => `198.51.100.${n}`,
});

if (!missing) {
  plane = await startControlPlane();
  client = new KubeClient(plane.kubeConfig);
  await createNode(client, 'node-a', '192.0.2.11');
  await createNode(client, 'node-b', '192.0.2.12');
  controller = new LoadBalancerController({
    kubeConfig: plane.kubeConfig,
    backend,
    ingress: { ingressClassName: 'klb' },
    workers: 4,
  });
  await controller.start();
  test.after(async () => {
    await controller.stop();
    client.close();
    await plane?.stop();
  });
}

const P = (): ControlPlane => plane as ControlPlane;
const svcPath = (ns: string, name: string) => `/api/v1/namespaces/${ns}/services/${name}`;
const getSvc = (ns: string, name: string) => client.get<ServiceObject>(svcPath(ns, name));

it('a LoadBalancer Service gets a finalizer, a backend load balancer, status and events', async () => {
  const ns = await namespace(client);
  await client.create(
    `/api/v1/namespaces/${ns}/services`,
    lbService('web', [{ port: 80 }, { port: 53, protocol: 'UDP' }]),
  );
  const svc = await waitUntil('status', async () => {
    const s = await getSvc(ns, 'web');
    return s.status?.loadBalancer?.ingress?.length ? s : undefined;
  });
  const ip = svc.status?.loadBalancer?.ingress?.[0]?.ip;
  assert.match(ip ?? '', /^198\.51\.100\.\d+$/);
  assert.equal(svc.status?.loadBalancer?.ingress?.[0]?.ports, [
    { port: 53, protocol: 'UDP' },
    { port: 80, protocol: 'TCP' },
  ]);
  assert.ok(svc.metadata?.finalizers?.includes(FINALIZER));
  assert.is(svc.status?.conditions?.find((c) => c.type === SERVICE_CONDITION)?.status, 'True');
  const spec = backend.specOf(`service/${ns}/web`);
  assert.ok(spec);
  assert.equal(
    spec.listeners.map((l) => `${l.protocol}/${l.port}`),
    ['UDP/53', 'TCP/80'],
  );
  const nodePort = svc.spec?.ports?.find((p) => p.port === 80)?.nodePort;
  const tcp = spec.upstreams.find((u) => u.name === 'tcp-80');
  assert.equal(
    tcp?.targets.map((t) => `${t.kind}:${t.address}:${t.port}`),
    [`node:192.0.2.11:${nodePort}`, `node:192.0.2.12:${nodePort}`],
  );
  const reasons = await waitUntil('events', async () => {
    const r = (await events(client, ns, 'web')).map((e) => e.reason);
    return r.includes('EnsuredLoadBalancer') ? r : undefined;
  });
  assert.ok(reasons.includes('EnsuringLoadBalancer'));
});

it('a Service update changes the load balancer; deletion removes it and then the finalizer', async () => {
  const ns = await namespace(client);
  await client.create(`/api/v1/namespaces/${ns}/services`, lbService('upd', [{ port: 80 }]));
  const id = `service/${ns}/upd`;
  await waitUntil('ensured', () => backend.specOf(id));
  await client.patch(
    svcPath(ns, 'upd'),
    {
      spec: {
        ports: [
          { name: 'p80', port: 80, targetPort: 8080 },
          { name: 'p443', port: 443, targetPort: 8443 },
        ],
      },
    },
    'strategic',
  );
  await waitUntil('two listeners', () => (backend.specOf(id)?.listeners.length === 2 ? true : undefined));
  const removesBefore = backend.callsOf('remove', id).length;
  await client.delete(svcPath(ns, 'upd'));
  await waitUntil('service gone', async () =>
    getSvc(ns, 'upd').then(
      () => undefined,
      () => true,
    ),
  );
  assert.is(backend.callsOf('remove', id).length, removesBefore + 1);
  assert.not.ok(backend.ids().includes(id));
  // Events are recorded in the background: the last one may land just after the finalizer went.
  const reasons = await waitUntil('deletion events', async () => {
    const r = (await events(client, ns, 'upd')).map((e) => e.reason);
    return r.includes('DeletedLoadBalancer') ? r : undefined;
  });
  assert.ok(reasons.includes('DeletingLoadBalancer'));
});

it('a Service that stops being a LoadBalancer is cleaned up: removed, status cleared, finalizer dropped', async () => {
  const ns = await namespace(client);
  await client.create(`/api/v1/namespaces/${ns}/services`, lbService('flip', [{ port: 80 }]));
  const id = `service/${ns}/flip`;
  await waitUntil('ensured', async () =>
    (await getSvc(ns, 'flip')).status?.loadBalancer?.ingress?.length ? true : undefined,
  );
  await client.patch(
    svcPath(ns, 'flip'),
    {
      spec: {
        type: 'ClusterIP',
        loadBalancerClass: null,
        ports: [{ name: 'p80', port: 80, targetPort: 8080, nodePort: null }],
      },
    },
    'strategic',
  );
  const svc = await waitUntil('cleaned', async () => {
    const s = await getSvc(ns, 'flip');
    return !s.metadata?.finalizers?.includes(FINALIZER) ? s : undefined;
  });
  assert.not.ok(backend.ids().includes(id));
  assert.is(svc.status?.loadBalancer?.ingress, undefined);
  assert.not.ok(svc.status?.conditions?.some((c) => c.type === SERVICE_CONDITION));
});

it('Services of another class are ignored', async () => {
  const ns = await namespace(client);
  const other = lbService('other', [{ port: 80 }]);
  (other as { spec: { loadBalancerClass: string } }).spec.loadBalancerClass = 'example.com/other';
  await client.create(`/api/v1/namespaces/${ns}/services`, other);
  await client.create(`/api/v1/namespaces/${ns}/services`, lbService('mine', [{ port: 80 }]));
  await waitUntil('mine ensured', () => backend.specOf(`service/${ns}/mine`));
  assert.is(backend.callsOf('ensure', `service/${ns}/other`).length, 0);
  const svc = await getSvc(ns, 'other');
  assert.not.ok(svc.metadata?.finalizers?.includes(FINALIZER));
});

it('externalTrafficPolicy Local targets only nodes with ready endpoints and health-checks healthCheckNodePort', async () => {
  const ns = await namespace(client);
  await client.create(
    `/api/v1/namespaces/${ns}/services`,
    lbService('local', [{ port: 80 }], { spec: { externalTrafficPolicy: 'Local' } }),
  );
  await client.create(
    `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`,
    endpointSlice('local', [{ ip: '10.244.1.5', node: 'node-b' }]),
  );
  const id = `service/${ns}/local`;
  const spec = await waitUntil('ensured with node-b only', () => {
    const s = backend.specOf(id);
    return s?.upstreams[0]?.targets.length === 1 ? s : undefined;
  });
  const svc = await getSvc(ns, 'local');
  assert.is(spec.upstreams[0]?.targets[0]?.nodeName, 'node-b');
  assert.equal(spec.upstreams[0]?.healthCheck?.type, 'http');
  assert.is(spec.upstreams[0]?.healthCheck?.port, svc.spec?.healthCheckNodePort);
  // An endpoint moving to node-a moves the target.
  await client.replace(`/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices/local-slice`, {
    ...(await client.get<KubeObject>(`/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices/local-slice`)),
    endpoints: [{ addresses: ['10.244.0.7'], nodeName: 'node-a', conditions: { ready: true } }],
  } as KubeObject);
  await waitUntil('target moved to node-a', () =>
    backend.specOf(id)?.upstreams[0]?.targets[0]?.nodeName === 'node-a' ? true : undefined,
  );
});

it('terminating endpoints drain while others are ready, and serve while none is (as kube-proxy does)', async () => {
  const ns = await namespace(client);
  await client.create(
    `/api/v1/namespaces/${ns}/services`,
    lbService('rolling', [{ port: 80 }], { spec: { externalTrafficPolicy: 'Local' } }),
  );
  const slicePath = `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices/rolling-slice`;
  await client.create(
    `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`,
    endpointSlice('rolling', [
      { ip: '10.244.0.8', node: 'node-a' },
      { ip: '10.244.1.8', node: 'node-b' },
    ]),
  );
  const id = `service/${ns}/rolling`;
  const nodes = () =>
    backend
      .specOf(id)
      ?.upstreams[0]?.targets.map((t) => t.nodeName)
      .join(',');
  await waitUntil('both nodes', () => (nodes() === 'node-a,node-b' ? true : undefined));
  const setEndpoints = async (endpoints: unknown[]) =>
    client.replace(slicePath, { ...(await client.get<KubeObject>(slicePath)), endpoints } as KubeObject);
  // node-a's pod terminates but still serves; node-b's is ready: node-a only drains.
  await setEndpoints([
    { addresses: ['10.244.0.8'], nodeName: 'node-a', conditions: { ready: false, serving: true, terminating: true } },
    { addresses: ['10.244.1.8'], nodeName: 'node-b', conditions: { ready: true, serving: true, terminating: false } },
  ]);
  await waitUntil('node-b only', () => (nodes() === 'node-b' ? true : undefined));
  // Both terminate, still serving, the new pods not ready yet: traffic keeps flowing to them.
  await setEndpoints([
    { addresses: ['10.244.0.8'], nodeName: 'node-a', conditions: { ready: false, serving: true, terminating: true } },
    { addresses: ['10.244.1.8'], nodeName: 'node-b', conditions: { ready: false, serving: true, terminating: true } },
    { addresses: ['10.244.0.9'], nodeName: 'node-a', conditions: { ready: false, serving: false, terminating: false } },
  ]);
  await waitUntil('both serving-terminating nodes', () => (nodes() === 'node-a,node-b' ? true : undefined));
  // node-b's stops serving: only node-a's is left.
  await setEndpoints([
    { addresses: ['10.244.0.8'], nodeName: 'node-a', conditions: { ready: false, serving: true, terminating: true } },
    { addresses: ['10.244.1.8'], nodeName: 'node-b', conditions: { ready: false, serving: false, terminating: true } },
  ]);
  await waitUntil('node-a only', () => (nodes() === 'node-a' ? true : undefined));
});

it('sourceRanges, session affinity and annotations reach the spec', async () => {
  const ns = await namespace(client);
  await client.create(
    `/api/v1/namespaces/${ns}/services`,
    lbService('opts', [{ port: 443 }], {
      annotations: {
        'klb.io/algorithm': 'least-connections',
        'klb.io/idle-timeout-seconds': '120',
        'klb.io/vendor-x': 'y',
      },
      spec: { loadBalancerSourceRanges: ['203.0.113.0/24'], sessionAffinity: 'ClientIP' },
    }),
  );
  const spec = await waitUntil('ensured', () => backend.specOf(`service/${ns}/opts`));
  assert.equal(spec.options.sourceRanges, ['203.0.113.0/24']);
  assert.is(spec.options.algorithm, 'least-connections');
  assert.equal(spec.options.timeouts, { idleSeconds: 120 });
  assert.equal(spec.options.sessionAffinity, { timeoutSeconds: 10800 });
  assert.is(spec.annotations['klb.io/vendor-x'], 'y');
});

it('invalid input is a terminal error on that object only: Warning event, condition, no retries', async () => {
  const ns = await namespace(client);
  await client.create(
    `/api/v1/namespaces/${ns}/services`,
    lbService('bad', [{ port: 80 }], { annotations: { 'klb.io/algorithm': 'fastest;\nreturn 200' } }),
  );
  await client.create(`/api/v1/namespaces/${ns}/services`, lbService('good', [{ port: 80 }]));
  const svc = await waitUntil('condition False', async () => {
    const s = await getSvc(ns, 'bad');
    return s.status?.conditions?.find((c) => c.type === SERVICE_CONDITION && c.status === 'False') ? s : undefined;
  });
  const cond = svc.status?.conditions?.find((c) => c.type === SERVICE_CONDITION);
  assert.is(cond?.reason, 'InvalidAnnotation');
  assert.match(cond?.message ?? '', /klb\.io\/algorithm/);
  await waitUntil('good ensured', () => backend.specOf(`service/${ns}/good`));
  const warnings = await waitUntil('warning event', async () => {
    // The apiserver itself may also warn about a new Service (e.g. ClusterIPNotAllocated): look for KLB's.
    const w = (await events(client, ns, 'bad')).filter((e) => e.type === 'Warning' && e.reason === 'InvalidAnnotation');
    return w.length ? w : undefined;
  });
  assert.is(warnings[0]?.reason, 'InvalidAnnotation');
  assert.is(backend.callsOf('ensure', `service/${ns}/bad`).length, 0, 'the backend never saw the bad spec');
  const before = (await controller.metrics.reconciles.get()).values
    .filter((v) => v.labels.result === 'terminal')
    .reduce((n, v) => n + v.value, 0);
  await new Promise((r) => setTimeout(r, 1500));
  const after = (await controller.metrics.reconciles.get()).values
    .filter((v) => v.labels.result === 'terminal')
    .reduce((n, v) => n + v.value, 0);
  assert.is(after, before, 'no retry storm: a terminal error is not retried until the object changes');
  // Fixing the object makes it converge.
  await client.patch(svcPath(ns, 'bad'), { metadata: { annotations: { 'klb.io/algorithm': 'round-robin' } } });
  await waitUntil('fixed and ensured', () => backend.specOf(`service/${ns}/bad`));
});

it('a backend failing three times is retried with backoff and Warning events, then succeeds', async () => {
  const ns = await namespace(client);
  const id = `service/${ns}/flaky`;
  for (let i = 0; i < 3; i++) backend.failNext('ensure', new Error(`backend unavailable (${i + 1})`), id);
  await client.create(`/api/v1/namespaces/${ns}/services`, lbService('flaky', [{ port: 80 }]));
  await waitUntil('ensured after failures', async () =>
    (await getSvc(ns, 'flaky')).status?.loadBalancer?.ingress?.length ? true : undefined,
  );
  const calls = backend.callsOf('ensure', id);
  assert.ok(calls.length >= 4, `${calls.length} ensure calls`);
  const gaps = calls.slice(1, 4).map((c, i) => c.at - (calls[i] as { at: number }).at);
  assert.ok(
    gaps[2] !== undefined && gaps[0] !== undefined && gaps[2] > gaps[0],
    `backoff grows: ${gaps.join(', ')} ms`,
  );
  const warnings = await waitUntil('warnings', async () => {
    const w = (await events(client, ns, 'flaky')).filter((e) => e.reason === 'SyncLoadBalancerFailed');
    return w.length ? w : undefined;
  });
  assert.match(warnings[0]?.message ?? '', /backend unavailable/);
});

it('a backend TerminalError is reported on the object and not retried', async () => {
  const ns = await namespace(client);
  const id = `service/${ns}/refused`;
  backend.failNext('ensure', new TerminalError('quota of virtual servers reached', { reason: 'QuotaExceeded' }), id);
  await client.create(`/api/v1/namespaces/${ns}/services`, lbService('refused', [{ port: 80 }]));
  const svc = await waitUntil('condition', async () => {
    const s = await getSvc(ns, 'refused');
    return s.status?.conditions?.some((c) => c.reason === 'QuotaExceeded') ? s : undefined;
  });
  assert.match(svc.status?.conditions?.find((c) => c.type === SERVICE_CONDITION)?.message ?? '', /quota/);
  await new Promise((r) => setTimeout(r, 1000));
  assert.is(backend.callsOf('ensure', id).length, 1);
});

it('original ConfigMap interface: bind-ip and SUCCESS written back; deletion removes the load balancer', async () => {
  const ns = await namespace(client);
  await client.create(`/api/v1/namespaces/${ns}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'coffee-svc' },
    spec: { selector: { app: 'coffee' }, ports: [{ name: 'p80', port: 80, targetPort: 8080 }] },
  } as KubeObject);
  await client.create(
    `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`,
    endpointSlice('coffee-svc', [{ ip: '10.244.1.9', node: 'node-a' }]),
  );
  await client.create(`/api/v1/namespaces/${ns}/configmaps`, {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'configmap-coffee-svc', labels: { app: 'loadbalancer' } },
    data: { namespace: ns, 'target-service-name': 'coffee-svc' },
  } as KubeObject);
  const cmPath = `/api/v1/namespaces/${ns}/configmaps/configmap-coffee-svc`;
  const cm = await waitUntil('SUCCESS', async () => {
    const c = await client.get<KubeObject & { data: Record<string, string> }>(cmPath);
    return c.data.status === 'SUCCESS' ? c : undefined;
  });
  assert.match(cm.data['bind-ip'] ?? '', /^198\.51\.100\.\d+$/);
  const spec = backend.specOf(`configmap/${ns}/configmap-coffee-svc`);
  assert.equal(
    spec?.upstreams[0]?.targets.map((t) => `${t.kind}:${t.address}:${t.port}`),
    ['pod:10.244.1.9:8080'],
    'a ClusterIP Service without nodePorts is reached through its pod endpoints',
  );
  await client.delete(cmPath);
  await waitUntil('configmap gone', async () =>
    client.get(cmPath).then(
      () => undefined,
      () => true,
    ),
  );
  assert.not.ok(backend.ids().includes(`configmap/${ns}/configmap-coffee-svc`));
});

it('a ConfigMap naming a missing Service reports ERROR, then converges when the Service appears', async () => {
  const ns = await namespace(client);
  const cmPath = `/api/v1/namespaces/${ns}/configmaps/lb-tea`;
  await client.create(`/api/v1/namespaces/${ns}/configmaps`, {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'lb-tea', labels: { app: 'loadbalancer' } },
    data: { 'target-service-name': 'tea-svc' },
  } as KubeObject);
  const failed = await waitUntil('ERROR', async () => {
    const c = await client.get<KubeObject & { data: Record<string, string> }>(cmPath);
    return c.data.status?.startsWith('ERROR : ') ? c : undefined;
  });
  assert.match(failed.data.status ?? '', /tea-svc does not exist/);
  await client.create(`/api/v1/namespaces/${ns}/services`, lbService('tea-svc', [{ port: 8080 }]));
  await waitUntil('SUCCESS', async () => {
    const c = await client.get<KubeObject & { data: Record<string, string> }>(cmPath);
    return c.data.status === 'SUCCESS' ? true : undefined;
  });
});

it('an original ConfigMap with host and path keys becomes an HTTP load balancer routed to its Service', async () => {
  const ns = await namespace(client);
  await client.create(`/api/v1/namespaces/${ns}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'coffee' },
    spec: { type: 'NodePort', selector: { app: 'coffee' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
  } as KubeObject);
  await client.create(`/api/v1/namespaces/${ns}/configmaps`, {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'coffee-http', labels: { app: 'loadbalancer' } },
    data: { 'target-service-name': 'coffee', host: 'cafe.example.com', path: '/coffee' },
  } as KubeObject);
  const spec = await waitUntil('ensured', () => backend.specOf(`configmap/${ns}/coffee-http`));
  assert.equal(
    spec.listeners.map((l) => `${l.protocol}/${l.port}`),
    ['HTTP/80'],
  );
  assert.equal(spec.listeners[0]?.routes, [
    { host: 'cafe.example.com', path: '/coffee', pathType: 'Prefix', upstream: 'coffee-80' },
  ]);
  assert.is(spec.ref.kind, 'ConfigMap');
  await waitUntil('SUCCESS', async () => {
    const c = await client.get<KubeObject & { data: Record<string, string> }>(
      `/api/v1/namespaces/${ns}/configmaps/coffee-http`,
    );
    return c.data.status === 'SUCCESS' ? true : undefined;
  });
});

it('an Ingress of KLB class: host/path routes, TLS from a Secret, status written', async () => {
  const ns = await namespace(client);
  await client.create(`/api/v1/namespaces/${ns}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'tea' },
    spec: { type: 'NodePort', selector: { app: 'tea' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
  } as KubeObject);
  const pem = (label: string) =>
    Buffer.from(`-----BEGIN ${label}-----\nMIIBtest\n-----END ${label}-----\n`).toString('base64');
  await client.create(`/api/v1/namespaces/${ns}/secrets`, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'cafe-tls' },
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': pem('CERTIFICATE'), 'tls.key': pem('PRIVATE KEY') },
  } as KubeObject);
  await client.create(`/apis/networking.k8s.io/v1/namespaces/${ns}/ingresses`, {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name: 'cafe' },
    spec: {
      ingressClassName: 'klb',
      tls: [{ hosts: ['cafe.example.com'], secretName: 'cafe-tls' }],
      rules: [
        {
          host: 'cafe.example.com',
          http: {
            paths: [
              { path: '/tea', pathType: 'Prefix', backend: { service: { name: 'tea', port: { name: 'http' } } } },
            ],
          },
        },
      ],
    },
  } as KubeObject);
  const id = `ingress/${ns}/cafe`;
  const spec = await waitUntil('ingress ensured', () => backend.specOf(id));
  assert.equal(
    spec.listeners.map((l) => `${l.protocol}/${l.port}`),
    ['HTTP/80', 'HTTPS/443'],
  );
  assert.is(spec.listeners[0]?.redirectToHttpsPort, 443);
  assert.equal(spec.listeners[1]?.routes, [
    { host: 'cafe.example.com', path: '/tea', pathType: 'Prefix', upstream: 'tea-80' },
  ]);
  assert.match(spec.listeners[1]?.tls?.[0]?.certificate ?? '', /BEGIN CERTIFICATE/);
  const ing = await waitUntil('ingress status', async () => {
    const i = await client.get<KubeObject & { status?: { loadBalancer?: { ingress?: Array<{ ip: string }> } } }>(
      `/apis/networking.k8s.io/v1/namespaces/${ns}/ingresses/cafe`,
    );
    return i.status?.loadBalancer?.ingress?.length ? i : undefined;
  });
  assert.match(ing.status?.loadBalancer?.ingress?.[0]?.ip ?? '', /^198\.51\.100\./);
  // A TLS entry without a Secret would serve its host over plain HTTP: an error on the Ingress.
  await client.patch(`/apis/networking.k8s.io/v1/namespaces/${ns}/ingresses/cafe`, {
    spec: { tls: [{ hosts: ['cafe.example.com'], secretName: 'cafe-tls' }, { hosts: ['tea.example.com'] }] },
  });
  const warning = await waitUntil('the Warning event', async () =>
    (await events(client, ns, 'cafe')).find((e) => e.type === 'Warning' && e.reason === 'MissingTLSSecret'),
  );
  assert.match(
    warning.message,
    /tls\[1\]: secretName is empty: name the kubernetes\.io\/tls Secret of tea\.example\.com/,
  );
  assert.equal(
    backend.specOf(id)?.listeners.map((l) => `${l.protocol}/${l.port}`),
    ['HTTP/80', 'HTTPS/443'],
    'the last good spec is kept',
  );
});

it('a node change re-reconciles only the load balancers that target nodes', async () => {
  const ns = await namespace(client);
  await client.create(`/api/v1/namespaces/${ns}/services`, lbService('nodes-lb', [{ port: 80 }]));
  const nodeId = `service/${ns}/nodes-lb`;
  await waitUntil('node lb', () => backend.specOf(nodeId));
  await client.create(`/api/v1/namespaces/${ns}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'pods-svc' },
    spec: { selector: { app: 'p' }, ports: [{ name: 'p80', port: 80, targetPort: 8080 }] },
  } as KubeObject);
  await client.create(
    `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`,
    endpointSlice('pods-svc', [{ ip: '10.244.2.2', node: 'node-a' }]),
  );
  await client.create(`/api/v1/namespaces/${ns}/configmaps`, {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'pods-lb', labels: { app: 'loadbalancer' } },
    data: { 'target-service-name': 'pods-svc' },
  } as KubeObject);
  const podId = `configmap/${ns}/pods-lb`;
  await waitUntil('pod lb', () => backend.specOf(podId));
  await new Promise((r) => setTimeout(r, 300));
  const podEnsures = backend.callsOf('ensure', podId).length;
  await setNodeStatus(client, 'node-b', '192.0.2.12', false);
  await waitUntil('node-b dropped', () =>
    backend.specOf(nodeId)?.upstreams[0]?.targets.length === 1 ? true : undefined,
  );
  await setNodeStatus(client, 'node-b', '192.0.2.12', true);
  await waitUntil('node-b back', () => (backend.specOf(nodeId)?.upstreams[0]?.targets.length === 2 ? true : undefined));
  assert.is(backend.callsOf('ensure', podId).length, podEnsures, 'the pod-targeted load balancer was not touched');
});

it("the backend's watch: a data-plane problem is a False condition and a Warning event at once, and clears", async () => {
  // The resync is ten minutes away: only the backend's notification can bring these changes.
  assert.is(backend.watchers, 1, 'the leading controller watches the backend');
  const ns = await namespace(client);
  await client.create(`/api/v1/namespaces/${ns}/services`, lbService('watched', [{ port: 80 }]));
  await waitUntil('ensured', async () =>
    (await getSvc(ns, 'watched')).status?.conditions?.find((c) => c.type === SERVICE_CONDITION)?.status === 'True'
      ? true
      : undefined,
  );
  backend.setProblem(`service/${ns}/watched`, { reason: 'RejectedByNodes', message: 'every node refused it: n1: bad' });
  const refused = await waitUntil('the problem on the Service', async () => {
    const c = (await getSvc(ns, 'watched')).status?.conditions?.find((x) => x.type === SERVICE_CONDITION);
    return c?.status === 'False' ? c : undefined;
  });
  assert.is(refused.reason, 'RejectedByNodes');
  assert.is(refused.message, 'every node refused it: n1: bad');
  const warning = await waitUntil('the Warning event', async () =>
    (await events(client, ns, 'watched')).find((e) => e.type === 'Warning' && e.reason === 'RejectedByNodes'),
  );
  assert.is(warning.message, 'every node refused it: n1: bad');
  backend.setProblem(`service/${ns}/watched`, undefined);
  await waitUntil('the condition cleared', async () =>
    (await getSvc(ns, 'watched')).status?.conditions?.find((c) => c.type === SERVICE_CONDITION)?.status === 'True'
      ? true
      : undefined,
  );
});

it('a backend watch that fails to start is started again with backoff, and stops when the controller stops', async () => {
  const flaky = new RecordingBackend({ capabilities: { allocatesAddresses: true } });
  flaky.failNext('watch', new Error('reports not readable yet'));
  flaky.failNext('watch', new Error('reports not readable yet'));
  const extra = new LoadBalancerController({
    kubeConfig: P().kubeConfig,
    backend: flaky,
    services: { loadBalancerClass: 'klb.io/watch-test' },
    configMaps: false,
    ingress: false,
  });
  await extra.start();
  try {
    await waitUntil('the third start succeeds', async () => (flaky.watchers === 1 ? true : undefined));
    assert.is(flaky.callsOf('watch').length, 3);
    const restarts = (await extra.metrics.backendWatchRestarts.get()).values.reduce((n, v) => n + v.value, 0);
    assert.is(restarts, 2);
  } finally {
    await extra.stop();
  }
  assert.is(flaky.watchers, 0);
});

it('addresses and CIDRs are read as Kubernetes validates new values; anything else is an error naming the field', async () => {
  const ns = await namespace(client);
  const bad: Array<[string, Record<string, unknown>, RegExp]> = [
    [
      'octal',
      { spec: { loadBalancerIP: '127.0.100.010' } },
      /spec\.loadBalancerIP: "127\.0\.100\.010" is not a dotted quad/,
    ],
    [
      'three-part',
      { annotations: { 'klb.io/load-balancer-ips': '10.0.0' } },
      /klb\.io\/load-balancer-ips: "10\.0\.0" is not a dotted quad .*10\.0\.0\.0/,
    ],
    ['hex', { annotations: { 'klb.io/load-balancer-ips': '0x7f.1' } }, /"0x7f\.1" is not a dotted quad .*127\.0\.0\.1/],
    ['short', { annotations: { 'klb.io/load-balancer-ips': '127.1' } }, /"127\.1" is not a dotted quad/],
    [
      'mapped',
      { annotations: { 'klb.io/load-balancer-ips': '::ffff:198.51.100.7' } },
      /IPv4-mapped .*use 198\.51\.100\.7/,
    ],
    ['upper', { annotations: { 'klb.io/load-balancer-ips': '2001:DB8::7' } }, /canonical form: use 2001:db8::7/],
    ['zeros', { annotations: { 'klb.io/load-balancer-ips': '2001:db8:0:0::7' } }, /canonical form: use 2001:db8::7/],
    ['zone', { annotations: { 'klb.io/load-balancer-ips': 'fe80::7%eth0' } }, /must not have a zone/],
    [
      'hostbits',
      { spec: { loadBalancerSourceRanges: ['10.0.0.0/8', '192.0.2.8/24'] } },
      /loadBalancerSourceRanges\[1\]: "192\.0\.2\.8\/24" has bits set past its prefix length: use 192\.0\.2\.0\/24/,
    ],
    [
      'cidr-octal',
      { spec: { loadBalancerSourceRanges: ['010.0.0.0/8'] } },
      /loadBalancerSourceRanges\[0\]: "010\.0\.0\.0\/8" is not a dotted quad/,
    ],
  ];
  for (const [name, extra] of bad) {
    const { spec, annotations } = extra as { spec?: Record<string, unknown>; annotations?: Record<string, string> };
    await client.create(
      `/api/v1/namespaces/${ns}/services`,
      lbService(name, [{ port: 80 }], { ...(spec ? { spec } : {}), ...(annotations ? { annotations } : {}) }),
    );
  }
  await client.create(
    `/api/v1/namespaces/${ns}/services`,
    lbService('target', [{ port: 80 }], { spec: { type: 'ClusterIP', loadBalancerClass: undefined } }),
  );
  await client.create(`/api/v1/namespaces/${ns}/configmaps`, {
    metadata: { name: 'octal-lb', labels: { app: 'loadbalancer' } },
    data: { 'target-service-name': 'target', 'bind-ip': '198.051.100.7' },
  });
  for (const [name, , message] of bad) {
    const c = await waitUntil(`the error on ${name}`, async () =>
      (await getSvc(ns, name)).status?.conditions?.find((x) => x.type === SERVICE_CONDITION && x.status === 'False'),
    );
    assert.match(c.reason ?? '', /^Invalid(Address|SourceRange)$/, name);
    assert.match(c.message ?? '', message, name);
    assert.equal((await getSvc(ns, name)).status?.loadBalancer?.ingress ?? [], [], `${name}: no address`);
  }
  const cm = await waitUntil('data.status of the ConfigMap', async () => {
    const got = await client.get<KubeObject & { data?: Record<string, string> }>(
      `/api/v1/namespaces/${ns}/configmaps/octal-lb`,
    );
    return got.data?.status ? got.data : undefined;
  });
  assert.match(cm.status ?? '', /^ERROR : data\.bind-ip: "198\.051\.100\.7" is not a dotted quad/);
  assert.is(backend.specOf(`configmap/${ns}/octal-lb`), undefined, 'nothing was ensured');
  // Canonical values of both families are taken as they are.
  await client.create(
    `/api/v1/namespaces/${ns}/services`,
    lbService('fine', [{ port: 80 }], { spec: { loadBalancerSourceRanges: ['192.0.2.0/24', '2001:db8::/32'] } }),
  );
  await waitUntil('the fine Service ensured', async () => backend.specOf(`service/${ns}/fine`));
  assert.equal(backend.specOf(`service/${ns}/fine`)?.options.sourceRanges, ['192.0.2.0/24', '2001:db8::/32']);
});

it('serves /healthz, /readyz and /metrics', async () => {
  const extra = new LoadBalancerController({
    kubeConfig: (plane as ControlPlane).kubeConfig,
    backend: new RecordingBackend({ capabilities: { allocatesAddresses: true } }),
    healthPort: 0,
    healthHost: '127.0.0.1',
    services: { loadBalancerClass: 'example.com/nothing' },
    configMaps: false,
    ingress: false,
    leaderElection: { namespace: 'default', identity: 'health-test', name: 'health-test' },
  });
  await extra.start();
  try {
    const base = `http://127.0.0.1:${extra.healthPort}`;
    assert.is((await fetch(`${base}/healthz`)).status, 200);
    assert.is((await fetch(`${base}/readyz`)).status, 200);
    await waitUntil('leader', () => (extra.leading ? true : undefined));
    const metrics = await (await fetch(`${base}/metrics`)).text();
    for (const name of ['klb_reconcile_total', 'klb_workqueue_depth', 'klb_informer_restarts_total', 'klb_leader 1']) {
      assert.ok(metrics.includes(name), `${name} in /metrics`);
    }
  } finally {
    await extra.stop();
  }
});

test.run();
