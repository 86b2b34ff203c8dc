// Shared helpers of the core suites: a control plane, namespaces, nodes, Services, waiting.
import type { KubeClient, KubeObject } from '@klb/core';
import { createTestNamespace } from '@klb/testing';

const LB_CLASS = 'klb.io/load-balancer';

export { createNode, eventually as waitUntil, setNodeStatus } from '@klb/testing';

export function namespace(client: KubeClient, prefix = 'core'): Promise<string> {
  return createTestNamespace(client, prefix);
}

export function lbService(
  name: string,
  ports: Array<{ port: number; protocol?: string; name?: string }>,
  extra: { annotations?: Record<string, string>; spec?: Record<string, unknown> } = {},
): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, ...(extra.annotations ? { annotations: extra.annotations } : {}) },
    spec: {
      type: 'LoadBalancer',
      loadBalancerClass: LB_CLASS,
      selector: { app: name },
      ports: ports.map((p) => ({
        name: p.name ?? `p${p.port}`,
        port: p.port,
        protocol: p.protocol ?? 'TCP',
        targetPort: 8080,
      })),
      ...extra.spec,
    },
  } as KubeObject;
}

export function endpointSlice(
  service: string,
  endpoints: Array<{ ip: string; node: string; ready?: boolean }>,
  port = 8080,
): KubeObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${service}-slice`, labels: { 'kubernetes.io/service-name': service } },
    addressType: 'IPv4',
    endpoints: endpoints.map((e) => ({ addresses: [e.ip], nodeName: e.node, conditions: { ready: e.ready ?? true } })),
    ports: endpoints.length ? [{ name: 'p80', port, protocol: 'TCP' }] : [],
  } as KubeObject;
}

export async function events(
  client: KubeClient,
  ns: string,
  name: string,
): Promise<Array<{ reason: string; type: string; message: string }>> {
  const list = await client.list<
    KubeObject & { reason: string; type: string; message: string; involvedObject: { name: string } }
  >(`/api/v1/namespaces/${ns}/events`);
  return list.items
    .filter((e) => e.involvedObject.name === name)
    .map((e) => ({ reason: e.reason, type: e.type, message: e.message }));
}
