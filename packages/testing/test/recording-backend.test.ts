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
