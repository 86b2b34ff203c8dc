// A controller end to end, as an SDK user runs one from the fresh project: a real etcd and
// kube-apiserver (startControlPlane, binaries from `npx klb-testing apiserver`), the engine of
// @klb/core with @klb/testing's RecordingBackend, and a Service type=LoadBalancer that must get
// its address in status.loadBalancer.ingress, then be removed from the backend when deleted.
import { KubeClient, LoadBalancerController } from '@klb/core';
import { createNode, eventually, RecordingBackend, startControlPlane } from '@klb/testing';

const plane = await startControlPlane();
const client = new KubeClient(plane.kubeConfig);
const backend = new RecordingBackend({ capabilities: { allocatesAddresses: true } });
const controller = new LoadBalancerController({ kubeConfig: plane.kubeConfig, backend, healthPort: 0 });
try {
  await createNode(client, 'node-a', '192.0.2.11');
  await controller.start();
  await client.create('/api/v1/namespaces/default/services', {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web' },
    spec: {
      type: 'LoadBalancer',
      loadBalancerClass: 'klb.io/load-balancer',
      selector: { app: 'web' },
      ports: [{ name: 'http', port: 80, targetPort: 8080 }],
    },
  });
  const ip = await eventually('the Service gets an address', async () => {
    const service = await client.get('/api/v1/namespaces/default/services/web');
    return service.status?.loadBalancer?.ingress?.[0]?.ip;
  });
  await client.delete('/api/v1/namespaces/default/services/web');
  await eventually('the backend removes the load balancer', () => backend.ids().length === 0);
  console.log(`controller e2e: Service default/web served at ${ip}, removed after deletion`);
} finally {
  await controller.stop();
  client.close();
  await plane.stop();
}
