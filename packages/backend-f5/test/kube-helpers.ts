// Kubernetes helpers of the Service-driven F5 suites.
import type { KubeClient, KubeObject } from '@klb/core';

export async function waitUntil<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 60_000,
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
export async function namespace(client: KubeClient, prefix: string): Promise<string> {
  const name = `${prefix}-${process.pid}-${++counter}`;
  await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  return name;
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

export async function createNode(client: KubeClient, name: string, address: string): Promise<void> {
  await client.create('/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name } } as KubeObject);
  await setNodeStatus(client, name, address, true);
}

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
