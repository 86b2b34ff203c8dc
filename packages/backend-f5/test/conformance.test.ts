import { F5As3Backend, F5Backend, IControlClient } from '@klb/backend-f5';
import { requireComponents, runBackendConformance, startF5Emulator } from '@klb/testing';
import { suite } from 'uvu';

const missing = requireComponents('openssl');
if (!missing) {
  const f5 = await startF5Emulator({ partitions: ['klb'] });
  const client = () => new IControlClient({ host: f5.host, username: 'admin', password: 'admin', ca: f5.ca });
  // Stop the emulator after the conformance suites (each runs itself).
  const teardown = suite('F5 conformance teardown');
  teardown('stops the emulator', async () => {
    await f5.stop();
  });
  runBackendConformance(
    async () => {
      const backend = new F5Backend({ client: client(), partition: 'klb', snapshotMaxAgeMs: 0 });
      return { backend, writes: () => f5.calls.counts().writes, cleanup: () => backend.close() };
    },
    { name: 'conformance: f5' },
  );
  runBackendConformance(
    async () => {
      const backend = new F5As3Backend({ client: client(), tenant: 'klb_as3', taskPollMs: 5 });
      return { backend, writes: () => f5.calls.counts().writes, cleanup: () => backend.close() };
    },
    { name: 'conformance: f5 (AS3 mode)' },
  );
  teardown.run();
} else {
  const skipped = suite('conformance: f5');
  skipped.skip('needs openssl for the emulator', () => undefined);
  skipped.run();
}
