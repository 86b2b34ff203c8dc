// The keepalived-nginx backend against a real kube-apiserver: what it publishes (Secrets with the
// TLS keys, or the original daemon-configmap), VRRP router ids, collisions, hostile specs, node
// reports in the status and watch(), and failed reads.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  COMPAT_CONFIGMAP_NAME,
  CONFIG_VERSION_ANNOTATION,
  DAEMON_CONFIG_LABEL,
  type DaemonConfigObject,
  type DaemonNodeReport,
  daemonConfigFromSpec,
  daemonReportObject,
  KeepalivedNginxBackend,
  type KeepalivedNginxBackendOptions,
  LOAD_BALANCER_ID_ANNOTATION,
  readDaemonConfigObject,
  renderNginxConfig,
  VRRP_GROUP_ANNOTATION,
} from '@klb/backend-keepalived-nginx';
import {
  type BackendContext,
  isTerminalError,
  KubeClient,
  type LoadBalancerRef,
  type LoadBalancerSpec,
  silentLogger,
} from '@klb/core';
import { type ControlPlane, requireComponents, startControlPlane } from '@klb/testing';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { makeCertificate } from './renderer-fixtures.js';

const test = suite('keepalived-nginx backend');
const missing = requireComponents('kube-apiserver', 'etcd');
const it = missing ? test.skip : test;

const dir = await mkdtemp(join(tmpdir(), 'klb-backend-'));
const pem = makeCertificate(join(dir, 'pem'), ['cafe.example.com']);
let plane: ControlPlane | undefined;
let admin: KubeClient | undefined;
let writes = 0;
if (!missing) {
  plane = await startControlPlane();
  admin = new KubeClient(plane.kubeConfig, { onWrite: () => writes++ });
}
const backends: KeepalivedNginxBackend[] = [];
test.after(async () => {
  for (const b of backends) await b.close();
  admin?.close();
  await plane?.stop();
  await rm(dir, { recursive: true, force: true });
});

const ctx = (): BackendContext => ({ signal: new AbortController().signal, log: silentLogger });
const client = (): KubeClient => admin as KubeClient;
let nsCount = 0;

async function namespace(): Promise<string> {
  const name = `knginx-${process.pid}-${++nsCount}`;
  await client().create('/api/v1/namespaces', { metadata: { name } });
  return name;
}

function backend(namespace: string, options: Partial<KeepalivedNginxBackendOptions> = {}): KeepalivedNginxBackend {
  const b = new KeepalivedNginxBackend({ client: client(), namespace, ...options });
  backends.push(b);
  return b;
}

let specN = 0;
function spec(
  vip: string,
  options: { https?: boolean; port?: number; annotations?: Record<string, string>; name?: string } = {},
): LoadBalancerSpec {
  const name = options.name ?? `web-${++specN}`;
  const port = options.port ?? 80;
  return {
    ref: { id: `service/default/${name}`, kind: 'Service', namespace: 'default', name },
    addresses: [vip],
    requestedAddresses: [],
    ipFamilies: ['IPv4'],
    listeners: [
      { name: `tcp-${port}`, port, protocol: 'TCP', upstream: 'web' },
      ...(options.https
        ? [
            {
              name: 'https',
              port: 443,
              protocol: 'HTTPS' as const,
              upstream: 'web',
              routes: [{ host: 'cafe.example.com', path: '/coffee', pathType: 'Prefix' as const, upstream: 'web' }],
              tls: [
                {
                  secret: { namespace: 'default', name: 'cafe-tls' },
                  hosts: ['cafe.example.com'],
                  certificate: pem.certificate,
                  privateKey: pem.privateKey,
                },
              ],
            },
          ]
        : []),
    ],
    upstreams: [
      {
        name: 'web',
        targets: [
          { kind: 'node', address: '10.1.0.1', port: 30080, ready: true, nodeName: 'n1' },
          { kind: 'node', address: '10.1.0.2', port: 30080, ready: false, nodeName: 'n2' },
        ],
        healthCheck: { type: 'tcp', intervalSeconds: 5, timeoutSeconds: 2, unhealthyThreshold: 3, healthyThreshold: 2 },
      },
    ],
    options: {
      algorithm: 'least-connections',
      sessionAffinity: { timeoutSeconds: 300 },
      proxyProtocol: false,
      sourceRanges: ['10.0.0.0/8'],
      timeouts: { idleSeconds: 120 },
    },
    annotations: options.annotations ?? {},
  };
}

async function secrets(ns: string): Promise<DaemonConfigObject[]> {
  const { items } = await client().list<DaemonConfigObject>(`/api/v1/namespaces/${ns}/secrets`, {
    labelSelector: `${DAEMON_CONFIG_LABEL}=true`,
  });
  return items;
}

it('publishes one labelled Secret per load balancer, TLS key inside, readable by the daemons', async () => {
  const ns = await namespace();
  const b = backend(ns);
  const s = spec('192.0.2.10', { https: true, name: 'cafe' });
  const status = await b.ensure(s, ctx());
  assert.equal(status.ingress, [
    {
      ip: '192.0.2.10',
      // nginx proxies: kube-proxy must leave the VIP's traffic to it.
      ipMode: 'Proxy',
      ports: [
        { port: 80, protocol: 'TCP' },
        { port: 443, protocol: 'TCP' },
      ],
    },
  ]);
  assert.match(
    String(status.message),
    /^daemon config [0-9a-f]{16} published; no daemon has reported yet; session affinity by client address has no timeout in nginx \(timeoutSeconds 300 not applied\)$/,
  );
  const [secret, ...rest] = await secrets(ns);
  assert.is(rest.length, 0);
  assert.ok(secret);
  assert.is(secret.metadata?.name, 'service.default.cafe');
  assert.is(secret.type, 'klb.io/daemon-config');
  assert.is(secret.metadata?.annotations?.[LOAD_BALANCER_ID_ANNOTATION], 'service/default/cafe');
  const { configs, errors } = readDaemonConfigObject(secret);
  assert.is(errors.size, 0);
  const [config] = configs;
  assert.ok(config);
  assert.is(secret.metadata?.annotations?.[CONFIG_VERSION_ANNOTATION], config.version);
  assert.equal(config, daemonConfigFromSpec(s, { group: 'default', vrid: 1 }));
  assert.is(config.listeners[1]?.tls?.[0]?.privateKey, pem.privateKey);
  assert.equal(
    config.upstreams[0]?.targets.map((t) => t.ready),
    [true, false],
  );
  assert.is(config.upstreams[0]?.maxFails, 3);
  assert.is(config.upstreams[0]?.failTimeoutSeconds, 15);
  assert.is(config.options.sessionAffinity, true);
  // What the daemon renders from it.
  const rendered = renderNginxConfig(configs, { tlsDir: '/run/klb/tls', runDir: '/run/klb' });
  assert.is(rendered.rejected.size, 0);
  assert.match(rendered.config, 'listen 192.0.2.10:443 ssl http2 default_server;');
  // No ConfigMap carries the key.
  const { items } = await client().list<DaemonConfigObject>(`/api/v1/namespaces/${ns}/configmaps`);
  assert.not.ok(items.some((cm) => JSON.stringify(cm.data ?? {}).includes('PRIVATE KEY')));
});

it('HTTP settings are published with the config; without an HTTP listener the status says they are not applied', async () => {
  const ns = await namespace();
  const b = backend(ns);
  const http = { maxBodyBytes: 16 * 1024 * 1024, readTimeoutSeconds: 5 };
  const withHttps = spec('192.0.2.12', { https: true, name: 'settings' });
  const status = await b.ensure({ ...withHttps, options: { ...withHttps.options, http } }, ctx());
  assert.not.match(String(status.message), 'not applied: ');
  const [secret] = await secrets(ns);
  assert.ok(secret);
  assert.equal(readDaemonConfigObject(secret).configs[0]?.options.http, {
    maxBodyBytes: 16 * 1024 * 1024,
    readSeconds: 5,
  });
  // A load balancer of TCP listeners only (a Gateway may have one): nginx's stream servers have no such settings.
  const tcp = spec('192.0.2.13', { name: 'settings-tcp' });
  const tcpStatus = await b.ensure({ ...tcp, options: { ...tcp.options, http } }, ctx());
  assert.match(
    String(tcpStatus.message),
    /; session affinity by client address has no timeout in nginx \(timeoutSeconds 300 not applied\); no HTTP listener: request body size, read timeout not applied$/,
  );
});

it('ensure is idempotent (no writes), an update replaces, remove deletes and is idempotent', async () => {
  const ns = await namespace();
  const b = backend(ns);
  const s = spec('192.0.2.11');
  await b.ensure(s, ctx());
  const before = writes;
  await b.ensure(s, ctx());
  assert.is(writes, before, 'a repeated ensure wrote');
  const changed = { ...s, options: { ...s.options, sourceRanges: ['10.0.0.0/8', '192.168.0.0/16'] } };
  await b.ensure(changed, ctx());
  assert.is(writes, before + 1);
  const [secret] = await secrets(ns);
  assert.ok(secret);
  assert.equal(readDaemonConfigObject(secret).configs[0]?.options.sourceRanges, ['10.0.0.0/8', '192.168.0.0/16']);
  assert.equal(
    (await b.list(ctx())).map((r) => r.id),
    [s.ref.id],
  );
  await b.remove(s.ref, ctx());
  await b.remove(s.ref, ctx());
  assert.equal(await secrets(ns), []);
  assert.equal(await b.list(ctx()), []);
});

it('gives each VRRP group its own router id, stable across a controller restart, and says when they run out', async () => {
  const ns = await namespace();
  const b = backend(ns, { vridRange: { min: 10, max: 12 } });
  const vridOf = async (id: string): Promise<number | undefined> => {
    const all = (await secrets(ns)).flatMap((x) => readDaemonConfigObject(x).configs);
    return all.find((c) => c.id === id)?.options.vrrp.vrid;
  };
  const a = spec('192.0.2.20');
  const blue = spec('192.0.2.21', { annotations: { [VRRP_GROUP_ANNOTATION]: 'blue' } });
  const a2 = spec('192.0.2.22');
  await b.ensure(a, ctx());
  await b.ensure(blue, ctx());
  await b.ensure(a2, ctx());
  assert.is(await vridOf(a.ref.id), 10);
  assert.is(await vridOf(blue.ref.id), 11);
  assert.is(await vridOf(a2.ref.id), 10);
  // A new controller (restart) imports the published ids before allocating.
  const restarted = backend(ns, { vridRange: { min: 10, max: 12 } });
  const green = spec('192.0.2.23', { annotations: { [VRRP_GROUP_ANNOTATION]: 'green' } });
  await restarted.ensure(green, ctx());
  assert.is(await vridOf(green.ref.id), 12);
  await restarted.ensure(blue, ctx());
  assert.is(await vridOf(blue.ref.id), 11);
  const red = spec('192.0.2.24', { annotations: { [VRRP_GROUP_ANNOTATION]: 'red' } });
  const err = await restarted.ensure(red, ctx()).catch((e: unknown) => e);
  assert.ok(isTerminalError(err));
  assert.match((err as Error).message, 'no free VRRP router id for group "red"');
  // Once a group is empty its id is free again.
  await restarted.remove(green.ref, ctx());
  await restarted.ensure(red, ctx());
  assert.is(await vridOf(red.ref.id), 12);
  const badGroup = spec('192.0.2.25', { annotations: { [VRRP_GROUP_ANNOTATION]: 'Blue;' } });
  assert.ok(isTerminalError(await restarted.ensure(badGroup, ctx()).catch((e: unknown) => e)));
});

it('rejects VIP:port collisions and hostile specs with TerminalErrors, publishing nothing', async () => {
  const ns = await namespace();
  const b = backend(ns);
  const first = spec('192.0.2.30', { port: 8080 });
  await b.ensure(first, ctx());
  const clash = spec('192.0.2.30', { port: 8080 });
  const err = await b.ensure(clash, ctx()).catch((e: unknown) => e);
  assert.ok(isTerminalError(err));
  assert.match((err as Error).message, `tcp 192.0.2.30 8080 is already used by ${first.ref.id}`);
  // The same VIP on another port is shared fine.
  await b.ensure(spec('192.0.2.30', { port: 8081 }), ctx());
  const hostile = spec('192.0.2.31');
  const listener = hostile.listeners[0];
  assert.ok(listener);
  const bad: LoadBalancerSpec = { ...hostile, listeners: [{ ...listener, name: 'x;\n}' }] };
  const badErr = await b.ensure(bad, ctx()).catch((e: unknown) => e);
  assert.ok(isTerminalError(badErr));
  assert.match((badErr as Error).message, 'listeners[0].name');
  const badRoute: LoadBalancerSpec = {
    ...spec('192.0.2.32', { https: true }),
  };
  const https = badRoute.listeners[1];
  assert.ok(https);
  const withBadHost = {
    ...badRoute,
    listeners: [
      badRoute.listeners[0] as NonNullable<(typeof badRoute.listeners)[0]>,
      { ...https, routes: [{ host: 'evil.com; return 200', pathType: 'Prefix' as const, upstream: 'web' }] },
    ],
  };
  assert.ok(isTerminalError(await b.ensure(withBadHost, ctx()).catch((e: unknown) => e)));
  const ids = (await b.list(ctx())).map((r) => r.id).sort();
  assert.is(ids.length, 2);
  assert.not.ok(ids.includes(bad.ref.id) || ids.includes(clash.ref.id) || ids.includes(badRoute.ref.id));
});

it('compatibility mode writes the original daemon-configmap (loadbalancer=daemon) and refuses TLS keys', async () => {
  const ns = await namespace();
  const b = backend(ns, { mode: 'daemon-configmap' });
  const one = spec('192.0.2.40');
  const two = spec('192.0.2.41');
  await b.ensure(one, ctx());
  await b.ensure(two, ctx());
  const cm = await client().get<DaemonConfigObject>(`/api/v1/namespaces/${ns}/configmaps/${COMPAT_CONFIGMAP_NAME}`);
  assert.is(cm.metadata?.labels?.loadbalancer, 'daemon');
  const content = readDaemonConfigObject({ ...cm, kind: 'ConfigMap' });
  assert.equal(
    content.configs.map((c) => c.id),
    [one.ref.id, two.ref.id],
  );
  assert.equal(await secrets(ns), []);
  const err = await b.ensure(spec('192.0.2.42', { https: true }), ctx()).catch((e: unknown) => e);
  assert.ok(isTerminalError(err));
  assert.match((err as Error).message, 'cannot carry TLS private keys');
  await b.remove(one.ref, ctx());
  await b.remove(one.ref, ctx());
  assert.equal(
    (await b.list(ctx())).map((r) => r.id),
    [two.ref.id],
  );
});

it('publishes a Gateway TLS passthrough listener with its SNI routes, in both modes; it takes its TCP port', async () => {
  const ns = await namespace();
  const b = backend(ns);
  assert.ok(b.capabilities.protocols.includes('TLS'));
  const base = spec('192.0.2.50', { name: 'unused' });
  const gateway: LoadBalancerSpec = {
    ...base,
    ref: { id: 'gateway/edge/tls', kind: 'Gateway', namespace: 'edge', name: 'tls' },
    listeners: [
      {
        name: 'tls-443',
        port: 443,
        protocol: 'TLS',
        sniRoutes: [
          { host: 'a.example.com', upstream: 'web' },
          { host: '*.example.org', upstream: 'web' },
        ],
      },
    ],
  };
  const status = await b.ensure(gateway, ctx());
  assert.equal(status.ingress[0]?.ports, [{ port: 443, protocol: 'TCP' }]);
  const [secret] = await secrets(ns);
  assert.ok(secret);
  assert.is(secret.metadata?.name, 'gateway.edge.tls');
  const { configs, errors } = readDaemonConfigObject(secret);
  assert.is(errors.size, 0);
  assert.equal(configs[0]?.listeners[0]?.sniRoutes, [
    { host: 'a.example.com', upstream: 'web' },
    { host: '*.example.org', upstream: 'web' },
  ]);
  const rendered = renderNginxConfig(configs, { tlsDir: '/run/klb/tls', runDir: '/run/klb' });
  assert.is(rendered.rejected.size, 0);
  assert.match(rendered.config, 'listen 192.0.2.50:443;\n        ssl_preread on;\n');
  // A TCP listener on the same VIP and port collides with it.
  const clash = await b.ensure(spec('192.0.2.50', { port: 443, name: 'clash' }), ctx()).catch((e: unknown) => e);
  assert.ok(isTerminalError(clash));
  assert.match((clash as Error).message, 'gateway/edge/tls');
  // No private key travels with TLS passthrough: the compatibility ConfigMap carries it too.
  const compatNs = await namespace();
  await backend(compatNs, { mode: 'daemon-configmap' }).ensure(gateway, ctx());
  const cm = await client().get<DaemonConfigObject>(
    `/api/v1/namespaces/${compatNs}/configmaps/${COMPAT_CONFIGMAP_NAME}`,
  );
  assert.equal(
    readDaemonConfigObject({ ...cm, kind: 'ConfigMap' }).configs.map((c) => c.listeners[0]?.protocol),
    ['TLS'],
  );
});

function report(node: string, partial: Partial<DaemonNodeReport>): DaemonNodeReport {
  return {
    apiVersion: 'klb.io/v1alpha1',
    kind: 'DaemonNodeReport',
    node,
    updatedAt: new Date().toISOString(),
    applied: {},
    rejected: {},
    vrrp: [],
    errors: [],
    ...partial,
  };
}

async function writeReport(ns: string, r: DaemonNodeReport): Promise<void> {
  const body = daemonReportObject(ns, r);
  const path = `/api/v1/namespaces/${ns}/configmaps/${body.metadata.name}`;
  try {
    const existing = await client().get<DaemonConfigObject>(path);
    await client().replace(path, {
      ...body,
      metadata: { ...body.metadata, resourceVersion: existing.metadata?.resourceVersion ?? '' },
    });
  } catch {
    await client().create(`/api/v1/namespaces/${ns}/configmaps`, body);
  }
}

async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} never happened`);
}

it('summarises daemon reports in the status and notifies watchers when they change', async () => {
  const ns = await namespace();
  const b = backend(ns);
  const s = spec('192.0.2.50');
  const first = await b.ensure(s, ctx());
  const version = /daemon config ([0-9a-f]{16})/.exec(String(first.message))?.[1] as string;
  assert.ok(version);
  const notified: LoadBalancerRef[] = [];
  const stop = await b.watch((ref) => notified.push(ref), ctx());
  const vrrp = (state: 'MASTER' | 'BACKUP') => [
    { instance: 'klb_default_4', group: 'default', vrid: 1, state, addresses: ['192.0.2.50'] },
  ];
  await writeReport(ns, report('node-a', { applied: { [s.ref.id]: version }, vrrp: vrrp('MASTER') }));
  await writeReport(
    ns,
    report('node-b', {
      rejected: { [s.ref.id]: { version, message: 'tcp 192.0.2.50 80 is already used by x' } },
      vrrp: vrrp('BACKUP'),
    }),
  );
  await until('notified of the reports', () => notified.some((r) => r.id === s.ref.id));
  // The first notification may come from node-a's report alone: wait until both are in.
  await until('both reports seen', async () => String((await b.ensure(s, ctx())).message).includes('/2 nodes'));
  const status = await b.ensure(s, ctx());
  assert.is(
    status.message,
    `daemon config ${version} applied on 1/2 nodes; 192.0.2.50 held by node-a; rejected on node-b: tcp 192.0.2.50 80 is already used by x; session affinity by client address has no timeout in nginx (timeoutSeconds 300 not applied)`,
  );
  // Failover: node-b takes the VIP.
  notified.length = 0;
  await writeReport(ns, report('node-a', { applied: { [s.ref.id]: version }, vrrp: vrrp('BACKUP') }));
  await writeReport(ns, report('node-b', { applied: { [s.ref.id]: version }, vrrp: vrrp('MASTER') }));
  await until('notified of the failover', () => notified.some((r) => r.id === s.ref.id));
  await until('status follows', async () =>
    String((await b.ensure(s, ctx())).message).includes('applied on 2/2 nodes; 192.0.2.50 held by node-b'),
  );
  // A node with an old report counts as stale; an unreadable report is ignored.
  await writeReport(ns, report('node-c', { updatedAt: '2020-01-01T00:00:00Z' }));
  await client().create(`/api/v1/namespaces/${ns}/configmaps`, {
    metadata: { name: 'klb-daemon-broken', labels: { 'klb.io/daemon-report': 'true' } },
    data: { 'report.json': '{"not": "a report"' },
  });
  await until('stale node listed', async () => String((await b.ensure(s, ctx())).message).includes('; stale: node-c'));
  stop();
  notified.length = 0;
  await writeReport(ns, report('node-a', { vrrp: vrrp('MASTER') }));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(notified, [], 'notified after stop');
});

it('list() throws when the objects cannot be read; remove() does not claim success', async () => {
  const ns = await namespace();
  const s = spec('192.0.2.60');
  await backend(ns).ensure(s, ctx());
  // klb-user has no RBAC permissions: every read is Forbidden.
  const forbidden = new KubeClient((plane as ControlPlane).kubeConfigFor('klb-user'));
  const b = backend(ns, { client: forbidden });
  const listErr = await b.list(ctx()).catch((e: unknown) => e);
  assert.instance(listErr, Error);
  assert.match((listErr as Error).message, /403/);
  assert.instance(await b.remove(s.ref, ctx()).catch((e: unknown) => e), Error);
  assert.is((await secrets(ns)).length, 1, 'the published config is still there');
  forbidden.close();
});

test.run();
