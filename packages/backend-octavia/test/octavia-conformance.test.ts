import type { BackendContext, LoadBalancerBackend, LoadBalancerRef, LoadBalancerSpec, Protocol } from '@klb/core';
import {
  type ConformanceFaults,
  type ObservedLoadBalancer,
  type OpenStack,
  requireComponents,
  runBackendConformance,
  startOpenStack,
} from '@klb/testing';
import { suite } from 'uvu';
import { backendFor, drive } from './helpers.js';

// The conformance suite calls ensure/remove once and expects the final answer. The Octavia
// backend answers PENDING_* with a RetryAfterError for the engine to requeue; this adapter does
// that requeueing (wait retryAfterMs, call again), as the engine does, around the real backend.
function requeueing(backend: LoadBalancerBackend): LoadBalancerBackend {
  return {
    name: backend.name,
    capabilities: backend.capabilities,
    ensure: async (spec: LoadBalancerSpec, ctx: BackendContext) => (await drive(() => backend.ensure(spec, ctx))).value,
    remove: async (ref: LoadBalancerRef, ctx: BackendContext) => {
      await drive(() => backend.remove(ref, ctx));
    },
    list: (ctx: BackendContext) => backend.list(ctx),
  };
}

interface Named {
  id: string;
}
interface Lb extends Named {
  description: string;
  vip_address: string;
}
interface Listener extends Named {
  protocol: Protocol;
  protocol_port: number;
  default_pool_id: string | null;
}
interface Pool extends Named {
  members: Named[];
}
interface Member extends Named {
  address: string;
  protocol_port: number;
  admin_state_up: boolean;
}

/** What exists in Octavia for this cluster's KLB, read from Octavia's API (not through the fault proxy). */
async function observeOctavia(stack: OpenStack, cluster: string): Promise<ObservedLoadBalancer[]> {
  const { token } = await stack.issueToken('user');
  const get = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${stack.octaviaDirectUrl}${path}`, { headers: { 'x-auth-token': token } });
    if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };
  const prefix = `klb:${cluster}:`;
  const { loadbalancers } = await get<{ loadbalancers: Lb[] }>('/v2/lbaas/loadbalancers');
  const observed: ObservedLoadBalancer[] = [];
  for (const lb of loadbalancers.filter((l) => l.description.startsWith(prefix))) {
    const { listeners } = await get<{ listeners: Listener[] }>(`/v2/lbaas/listeners?loadbalancer_id=${lb.id}`);
    const { pools } = await get<{ pools: Pool[] }>(`/v2/lbaas/pools?loadbalancer_id=${lb.id}`);
    const used = new Set(listeners.map((l) => l.default_pool_id));
    const targets = new Map<string, string[]>();
    for (const pool of pools) {
      const { members } = await get<{ members: Member[] }>(`/v2/lbaas/pools/${pool.id}/members`);
      targets.set(
        pool.id,
        members.filter((m) => m.admin_state_up).map((m) => `${m.address}:${m.protocol_port}`),
      );
    }
    observed.push({
      id: lb.description.slice(prefix.length),
      listeners: listeners.map((l) => ({
        address: lb.vip_address,
        port: l.protocol_port,
        protocol: l.protocol,
        targets: targets.get(l.default_pool_id ?? '') ?? [],
      })),
      strays: pools.filter((p) => !used.has(p.id)).map((p) => `pool ${p.id}`),
    });
  }
  return observed;
}

/** Faults at the proxy in front of Octavia: answers fail (503) or are malformed until clear(). */
function octaviaFaults(stack: OpenStack): ConformanceFaults {
  const always = 1_000_000;
  return {
    failReads: () => stack.provider.fail503({ count: always, method: 'GET', service: 'octavia' }),
    malformReads: () => stack.provider.fail503({ count: always, method: 'GET', service: 'octavia', malformed: true }),
    failWrites: () => stack.provider.fail503({ count: always, method: ['POST', 'PUT', 'DELETE'], service: 'octavia' }),
    clear: () => stack.provider.fail503(null),
  };
}

const missing = requireComponents('keystone', 'octavia');
if (missing) {
  const skipped = suite('conformance: octavia');
  skipped.skip('needs keystone and octavia-api', () => {});
  skipped.run();
} else {
  const stack: OpenStack = await startOpenStack({ provisioningDelaySeconds: 0.1 });
  // Stop the servers after the conformance suite (which runs itself).
  const teardown = suite('octavia conformance teardown');
  teardown('stops keystone and octavia', async () => {
    await stack.stop();
  });
  runBackendConformance(
    async () => {
      const backend = backendFor(stack, { clusterName: 'conformance' });
      return {
        backend: requeueing(backend),
        writes: async () => (await stack.provider.requests()).filter((r) => r.method !== 'GET').length,
        observe: () => observeOctavia(stack, 'conformance'),
        faults: octaviaFaults(stack),
      };
    },
    { name: 'conformance: octavia (real Keystone + Octavia API)' },
  );
  teardown.run();
}
