// The KLB demo, end to end on one machine: a real etcd + kube-apiserver, the reference controller
// (keepalived-nginx backend, VIPs from the pool 127.0.100.0/24) and the reference daemon (nginx on
// this machine as the one load-balancing node), a real HTTP app (coffee) and a real TCP app
// (standing in for the mysql example). It applies the coffee example the original way (a
// ConfigMap labelled app=loadbalancer) and as a Service type=LoadBalancer, the TCP app as an
// original ConfigMap, prints the bind IPs and fetches through them.
//
// Usage: scripts/demo.sh [--once]   (--once: do it all, clean up, exit 0 on success, 1 on failure)
// Ctrl-C stops everything it started. Needs root (nginx binds port 80 on the VIPs).
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest, type Server } from 'node:http';
import { createConnection, createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfigMapObject, KubeObject, ServiceObject } from '@klb/core';
import { KubeClient } from '@klb/core';
import { installAddressClaimCrd } from '@klb/ipam';
import { type ControlPlane, freePort, requireComponents, startControlPlane } from '@klb/testing';

const once = process.argv.includes('--once');
const root = join(import.meta.dirname, '..');
const POOL = '127.0.100.0/24';
const NS = 'default';
const step = (text: string) => console.log(`demo: ${text}`);

const dir = mkdtempSync(join(tmpdir(), 'klb-demo-'));
const children = new Map<string, ChildProcess>();
const servers: Server[] = [];
const tcpServers: ReturnType<typeof createTcpServer>[] = [];
let plane: ControlPlane | undefined;
let client: KubeClient | undefined;
const sysctls = ['/proc/sys/net/ipv4/ip_nonlocal_bind', '/proc/sys/net/ipv6/ip_nonlocal_bind'];
const savedSysctls = new Map(sysctls.filter(existsSync).map((f) => [f, readFileSync(f, 'utf8')]));

/** Starts a child in its own process group (Ctrl-C reaches only the demo, which stops it in order). */
function startChild(name: string, args: string[], env: Record<string, string> = {}): ChildProcess {
  const log = openSync(join(dir, `${name}.log`), 'a');
  const child = spawn(process.execPath, ['--conditions=klb-source', '--import', 'tsx', ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', log, log],
    detached: true,
  });
  closeSync(log);
  children.set(name, child);
  child.on('exit', (code, signal) => {
    if (children.get(name) === child) children.delete(name);
    if (!stopping) step(`${name} exited unexpectedly (code ${code}, signal ${signal}); its log:\n${logTail(name)}`);
  });
  return child;
}

function logTail(name: string, lines = 25): string {
  const file = join(dir, `${name}.log`);
  return existsSync(file) ? readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n') : '';
}

async function stopChild(name: string): Promise<void> {
  const child = children.get(name);
  if (!child?.pid || child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => killGroup(child), 20_000);
  await exited;
  clearTimeout(timer);
  killGroup(child); // anything the child left behind in its process group
}

function killGroup(child: ChildProcess): void {
  try {
    if (child.pid) process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

let stopping = false;
async function cleanUp(): Promise<void> {
  if (stopping) return;
  stopping = true;
  step('stopping everything: controller, daemon (and its nginx), apps, kube-apiserver, etcd');
  await stopChild('controller');
  await stopChild('daemon');
  for (const s of servers) s.closeAllConnections();
  await Promise.all([...servers, ...tcpServers].map((s) => new Promise((r) => s.close(() => r(undefined)))));
  client?.close();
  await plane?.stop();
  for (const [file, value] of savedSysctls) {
    try {
      writeFileSync(file, value);
    } catch {
      // not writable here: nothing was changed either
    }
  }
  rmSync(dir, { recursive: true, force: true });
  step('clean');
}
process.on('exit', () => {
  for (const child of children.values()) killGroup(child);
});

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 180_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  let dots = Date.now();
  while (Date.now() < deadline) {
    try {
      const value = await fn();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    for (const [name] of [
      ['controller', 0],
      ['daemon', 0],
    ] as const) {
      if (!children.has(name)) throw new Error(`${name} is not running; its log:\n${logTail(name)}`);
    }
    if (Date.now() - dots > 10_000) {
      dots = Date.now();
      step(`  still waiting for ${what}...`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
}

/** One HTTP GET with a short timeout, as a client outside the cluster would make it. */
async function httpGet(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return { status: res.status, body: await res.text() };
}

/** One HTTP GET with a Host header (name-based routing of the Ingress). */
function httpGetHost(url: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers: { host }, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Connects, reads the greeting line, sends a line and reads its echo. */
function tcpExchange(host: string, port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host, port });
    let data = '';
    socket.setTimeout(2000, () => socket.destroy(new Error('timeout')));
    socket.on('connect', () => socket.write(`${line}\n`));
    socket.on('data', (chunk) => {
      data += chunk;
      if (data.split('\n').length > 2) {
        socket.end();
        resolve(data.trim());
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`connection closed after ${JSON.stringify(data)}`)));
  });
}

function listen(server: Server | ReturnType<typeof createTcpServer>, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
}

async function run(): Promise<void> {
  const missing = requireComponents('kube-apiserver', 'etcd', 'nginx');
  if (missing) throw new Error(missing);
  if (process.getuid?.() !== 0) throw new Error('the demo runs nginx on port 80 of its VIPs: run it as root');

  step('starting etcd and kube-apiserver on 127.0.0.1 (ports chosen now)');
  plane = await startControlPlane({ onLog: (line) => step(`  ${line.replace(/^control-plane: /, '')}`) });
  // startControlPlane's own signal hooks would kill everything at once; the demo stops in order.
  process.removeAllListeners('SIGINT');
  process.removeAllListeners('SIGTERM');
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      step(`${signal}: cleaning up`);
      void cleanUp().then(() => process.exit(130));
      process.once(signal, () => process.exit(130));
    });
  }
  client = new KubeClient(plane.kubeConfig);
  const kubeconfig = plane.writeKubeConfig();

  step('installing the AddressClaim CRD, namespace klb-system and the pool configuration');
  await installAddressClaimCrd(plane.kubeConfig);
  await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'klb-system' } });
  await client.create('/api/v1/namespaces/klb-system/configmaps', {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'klb-pools' },
    data: { 'pools.yaml': `pools:\n  - name: demo\n    addresses: [${POOL}]\n    avoidBuggyIPs: true\n` },
  } as KubeObject);
  step('registering this machine as the load-balancing node "demo-node" (InternalIP 127.0.0.1)');
  await client.create('/api/v1/nodes', {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'demo-node', labels: { 'klb.io/load-balancer-node': 'true' } },
  } as KubeObject);
  await client.patch('/api/v1/nodes/demo-node/status', {
    status: {
      conditions: [{ type: 'Ready', status: 'True', reason: 'Demo', message: 'this machine' }],
      addresses: [{ type: 'InternalIP', address: '127.0.0.1' }],
    },
  });

  step("creating the apps' Services (coffee-svc: HTTP, mysql-svc: TCP) and starting the apps on their nodePorts");
  const service = (name: string, app: string, port: number, lb: boolean): KubeObject =>
    ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, labels: { app } },
      spec: {
        type: lb ? 'LoadBalancer' : 'NodePort',
        ...(lb ? { loadBalancerClass: 'klb.io/load-balancer' } : {}),
        selector: { app },
        ports: [{ name: 'main', port, targetPort: port, protocol: 'TCP' }],
      },
    }) as KubeObject;
  const nodePortOf = (svc: ServiceObject) => svc.spec?.ports?.[0]?.nodePort as number;
  const coffeeSvc = await client.create<ServiceObject>(
    `/api/v1/namespaces/${NS}/services`,
    service('coffee-svc', 'coffee', 80, false),
  );
  const coffeeLb = await client.create<ServiceObject>(
    `/api/v1/namespaces/${NS}/services`,
    service('coffee-lb', 'coffee', 80, true),
  );
  const mysqlSvc = await client.create<ServiceObject>(
    `/api/v1/namespaces/${NS}/services`,
    service('mysql-svc', 'mysql', 3306, false),
  );
  // Without kube-proxy, the apps themselves listen on the nodePorts of the node (127.0.0.1).
  let requests = 0;
  for (const svc of [coffeeSvc, coffeeLb]) {
    const server = createHttpServer((req, res) => {
      requests++;
      res.setHeader('content-type', 'text/plain');
      res.end(`coffee: server coffee-1, request ${requests}, URI ${req.url}, via nodePort ${nodePortOf(svc)}\n`);
    });
    servers.push(server);
    await listen(server, nodePortOf(svc));
  }
  const tcp = createTcpServer((socket) => {
    socket.write('mysql-svc (a TCP echo standing in for mysql): hello\n');
    socket.on('data', (chunk) => socket.write(`echo: ${chunk}`));
    socket.on('error', () => socket.destroy());
  });
  tcpServers.push(tcp);
  await listen(tcp, nodePortOf(mysqlSvc));
  step(
    `  coffee app on 127.0.0.1:${nodePortOf(coffeeSvc)} and :${nodePortOf(coffeeLb)}, TCP app on :${nodePortOf(mysqlSvc)}`,
  );

  const daemonHealth = await freePort();
  const controllerPort = await freePort();
  step('starting the reference daemon (nginx; one node, so no keepalived: 127.0.0.0/8 is local already)');
  startChild('daemon', [
    'examples/reference-daemon/src/main.ts',
    `--kubeconfig=${kubeconfig}`,
    '--namespace=klb-system',
    '--node-name=demo-node',
    `--state-dir=${join(dir, 'daemon')}`,
    '--no-keepalived',
    `--health-port=${daemonHealth}`,
  ]);
  step('starting the reference controller (--backend=keepalived-nginx, leader election on)');
  startChild('controller', [
    'examples/reference-controller/src/main.ts',
    '--backend=keepalived-nginx',
    `--kubeconfig=${kubeconfig}`,
    '--namespace=klb-system',
    '--pools-configmap=klb-pools',
    '--pod-name=demo-controller',
    `--port=${controllerPort}`,
    '--host=127.0.0.1',
  ]);
  await waitFor('the controller to be ready (caches synced, addresses imported)', async () =>
    (await fetch(`http://127.0.0.1:${controllerPort}/readyz`)).ok ? true : undefined,
  );
  step(`  controller ready; metrics at http://127.0.0.1:${controllerPort}/metrics`);

  step('applying the original ConfigMaps: coffee-configmap (→ coffee-svc) and mysql-configmap (→ mysql-svc)');
  for (const [name, target] of [
    ['coffee-configmap', 'coffee-svc'],
    ['mysql-configmap', 'mysql-svc'],
  ] as const) {
    await client.create(`/api/v1/namespaces/${NS}/configmaps`, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, labels: { app: 'loadbalancer' } },
      data: { namespace: NS, 'target-service-name': target },
    } as KubeObject);
  }
  step('(coffee-lb, the Service type=LoadBalancer form, was created above)');
  step('applying the Ingress form: coffee (class klb), host cafe.example.com, path /coffee → coffee-svc');
  await client.create(`/apis/networking.k8s.io/v1/namespaces/${NS}/ingresses`, {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name: 'coffee' },
    spec: {
      ingressClassName: 'klb',
      rules: [
        {
          host: 'cafe.example.com',
          http: {
            paths: [
              {
                path: '/coffee',
                pathType: 'Prefix',
                backend: { service: { name: 'coffee-svc', port: { number: 80 } } },
              },
            ],
          },
        },
      ],
    },
  } as KubeObject);

  const bindIp = async (name: string) =>
    waitFor(`${name} bind-ip`, async () => {
      const cm = await client?.get<ConfigMapObject>(`/api/v1/namespaces/${NS}/configmaps/${name}`);
      if (cm?.data?.status?.startsWith('ERROR')) throw new Error(`${name}: ${cm.data.status}`);
      return cm?.data?.status === 'SUCCESS' ? (cm.data['bind-ip'] as string) : undefined;
    });
  const coffeeIp = await bindIp('coffee-configmap');
  const mysqlIp = await bindIp('mysql-configmap');
  const lbIp = await waitFor('coffee-lb status.loadBalancer.ingress', async () => {
    const svc = await client?.get<ServiceObject>(`/api/v1/namespaces/${NS}/services/coffee-lb`);
    return svc?.status?.loadBalancer?.ingress?.[0]?.ip;
  });
  const ingressIp = await waitFor('Ingress coffee status.loadBalancer.ingress', async () => {
    const ing = await client?.get<KubeObject & { status?: ServiceObject['status'] }>(
      `/apis/networking.k8s.io/v1/namespaces/${NS}/ingresses/coffee`,
    );
    return ing?.status?.loadBalancer?.ingress?.[0]?.ip;
  });
  step(`bind IPs: coffee-configmap ${coffeeIp} (data.status SUCCESS), mysql-configmap ${mysqlIp}, coffee-lb ${lbIp}`);
  step(`  Ingress coffee: ${ingressIp}`);

  step('waiting for the daemon to apply the configs (render, nginx -t, reload)');
  for (const [label, ip] of [
    ['coffee-configmap', coffeeIp],
    ['coffee-lb', lbIp],
  ] as const) {
    const reply = await waitFor(`HTTP through ${ip}:80`, async () => {
      const r = await httpGet(`http://${ip}/`);
      return r.status === 200 && r.body.startsWith('coffee:') ? r.body.trim() : undefined;
    });
    step(`GET http://${ip}/ (${label}) → ${reply}`);
  }
  const routed = await waitFor(`HTTP through ${ingressIp}:80 with Host cafe.example.com`, async () => {
    const r = await httpGetHost(`http://${ingressIp}/coffee/menu`, 'cafe.example.com');
    return r.status === 200 && r.body.startsWith('coffee:') ? r.body.trim() : undefined;
  });
  step(`GET http://${ingressIp}/coffee/menu, Host: cafe.example.com (Ingress coffee) → ${routed}`);
  const other = await httpGetHost(`http://${ingressIp}/tea`, 'cafe.example.com');
  step(`GET http://${ingressIp}/tea, Host: cafe.example.com → HTTP ${other.status} (no such route)`);
  const echo = await waitFor(`TCP through ${mysqlIp}:3306`, () => tcpExchange(mysqlIp, 3306, 'ping'));
  step(`TCP ${mysqlIp}:3306 (mysql-configmap) → ${echo.replace(/\n/g, ' | ')}`);
  step(
    'the coffee app answers through its VIPs: the original ConfigMap, the Service type=LoadBalancer and the Ingress all work',
  );
}

try {
  await run();
} catch (err) {
  step(`FAILED: ${(err as Error).message}`);
  await cleanUp();
  process.exit(1);
}
if (once) {
  await cleanUp();
  process.exit(0);
}
step(`running; try: curl http://<bind IP>/ — press Ctrl-C to stop and clean up`);
