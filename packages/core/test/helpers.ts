// Shared helpers of the core suites: a control plane, namespaces, nodes, Services, waiting.
import { type KubeClient, type KubeObject, silentLogger } from '@klb/core';
import type { ControlPlane } from '@klb/testing';

export const LB_CLASS = 'klb.io/load-balancer';

export async function waitUntil<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await fn();
      if (value !== undefined && value !== false) return value as T;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

let counter = 0;
export async function namespace(client: KubeClient, prefix = 'core'): Promise<string> {
  const name = `${prefix}-${process.pid}-${++counter}`;
  await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  return name;
}

export async function createNode(client: KubeClient, name: string, address: string, ready = true): Promise<void> {
  await client.create('/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name } } as KubeObject);
  await setNodeStatus(client, name, address, ready);
}

export async function setNodeStatus(client: KubeClient, name: string, address: string, ready: boolean): Promise<void> {
  await client.patch(`/api/v1/nodes/${name}/status`, {
    status: {
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', reason: 'Test', message: 'set by test' }],
      addresses: [
        { type: 'InternalIP', address },
        { type: 'Hostname', address: name },
      ],
    },
  });
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

export const logger = process.env.KLB_TEST_LOG ? undefined : silentLogger;

export type { ControlPlane };
