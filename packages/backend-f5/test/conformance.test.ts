import { F5Backend, IControlClient } from '@klb/backend-f5';
import { runBackendConformance, startF5Emulator } from '@klb/testing';
import { suite } from 'uvu';

const f5 = await startF5Emulator({ partitions: ['klb'] });
// Stop the emulator after the conformance suite (which runs itself).
const teardown = suite('F5 conformance teardown');
teardown('stops the emulator', async () => {
  await f5.stop();
});

runBackendConformance(
  async () => {
    const client = new IControlClient({ host: f5.host, username: 'admin', password: 'admin', ca: f5.ca });
    const backend = new F5Backend({ client, partition: 'klb', snapshotMaxAgeMs: 0 });
    return {
      backend,
      writes: () => f5.calls.counts().writes,
      cleanup: () => backend.close(),
    };
  },
  { name: 'conformance: f5' },
);
teardown.run();
