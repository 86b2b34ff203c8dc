// Kubernetes helpers of the Service-driven F5 suites.
import type { KubeObject } from '@klb/core';

export { createNode, createTestNamespace as namespace, eventually as waitUntil, setNodeStatus } from '@klb/testing';

export function lbService(
  name: string,
  ports: number[],
  lbClass: string,
  extra: Record<string, unknown> = {},
): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name },
    spec: {
      type: 'LoadBalancer',
      loadBalancerClass: lbClass,
      selector: { app: name },
      ports: ports.map((port) => ({ name: `p${port}`, port, protocol: 'TCP', targetPort: 8080 })),
      ...extra,
    },
  } as KubeObject;
}
