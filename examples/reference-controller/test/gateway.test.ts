// Gateway API as users run it: the reference controller process (keepalived-nginx backend,
// Gateways on by default) and a node daemon with real nginx, against a real kube-apiserver with
// the Gateway API CRDs KLB ships. A user applies a GatewayClass, a Gateway with HTTP, HTTPS (two
// hosts, two certificates from two namespaces, one through a ReferenceGrant), TLS passthrough,
// TCP and UDP listeners, and Routes from two namespaces; real clients reach the right app on each
// listener through the VIP, and what the user reads back is the Gateway's and the Routes' status.
import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createServer, get as httpGet } from 'node:http';
import { request as httpsRequest } from 'node:https';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import type { GatewayObject, KubeClient, KubeObject, RouteObject, ServiceObject } from '@klb/core';
import { eventually, freePort, requireComponents } from '@klb/testing';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type ReferenceStack, startReferenceStack } from './reference-stack.js';

const test = suite('Gateway API through the reference controller and a node daemon');
const missing = requireComponents('kube-apiserver', 'etcd', 'nginx');
const it = missing ? test.skip : test;

const GW = '/apis/gateway.networking.k8s.io/v1';
const CAFE = 'gw-cafe';
const TEA = 'gw-tea';
// A 127.0.0.0/8 block of this run's own, so concurrent suites never share a VIP.
const block = `127.${randomInt(100, 250)}.${randomInt(1, 250)}`;
const VIP = `${block}.20`;

let stack: ReferenceStack | undefined;
let client: KubeClient;
let dir = '';
const closers: Array<() => Promise<void>> = [];
const ports = { http: 0, https: 0, tls: 0, tcp: 0, udp: 0 };

const soon = <T>(what: string, fn: () => Promise<T | undefined | false>): Promise<T> =>
  eventually(what, fn, 60_000).catch(async (err: Error) => {
    const gw = await client.get<GatewayObject>(`${GW}/namespaces/${CAFE}/gateways/cafe`).catch(() => undefined);
    throw new Error(
      `${err.message}\n--- Gateway status ---\n${JSON.stringify(gw?.status)}\n--- controller (exit ${stack?.controller()?.exitCode}) output (tail) ---\n${stack?.output().slice(-3000)}`,
    );
  });

/** A self-signed certificate whose subject CN (and SAN) is `host`. */
function certificate(host: string): { cert: string; key: string } {
  const key = join(dir, `${host}.key`);
  const crt = join(dir, `${host}.crt`);
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2'].concat([
      '-subj',
      `/CN=${host}`,
      '-addext',
      `subjectAltName=DNS:${host}`,
      '-keyout',
      key,
      '-out',
      crt,
    ]),
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return { cert: readFileSync(crt, 'utf8'), key: readFileSync(key, 'utf8') };
}

function nodePortService(ns: string, name: string, port: number, protocol = 'TCP'): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns },
    spec: { type: 'NodePort', selector: { app: name }, ports: [{ name: 'p', port, protocol, targetPort: 8080 }] },
  } as KubeObject;
}

/** Creates a NodePort Service and returns its node port, where the test's app then listens (as kube-proxy would forward). */
async function serviceNodePort(ns: string, name: string, port: number, protocol = 'TCP'): Promise<number> {
  const svc = await client.create<ServiceObject>(
    `/api/v1/namespaces/${ns}/services`,
    nodePortService(ns, name, port, protocol) as ServiceObject,
  );
  return svc.spec?.ports?.[0]?.nodePort as number;
}

function listen(server: net.Server, port: number): Promise<void> {
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
}

async function httpApp(port: number, body: string): Promise<void> {
  await listen(
    createServer((_req, res) => res.end(body)),
    port,
  );
}

function tlsSecret(ns: string, name: string, pem: { cert: string; key: string }): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: ns },
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': Buffer.from(pem.cert).toString('base64'), 'tls.key': Buffer.from(pem.key).toString('base64') },
  } as KubeObject;
}

/** One GET with a Host header; the body of a 200, else undefined. */
function httpGetBody(port: number, host: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = httpGet({ host: VIP, port, path: '/', agent: false, timeout: 2000, headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(res.statusCode === 200 ? body : undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

/** One HTTPS GET with SNI `host`, trusting only `ca`; the body and the certificate's subject CN. */
function httpsGetBody(port: number, host: string, ca: string): Promise<{ body: string; cn: string } | undefined> {
  return new Promise((resolve) => {
    const req = httpsRequest(
      { host: VIP, port, path: '/', servername: host, headers: { host }, ca, agent: false, timeout: 2000 },
      (res) => {
        const cn = String((res.socket as tls.TLSSocket).getPeerCertificate().subject?.CN ?? '');
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve(res.statusCode === 200 ? { body, cn } : undefined));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

/** A TLS exchange with SNI `host`: the peer certificate's CN and the line the server answered. */
function tlsAsk(port: number, host: string, ca: string): Promise<{ cn: string; answer: string } | undefined> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: VIP, port, servername: host, ca, timeout: 2000 }, () => {
      const cn = String(socket.getPeerCertificate().subject?.CN ?? '');
      socket.once('data', (d) => {
        resolve({ cn, answer: d.toString() });
        socket.end();
      });
      socket.write('hello\n');
    });
    socket.on('timeout', () => socket.destroy());
    socket.on('error', () => resolve(undefined));
    socket.on('close', () => resolve(undefined));
  });
}

function tcpAsk(port: number, line: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: VIP, port, timeout: 2000 }, () => socket.write(line));
    socket.once('data', (d) => {
      resolve(d.toString());
      socket.end();
    });
    socket.on('timeout', () => socket.destroy());
    socket.on('error', () => resolve(undefined));
    socket.on('close', () => resolve(undefined));
  });
}

function udpAsk(port: number, message: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      resolve(undefined);
    }, 1000);
    socket.on('message', (m) => {
      clearTimeout(timer);
      socket.close();
      resolve(m.toString());
    });
    socket.send(message, port, VIP);
  });
}

type Condition = { type: string; status: string; reason: string };
const cond = (list: readonly Condition[] | undefined, type: string) => list?.find((c) => c.type === type);

if (!missing) {
  stack = await startReferenceStack({ name: 'gateway', block, namespaces: [CAFE, TEA], gatewayApi: true });
  client = stack.client;
  dir = stack.dir;
  for (const key of Object.keys(ports) as (keyof typeof ports)[]) ports[key] = await freePort();
  test.after(async () => {
    for (const close of closers) await close().catch(() => undefined);
    await stack?.stop();
  });
}

it('one Gateway, five kinds of listener, Routes from two namespaces: every client reaches its app through the VIP', async () => {
  // The apps, reached on their node ports as kube-proxy would forward them.
  await httpApp(await serviceNodePort(CAFE, 'coffee', 80), 'coffee');
  await httpApp(await serviceNodePort(TEA, 'tea', 80), 'tea');
  const secure = certificate('secure.example.com');
  await listen(
    tls.createServer({ cert: secure.cert, key: secure.key }, (s) => s.once('data', () => s.end('secure app\n'))),
    await serviceNodePort(CAFE, 'secure', 443),
  );
  await listen(
    net.createServer((s) => s.once('data', (d) => s.end(`tcp app: ${d}`))),
    await serviceNodePort(CAFE, 'tcp-app', 9000),
  );
  const udp = createSocket('udp4');
  udp.on('message', (m, from) => udp.send(`udp app: ${m}`, from.port, from.address));
  const udpPort = await serviceNodePort(CAFE, 'udp-app', 53, 'UDP');
  await new Promise<void>((resolve) => udp.bind(udpPort, '127.0.0.1', resolve));
  closers.push(() => new Promise<void>((resolve) => udp.close(() => resolve())));

  const coffeeCert = certificate('coffee.example.com');
  const teaCert = certificate('tea.example.com');
  await client.create(`/api/v1/namespaces/${CAFE}/secrets`, tlsSecret(CAFE, 'coffee-cert', coffeeCert));
  await client.create(`/api/v1/namespaces/${TEA}/secrets`, tlsSecret(TEA, 'tea-cert', teaCert));
  await client.create(`${GW}/namespaces/${TEA}/referencegrants`, {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'ReferenceGrant',
    metadata: { name: 'cafe-gateway-uses-tea-cert' },
    spec: {
      from: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: CAFE }],
      to: [{ group: '', kind: 'Secret', name: 'tea-cert' }],
    },
  } as KubeObject);
  await client.create(`${GW}/gatewayclasses`, {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'GatewayClass',
    metadata: { name: 'klb' },
    spec: { controllerName: 'klb.io/gateway-controller' },
  } as KubeObject);
  const all = { namespaces: { from: 'All' } };
  await client.create(`${GW}/namespaces/${CAFE}/gateways`, {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name: 'cafe' },
    spec: {
      gatewayClassName: 'klb',
      addresses: [{ type: 'IPAddress', value: VIP }],
      listeners: [
        { name: 'http', port: ports.http, protocol: 'HTTP', allowedRoutes: all },
        {
          name: 'coffee',
          port: ports.https,
          protocol: 'HTTPS',
          hostname: 'coffee.example.com',
          tls: { mode: 'Terminate', certificateRefs: [{ name: 'coffee-cert' }] },
          allowedRoutes: all,
        },
        {
          name: 'tea',
          port: ports.https,
          protocol: 'HTTPS',
          hostname: 'tea.example.com',
          tls: { mode: 'Terminate', certificateRefs: [{ name: 'tea-cert', namespace: TEA }] },
          allowedRoutes: all,
        },
        { name: 'passthrough', port: ports.tls, protocol: 'TLS', tls: { mode: 'Passthrough' } },
        { name: 'tcp', port: ports.tcp, protocol: 'TCP' },
        { name: 'udp', port: ports.udp, protocol: 'UDP' },
      ],
    },
  } as KubeObject);
  const routes: Array<[string, string, Record<string, unknown>]> = [
    [
      CAFE,
      'httproutes',
      {
        metadata: { name: 'coffee' },
        spec: {
          parentRefs: [{ name: 'cafe' }],
          hostnames: ['coffee.example.com'],
          rules: [{ backendRefs: [{ name: 'coffee', port: 80 }] }],
        },
      },
    ],
    [
      TEA,
      'httproutes',
      {
        metadata: { name: 'tea' },
        spec: {
          parentRefs: [{ name: 'cafe', namespace: CAFE }],
          hostnames: ['tea.example.com'],
          rules: [{ backendRefs: [{ name: 'tea', port: 80 }] }],
        },
      },
    ],
    [
      CAFE,
      'tlsroutes',
      {
        metadata: { name: 'secure' },
        spec: {
          parentRefs: [{ name: 'cafe', sectionName: 'passthrough' }],
          hostnames: ['secure.example.com'],
          rules: [{ backendRefs: [{ name: 'secure', port: 443 }] }],
        },
      },
    ],
    [
      CAFE,
      'tcproutes',
      {
        metadata: { name: 'tcp' },
        spec: {
          parentRefs: [{ name: 'cafe', sectionName: 'tcp' }],
          rules: [{ backendRefs: [{ name: 'tcp-app', port: 9000 }] }],
        },
      },
    ],
    [
      CAFE,
      'udproutes',
      {
        metadata: { name: 'udp' },
        spec: {
          parentRefs: [{ name: 'cafe', sectionName: 'udp' }],
          rules: [{ backendRefs: [{ name: 'udp-app', port: 53 }] }],
        },
      },
    ],
  ];
  for (const [ns, plural, body] of routes) {
    const kind = { httproutes: 'HTTPRoute', tlsroutes: 'TLSRoute', tcproutes: 'TCPRoute', udproutes: 'UDPRoute' }[
      plural
    ];
    await client.create(`${GW}/namespaces/${ns}/${plural}`, {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind,
      ...body,
    } as KubeObject);
  }

  const gw = await soon('the Gateway is Programmed with every Route attached', async () => {
    const g = await client.get<GatewayObject>(`${GW}/namespaces/${CAFE}/gateways/cafe`);
    const attached = (g.status?.listeners ?? []).reduce((n, l) => n + l.attachedRoutes, 0);
    return cond(g.status?.conditions as Condition[], 'Programmed')?.status === 'True' && attached === 7 ? g : undefined;
  });
  assert.equal(gw.status?.addresses, [{ type: 'IPAddress', value: VIP }]);
  assert.equal(
    gw.status?.listeners?.map((l) => `${l.name}:${l.attachedRoutes}`),
    ['http:2', 'coffee:1', 'tea:1', 'passthrough:1', 'tcp:1', 'udp:1'],
  );
  const tea = await client.get<RouteObject>(`${GW}/namespaces/${TEA}/httproutes/tea`);
  assert.is(cond(tea.status?.parents?.[0]?.conditions as Condition[], 'Accepted')?.status, 'True');

  assert.is(await soon('HTTP coffee', () => httpGetBody(ports.http, 'coffee.example.com')), 'coffee');
  assert.is(await soon('HTTP tea', () => httpGetBody(ports.http, 'tea.example.com')), 'tea');
  assert.equal(await soon('HTTPS coffee', () => httpsGetBody(ports.https, 'coffee.example.com', coffeeCert.cert)), {
    body: 'coffee',
    cn: 'coffee.example.com',
  });
  assert.equal(await soon('HTTPS tea', () => httpsGetBody(ports.https, 'tea.example.com', teaCert.cert)), {
    body: 'tea',
    cn: 'tea.example.com',
  });
  // Passthrough: the certificate is the app's own, so nginx did not terminate TLS.
  assert.equal(await soon('TLS passthrough', () => tlsAsk(ports.tls, 'secure.example.com', secure.cert)), {
    cn: 'secure.example.com',
    answer: 'secure app\n',
  });
  assert.is(await soon('TCP', () => tcpAsk(ports.tcp, 'hi')), 'tcp app: hi');
  assert.is(await soon('UDP', () => udpAsk(ports.udp, 'ping')), 'udp app: ping');

  // Deleted, the Gateway leaves nothing: no traffic, no address claim, no Route entry.
  await client.delete(`${GW}/namespaces/${CAFE}/gateways/cafe`);
  await soon('the VIP stops answering', async () => ((await tcpAsk(ports.tcp, 'hi')) === undefined ? true : undefined));
  await soon('the address is released', async () => {
    const claims = await client.list<KubeObject & { spec?: { address?: string } }>(
      '/apis/ipam.klb.io/v1alpha1/namespaces/klb-system/addressclaims',
    );
    return claims.items.some((c) => c.spec?.address === VIP) ? undefined : true;
  });
  await soon('the Routes carry no entry of the Gateway', async () => {
    const r = await client.get<RouteObject>(`${GW}/namespaces/${TEA}/httproutes/tea`);
    return (r.status?.parents ?? []).length === 0 ? true : undefined;
  });
});

it('an address that cannot be had is said on the Gateway: outside the pools (AddressNotUsable), held by a Service (AddressNotAssigned, until it is freed)', async () => {
  const gatewayAt = (name: string, address: string) =>
    client.create(`${GW}/namespaces/${CAFE}/gateways`, {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name },
      spec: {
        gatewayClassName: 'klb',
        addresses: [{ type: 'IPAddress', value: address }],
        listeners: [{ name: 'tcp', port: ports.tcp, protocol: 'TCP' }],
      },
    } as KubeObject);
  const programmed = async (name: string) =>
    cond(
      (await client.get<GatewayObject>(`${GW}/namespaces/${CAFE}/gateways/${name}`)).status?.conditions as Condition[],
      'Programmed',
    );
  await gatewayAt('outside', '192.0.2.200');
  const outside = await soon('outside the pools', async () => {
    const c = await programmed('outside');
    return c?.status === 'False' ? c : undefined;
  });
  assert.is(outside.reason, 'AddressNotUsable');

  const taken = `${block}.30`;
  await client.create(`/api/v1/namespaces/${CAFE}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'holder' },
    spec: {
      type: 'LoadBalancer',
      loadBalancerClass: 'klb.io/load-balancer',
      loadBalancerIP: taken,
      selector: { app: 'holder' },
      ports: [{ name: 'p', port: ports.tcp, targetPort: 8080 }],
    },
  } as KubeObject);
  await soon('the Service holds the address', async () => {
    const svc = await client.get<ServiceObject>(`/api/v1/namespaces/${CAFE}/services/holder`);
    return svc.status?.loadBalancer?.ingress?.[0]?.ip === taken ? true : undefined;
  });
  await gatewayAt('second', taken);
  const waiting = await soon('the address is taken', async () => {
    const c = await programmed('second');
    return c?.status === 'False' ? c : undefined;
  });
  assert.is(waiting.reason, 'AddressNotAssigned');
  await client.delete(`/api/v1/namespaces/${CAFE}/services/holder`);
  await soon('the Gateway gets the address once it is free', async () =>
    (await programmed('second'))?.status === 'True' ? true : undefined,
  );
  for (const name of ['outside', 'second']) await client.delete(`${GW}/namespaces/${CAFE}/gateways/${name}`);
});

it('Gateways and Routes created and deleted while the controller is killed and restarted: nothing is left behind', async () => {
  const ns = CAFE;
  const app = await serviceNodePort(ns, 'chaos-app', 80);
  await httpApp(app, 'chaos');
  const make = async (i: number) => {
    await client.create(`${GW}/namespaces/${ns}/gateways`, {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name: `chaos-${i}` },
      spec: { gatewayClassName: 'klb', listeners: [{ name: 'http', port: ports.http, protocol: 'HTTP' }] },
    } as KubeObject);
    await client.create(`${GW}/namespaces/${ns}/httproutes`, {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: `chaos-${i}` },
      spec: { parentRefs: [{ name: `chaos-${i}` }], rules: [{ backendRefs: [{ name: 'chaos-app', port: 80 }] }] },
    } as KubeObject);
  };
  const remove = async (i: number) => {
    await client.delete(`${GW}/namespaces/${ns}/gateways/chaos-${i}`);
    if (i % 2 === 0) await client.delete(`${GW}/namespaces/${ns}/httproutes/chaos-${i}`);
  };
  for (let i = 0; i < 6; i++) await make(i);
  await new Promise((r) => setTimeout(r, 1500));
  await stack?.killController();
  // While no controller runs: some deleted, some created, a Route moved to another Gateway.
  for (const i of [0, 1, 2]) await remove(i);
  for (let i = 6; i < 9; i++) await make(i);
  await client.patch(`${GW}/namespaces/${ns}/httproutes/chaos-3`, { spec: { parentRefs: [{ name: 'chaos-4' }] } });
  stack?.startController();
  await new Promise((r) => setTimeout(r, 2000));
  await stack?.killController();
  for (const i of [5, 7]) await remove(i);
  stack?.startController();

  const live = ['chaos-3', 'chaos-4', 'chaos-6', 'chaos-8'];
  await soon('every deleted Gateway is gone and every live one Programmed', async () => {
    const gws = await client.list<GatewayObject>(`${GW}/namespaces/${ns}/gateways`);
    const chaos = gws.items.filter((g) => g.metadata?.name?.startsWith('chaos-'));
    const names = chaos.map((g) => g.metadata?.name).sort();
    const programmed = chaos.every((g) => cond(g.status?.conditions as Condition[], 'Programmed')?.status === 'True');
    return JSON.stringify(names) === JSON.stringify(live) && programmed ? true : undefined;
  });
  // The backend's objects, the address claims and the Route entries are exactly the live Gateways'.
  await soon('daemon configs and claims of live Gateways only', async () => {
    const configs = await client.list<KubeObject>('/api/v1/namespaces/klb-system/secrets', {
      labelSelector: 'klb.io/daemon-config=true',
    });
    const ids = configs.items
      .map((c) => c.metadata?.annotations?.['klb.io/load-balancer-id'] ?? '')
      .filter((id) => id.startsWith(`gateway/${ns}/chaos-`))
      .sort();
    const claims = await client.list<KubeObject & { spec?: { holders?: { kind: string; name: string }[] } }>(
      '/apis/ipam.klb.io/v1alpha1/namespaces/klb-system/addressclaims',
    );
    const holders = claims.items
      .flatMap((c) => c.spec?.holders ?? [])
      .filter((h) => h.kind === 'Gateway' && h.name.startsWith('chaos-'))
      .map((h) => h.name)
      .sort();
    return JSON.stringify(ids) === JSON.stringify(live.map((n) => `gateway/${ns}/${n}`)) &&
      JSON.stringify(holders) === JSON.stringify(live)
      ? true
      : undefined;
  });
  await soon('Route entries name live Gateways only', async () => {
    const routes = await client.list<RouteObject>(`${GW}/namespaces/${ns}/httproutes`);
    const entries = routes.items
      .filter((r) => r.metadata?.name?.startsWith('chaos-'))
      .map((r) => `${r.metadata?.name}>${(r.status?.parents ?? []).map((p) => p.parentRef.name).join(',')}`)
      .sort();
    // chaos-3 moved to chaos-4; chaos-1, chaos-5 and chaos-7 outlived their Gateways (no entry).
    const expected = [
      'chaos-1>',
      'chaos-3>chaos-4',
      'chaos-4>chaos-4',
      'chaos-5>',
      'chaos-6>chaos-6',
      'chaos-7>',
      'chaos-8>chaos-8',
    ];
    return JSON.stringify(entries) === JSON.stringify(expected) ? true : undefined;
  });
});

test.run();
