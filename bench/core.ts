// bench core: the reconcile engine against a real kube-apiserver: with the recording backend
// (convergence, latency, writes, resync, RSS), and with the reference controller's own composition
// (keepalived-nginx backend + KubeIpam) for what a new Service and a restart cost the API.
//   npm run bench -- core            (1,000 Services for convergence, 10,000 for RSS)
//   npm run bench -- core --quick    (200 and 2,000)
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { KeepalivedNginxBackend } from '@klb/backend-keepalived-nginx';
import { Informer, KubeClient, type KubeObject, LoadBalancerController, type ServiceObject } from '@klb/core';
import { KubeIpam, poolConfigFromEnv } from '@klb/ipam';
import { createNode, RecordingBackend, startControlPlane } from '@klb/testing';
import { renderKustomization } from '../examples/reference-controller/test/kustomize.js';
import { apiserverRequests, countOf, requestDelta } from './fixtures/apiserver-requests.js';

const quick = process.argv.includes('--quick');
const N = Number(process.env.BENCH_N ?? (quick ? 200 : 1000));
const RSS_N = quick ? 2000 : 10_000;
const print = (metric: string, value: number, unit: string) => console.log(`bench core.${metric} ${value} ${unit}`);

let plane = await startControlPlane();
let admin = new KubeClient(plane.kubeConfig);
/** Three Ready nodes, the targets of every Service. */
async function addNodes(): Promise<void> {
  for (const [i, name] of ['bench-node-a', 'bench-node-b', 'bench-node-c'].entries()) {
    await createNode(admin, name, `192.0.2.${i + 1}`);
  }
}
await addNodes();

/** A LoadBalancer Service; past the 2,768 node ports of the default range, without node ports. */
function service(name: string, nodePorts = true): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name },
    spec: {
      type: 'LoadBalancer',
      loadBalancerClass: 'klb.io/load-balancer',
      ports: [{ port: 80, targetPort: 8080 }],
      ...(nodePorts ? {} : { allocateLoadBalancerNodePorts: false }),
    },
  } as KubeObject;
}

async function createAll(ns: string, count: number, created: Map<string, number>, nodePorts = true): Promise<void> {
  await admin.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: ns },
  } as KubeObject);
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < count) {
        const name = `svc-${next++}`;
        created.set(name, Date.now());
        await admin.create(`/api/v1/namespaces/${ns}/services`, service(name, nodePorts));
      }
    }),
  );
}

/** Records when each Service of `ns` first has status (an Informer: it survives dropped watches). */
async function watchStatus(ns: string, done: Map<string, number>): Promise<Informer<ServiceObject>> {
  const informer = new Informer<ServiceObject>(admin, {
    resource: 'services',
    path: `/api/v1/namespaces/${ns}/services`,
  });
  const seen = (svc: ServiceObject) => {
    const name = svc.metadata?.name ?? '';
    if (svc.status?.loadBalancer?.ingress?.length && !done.has(name)) done.set(name, Date.now());
  };
  informer.on({ add: seen, update: (_old, svc) => seen(svc) });
  informer.start();
  await informer.waitForSync();
  return informer;
}

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// --- convergence, latency, writes, resync -----------------------------------------------------
let serviceWrites = 0;
let eventWrites = 0;
const backend = new RecordingBackend({
  capabilities: { allocatesAddresses: true },
  allocateAddress: (n) => `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
});
const controller = new LoadBalancerController({
  kubeConfig: plane.kubeConfig,
  backend,
  configMaps: false,
  ingress: false,
  workers: 8,
  resyncPeriodMs: 0,
  onWrite: (_verb, path) => {
    if (path.includes('/services/')) serviceWrites++;
    else if (path.includes('/events')) eventWrites++;
  },
});
await controller.start();
const created = new Map<string, number>();
const converged = new Map<string, number>();
const watch = await watchStatus('bench-converge', converged);
const t0 = Date.now();
await createAll('bench-converge', N, created);
const progress = setInterval(() => {
  console.error(`progress: created ${created.size} converged ${converged.size} ensured ${backend.ids().length}`);
}, 10_000);
await until(() => converged.size >= N, 600_000, `${N} Services converged`);
const total = (Date.now() - t0) / 1000;
clearInterval(progress);
await watch.stop();
const latencies = [...converged].map(([name, at]) => (at - (created.get(name) ?? at)) / 1000).sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0;
print(`converge_${N}_s`, Number(total.toFixed(2)), 's');
print('p50_latency_s', Number(pct(50).toFixed(3)), 's');
print('p99_latency_s', Number(pct(99).toFixed(3)), 's');
await new Promise((r) => setTimeout(r, 2000)); // let trailing reconciles settle
print('writes_per_service', Number((serviceWrites / N).toFixed(2)), 'writes');
print('event_writes_per_service', Number((eventWrites / N).toFixed(2)), 'writes');

// A full resync: every Service reconciled again with nothing changed.
const reconciles = async () => (await controller.metrics.reconciles.get()).values.reduce((n, v) => n + v.value, 0);
const before = await reconciles();
serviceWrites = 0;
eventWrites = 0;
controller.resync();
const target = before + N;
const deadline = Date.now() + 300_000;
while ((await reconciles()) < target && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
await new Promise((r) => setTimeout(r, 1000));
print('resync_reconciles', (await reconciles()) - before, 'reconciles');
print('resync_writes', serviceWrites + eventWrites, 'writes');
await controller.stop();

// --- RSS holding RSS_N Services, controller alone in its own process ----------------------------
// Built packages, plain node: what the reference controller image runs.
execFileSync('npx', ['tsc', '-b', 'packages/testing'], { cwd: join(import.meta.dirname, '..'), stdio: 'inherit' });
const child = spawn(process.execPath, ['--expose-gc', join(import.meta.dirname, 'fixtures', 'core-controller.mjs')], {
  env: { ...process.env, KUBECONFIG_FILE: plane.writeKubeConfig() },
  stdio: ['pipe', 'pipe', 'inherit'],
});
let out = '';
child.stdout?.on('data', (c) => (out += c));
await until(() => out.includes('ready'), 60_000, 'controller process ready');
const ask = async (): Promise<{ rss: number; ensured: number }> => {
  const mark = out.length;
  child.stdin?.write('rss\n');
  await until(() => /rss \d+ ensured \d+/.test(out.slice(mark)), 30_000, 'rss answer');
  const m = /rss (\d+) ensured (\d+)/.exec(out.slice(mark)) as RegExpExecArray;
  return { rss: Number(m[1]), ensured: Number(m[2]) };
};
const baseline = await ask();
await createAll('bench-rss', RSS_N, new Map(), false);
const deadlineRss = Date.now() + 1_200_000;
let state = await ask();
while (state.ensured < N + RSS_N && Date.now() < deadlineRss) {
  await new Promise((r) => setTimeout(r, 2000));
  state = await ask();
}
const rssServices = N + RSS_N;
print(`rss_baseline_mib`, Number((baseline.rss / 2 ** 20).toFixed(1)), 'MiB');
print(`rss_${rssServices >= 10_000 ? '10k' : rssServices}_mib`, Number((state.rss / 2 ** 20).toFixed(1)), 'MiB');
print('rss_services_held', state.ensured, 'services');
child.stdin?.write('stop\n');
await new Promise((r) => child.on('exit', r));
// --- the reference composition: API cost of a new Service and of a restart -----------------------
// A control plane of its own: the Services above carry KLB's finalizer, which this controller
// would rightly clean up as objects of another class, and count.
admin.close();
await plane.stop();
plane = await startControlPlane();
admin = new KubeClient(plane.kubeConfig);
await addNodes();
const WRITES = ['POST', 'PUT', 'PATCH', 'DELETE'];
for (const crd of renderKustomization(join(import.meta.dirname, '../deploy/base')).filter(
  (o) => o.kind === 'CustomResourceDefinition',
)) {
  await admin.create('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd as KubeObject);
}
await admin.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'klb-system' } });
for (let served = false; !served; ) {
  served = await admin.list('/apis/ipam.klb.io/v1alpha1/namespaces/klb-system/addressclaims').then(
    () => true,
    () => new Promise<boolean>((r) => setTimeout(() => r(false), 200)),
  );
}
/** The reference controller's composition (examples/reference-controller/src/main.ts), in this process. */
function referenceController(): LoadBalancerController {
  const pools = poolConfigFromEnv({ VIP_ALLOCATION_START: '10.200.0.1', VIP_ALLOCATION_END: '10.200.255.254' }) ?? [];
  return new LoadBalancerController({
    kubeConfig: plane.kubeConfig,
    backend: new KeepalivedNginxBackend({ client: new KubeClient(plane.kubeConfig), namespace: 'klb-system' }),
    allocator: new KubeIpam({ kubeConfig: plane.kubeConfig, namespace: 'klb-system', pools, singleWriter: true }),
    configMaps: true,
    ingress: { ingressClassName: 'klb' },
    workers: 8,
    resyncPeriodMs: 0,
  });
}
const reconciledAll = async (c: LoadBalancerController, n: number) => {
  const deadline = Date.now() + 600_000;
  for (;;) {
    const done = (await c.metrics.reconciles.get()).values.reduce((sum, v) => sum + v.value, 0);
    if (done >= n) return;
    if (Date.now() > deadline) throw new Error(`timed out: ${n} reconciles`);
    await new Promise((r) => setTimeout(r, 200));
  }
};
const REF_N = quick ? 200 : N;
let reference = referenceController();
await reference.start();
const refCreated = new Map<string, number>();
const refConverged = new Map<string, number>();
const refWatch = await watchStatus('bench-reference', refConverged);
const beforeCreate = await apiserverRequests(plane.kubeConfig);
await createAll('bench-reference', REF_N, refCreated);
await until(() => refConverged.size >= REF_N, 600_000, `${REF_N} Services converged (reference composition)`);
await refWatch.stop();
await new Promise((r) => setTimeout(r, 2000));
const creation = requestDelta(beforeCreate, await apiserverRequests(plane.kubeConfig));
// Not the controller's: the bench's own writes (one namespace, REF_N Services), the apiserver's
// ClusterIP records (ipaddresses) and the apiserver's renewals of its own identity Lease.
const ownWrites = 1 + REF_N;
const ours = (r: string) => r !== 'leases' && r !== 'ipaddresses';
const notEvents = (r: string) => ours(r) && r !== 'events';
console.error(`requests while ${REF_N} Services were created: ${JSON.stringify(Object.fromEntries(creation))}`);
print(
  'writes_per_service_reference',
  Number(((countOf(creation, WRITES, notEvents) - ownWrites) / REF_N).toFixed(2)),
  'writes',
);
print(
  'event_writes_per_service_reference',
  Number((countOf(creation, WRITES, (r) => r === 'events') / REF_N).toFixed(2)),
  'writes',
);
print('gets_per_service_reference', Number((countOf(creation, ['GET']) / REF_N).toFixed(2)), 'gets');
await reference.stop();
// A restart with nothing changed: a new controller imports, reconciles every Service, and must
// neither write nor read object by object.
const beforeRestart = await apiserverRequests(plane.kubeConfig);
reference = referenceController();
await reference.start();
await reconciledAll(reference, REF_N);
await new Promise((r) => setTimeout(r, 3000));
const restart = requestDelta(beforeRestart, await apiserverRequests(plane.kubeConfig));
print('restart_writes', countOf(restart, WRITES, ours), 'writes');
print('restart_gets_per_service', Number((countOf(restart, ['GET']) / REF_N).toFixed(2)), 'gets');
print('restart_lists', countOf(restart, ['LIST']), 'lists');
if (countOf(restart, [...WRITES, 'GET'], ours) > 0) {
  console.error(
    `restart requests: ${JSON.stringify(Object.fromEntries([...restart].filter(([k]) => !/^(LIST|WATCH)/.test(k))))}`,
  );
}
await reference.stop();

admin.close();
await plane.stop();
