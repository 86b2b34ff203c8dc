// npm run bench -- gateway [gateway] [baseline] [--quick]
// The Gateway API at scale, in the composition users run: the reference controller process
// (examples/reference-controller/src/main.ts: keepalived-nginx backend, KubeIpam, Gateways served
// by default) and a node daemon process (runDaemon with a real nginx, bench/fixtures/gateway-daemon.ts)
// against a real kube-apiserver with the pinned Gateway API CRDs. Node `127.0.0.1`; 5 NodePort
// Services (app-0 … app-4), each answered by an app on its node port with its own name, as
// kube-proxy would forward; VIPs from a 127.x.0.0 block of this run's own.
//   gateway   one Gateway (HTTP listener, allowedRoutes All); N = 1,000 HTTPRoutes h0001.example.com …
//             from another namespace, spread over the 5 Services, created at once (32 at a time)
//     gateway.attach_1000_routes_s   first create → every Route Accepted and every host answering
//                                    through the VIP with its Service's name (target < 30)
//     gateway.attach_accepted_s      … the last Route Accepted
//     gateway.attach_published_s     … every host in the daemon config the controller published
//     gateway.attach_answered_s      … the last host answering
//     gateway.writes_per_route       API writes per new Route (apiserver_request_total: every client
//                                    of the controller), Events apart (target <= 2)
//     gateway.event_writes_per_route
//     gateway.route_change_to_traffic_p50_s / _p99_s   with the N Routes attached, one Route's
//                                    backendRef patched to another Service → its host answers with
//                                    the new name; 25 Routes one after the other (target p99 < 2)
//     gateway.vips_used              addresses the published daemon configs use
//     gateway.noop_resync_writes     the controller restarted with nothing changed (a full
//                                    reconcile from cold caches): its writes, Events included
//                                    (target 0); …_gets its object-by-object reads
//   baseline  the same N hosts as N Ingresses (class klb) to the same Services, on a stack of its
//             own: without the Gateway API each Ingress is a load balancer with a VIP of its own
//     gateway.baseline_*             the same figures (per Ingress)
//     gateway.attach_speedup_vs_ingresses, writes_ratio_vs_ingresses, change_p99_ratio_vs_ingresses
// stderr: the API requests of each phase by verb and resource, when hosts were published,
// Accepted and answering, and the controller's and the daemon's own metrics (reconciles, applies).
// --quick: N = 200. The controller runs with --resync-seconds=3600 (no periodic resync inside a run).
import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type GatewayObject,
  Informer,
  type IngressObject,
  KubeClient,
  type KubeObject,
  type RouteObject,
  type ServiceObject,
} from '@klb/core';
import {
  type ControlPlane,
  createNode,
  freePort,
  installGatewayApiCrds,
  ProcessGroup,
  startControlPlane,
} from '@klb/testing';
import { renderKustomization } from '../examples/reference-controller/test/kustomize.js';
import { apiserverRequests, countOf, type RequestCounts, requestDelta } from './fixtures/apiserver-requests.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = new Set(args.filter((a) => !a.startsWith('--')));
const wants = (section: string): boolean => only.size === 0 || only.has(section);
const N = Number(process.env.BENCH_N ?? (quick ? 200 : 1000));
const APPS = 5;
const CHANGES = 25;
const root = join(import.meta.dirname, '..');
const GW = '/apis/gateway.networking.k8s.io/v1';
const CONTROLLER_NAME = 'klb.io/gateway-controller';
const INFRA_NS = 'gw-infra';
const APPS_NS = 'gw-apps';
const WRITES = ['POST', 'PUT', 'PATCH', 'DELETE'];
// Not the controller's: the apiserver's own Lease renewals and ClusterIP records, and the
// daemon's node report (a ConfigMap). Printed with the rest on stderr.
const NOT_CONTROLLER = new Set(['leases', 'ipaddresses', 'configmaps']);
// A 127.B.0.0/21 block of this run's own, so that concurrent suites never share a VIP.
const block = randomInt(100, 250);
const POOL = `127.${block}.0.1-127.${block}.7.254`;

const print = (metric: string, value: number | string, unit: string) =>
  console.log(`bench gateway.${metric} ${value} ${unit}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pad = (i: number) => String(i + 1).padStart(4, '0');
const hostOf = (i: number) => `h${pad(i)}.example.com`;
const appOf = (i: number) => `app-${i % APPS}`;
const seconds = (ms: number) => Number((ms / 1000).toFixed(2));

function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}

async function until<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined>, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(everyMs);
  }
}

/** One GET on vip:port with a Host header: status and body, or undefined when nothing answered. */
function get(
  vip: string,
  port: number,
  host: string,
  agent: http.Agent | false,
  { path = '/', timeoutMs = 1000 }: { path?: string; timeoutMs?: number } = {},
): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ host: vip, port, path, agent, timeout: timeoutMs, headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

const local = (port: number, path: string) => get('127.0.0.1', port, '127.0.0.1', false, { path, timeoutMs: 5000 });

/** Metric values summed over their labels, by name, from a Prometheus text endpoint on 127.0.0.1. */
async function scrape(port: number): Promise<Map<string, number>> {
  const r = await local(port, '/metrics');
  if (r?.status !== 200) throw new Error(`/metrics on ${port}: ${r?.status}`);
  const sums = new Map<string, number>();
  for (const line of r.body.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0];
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (name && Number.isFinite(value)) sums.set(name, (sums.get(name) ?? 0) + value);
  }
  return sums;
}

/** Writes of the controller (and its IPAM and backend clients) in `c`, less `own` writes of the bench. */
const controllerWrites = (c: RequestCounts, own = 0) =>
  countOf(c, WRITES, (r) => !NOT_CONTROLLER.has(r) && r !== 'events') - own;
const eventWrites = (c: RequestCounts) => countOf(c, WRITES, (r) => r === 'events');
const notWatches = (c: RequestCounts) =>
  JSON.stringify(Object.fromEntries([...c].filter(([k]) => !/^(LIST|WATCH|WATCHLIST) /.test(k))));

/** The control plane, the daemon and controller processes and the apps of one measurement. */
interface Stack {
  readonly plane: ControlPlane;
  readonly admin: KubeClient;
  readonly group: ProcessGroup;
  readonly controllerPort: number;
  readonly daemonPort: number;
  startController(): Promise<void>;
  stop(): Promise<void>;
}

async function startStack(): Promise<Stack> {
  const dir = mkdtempSync(join(tmpdir(), 'klb-bench-gateway-'));
  const plane = await startControlPlane();
  const admin = new KubeClient(plane.kubeConfig);
  const group = new ProcessGroup(dir, false);
  const apps: http.Server[] = [];
  const stop = async () => {
    await group.stopAll();
    for (const app of apps) {
      app.closeAllConnections();
      await new Promise((r) => app.close(r));
    }
    admin.close();
    await plane.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const crd of renderKustomization(join(root, 'deploy/base')).filter(
      (o) => o.kind === 'CustomResourceDefinition',
    )) {
      await admin.create('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd as KubeObject);
    }
    await installGatewayApiCrds(plane.kubeConfig);
    for (const name of ['klb-system', INFRA_NS, APPS_NS]) {
      await admin.create('/api/v1/namespaces', { metadata: { name } });
    }
    await createNode(admin, 'node-1', '127.0.0.1');
    await until('the AddressClaim CRD served', 30_000, () =>
      admin.list('/apis/ipam.klb.io/v1alpha1/namespaces/klb-system/addressclaims').then(() => true),
    );
    // The apps, on their node ports as kube-proxy would forward them.
    for (let i = 0; i < APPS; i++) {
      const svc = await admin.create<ServiceObject>(`/api/v1/namespaces/${APPS_NS}/services`, {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: `app-${i}` },
        spec: { type: 'NodePort', selector: { app: `app-${i}` }, ports: [{ port: 80, targetPort: 8080 }] },
      } as ServiceObject);
      const app = http.createServer((_req, res) => res.end(`app-${i}`));
      apps.push(app);
      await new Promise<void>((resolve, reject) => {
        app.once('error', reject);
        app.listen(svc.spec?.ports?.[0]?.nodePort as number, '127.0.0.1', resolve);
      });
    }
    const pools = join(dir, 'pools.yaml');
    writeFileSync(pools, `pools:\n  - name: default\n    addresses: [${POOL}]\n`);
    const kubeconfig = plane.writeKubeConfig();
    const daemonPort = await freePort();
    const controllerPort = await freePort();
    const tsx = ['--conditions=klb-source', '--import', 'tsx'];
    group.start('daemon', process.execPath, [...tsx, join(root, 'bench/fixtures/gateway-daemon.ts')], {
      cwd: root,
      env: { KUBECONFIG_FILE: kubeconfig, STATE_DIR: join(dir, 'daemon'), HEALTH_PORT: String(daemonPort) },
    });
    await until('the daemon ready', 60_000, async () =>
      (await local(daemonPort, '/readyz'))?.status === 200 ? true : undefined,
    );
    const startController = async () => {
      group.start(
        'controller',
        process.execPath,
        [
          ...tsx,
          join(root, 'examples/reference-controller/src/main.ts'),
          '--backend=keepalived-nginx',
          `--kubeconfig=${kubeconfig}`,
          `--pools-file=${pools}`,
          '--disable-leader-election',
          '--resync-seconds=3600',
          `--port=${controllerPort}`,
          '--host=127.0.0.1',
        ],
        { cwd: root, env: { POD_NAMESPACE: 'klb-system' } },
      );
      await until('the controller ready', 60_000, async () =>
        (await local(controllerPort, '/readyz'))?.status === 200 ? true : undefined,
      );
    };
    await startController();
    return { plane, admin, group, controllerPort, daemonPort, startController, stop };
  } catch (err) {
    console.error(group.logTails());
    await stop();
    throw err;
  }
}

/** Where and since when the published daemon configs serve each host. */
type Published = Map<string, { at: number; vip: string; port: number }>;

/** Watches the daemon-config Secrets and records when each host first appears in one. */
async function watchPublished(admin: KubeClient, published: Published): Promise<Informer<KubeObject>> {
  const informer = new Informer<KubeObject>(admin, {
    resource: 'secrets',
    path: '/api/v1/namespaces/klb-system/secrets',
    labelSelector: 'klb.io/daemon-config=true',
  });
  const seen = (secret: KubeObject) => {
    const data = (secret as { data?: Record<string, string> }).data?.['config.json'];
    if (!data) return;
    const config = JSON.parse(Buffer.from(data, 'base64').toString('utf8')) as {
      addresses: string[];
      listeners: { port: number; routes?: { host?: string }[] }[];
    };
    const vip = config.addresses[0];
    if (!vip) return;
    const at = Date.now();
    for (const l of config.listeners) {
      for (const r of l.routes ?? []) {
        if (r.host && !published.has(r.host)) published.set(r.host, { at, vip, port: l.port });
      }
    }
  };
  informer.on({ add: seen, update: (_old, s) => seen(s) });
  informer.start();
  await informer.waitForSync();
  return informer;
}

/** Watches `path` and records when each object first passes `done`. */
async function watchDone<T extends KubeObject>(
  admin: KubeClient,
  resource: string,
  path: string,
  done: (obj: T) => boolean,
  at: Map<string, number>,
): Promise<Informer<T>> {
  const informer = new Informer<T>(admin, { resource, path });
  const seen = (obj: T) => {
    const name = obj.metadata?.name ?? '';
    if (!at.has(name) && done(obj)) at.set(name, Date.now());
  };
  informer.on({ add: seen, update: (_old, obj) => seen(obj) });
  informer.start();
  await informer.waitForSync();
  return informer;
}

/**
 * Until every host answers with its app's name through the VIP its published config gives it,
 * recording when each first did: passes over the published hosts not answered yet, 16 requests
 * at a time. A host not published yet cannot answer, so it is not asked.
 */
async function pollHosts(
  published: Published,
  answered: Map<string, number>,
  deadline: number,
  keepAlive: boolean,
): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const hosts = Array.from({ length: N }, (_, i) => i);
  try {
    while (answered.size < N) {
      if (Date.now() > deadline) throw new Error(`timed out: ${answered.size}/${N} hosts answered`);
      const pending = hosts.filter((i) => published.has(hostOf(i)) && !answered.has(hostOf(i)));
      let next = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < pending.length) {
            const i = pending[next++] as number;
            const where = published.get(hostOf(i));
            if (!where) continue;
            const r = await get(where.vip, where.port, hostOf(i), keepAlive ? agent : false);
            if (r?.status === 200 && r.body === appOf(i)) answered.set(hostOf(i), Date.now());
          }
        }),
      );
      await sleep(50);
    }
  } finally {
    agent.destroy();
  }
}

/** Waits until the controller has written nothing for 3 s (its trailing status writes are part of the cost). */
async function quiet(s: Stack): Promise<RequestCounts> {
  let last = await apiserverRequests(s.plane.kubeConfig);
  for (let i = 0; i < 60; i++) {
    await sleep(3000);
    const now = await apiserverRequests(s.plane.kubeConfig);
    const d = requestDelta(last, now);
    if (controllerWrites(d) + eventWrites(d) === 0) return now;
    last = now;
  }
  throw new Error('the controller never stopped writing');
}

interface AttachResult {
  readonly totalMs: number;
  readonly acceptedMs: number;
  readonly publishedMs: number;
  readonly answeredMs: number;
  readonly writes: number;
  readonly events: number;
  readonly vips: number;
}

/**
 * Creates the N objects (32 at a time) and measures until every one is `done` by its status and
 * its host answers; then counts the API writes of the whole phase, trailing ones included.
 */
async function attach(
  s: Stack,
  what: string,
  resource: string,
  create: (i: number) => Promise<unknown>,
  done: (obj: KubeObject) => boolean,
): Promise<AttachResult> {
  const published: Published = new Map();
  const accepted = new Map<string, number>();
  const answered = new Map<string, number>();
  const secrets = await watchPublished(s.admin, published);
  const objects = await watchDone(s.admin, resource, objectsPath(resource), done, accepted);
  const before = await apiserverRequests(s.plane.kubeConfig);
  const m0 = await scrape(s.controllerPort);
  const d0 = await scrape(s.daemonPort);
  const deadline = Date.now() + 900_000;
  const progress = setInterval(() => {
    console.error(`progress: ${what}: accepted ${accepted.size} published ${published.size} answered ${answered.size}`);
  }, 10_000);
  const t0 = Date.now();
  try {
    let next = 0;
    const creating = Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < N) await create(next++);
      }),
    );
    // One VIP: keep-alive connections; a VIP per host (the baseline): a connection per request.
    const polling = pollHosts(published, answered, deadline, resource !== 'ingresses');
    await creating;
    const created = Date.now();
    await polling;
    await until(`${N} ${what} accepted`, Math.max(0, deadline - Date.now()), async () =>
      accepted.size >= N ? true : undefined,
    );
    const last = (m: Map<string, number>) => Math.max(...m.values()) - t0;
    const result = {
      totalMs: Math.max(last(accepted), last(answered)),
      acceptedMs: last(accepted),
      publishedMs: Math.max(...[...published.values()].map((p) => p.at)) - t0,
      answeredMs: last(answered),
    };
    const after = await quiet(s);
    const delta = requestDelta(before, after);
    const m1 = await scrape(s.controllerPort);
    const d1 = await scrape(s.daemonPort);
    const diff = (a: Map<string, number>, b: Map<string, number>, k: string) => (b.get(k) ?? 0) - (a.get(k) ?? 0);
    const reconciles = diff(m0, m1, 'klb_reconcile_total');
    const applies = diff(d0, d1, 'klb_daemon_config_applies_total');
    console.error(`requests during the ${what} phase: ${notWatches(delta)}`);
    // When the hosts were published (one daemon-config write publishes many) and Accepted.
    const steps = new Map<number, number>();
    for (const p of published.values()) steps.set(p.at - t0, (steps.get(p.at - t0) ?? 0) + 1);
    const quantiles = (m: Map<string, number>) =>
      [10, 50, 90, 100].map((q) => `p${q} ${seconds(pct([...m.values()], q) - t0)} s`).join(', ');
    console.error(
      `timeline: ${what}: published ${[...steps].length > 12 ? `in ${steps.size} writes` : [...steps].map(([at, n]) => `+${seconds(at)} s ${n}`).join(', ')}; ` +
        `accepted ${quantiles(accepted)}; answered ${quantiles(answered)}`,
    );
    console.error(
      `profile: ${what}: created all in ${((created - t0) / 1000).toFixed(2)} s; controller ${reconciles} reconciles, ` +
        `${diff(m0, m1, 'klb_reconcile_duration_seconds_sum').toFixed(2)} s in reconciles, ` +
        `${diff(m0, m1, 'klb_reconcile_errors_total')} errors; daemon ${applies} applies, ` +
        `${diff(d0, d1, 'klb_daemon_config_apply_seconds_sum').toFixed(2)} s applying`,
    );
    return {
      ...result,
      writes: controllerWrites(delta, N) / N,
      events: eventWrites(delta) / N,
      vips: new Set([...published.values()].map((p) => p.vip)).size,
    };
  } finally {
    clearInterval(progress);
    await secrets.stop();
    await objects.stop();
  }
}

function objectsPath(resource: string): string {
  return resource === 'ingresses'
    ? `/apis/networking.k8s.io/v1/namespaces/${APPS_NS}/ingresses`
    : `${GW}/namespaces/${APPS_NS}/${resource}`;
}

/** Patches object `i` to `app` and measures until its host answers `app` through `vip:port`; `CHANGES` objects. */
async function changes(
  patch: (i: number, app: string) => Promise<unknown>,
  where: (i: number) => { vip: string; port: number },
): Promise<number[]> {
  const times: number[] = [];
  for (let t = 0; t < CHANGES; t++) {
    const i = (t * 37 + 11) % N;
    const app = `app-${(i + 1) % APPS}`;
    const { vip, port } = where(i);
    const t0 = performance.now();
    await patch(i, app);
    await until(
      `${hostOf(i)} answering ${app}`,
      60_000,
      async () => ((await get(vip, port, hostOf(i), false, { timeoutMs: 500 }))?.body === app ? true : undefined),
      10,
    );
    times.push((performance.now() - t0) / 1000);
  }
  return times;
}

/** A controller restart with nothing changed: its writes (Events included) and GETs until quiet. */
async function restart(s: Stack): Promise<{ writes: number; gets: number }> {
  // Converged first: the daemon's report of the last change, and the status it leads to, written.
  await quiet(s);
  await s.group.stop('controller');
  const before = await apiserverRequests(s.plane.kubeConfig);
  await s.startController();
  await until('the restarted controller reconciled', 120_000, async () =>
    ((await scrape(s.controllerPort)).get('klb_reconcile_total') ?? 0) >= 1 ? true : undefined,
  );
  const delta = requestDelta(before, await quiet(s));
  console.error(`requests of the restart: ${notWatches(delta)}`);
  return {
    writes: controllerWrites(delta) + eventWrites(delta),
    gets: countOf(delta, ['GET'], (r) => !NOT_CONTROLLER.has(r)),
  };
}

const routeAccepted = (obj: KubeObject) =>
  ((obj as RouteObject).status?.parents ?? []).some(
    (p) =>
      p.controllerName === CONTROLLER_NAME && p.conditions.some((c) => c.type === 'Accepted' && c.status === 'True'),
  );
const ingressHasAddress = (obj: KubeObject) => ((obj as IngressObject).status?.loadBalancer?.ingress ?? []).length > 0;

interface Figures {
  readonly attach: AttachResult;
  readonly change: number[];
}

function report(prefix: string, f: Figures, unit: string, units: string): void {
  print(`${prefix}attach_${N}_${units}_s`, seconds(f.attach.totalMs), 's');
  print(`${prefix}attach_accepted_s`, seconds(f.attach.acceptedMs), 's');
  print(`${prefix}attach_published_s`, seconds(f.attach.publishedMs), 's');
  print(`${prefix}attach_answered_s`, seconds(f.attach.answeredMs), 's');
  print(`${prefix}writes_per_${unit}`, f.attach.writes.toFixed(2), 'writes');
  print(`${prefix}event_writes_per_${unit}`, f.attach.events.toFixed(2), 'writes');
  print(`${prefix}vips_used`, f.attach.vips, 'addresses');
  print(`${prefix}${unit}_change_to_traffic_p50_s`, pct(f.change, 50).toFixed(2), 's');
  print(`${prefix}${unit}_change_to_traffic_p99_s`, pct(f.change, 99).toFixed(2), 's');
}

/** Runs `fn` on a stack of its own, which it then stops; on failure, prints the processes' logs. */
async function onStack<T>(fn: (s: Stack) => Promise<T>): Promise<T> {
  const s = await startStack();
  try {
    return await fn(s);
  } catch (err) {
    console.error(s.group.logTails(40));
    throw err;
  } finally {
    await s.stop();
  }
}

/** One Gateway, N HTTPRoutes. */
async function gateway(s: Stack): Promise<Figures> {
  const port = await freePort();
  await s.admin.create(`${GW}/gatewayclasses`, {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'GatewayClass',
    metadata: { name: 'klb' },
    spec: { controllerName: CONTROLLER_NAME },
  } as KubeObject);
  await s.admin.create(`${GW}/namespaces/${INFRA_NS}/gateways`, {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name: 'bench' },
    spec: {
      gatewayClassName: 'klb',
      listeners: [{ name: 'http', port, protocol: 'HTTP', allowedRoutes: { namespaces: { from: 'All' } } }],
    },
  } as KubeObject);
  const vip = await until('the Gateway Programmed', 120_000, async () => {
    const g = await s.admin.get<GatewayObject>(`${GW}/namespaces/${INFRA_NS}/gateways/bench`);
    const programmed = g.status?.conditions?.find((c) => c.type === 'Programmed')?.status === 'True';
    return programmed ? g.status?.addresses?.[0]?.value : undefined;
  });
  // The listener serves (nginx answers 404 to any host) before the first Route is created.
  await until('the listener answering', 60_000, async () =>
    (await get(vip, port, 'nobody.example.com', false)) ? true : undefined,
  );
  const route = (i: number, app: string) => ({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: `h${pad(i)}` },
    spec: {
      parentRefs: [{ name: 'bench', namespace: INFRA_NS }],
      hostnames: [hostOf(i)],
      rules: [{ backendRefs: [{ name: app, port: 80 }] }],
    },
  });
  const result = await attach(
    s,
    'HTTPRoutes',
    'httproutes',
    (i) => s.admin.create(`${GW}/namespaces/${APPS_NS}/httproutes`, route(i, appOf(i)) as KubeObject),
    routeAccepted,
  );
  const gw = await s.admin.get<GatewayObject>(`${GW}/namespaces/${INFRA_NS}/gateways/bench`);
  console.error(`Gateway listeners: ${gw.status?.listeners?.map((l) => `${l.name}:${l.attachedRoutes}`).join(' ')}`);
  const change = await changes(
    (i, app) =>
      s.admin.patch(`${GW}/namespaces/${APPS_NS}/httproutes/h${pad(i)}`, {
        spec: { rules: [{ backendRefs: [{ name: app, port: 80 }] }] },
      }),
    () => ({ vip, port }),
  );
  const figures = { attach: result, change };
  report('', figures, 'route', 'routes');
  const noop = await restart(s);
  print('noop_resync_writes', noop.writes, 'writes');
  print('noop_resync_gets', noop.gets, 'gets');
  return figures;
}

/** The baseline: the same N hosts as N Ingresses, each a load balancer with a VIP of its own. */
async function ingresses(s: Stack): Promise<Figures> {
  const ingress = (i: number, app: string) => ({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name: `h${pad(i)}` },
    spec: {
      ingressClassName: 'klb',
      rules: [
        {
          host: hostOf(i),
          http: {
            paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: app, port: { number: 80 } } } }],
          },
        },
      ],
    },
  });
  const path = objectsPath('ingresses');
  const result = await attach(
    s,
    'Ingresses',
    'ingresses',
    (i) => s.admin.create(path, ingress(i, appOf(i)) as KubeObject),
    ingressHasAddress,
  );
  const vips = new Map<number, string>();
  for (let t = 0; t < CHANGES; t++) {
    const i = (t * 37 + 11) % N;
    const ing = await s.admin.get<IngressObject>(`${path}/h${pad(i)}`);
    vips.set(i, ing.status?.loadBalancer?.ingress?.[0]?.ip as string);
  }
  const change = await changes(
    (i, app) => s.admin.patch(`${path}/h${pad(i)}`, { spec: ingress(i, app).spec }),
    (i) => ({ vip: vips.get(i) as string, port: 80 }),
  );
  const figures = { attach: result, change };
  report('baseline_', figures, 'ingress', 'ingresses');
  return figures;
}

console.error(
  `composition: reference controller process (keepalived-nginx backend, KubeIpam, Gateways on) + node daemon process (real nginx); N=${N}, VIP pool ${POOL}`,
);
const gw = wants('gateway') ? await onStack(gateway) : undefined;
const base = wants('baseline') ? await onStack(ingresses) : undefined;
if (gw && base) {
  print('attach_speedup_vs_ingresses', (base.attach.totalMs / gw.attach.totalMs).toFixed(2), 'x');
  print('writes_ratio_vs_ingresses', (gw.attach.writes / base.attach.writes).toFixed(2), 'ratio');
  print('change_p99_ratio_vs_ingresses', (pct(gw.change, 99) / pct(base.change, 99)).toFixed(2), 'ratio');
}
