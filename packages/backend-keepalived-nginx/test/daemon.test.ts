// The node daemon against a real kube-apiserver and real nginx: config objects published through
// the API (in the controller's format) become traffic through 127.0.0.x VIPs answered by real
// backend servers; services are added, changed and removed while traffic flows; bad configs of
// one service never take the others down; the node report says what is applied and rejected.
import { randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DAEMON_CONFIG_KEY,
  DAEMON_CONFIG_LABEL,
  type Daemon,
  type DaemonNodeReport,
  type DaemonServiceConfig,
  daemonConfigSecret,
  daemonReportObjectName,
  parseDaemonNodeReport,
  runDaemon,
} from '@klb/backend-keepalived-nginx';
import { type ControlPlane, requireComponents, startControlPlane } from '@klb/testing';
import { CoreV1Api, type V1Secret } from '@kubernetes/client-node';
import { pino } from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { grantDaemonRole, httpBackend, httpService, waitFor } from './daemon-fixtures.js';

const test = suite('daemon');
const missing = requireComponents('kube-apiserver', 'etcd', 'nginx');
const it = missing ? test.skip : test;

const NS = 'klb-system';
// A 127.0.0.0/8 block of this run's own, so concurrent suites never share a VIP.
const block = `127.${randomInt(100, 250)}.${randomInt(1, 250)}`;
const vip = (n: number): string => `${block}.${n}`;

let plane: ControlPlane | undefined;
let daemon: Daemon | undefined;
let stateDir = '';
const closers: (() => Promise<void>)[] = [];
const backends: Record<string, number> = {};

if (!missing) {
  plane = await startControlPlane();
  stateDir = await mkdtemp(join(tmpdir(), 'klb-daemon-'));
  const core = plane.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: NS } } });
  // The daemon runs as its own user with only the rights the reference DaemonSet gets.
  await grantDaemonRole(plane.kubeConfig, NS);
  for (const name of ['one', 'two', 'three']) {
    const backend = await httpBackend(name);
    backends[name] = backend.port;
    closers.push(backend.close);
  }
  await waitFor('RBAC for the daemon user', async () => {
    const asDaemon = plane?.kubeConfigFor('klb-daemon').makeApiClient(CoreV1Api);
    await asDaemon?.listNamespacedSecret({ namespace: NS });
    return true;
  });
  daemon = await runDaemon({
    kubeConfig: plane.kubeConfigFor('klb-daemon'),
    namespace: NS,
    nodeName: 'node-1',
    stateDir,
    keepalived: false,
    nonlocalBind: false,
    nginx: { workerProcesses: 1 },
    health: { host: '127.0.0.1', port: 0 },
    minReloadIntervalMs: 100,
    ...(process.env.KLB_TEST_DEBUG ? { logger: pino({ level: 'debug' }, pino.destination(2)) } : {}),
    reportIntervalMs: 1000,
  });
  test.after(async () => {
    // A test that failed while traffic flowed left its loop running: end it first.
    for (const stop of [...askers]) await stop();
    await daemon?.stop();
    for (const close of closers) await close();
    await plane?.stop();
    await rm(stateDir, { recursive: true, force: true });
  });
}
const P = (): ControlPlane => plane as ControlPlane;
const D = (): Daemon => daemon as Daemon;
const core = (): CoreV1Api => P().kubeConfig.makeApiClient(CoreV1Api);

function service(name: string, address: string, backend: string, port = 8080): DaemonServiceConfig {
  return httpService({
    id: `service/default/${name}`,
    addresses: [address],
    port,
    targets: [{ address: '127.0.0.1', port: backends[backend] as number }],
  });
}

async function publish(config: DaemonServiceConfig): Promise<void> {
  const body = daemonConfigSecret(NS, config) as V1Secret;
  const name = body.metadata?.name as string;
  try {
    const current = await core().readNamespacedSecret({ name, namespace: NS });
    body.metadata = { ...body.metadata, resourceVersion: current.metadata?.resourceVersion as string };
    await core().replaceNamespacedSecret({ name, namespace: NS, body });
  } catch (err) {
    if ((err as { code?: number }).code !== 404) throw err;
    await core().createNamespacedSecret({ namespace: NS, body });
  }
}

async function unpublish(name: string): Promise<void> {
  await core().deleteNamespacedSecret({ name: `service.default.${name}`, namespace: NS });
}

/** One GET on a new connection (no keep-alive race with reloads); the body of a 200, else undefined. */
function get(address: string, port = 8080): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ host: address, port, path: '/', agent: false, timeout: 1000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve(res.statusCode === 200 ? body : undefined));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

async function answers(address: string, expected: string, port = 8080): Promise<void> {
  await waitFor(`${expected} through ${address}:${port}`, async () =>
    (await get(address, port)) === expected ? true : undefined,
  );
}

async function report(): Promise<DaemonNodeReport> {
  const cm = await core().readNamespacedConfigMap({ name: daemonReportObjectName('node-1'), namespace: NS });
  return parseDaemonNodeReport(cm.data?.['report.json'] ?? '');
}

/** The stop functions of the running {@link keepAsking} loops. */
const askers = new Set<() => Promise<unknown>>();

/** Sends requests to `address` until stopped; counts answers that are not `expected`. */
function keepAsking(address: string, expected: string): { stop: () => Promise<{ ok: number; bad: string[] }> } {
  let running = true;
  const bad: string[] = [];
  let ok = 0;
  const loop = (async () => {
    while (running) {
      const body = await get(address);
      if (body === expected) ok++;
      else bad.push(String(body));
    }
  })();
  const stop = async () => {
    running = false;
    askers.delete(stop);
    await loop;
    return { ok, bad };
  };
  askers.add(stop);
  return { stop };
}

it('serves a published config through its VIP and reports it applied', async () => {
  const one = service('one', vip(1), 'one');
  await publish(one);
  await answers(vip(1), 'one');
  const r = await waitFor('the node report', async () => {
    const current = await report().catch(() => undefined);
    return current?.applied['service/default/one'] === one.version ? current : undefined;
  });
  assert.equal(r.rejected, {});
  assert.equal(r.vrrp, []);
  assert.is(r.node, 'node-1');
});

it("a request body nginx keeps in a temporary file (past 16 KiB) is proxied: nginx's workers can reach the state directory's temporary files", async () => {
  // The state directory was made 0700 by mkdtemp, as the daemon makes a new one: workers run as nobody.
  const status = await new Promise<number>((resolve, reject) => {
    const req = http.request(
      { host: vip(1), port: 8080, path: '/', method: 'POST', agent: false, headers: { 'content-length': 65536 } },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end(Buffer.alloc(65536, 'x'));
  });
  assert.is(status, 200);
});

it('adds, changes and removes services while traffic to another flows without a failed request', async () => {
  const traffic = keepAsking(vip(1), 'one');
  await publish(service('two', vip(2), 'two'));
  await answers(vip(2), 'two');
  await publish(service('two', vip(2), 'three'));
  await answers(vip(2), 'three');
  await publish(service('two', vip(3), 'three'));
  await answers(vip(3), 'three');
  await waitFor('the old VIP to stop answering', async () => ((await get(vip(2))) === undefined ? true : undefined));
  await unpublish('two');
  await waitFor('the removed service to stop answering', async () =>
    (await get(vip(3))) === undefined ? true : undefined,
  );
  const { ok, bad } = await traffic.stop();
  assert.ok(ok > 0, 'requests were made while changing the others');
  assert.equal(bad, [], 'every request to the untouched service was answered by it');
  assert.ok(D().status().applies >= 4);
});

it('a bad config of one service never takes the others down', async () => {
  const traffic = keepAsking(vip(1), 'one');
  // Not JSON at all.
  await core().createNamespacedSecret({
    namespace: NS,
    body: {
      metadata: { name: 'garbage', labels: { [DAEMON_CONFIG_LABEL]: 'true' } },
      data: { [DAEMON_CONFIG_KEY]: Buffer.from('{ not json').toString('base64') },
    },
  });
  // A value that would add a directive.
  const base = service('hostile', vip(5), 'two');
  const hostile = {
    ...base,
    listeners: [{ ...base.listeners[0], upstream: 'web; include /etc/passwd' }],
  } as DaemonServiceConfig;
  await publish(hostile);
  // The same VIP and port as service one.
  const clash = service('clash', vip(1), 'three');
  await publish(clash);
  // A good one published with them still comes up.
  const good = service('good', vip(6), 'two');
  await publish(good);
  await answers(vip(6), 'two');
  // The report of the apply that served `good`: an earlier one can already carry the rejections.
  const r = await waitFor('the rejections and the good service in the node report', async () => {
    const current = await report();
    return current.rejected['service/default/clash'] &&
      current.rejected['service/default/hostile'] &&
      current.applied['service/default/good'] !== undefined
      ? current
      : undefined;
  });
  assert.match(
    r.rejected['service/default/clash']?.message ?? '',
    /127\.\d+\.\d+\.1:8080 is already used by service\/default\/one/,
  );
  assert.is(r.rejected['service/default/clash']?.version, clash.version);
  assert.ok(
    Object.keys(r.rejected).some((k) => k.startsWith('garbage/')),
    'the unreadable object is reported',
  );
  assert.is(r.applied['service/default/good'], good.version);
  assert.ok(r.applied['service/default/one']);
  const { bad } = await traffic.stop();
  assert.equal(bad, [], 'service one kept answering');
  assert.is(await get(vip(5)), undefined, 'the hostile service serves nothing');
  const { nginx } = { nginx: await (await import('node:fs/promises')).readFile(D().nginxConfigPath, 'utf8') };
  assert.not.match(nginx, /passwd/);
});

it('a service nginx cannot bind is left out after the failed reload; the last good config keeps serving', async () => {
  // Another program holds this VIP:port, so nginx -t passes but the reload cannot bind it.
  const squatter = net.createServer((s) => s.end('squatter'));
  await new Promise<void>((resolve) => squatter.listen(8080, vip(7), resolve));
  closers.push(() => new Promise<void>((resolve) => squatter.close(() => resolve())));
  const traffic = keepAsking(vip(1), 'one');
  const blocked = service('blocked', vip(7), 'two');
  await publish(blocked);
  const r = await waitFor('the failed bind in the report', async () => {
    const current = await report();
    return current.rejected['service/default/blocked'] ? current : undefined;
  });
  assert.match(r.rejected['service/default/blocked']?.message ?? '', /could not listen on/);
  // Changes to other services still go through afterwards.
  await publish(service('later', vip(8), 'three'));
  await answers(vip(8), 'three');
  const { bad } = await traffic.stop();
  assert.equal(bad, []);
});

it('restarts nginx when it dies and reports the exit', async () => {
  const before = D().status().nginxPid;
  assert.ok(before);
  process.kill(before, 'SIGKILL');
  await waitFor('a new nginx', async () => {
    const pid = D().status().nginxPid;
    return pid !== undefined && pid !== before ? pid : undefined;
  });
  await answers(vip(1), 'one');
  const r = await waitFor('the crash in the report', async () => {
    const current = await report();
    return current.errors.some((e) => e.includes('nginx exited')) ? current : undefined;
  });
  assert.ok(r.errors.some((e) => /signal SIGKILL/.test(e)));
});

it('an apply whose rendered output is unchanged reloads nothing (checksum gate)', async () => {
  const reloaded = async () =>
    Number(
      /klb_daemon_config_applies_total\{result="reloaded"\} (\d+)/.exec(await D().metrics.registry.metrics())?.[1],
    );
  const before = await reloaded();
  const pid = D().status().nginxPid;
  // A change to the object that does not change the config (a label) is applied as "unchanged".
  const name = 'service.default.one';
  const secret = await core().readNamespacedSecret({ name, namespace: NS });
  secret.metadata = { ...secret.metadata, labels: { ...secret.metadata?.labels, touched: 'yes' } };
  const outcome = D().nextApply();
  await core().replaceNamespacedSecret({ name, namespace: NS, body: secret });
  assert.is((await outcome).result, 'unchanged');
  assert.is((await D().nextApply()).result, 'unchanged');
  assert.is(await reloaded(), before);
  assert.is(D().status().nginxPid, pid);
});

it('serves /healthz and /metrics', async () => {
  const port = D().healthPort;
  const health = await fetch(`http://127.0.0.1:${port}/healthz`);
  assert.is(health.status, 200);
  const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
  assert.is(ready.status, 200);
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  assert.match(metrics, /klb_daemon_config_applies_total\{result="reloaded"\} [1-9]/);
  assert.match(metrics, /klb_daemon_process_restarts_total\{process="nginx"\} 1/);
  assert.match(metrics, /klb_daemon_services_applied [1-9]/);
});

test.run();
