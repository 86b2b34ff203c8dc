// A controller end to end, as an SDK user runs one from the fresh project: a real etcd and
// kube-apiserver (startControlPlane, binaries from `npx klb-testing apiserver`), the engine of
// @klb/core with addresses from @klb/ipam (its CRD installed, claims in the API) and
// @klb/testing's RecordingBackend; a Service type=LoadBalancer must get the pool's first address
// in status.loadBalancer.ingress, and be removed from the backend when deleted.
import { KubeClient, LoadBalancerController } from '@klb/core';
import { installAddressClaimCrd, KubeIpam, parsePoolConfig } from '@klb/ipam';
import { createNode, eventually, RecordingBackend, startControlPlane } from '@klb/testing';

const plane = await startControlPlane();
const client = new KubeClient(plane.kubeConfig);
const backend = new RecordingBackend();
let controller;
try {
  await installAddressClaimCrd(plane.kubeConfig);
  const allocator = new KubeIpam({
    kubeConfig: plane.kubeConfig,
    namespace: 'default',
    pools: parsePoolConfig({ pools: [{ name: 'e2e', addresses: ['198.51.100.16/28'] }] }),
  });
  controller = new LoadBalancerController({ kubeConfig: plane.kubeConfig, backend, allocator, healthPort: 0 });
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
  if (ip !== '198.51.100.16') throw new Error(`expected the pool's first address, got ${ip}`);
  await client.delete('/api/v1/namespaces/default/services/web');
  await eventually('the backend removes the load balancer', () => backend.ids().length === 0);
  console.log(`controller e2e: Service default/web served at ${ip} from the IPAM pool, removed after deletion`);
} finally {
  await controller?.stop();
  client.close();
  await plane.stop();
}
