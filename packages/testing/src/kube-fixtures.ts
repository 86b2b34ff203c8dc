import type { KubeClient, KubeObject } from '@klb/core';

/**
 * Calls `fn` every 50 ms until it returns a value other than `undefined` or `false` (errors count
 * as "not yet"), and returns that value; throws naming `what` (and the last error) after
 * `timeoutMs` (default 60000).
 */
export async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
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

let namespaces = 0;

/** Creates a namespace named `<prefix>-<pid>-<n>`, unique in this process, and returns its name. */
export async function createTestNamespace(client: KubeClient, prefix = 'test'): Promise<string> {
  const name = `${prefix}-${process.pid}-${++namespaces}`;
  await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  return name;
}

/**
 * Sets a Node's status as a kubelet would: the `Ready` condition and its addresses (`InternalIP`
 * `address`, `Hostname` the node's name). There is no kubelet in the test control plane.
 */
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

/** Creates a Node and reports it Ready (or not) at `address`. */
export async function createNode(client: KubeClient, name: string, address: string, ready = true): Promise<void> {
  await client.create('/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name } } as KubeObject);
  await setNodeStatus(client, name, address, ready);
}
