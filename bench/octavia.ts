// Octavia figures against the real Keystone + Octavia API servers of @klb/testing, with the
// provider-status process reporting every provisioning after 2 s (as a slow real provider).
//
// - octavia.converge_100_s: N load balancers (N=100 by default, 2 ports, 3 nodes each) driven by
//   KLB's OctaviaBackend with the engine's pattern: a few workers, and a RetryAfterError requeues
//   the key after its delay (a timer, no worker waits). Time until every one returned a status.
// - octavia.speedup_vs_sequential: the OpenStack cloud provider's way on the same servers in the
//   same run: one Service after the other, a bare load balancer and then listener, pool,
//   members (one batch call), monitor per port, each mutation followed by a blocking wait that
//   polls 1 s × 1.2 exponential until ACTIVE. It is measured for a sample of Services
//   (KLB_BENCH_OCTAVIA_SEQUENTIAL, default 5; it is strictly sequential, so the time per Service
//   is the same for every one) and scaled to N; set it to N to measure all of them.
// - octavia.noop_writes: writes (non-GET requests Octavia saw) of a resync of all N converged
//   load balancers with nothing changed.

import { OctaviaBackend, type OctaviaClient } from '@klb/backend-octavia';
import { isRetryAfterError, type LoadBalancerSpec, silentLogger } from '@klb/core';
import { startOpenStack } from '@klb/testing';
import { specFor, userConfig } from '../packages/backend-octavia/test/helpers.js';

const N = Number(process.env.KLB_BENCH_OCTAVIA_N ?? 100);
const SEQUENTIAL = Number(process.env.KLB_BENCH_OCTAVIA_SEQUENTIAL ?? 5);
const WORKERS = 4;
const DELAY_S = 2;

function print(metric: string, value: number, unit: string): void {
  console.log(`bench octavia.${metric} ${Number.isInteger(value) ? value : value.toFixed(2)} ${unit}`);
}

const NODES = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];
const spec = (name: string): LoadBalancerSpec => specFor(name, [80, 443], NODES);

const os = await startOpenStack({ provisioningDelaySeconds: DELAY_S });
try {
  const backend = new OctaviaBackend({ config: userConfig(os), clusterName: 'bench' });
  const ctx = { signal: new AbortController().signal, log: silentLogger };
  const specs = Array.from({ length: N }, (_, i) => spec(`svc-${i}`));

  // KLB: workers take ready keys; a RetryAfterError puts the key back after its delay.
  const ready: number[] = specs.map((_, i) => i);
  let done = 0;
  let transient = 0;
  const transientCodes = new Map<string, number>();
  const failures: number[] = [];
  let wake: (() => void) | undefined;
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const kick = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const worker = async () => {
      while (done < N) {
        const i = ready.shift();
        if (i === undefined) {
          await new Promise<void>((r) => {
            const previous = wake;
            wake = () => {
              previous?.();
              r();
            };
          });
          continue;
        }
        try {
          await backend.ensure(specs[i] as LoadBalancerSpec, ctx);
          done++;
          if (done === N) {
            kick();
            resolve();
          }
        } catch (err) {
          // As the engine: RetryAfterError requeues after its delay; another retryable error
          // requeues with exponential backoff; anything else ends the run.
          let delay: number;
          if (isRetryAfterError(err)) {
            delay = err.retryAfterMs;
          } else if ((err as { retryable?: boolean }).retryable === true) {
            failures[i] = (failures[i] ?? 0) + 1;
            transient++;
            const code = (err as { code?: string }).code ?? 'unknown';
            transientCodes.set(code, (transientCodes.get(code) ?? 0) + 1);
            delay = Math.min(30_000, 500 * 2 ** ((failures[i] ?? 1) - 1));
          } else {
            reject(err);
            return;
          }
          setTimeout(() => {
            ready.push(i);
            kick();
          }, delay);
        }
      }
    };
    for (let w = 0; w < WORKERS; w++) worker().catch(reject);
  });
  const klbSeconds = (performance.now() - started) / 1000;
  print(`converge_${N}_s`, klbSeconds, 's');
  print('transient_errors', transient, 'errors');
  if (transient)
    process.stderr.write(`transient errors by code: ${JSON.stringify(Object.fromEntries(transientCodes))}\n`);

  await os.provider.reset();
  for (const s of specs) await backend.ensure(s, ctx);
  const noop = (await os.provider.requests()).filter((r) => r.method !== 'GET').length;
  print('noop_writes', noop, 'writes');

  // The cloud provider's way, on the same servers.
  const client: OctaviaClient = backend.client;
  const waitActive = async (id: string) => {
    let delay = 1000;
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, delay));
      const lb = await client.getLoadBalancer(id);
      if (lb?.provisioning_status === 'ACTIVE') return;
      if (!lb || lb.provisioning_status === 'ERROR') throw new Error(`load balancer ${id} failed`);
      delay *= 1.2;
    }
  };
  const seqStarted = performance.now();
  for (let i = 0; i < SEQUENTIAL; i++) {
    const s = spec(`seq-${i}`);
    const lb = await client.createLoadBalancer({ name: `kube_service_bench_seq_${i}`, vip_subnet_id: os.subnetId });
    await waitActive(lb.id);
    for (const listener of s.listeners) {
      const l = await client.createListener({
        loadbalancer_id: lb.id,
        name: listener.name,
        protocol: 'TCP',
        protocol_port: listener.port,
      });
      await waitActive(lb.id);
      const pool = await client.createPool({
        listener_id: l.id,
        name: listener.name,
        protocol: 'TCP',
        lb_algorithm: 'ROUND_ROBIN',
      });
      await waitActive(lb.id);
      const upstream = s.upstreams.find((u) => u.name === listener.upstream);
      await client.replaceMembers(
        pool.id,
        (upstream?.targets ?? []).map((t) => ({ address: t.address, protocol_port: t.port })),
      );
      await waitActive(lb.id);
      await client.createHealthMonitor({ pool_id: pool.id, type: 'TCP', delay: 5, timeout: 3, max_retries: 2 });
      await waitActive(lb.id);
    }
  }
  const perService = (performance.now() - seqStarted) / 1000 / SEQUENTIAL;
  const sequentialSeconds = perService * N;
  print(`sequential_per_service_s`, perService, 's');
  print(
    `sequential_${N}_s`,
    sequentialSeconds,
    SEQUENTIAL === N ? 's' : `s (measured for ${SEQUENTIAL}, scaled to ${N})`,
  );
  print('speedup_vs_sequential', sequentialSeconds / klbSeconds, 'x');
} finally {
  await os.stop();
}
