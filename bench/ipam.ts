// npm run bench -- ipam [v4|v6|import]
// Figures of @klb/ipam:
//   ipam.v4_alloc_per_s     allocations per second filling a /16 IPv4 pool completely (in memory)
//   ipam.v6_rss_mib_per_1m  RSS growth for 1,000,000 allocations from an IPv6 /64 (fresh process)
//   ipam.import_10k_s       time KubeIpam.start() takes to import 10,000 existing assignments
//                           from a real kube-apiserver
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  ADDRESS_CLAIM_GROUP,
  ADDRESS_CLAIM_PLURAL,
  ADDRESS_CLAIM_VERSION,
  type AllocationOwner,
  Allocator,
  addressClaimName,
  HOLDER_LABEL_PREFIX,
  installAddressClaimCrd,
  KubeIpam,
  parsePoolConfig,
} from '@klb/ipam';
import { startControlPlane } from '@klb/testing';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';

const only = process.argv[2];

/** A flat (non-concatenated) UUID-shaped string, like the uids the apiserver sends. */
function uidOf(i: number): string {
  const hex = (n: number, width: number) => (n >>> 0).toString(16).padStart(width, '0').slice(-width);
  return Buffer.from(
    `${hex(Math.imul(i, 2654435761), 8)}-${hex(i >>> 16, 4)}-4${hex(i, 3)}-8${hex(i >>> 12, 3)}-${hex(i, 8)}${hex(i >>> 8, 4)}`,
    'latin1',
  ).toString('latin1');
}

function owners(n: number): AllocationOwner[] {
  return Array.from({ length: n }, (_, i) => ({
    kind: 'Service',
    namespace: 'bench',
    name: `svc-${i}`,
    uid: uidOf(i),
  }));
}

function v4(): void {
  const pools = parsePoolConfig({ pools: [{ name: 'v4', addresses: ['10.20.0.0/16'] }] });
  const all = owners(65536);
  const rates: number[] = [];
  for (let round = 0; round < 7; round++) {
    const al = new Allocator(pools);
    const t0 = process.hrtime.bigint();
    for (const o of all) al.allocate(o);
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    const [stats] = al.stats();
    if (stats?.available !== 0n || stats.used !== 65536) throw new Error('the /16 was not filled');
    rates.push(all.length / s);
  }
  rates.sort((a, b) => a - b);
  console.log(`bench ipam.v4_alloc_per_s ${Math.round(rates[3] as number)} allocations/s`);
}

function v6Child(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  const n = 1_000_000;
  gc();
  const start = process.memoryUsage().rss;
  // The owners are the caller's (in the controller: objects in the informer cache); the
  // allocator keeps references to them. Created before the baseline, reported separately.
  const all = owners(n);
  gc();
  const base = process.memoryUsage().rss;
  const al = new Allocator(parsePoolConfig({ pools: [{ name: 'v6', addresses: ['fd00:1234:5678:9abc::/64'] }] }));
  for (const o of all) al.allocate(o);
  gc();
  const after = process.memoryUsage().rss;
  if (al.stats()[0]?.used !== n) throw new Error('allocations missing');
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
  console.log(`bench ipam.v6_rss_mib_per_1m ${mib(after - base)} MiB`);
  console.log(`bench ipam.v6_rss_mib_per_1m_with_owners ${mib(after - start)} MiB`);
  console.log(`bench ipam.v6_pool_size ${al.stats()[0]?.size} addresses`);
}

function v6(): void {
  // A fresh process, so that nothing else measured here is in its RSS.
  const res = spawnSync(
    process.execPath,
    ['--expose-gc', '--conditions=klb-source', '--import', 'tsx', fileURLToPath(import.meta.url), 'v6-child'],
    { stdio: 'inherit' },
  );
  if (res.status !== 0) throw new Error(`v6 measurement failed (${res.status ?? res.signal})`);
}

async function inBatches<T>(items: readonly T[], width: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: width }, worker));
}

async function importBench(): Promise<void> {
  const n = 10_000;
  const plane = await startControlPlane();
  try {
    await installAddressClaimCrd(plane.kubeConfig);
    const core = plane.kubeConfig.makeApiClient(CoreV1Api);
    const custom = plane.kubeConfig.makeApiClient(CustomObjectsApi);
    const ns = 'bench-import';
    await core.createNamespace({ body: { metadata: { name: ns } } });
    await core.createNamespace({ body: { metadata: { name: 'klb-system' } } });
    // What KLB leaves behind before a restart: 10,000 LoadBalancer Services with an address in
    // their status, each with its AddressClaim.
    const ip = (i: number) => `10.30.${i >> 8}.${i & 255}`;
    const t0 = Date.now();
    await inBatches(
      Array.from({ length: n }, (_, i) => i),
      32,
      async (i) => {
        const svc = await core.createNamespacedService({
          namespace: ns,
          body: {
            metadata: { name: `svc-${i}` },
            spec: {
              type: 'LoadBalancer',
              allocateLoadBalancerNodePorts: false,
              ports: [{ port: 80, protocol: 'TCP' }],
            },
          },
        });
        const md = svc.metadata ?? {};
        await Promise.all([
          core.replaceNamespacedServiceStatus({
            namespace: ns,
            name: `svc-${i}`,
            body: { ...svc, status: { loadBalancer: { ingress: [{ ip: ip(i) }] } } },
          }),
          custom.createNamespacedCustomObject({
            group: ADDRESS_CLAIM_GROUP,
            version: ADDRESS_CLAIM_VERSION,
            namespace: 'klb-system',
            plural: ADDRESS_CLAIM_PLURAL,
            body: {
              apiVersion: `${ADDRESS_CLAIM_GROUP}/${ADDRESS_CLAIM_VERSION}`,
              kind: 'AddressClaim',
              metadata: {
                name: addressClaimName(ip(i)),
                labels: { 'ipam.klb.io/pool': 'bench', [`${HOLDER_LABEL_PREFIX}${md.uid}`]: 'true' },
              },
              spec: {
                address: ip(i),
                family: 'IPv4',
                pool: 'bench',
                holders: [
                  {
                    kind: 'Service',
                    namespace: ns,
                    name: md.name,
                    uid: md.uid,
                    ports: [{ protocol: 'TCP', port: 80 }],
                  },
                ],
              },
            },
          }),
        ]);
      },
    );
    console.error(`setup: ${n} Services with status and claims in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const pools = parsePoolConfig({ pools: [{ name: 'bench', addresses: ['10.30.0.0/16'] }] });
    const times: number[] = [];
    for (let round = 0; round < 3; round++) {
      const ipam = new KubeIpam({ kubeConfig: plane.kubeConfig, namespace: 'klb-system', pools });
      const start = process.hrtime.bigint();
      await ipam.start();
      times.push(Number(process.hrtime.bigint() - start) / 1e9);
      if (ipam.allocator.size !== n) throw new Error(`imported ${ipam.allocator.size} of ${n}`);
    }
    times.sort((a, b) => a - b);
    console.log(`bench ipam.import_10k_s ${(times[1] as number).toFixed(2)} s`);
  } finally {
    await plane.stop();
  }
}

if (only === 'v6-child') v6Child();
else {
  if (!only || only === 'v4') v4();
  if (!only || only === 'v6') v6();
  if (!only || only === 'import') await importBench();
}
