// F5 backend figures against the iControl emulator (20 ms latency per call):
//   npm run bench -- f5 [--services 500] [--naive-services 50] [--concurrency 8]
// Each load balancer is a 3-port Service with 50 node targets. The backend is driven directly
// with specs, at most `concurrency` load balancers at once (what the engine's workers do).
// "writes" are counted by the emulator: POST/PUT/PATCH/DELETE calls that change configuration by
// themselves plus one per transaction commit (login/token calls, transaction bookkeeping and
// commands queued into a transaction are counted apart).
import { setMaxListeners } from 'node:events';
import { F5Backend, IControlClient } from '@klb/backend-f5';
import { type BackendContext, type LoadBalancerSpec, silentLogger } from '@klb/core';
import { type F5Emulator, startF5Emulator } from '@klb/testing';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const services = arg('services', 500);
const naiveServices = arg('naive-services', 50);
const concurrency = arg('concurrency', 8);
const latencyMs = 20;
const ports = [80, 443, 8080];
const controller = new AbortController();
// Every concurrent request listens on the one signal of this run.
setMaxListeners(0, controller.signal);
const ctx: BackendContext = { signal: controller.signal, log: silentLogger };

function line(metric: string, value: number, unit: string): void {
  console.log(`bench f5.${metric} ${Number.isInteger(value) ? value : value.toFixed(3)} ${unit}`);
}

function nodes(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `10.20.${Math.floor(i / 250)}.${(i % 250) + 1}`);
}

function spec(i: number, nodeAddresses: readonly string[]): LoadBalancerSpec {
  const name = `svc-${i}`;
  return {
    ref: { id: `service/bench/${name}`, kind: 'Service', namespace: 'bench', name },
    addresses: [`10.${100 + Math.floor(i / 250)}.${Math.floor(i / 250)}.${(i % 250) + 1}`],
    requestedAddresses: [],
    ipFamilies: ['IPv4'],
    listeners: ports.map((port) => ({ name: `tcp-${port}`, port, protocol: 'TCP' as const, upstream: `tcp-${port}` })),
    upstreams: ports.map((port, p) => ({
      name: `tcp-${port}`,
      targets: nodeAddresses.map((address) => ({
        kind: 'node' as const,
        address,
        port: 30000 + i * 3 + p,
        ready: true,
      })),
    })),
    options: { algorithm: 'round-robin', proxyProtocol: false, sourceRanges: [], timeouts: {} },
    annotations: {},
  };
}

async function bounded<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function backendFor(f5: F5Emulator): F5Backend {
  const client = new IControlClient({
    host: f5.host,
    username: 'admin',
    password: 'admin',
    ca: f5.ca,
    maxSockets: concurrency * 2,
  });
  return new F5Backend({ client, partition: 'klb' });
}

async function klbConverge(backend: F5Backend, specs: LoadBalancerSpec[]): Promise<number> {
  const started = performance.now();
  await bounded(specs, concurrency, async (s) => {
    await backend.ensure(s, ctx);
  });
  return (performance.now() - started) / 1000;
}

/** The approach KLB replaces: one REST call per object (each member its own POST), no transaction. */
async function naiveConverge(f5: F5Emulator, specs: LoadBalancerSpec[]): Promise<number> {
  const client = new IControlClient({
    host: f5.host,
    username: 'admin',
    password: 'admin',
    ca: f5.ca,
    maxSockets: concurrency * 2,
  });
  const started = performance.now();
  await bounded(specs, concurrency, async (s) => {
    const base = `klb_svc_${s.ref.namespace}_${s.ref.name}`;
    for (const [i, listener] of s.listeners.entries()) {
      const name = `${base}_${listener.name}`;
      await client.request('POST', '/mgmt/tm/ltm/monitor/tcp', {
        body: { name: `${name}_tcp`, partition: 'klb', defaultsFrom: '/Common/tcp' },
      });
      await client.request('POST', '/mgmt/tm/ltm/pool', {
        body: { name, partition: 'klb', monitor: `/klb/${name}_tcp` },
      });
      for (const target of s.upstreams[i]?.targets ?? []) {
        await client.request('POST', `/mgmt/tm/ltm/pool/~klb~${name}/members`, {
          body: { name: `${target.address}:${target.port}`, address: target.address, partition: 'klb' },
        });
      }
      await client.request('POST', '/mgmt/tm/ltm/virtual', {
        body: {
          name,
          partition: 'klb',
          destination: `/klb/${s.addresses[0]}:${listener.port}`,
          pool: `/klb/${name}`,
          sourceAddressTranslation: { type: 'automap' },
        },
      });
    }
  });
  const seconds = (performance.now() - started) / 1000;
  await client.close();
  return seconds;
}

const fifty = nodes(50);

// 1. Converge 500 Services, then a no-op resync, then one node added.
{
  const f5 = await startF5Emulator({ partitions: ['klb'], latencyMs });
  const backend = backendFor(f5);
  const specs = Array.from({ length: services }, (_, i) => spec(i, fifty));
  const seconds = await klbConverge(backend, specs);
  line(`converge_${services}_s`, seconds, 's');
  const state = f5.state();
  if (state.virtuals.length !== services * 3 || state.pools.some((p) => (p.members as unknown[]).length !== 50)) {
    throw new Error('converge did not produce the expected objects');
  }

  // Let the snapshot age out so the resync reads the BIG-IP, as a periodic resync would.
  await new Promise((resolve) => setTimeout(resolve, 5100));
  let mark = f5.calls.length;
  const resyncStarted = performance.now();
  await bounded(specs, concurrency, async (s) => {
    await backend.ensure(s, ctx);
  });
  line('noop_resync_s', (performance.now() - resyncStarted) / 1000, 's');
  let counts = f5.calls.counts(mark);
  line('noop_writes', counts.writes + counts.queued, 'writes');
  line('noop_reads', counts.reads / services, 'reads/lb');
  line('noop_reads_total', counts.reads, 'reads');

  const fiftyOne = nodes(51);
  mark = f5.calls.length;
  await backend.ensure(spec(0, fiftyOne), ctx);
  counts = f5.calls.counts(mark);
  line('member_change_writes', counts.writes, 'writes');
  line('member_change_calls', counts.writes + counts.queued + counts.transaction, 'calls');
  mark = f5.calls.length;
  await backend.ensure(spec(1, fiftyOne), ctx);
  counts = f5.calls.counts(mark);
  line('member_change_existing_node_writes', counts.writes, 'writes');
  line('member_change_existing_node_calls', counts.writes + counts.queued + counts.transaction, 'calls');
  await backend.close();
  await f5.stop();
}

// 2. The same run: KLB against one call per object, on `naiveServices` Services each (fresh emulators).
{
  const specs = Array.from({ length: naiveServices }, (_, i) => spec(i, fifty));
  const naiveF5 = await startF5Emulator({ partitions: ['klb'], latencyMs });
  const naive = await naiveConverge(naiveF5, specs);
  const naiveCalls = naiveF5.calls.counts().total;
  await naiveF5.stop();
  const klbF5 = await startF5Emulator({ partitions: ['klb'], latencyMs });
  const backend = backendFor(klbF5);
  const klb = await klbConverge(backend, specs);
  const klbCalls = klbF5.calls.counts().total;
  await backend.close();
  await klbF5.stop();
  line(`naive_converge_${naiveServices}_s`, naive, 's');
  line(`naive_converge_${naiveServices}_calls`, naiveCalls, 'calls');
  line(`klb_converge_${naiveServices}_s`, klb, 's');
  line(`klb_converge_${naiveServices}_calls`, klbCalls, 'calls');
  line('speedup_vs_naive', naive / klb, 'x');
}
