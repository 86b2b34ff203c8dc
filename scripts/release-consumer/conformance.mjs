// The conformance suite as an SDK user runs it, against @klb/testing's in-memory backend with
// its observe() and fault hooks.
import { RecordingBackend, runBackendConformance } from '@klb/testing';

runBackendConformance(
  async () => {
    const backend = new RecordingBackend();
    return { backend, observe: () => backend.observe(), faults: backend.faults };
  },
  { name: 'conformance: fresh project' },
);
