// What the data plane did reaches the user: the reference controller process (keepalived-nginx
// backend, KubeIpam pools from a file, resync once an hour so only the backend's watch can carry a
// node's answer) and a node daemon with real nginx, against a real kube-apiserver. Services,
// original ConfigMaps and Ingresses are applied as a user applies them, and what the user reads
// back (conditions, events, `data.status`) must follow the node's report within seconds: a config
// every node refused, a config applied, an address that cannot be had yet.
import { randomInt } from 'node:crypto';
import { createServer, get as httpGet, type Server } from 'node:http';
import net from 'node:net';
import type { ConfigMapObject, KubeClient, KubeObject, ServiceObject } from '@klb/core';
import { eventually, generateSelfSignedCertificate, requireComponents } from '@klb/testing';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type ReferenceStack, startReferenceStack } from './reference-stack.js';

const test = suite('data-plane feedback on the objects users wrote');
const missing =
  requireComponents('kube-apiserver', 'etcd', 'nginx') ??
  (process.getuid?.() === 0 ? undefined : 'skip: binding port 80 of a loopback VIP needs root');
const it = missing ? test.skip : test;

const NS = 'feedback';
const CONDITION = 'klb.io/LoadBalancerReady';
// A 127.0.0.0/8 block of this run's own, so concurrent suites never share a VIP.
const block = `127.${randomInt(100, 250)}.${randomInt(1, 250)}`;
const vip = (n: number): string => `${block}.${n}`;

let stack: ReferenceStack | undefined;
let client: KubeClient;
let dir = '';
const closers: Array<() => Promise<void>> = [];

/** Within seconds: the resync is an hour away, so only the backend's watch can bring the change. */
const soon = <T>(what: string, fn: () => Promise<T | undefined | false>): Promise<T> =>
  eventually(`${what}\n--- controller output (tail) ---\n${stack?.output().slice(-3000)}`, fn, 30_000);

/** A program holding `address:port`, as something else on a node may: nginx then cannot bind it. */
async function squat(address: string, port: number): Promise<() => Promise<void>> {
  const server = net.createServer((s) => s.end('squatter'));
  await new Promise<void>((resolve) => server.listen(port, address, resolve));
  const close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  closers.push(close);
  return close;
}

/** What kube-proxy would do on the node: an app answering `body` on the Service's nodePort. */
async function appOnNodePort(nodePort: number, body: string): Promise<Server> {
  const app = createServer((_req, res) => res.end(body));
  await new Promise<void>((resolve) => app.listen(nodePort, '127.0.0.1', resolve));
  closers.push(() => new Promise<void>((resolve) => app.close(() => resolve())));
  return app;
}

function lbService(name: string, port: number, spec: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: NS },
    spec: {
      type: 'LoadBalancer',
      loadBalancerClass: 'klb.io/load-balancer',
      selector: { app: name },
      ports: [{ name: 'web', port, targetPort: 8080 }],
      ...spec,
    },
  } as KubeObject;
}

async function service(name: string): Promise<ServiceObject> {
  return client.get<ServiceObject>(`/api/v1/namespaces/${NS}/services/${name}`);
}

function condition(svc: ServiceObject): { status: string; reason: string; message: string } | undefined {
  return svc.status?.conditions?.find((c) => c.type === CONDITION) as
    | { status: string; reason: string; message: string }
    | undefined;
}

async function warnings(name: string, reason: string): Promise<string[]> {
  const list = await client.list<
    KubeObject & { reason: string; type: string; message: string; involvedObject: { name: string } }
  >(`/api/v1/namespaces/${NS}/events`);
  return list.items
    .filter((e) => e.involvedObject.name === name && e.type === 'Warning' && e.reason === reason)
    .map((e) => e.message);
}

/** One GET (with a Host header when given); the body of a 200, else undefined. */
function get(address: string, port: number, host?: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = httpGet(
      { host: address, port, path: '/', agent: false, timeout: 2000, ...(host ? { headers: { host } } : {}) },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve(res.statusCode === 200 ? body : undefined));
        res.on('error', () => resolve(undefined));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

if (!missing) {
  stack = await startReferenceStack({ name: 'feedback', block, namespaces: [NS] });
  client = stack.client;
  dir = stack.dir;
  test.after(async () => {
    for (const close of closers) await close().catch(() => undefined);
    await stack?.stop();
  });
}

it('a Service applied on its node: the condition follows the node report, and traffic flows', async () => {
  await client.create(`/api/v1/namespaces/${NS}/services`, lbService('good', 8080, { loadBalancerIP: vip(11) }));
  const nodePort = (await service('good')).spec?.ports?.[0]?.nodePort as number;
  await appOnNodePort(nodePort, 'good');
  const ready = await soon('the good Service reported applied on 1/1 nodes', async () => {
    const c = condition(await service('good'));
    return c?.status === 'True' && /applied on 1\/1 nodes/.test(c.message) ? c : undefined;
  });
  assert.is(ready.reason, 'Ensured');
  assert.match(ready.message, new RegExp(`${vip(11).replaceAll('.', '\\.')} held by no node`));
  assert.is(await soon('HTTP through the VIP', () => get(vip(11), 8080)), 'good');
  // nginx proxies even plain L4: kube-proxy on the node holding the VIP must leave it to nginx.
  assert.is((await service('good')).status?.loadBalancer?.ingress?.[0]?.ipMode, 'Proxy');
});

it('a Service whose targets get the PROXY protocol header is served through nginx (ipMode Proxy); an affinity timeout nginx cannot apply is said', async () => {
  const svc = lbService('proxied', 8085, {
    loadBalancerIP: vip(16),
    sessionAffinity: 'ClientIP',
    sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } },
  });
  svc.metadata = { ...svc.metadata, annotations: { 'klb.io/proxy-protocol': 'true' } };
  await client.create(`/api/v1/namespaces/${NS}/services`, svc);
  const ingress = await soon(
    'the proxied Service has its address',
    async () => (await service('proxied')).status?.loadBalancer?.ingress?.[0],
  );
  assert.is(ingress.ip, vip(16));
  assert.is(ingress.ipMode, 'Proxy', 'in-cluster clients must go through nginx too');
  assert.match(
    condition(await service('proxied'))?.message ?? '',
    /session affinity by client address has no timeout in nginx \(timeoutSeconds 600 not applied\)/,
  );
});

it('a Service every node refused: a False condition naming the node and the reason, a Warning event; fixed, it recovers', async () => {
  await squat(vip(12), 8080);
  await client.create(`/api/v1/namespaces/${NS}/services`, lbService('refused', 8080, { loadBalancerIP: vip(12) }));
  const refused = await soon('the refusal on the Service', async () => {
    const c = condition(await service('refused'));
    return c?.status === 'False' ? c : undefined;
  });
  assert.is(refused.reason, 'RejectedByNodes');
  assert.match(refused.message, /every node refused/);
  assert.match(refused.message, /rejected on node-1: nginx could not listen on/);
  const events = await soon('the Warning event', async () => {
    const found = await warnings('refused', 'RejectedByNodes');
    return found.length ? found : undefined;
  });
  assert.match(events[0] ?? '', /node-1/);
  // The user moves the Service to a free port: a new config, applied, and the condition clears.
  await client.patch(`/api/v1/namespaces/${NS}/services/refused`, {
    spec: { ports: [{ name: 'web', port: 8081, targetPort: 8080 }] },
  });
  const fixed = await soon('the condition cleared', async () => {
    const c = condition(await service('refused'));
    return c?.status === 'True' && /applied on 1\/1 nodes/.test(c.message) ? c : undefined;
  });
  assert.is(fixed.reason, 'Ensured');
  assert.is((await service('good')).status?.conditions?.find((c) => c.type === CONDITION)?.status, 'True');
});

it('an original ConfigMap every node refused says ERROR in data.status', async () => {
  await client.create(`/api/v1/namespaces/${NS}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'coffee', namespace: NS },
    spec: { type: 'NodePort', selector: { app: 'coffee' }, ports: [{ port: 8082, targetPort: 8080 }] },
  } as KubeObject);
  await squat(vip(13), 8082);
  await client.create(`/api/v1/namespaces/${NS}/configmaps`, {
    metadata: { name: 'coffee-lb', namespace: NS, labels: { app: 'loadbalancer' } },
    data: { 'target-service-name': 'coffee', 'bind-ip': vip(13) },
  });
  const status = await soon('data.status of the ConfigMap', async () => {
    const cm = await client.get<ConfigMapObject>(`/api/v1/namespaces/${NS}/configmaps/coffee-lb`);
    return cm.data?.status?.startsWith('ERROR') ? cm.data.status : undefined;
  });
  assert.match(
    status,
    /^ERROR : every node refused daemon config [0-9a-f]+: rejected on node-1: nginx could not listen/,
  );
});

it('an Ingress every node refused gets a Warning event', async () => {
  await client.create(`/api/v1/namespaces/${NS}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: NS },
    spec: { type: 'NodePort', selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
  } as KubeObject);
  await squat(vip(14), 80);
  await client.create(`/apis/networking.k8s.io/v1/namespaces/${NS}/ingresses`, {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name: 'cafe', namespace: NS, annotations: { 'klb.io/load-balancer-ips': vip(14) } },
    spec: {
      ingressClassName: 'klb',
      rules: [
        {
          host: 'cafe.example.com',
          http: {
            paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }],
          },
        },
      ],
    },
  });
  const events = await soon('the Warning event on the Ingress', async () => {
    const found = await warnings('cafe', 'RejectedByNodes');
    return found.length ? found : undefined;
  });
  assert.match(events[0] ?? '', /rejected on node-1: nginx could not listen on/);
});

it('what nginx would refuse is refused by KLB before any node tries: a source range nginx cannot load', async () => {
  await client.create(
    `/api/v1/namespaces/${NS}/services`,
    lbService('allnet', 8086, { loadBalancerIP: vip(17), loadBalancerSourceRanges: ['255.255.255.255/32'] }),
  );
  const c = await soon('the refusal on the Service', async () => {
    const found = condition(await service('allnet'));
    return found?.status === 'False' ? found : undefined;
  });
  assert.is(c.reason, 'InvalidDaemonConfig');
  assert.match(c.message, /255\.255\.255\.255\/32.*nginx refuses 255\.255\.255\.255/);
  assert.equal((await service('allnet')).status?.loadBalancer?.ingress ?? [], []);
});

it('a TLS Secret whose chain nginx could not load, or that carries a private key in tls.crt, is an error on the Ingress', async () => {
  const pem = generateSelfSignedCertificate(dir);
  const broken = `${pem.cert}-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n`;
  const leaking = `${pem.cert}${pem.key}`;
  for (const [name, crt] of [
    ['broken-chain', broken],
    ['key-in-crt', leaking],
  ] as const) {
    await client.create(`/api/v1/namespaces/${NS}/secrets`, {
      metadata: { name },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': Buffer.from(crt).toString('base64'), 'tls.key': Buffer.from(pem.key).toString('base64') },
    } as KubeObject);
    await client.create(`/apis/networking.k8s.io/v1/namespaces/${NS}/ingresses`, {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name, namespace: NS },
      spec: {
        ingressClassName: 'klb',
        tls: [{ hosts: [`${name}.example.com`], secretName: name }],
        rules: [
          {
            host: `${name}.example.com`,
            http: {
              paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }],
            },
          },
        ],
      },
    });
  }
  const chain = await soon(
    'the broken chain refused',
    async () => (await warnings('broken-chain', 'InvalidDaemonConfig'))[0],
  );
  assert.match(chain, /certificate: block 2 is not a valid X\.509 certificate/);
  const key = await soon(
    'the key in tls.crt refused',
    async () => (await warnings('key-in-crt', 'InvalidDaemonConfig'))[0],
  );
  assert.match(key, /certificate: holds a private key \(block 2\)/);
  assert.not.match(key, /BEGIN/, 'no key material in the event');
});

it('an Ingress whose backend Service has a 63-character name is served (derived names never fail on a valid name)', async () => {
  const long = `svc-${'x'.repeat(59)}`;
  await client.create(`/api/v1/namespaces/${NS}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: long, namespace: NS },
    spec: { type: 'NodePort', selector: { app: 'long' }, ports: [{ name: 'http', port: 8087, targetPort: 8080 }] },
  } as KubeObject);
  const nodePort = (await client.get<ServiceObject>(`/api/v1/namespaces/${NS}/services/${long}`)).spec?.ports?.[0]
    ?.nodePort as number;
  await appOnNodePort(nodePort, 'long name');
  await client.create(`/apis/networking.k8s.io/v1/namespaces/${NS}/ingresses`, {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name: 'long', namespace: NS, annotations: { 'klb.io/load-balancer-ips': vip(18) } },
    spec: {
      ingressClassName: 'klb',
      rules: [
        {
          host: 'long.example.com',
          http: {
            paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: long, port: { number: 8087 } } } }],
          },
        },
      ],
    },
  });
  const body = await soon('HTTP through the Ingress VIP', () => get(vip(18), 80, 'long.example.com'));
  assert.is(body, 'long name');
  assert.equal(await warnings('long', 'InvalidDaemonConfig'), []);
});

it('an address that cannot be had yet is said on the Service and the ConfigMap, and cleared once it is free', async () => {
  await client.create(`/api/v1/namespaces/${NS}/services`, lbService('holder', 8083, { loadBalancerIP: vip(55) }));
  await soon(
    'the holder has its address',
    async () => (await service('holder')).status?.loadBalancer?.ingress?.[0]?.ip,
  );
  await client.create(`/api/v1/namespaces/${NS}/services`, lbService('wanting', 8084, { loadBalancerIP: vip(55) }));
  await client.create(`/api/v1/namespaces/${NS}/configmaps`, {
    metadata: { name: 'wanting-lb', namespace: NS, labels: { app: 'loadbalancer' } },
    data: { 'target-service-name': 'coffee', 'bind-ip': vip(55) },
  });
  const taken = await soon('the AddressTaken condition', async () => {
    const c = condition(await service('wanting'));
    return c?.status === 'False' ? c : undefined;
  });
  assert.is(taken.reason, 'AddressTaken');
  assert.ok(taken.message.includes(vip(55)), taken.message);
  assert.equal((await service('wanting')).status?.loadBalancer?.ingress ?? [], [], 'no address is published');
  const cmStatus = await soon('data.status of the waiting ConfigMap', async () => {
    const cm = await client.get<ConfigMapObject>(`/api/v1/namespaces/${NS}/configmaps/wanting-lb`);
    return cm.data?.status?.startsWith('ERROR') ? cm.data.status : undefined;
  });
  assert.ok(cmStatus.includes(vip(55)), cmStatus);
  // The holder goes away: the address is free, and the waiting Service gets it.
  await client.delete(`/api/v1/namespaces/${NS}/services/holder`);
  await client.delete(`/api/v1/namespaces/${NS}/configmaps/wanting-lb`);
  const got = await eventually(
    'the waiting Service gets the address',
    async () => {
      const svc = await service('wanting');
      const c = condition(svc);
      return c?.status === 'True' ? svc : undefined;
    },
    120_000,
  );
  assert.is(got.status?.loadBalancer?.ingress?.[0]?.ip, vip(55));
});

test.run();
