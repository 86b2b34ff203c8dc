import { type BackendContext, type LoadBalancerSpec, RetryAfterError } from '@klb/core';
import { RecordingBackend, runBackendConformance } from '@klb/testing';

// The in-memory recording backend is the reference implementation of the contract.
runBackendConformance(async () => ({ backend: new RecordingBackend() }), { name: 'conformance: recording (L4+L7)' });
runBackendConformance(
  async () => ({
    backend: new RecordingBackend({
      capabilities: { protocols: ['TCP'], l7: false, tls: false, allocatesAddresses: true },
    }),
  }),
  { name: 'conformance: recording (TCP only, allocates addresses)' },
);

/** A backend that provisions asynchronously: every first ensure of a spec answers "come back later". */
class ProvisioningBackend extends RecordingBackend {
  readonly #seen = new Set<string>();
  override async ensure(spec: LoadBalancerSpec, ctx: BackendContext) {
    const key = JSON.stringify(spec);
    if (!this.#seen.has(key)) {
      this.#seen.add(key);
      throw new RetryAfterError('provisioning', 20);
    }
    return super.ensure(spec, ctx);
  }
}
runBackendConformance(async () => ({ backend: new ProvisioningBackend() }), {
  name: 'conformance: a provisioning backend is driven like the engine drives it (RetryAfterError)',
});
