// The shared backend conformance suite against the keepalived-nginx backend and a real
// kube-apiserver, in both publish modes; writes are counted at the Kubernetes client.
import { KeepalivedNginxBackend } from '@klb/backend-keepalived-nginx';
import { KubeClient } from '@klb/core';
import { type ControlPlane, requireComponents, runBackendConformance, startControlPlane } from '@klb/testing';
import { suite } from 'uvu';

const missing = requireComponents('kube-apiserver', 'etcd');
const teardown = suite('keepalived-nginx conformance teardown');
let plane: ControlPlane | undefined;
if (!missing) {
  plane = await startControlPlane();
  teardown('stops the control plane', async () => {
    await plane?.stop();
  });

  let n = 0;
  for (const mode of ['per-load-balancer', 'daemon-configmap'] as const) {
    runBackendConformance(
      async () => {
        const cp = plane as ControlPlane;
        let writes = 0;
        const client = new KubeClient(cp.kubeConfig, { onWrite: () => writes++ });
        const namespace = `knginx-conf-${process.pid}-${++n}`;
        await client.create('/api/v1/namespaces', { metadata: { name: namespace } });
        writes = 0;
        const backend = new KeepalivedNginxBackend({ client, namespace, mode });
        return {
          backend,
          writes: () => writes,
          cleanup: async () => {
            await backend.close();
            await client.delete(`/api/v1/namespaces/${namespace}`);
            client.close();
          },
        };
      },
      { name: `conformance: keepalived-nginx (${mode})` },
    );
  }
}
teardown.run();
