// The conformance suite as an SDK user runs it, against @klb/testing's in-memory backend.
import { RecordingBackend, runBackendConformance } from '@klb/testing';

runBackendConformance(async () => ({ backend: new RecordingBackend() }), { name: 'conformance: fresh project' });
