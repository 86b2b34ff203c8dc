import type { BackendContext, LoadBalancerBackend, LoadBalancerRef, LoadBalancerSpec } from '@klb/core';
import { type OpenStack, requireComponents, runBackendConformance, startOpenStack } from '@klb/testing';
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
      };
    },
    { name: 'conformance: octavia (real Keystone + Octavia API)' },
  );
  teardown.run();
}
