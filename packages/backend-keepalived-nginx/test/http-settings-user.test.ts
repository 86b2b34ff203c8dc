// The HTTP settings as a user meets them: the controller engine (Ingresses and Services) with the
// keepalived-nginx backend, and a node daemon with real nginx, against a real kube-apiserver.
// An Ingress annotated `klb.io/proxy-body-size: 16m` takes a 10 MiB upload where one without it
// answers 413; a bad value is a Warning event naming the annotation, and everything else keeps
// serving (the Ingress itself on its last good config); on a Service the annotations are refused.
import { randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Daemon, KeepalivedNginxBackend, runDaemon } from '@klb/backend-keepalived-nginx';
import {
  type AddressAllocator,
  type IngressObject,
  KubeClient,
  type KubeObject,
  LoadBalancerController,
  type ServiceObject,
  TerminalError,
} from '@klb/core';
import { type ControlPlane, createNode, eventually, requireComponents, startControlPlane } from '@klb/testing';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { upload } from './renderer-fixtures.js';

const test = suite('HTTP settings on Ingresses, from the user side');
const missing =
  requireComponents('kube-apiserver', 'etcd', 'nginx') ??
  (process.getuid?.() === 0 ? undefined : 'skip: binding port 80 of a loopback VIP needs root');
const it = missing ? test.skip : test;

const NS = 'shop';
// A 127.0.0.0/8 block of this run's own, so concurrent suites never share a VIP.
const block = `127.${randomInt(100, 250)}.${randomInt(1, 250)}`;
const vip = (n: number): string => `${block}.${n}`;

/** Hands out the address each object asks for (`klb.io/load-balancer-ips`), as a fixed pool would. */
const allocator: AddressAllocator = {
  start: async () => {},
  allocate: async (_owner, request) => {
    if (!request.addresses?.length) throw new TerminalError('this test gives only the addresses objects ask for');
    return { addresses: request.addresses };
  },
  release: async () => {},
};

let plane: ControlPlane | undefined;
let client: KubeClient;
let daemon: Daemon | undefined;
let controller: LoadBalancerController | undefined;
let backend: KeepalivedNginxBackend | undefined;
let stateDir = '';
let app: http.Server | undefined;

if (!missing) {
  plane = await startControlPlane();
  client = new KubeClient(plane.kubeConfig);
  for (const name of ['klb-system', NS]) await client.create('/api/v1/namespaces', { metadata: { name } });
  await createNode(client, 'node-1', '127.0.0.1');
  // The application behind the Service: it answers how many body bytes it read.
  await client.create(`/api/v1/namespaces/${NS}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web' },
    spec: { type: 'NodePort', selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
  } as KubeObject);
  const nodePort = (await client.get<ServiceObject>(`/api/v1/namespaces/${NS}/services/web`)).spec?.ports?.[0]
    ?.nodePort as number;
  app = http.createServer((req, res) => {
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    req.on('end', () => res.end(JSON.stringify({ bytes })));
  });
  await new Promise<void>((resolve) => app?.listen(nodePort, '127.0.0.1', resolve));
  // A new state directory, 0700 as the daemon makes one; nginx's workers still reach their temporary files.
  stateDir = await mkdtemp(join(tmpdir(), 'klb-http-settings-'));
  daemon = await runDaemon({
    kubeConfig: plane.kubeConfig,
    namespace: 'klb-system',
    nodeName: 'node-1',
    stateDir,
    keepalived: false,
    nonlocalBind: false,
    nginx: { workerProcesses: 1 },
    health: { host: '127.0.0.1', port: 0 },
    minReloadIntervalMs: 100,
    reportIntervalMs: 60_000,
  });
  backend = new KeepalivedNginxBackend({ client, namespace: 'klb-system' });
  controller = new LoadBalancerController({
    kubeConfig: plane.kubeConfig,
    backend,
    allocator,
    configMaps: false,
    ingress: { ingressClassName: 'klb' },
    workers: 2,
  });
  await controller.start();
  test.after(async () => {
    await controller?.stop();
    await backend?.close();
    await daemon?.stop();
    app?.closeAllConnections();
    await new Promise<void>((resolve) => (app ? app.close(() => resolve()) : resolve()));
    client?.close();
    await plane?.stop();
    await rm(stateDir, { recursive: true, force: true });
  });
}

function ingress(name: string, address: string, annotations: Record<string, string> = {}): IngressObject {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name, namespace: NS, annotations: { 'klb.io/load-balancer-ips': address, ...annotations } },
    spec: {
      ingressClassName: 'klb',
      rules: [
        {
          host: `${name}.example.com`,
          http: {
            paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }],
          },
        },
      ],
    },
  } as IngressObject;
}

const ingressPath = (name: string) => `/apis/networking.k8s.io/v1/namespaces/${NS}/ingresses/${name}`;

/** The messages of the Warning events with `reason` on the object `name`. */
async function warnings(name: string, reason: string): Promise<string[]> {
  const list = await client.list<
    KubeObject & { reason: string; type: string; message: string; involvedObject: { name: string } }
  >(`/api/v1/namespaces/${NS}/events`);
  return list.items
    .filter((e) => e.involvedObject.name === name && e.type === 'Warning' && e.reason === reason)
    .map((e) => e.message);
}

const MiB = 1024 * 1024;
const took = (bytes: number) => ({ status: 200, body: JSON.stringify({ bytes }) });

it('an Ingress with klb.io/proxy-body-size: 16m takes a 10 MiB upload; one without it answers 413 past 1 MiB', async () => {
  await client.create(
    `/apis/networking.k8s.io/v1/namespaces/${NS}/ingresses`,
    ingress('big', vip(1), { 'klb.io/proxy-body-size': '16m' }),
  );
  await client.create(`/apis/networking.k8s.io/v1/namespaces/${NS}/ingresses`, ingress('small', vip(2)));
  assert.equal(
    await eventually('a 10 MiB upload through the big Ingress', async () => {
      const r = await upload({ address: vip(1), port: 80, host: 'big.example.com', bytes: 10 * MiB }).catch(
        () => undefined,
      );
      return r?.status === 200 ? r : undefined;
    }),
    took(10 * MiB),
  );
  await eventually(
    'the small Ingress served',
    async () => (await upload({ address: vip(2), port: 80, host: 'small.example.com', bytes: 1000 })).status === 200,
  );
  assert.is((await upload({ address: vip(2), port: 80, host: 'small.example.com', bytes: 2 * MiB })).status, 413);
  assert.equal(
    await upload({ address: vip(2), port: 80, host: 'small.example.com', bytes: 512 * 1024 }),
    took(512 * 1024),
  );
});

it('a bad value is a Warning event naming the annotation; the Ingress keeps its last good config and the others serve', async () => {
  const evil = '10 m; evil';
  // A new Ingress with it is never published.
  await client.create(
    `/apis/networking.k8s.io/v1/namespaces/${NS}/ingresses`,
    ingress('evil', vip(3), { 'klb.io/proxy-body-size': evil }),
  );
  const [message] = await eventually('the Warning event on the new Ingress', async () => {
    const found = await warnings('evil', 'InvalidAnnotation');
    return found.length ? found : undefined;
  });
  assert.is(
    message,
    'annotation klb.io/proxy-body-size="10 m; evil": must be a size in bytes, or with k, m or g (such as 10m), from 0 (no limit) to 1024g',
  );
  const evilIngress = await client.get<IngressObject & { status?: { loadBalancer?: { ingress?: unknown[] } } }>(
    ingressPath('evil'),
  );
  assert.equal(evilIngress.status?.loadBalancer?.ingress ?? [], []);
  const published = await client.list<KubeObject>('/api/v1/namespaces/klb-system/secrets');
  assert.equal(
    published.items
      .map((s) => s.metadata?.name)
      .filter((n) => n?.startsWith(`ingress.${NS}.`))
      .sort(),
    [`ingress.${NS}.big`, `ingress.${NS}.small`],
  );
  // A served Ingress changed to the bad value: a Warning event, and it keeps serving as before.
  await client.patch(ingressPath('big'), {
    metadata: { annotations: { 'klb.io/proxy-body-size': evil, 'klb.io/proxy-read-timeout': '30' } },
  });
  await eventually('the Warning event on the changed Ingress', async () => {
    const found = await warnings('big', 'InvalidAnnotation');
    return found.some((m) => m.startsWith('annotation klb.io/proxy-body-size="10 m; evil": ')) ? found : undefined;
  });
  assert.equal(await upload({ address: vip(1), port: 80, host: 'big.example.com', bytes: 10 * MiB }), took(10 * MiB));
  assert.is((await upload({ address: vip(2), port: 80, host: 'small.example.com', bytes: 2 * MiB })).status, 413);
  assert.equal(await upload({ address: vip(2), port: 80, host: 'small.example.com', bytes: 1000 }), took(1000));
  // Fixed, it converges to what it now says: 1m.
  await client.patch(ingressPath('big'), { metadata: { annotations: { 'klb.io/proxy-body-size': '1m' } } });
  await eventually(
    'the fixed Ingress applied',
    async () => (await upload({ address: vip(1), port: 80, host: 'big.example.com', bytes: 2 * MiB })).status === 413,
  );
  assert.equal(await upload({ address: vip(1), port: 80, host: 'big.example.com', bytes: 1000 }), took(1000));
});

it('on a LoadBalancer Service (TCP only) the HTTP annotations are refused, with a Warning event', async () => {
  await client.create(`/api/v1/namespaces/${NS}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: 'tcp',
      annotations: { 'klb.io/load-balancer-ips': vip(4), 'klb.io/proxy-read-timeout': '120' },
    },
    spec: {
      type: 'LoadBalancer',
      loadBalancerClass: 'klb.io/load-balancer',
      selector: { app: 'web' },
      ports: [{ port: 8080, targetPort: 8080 }],
    },
  } as KubeObject);
  const [message] = await eventually('the Warning event on the Service', async () => {
    const found = await warnings('tcp', 'InvalidAnnotation');
    return found.length ? found : undefined;
  });
  assert.match(message ?? '', /^annotation klb\.io\/proxy-read-timeout="120": applies to HTTP listeners/);
  assert.match(message ?? '', /Service shop\/tcp has only TCP\/UDP ports/);
});

test.run();
