import { type BackendContext, isRetryAfterError, type LoadBalancerSpec, silentLogger } from '@klb/core';
import type { OpenStack } from '@klb/testing';
import { OctaviaBackend, type OctaviaBackendOptions, type OpenStackConfig } from '../src/index.js';

/** A backend context for direct calls. */
export const ctx = (): BackendContext => ({ signal: new AbortController().signal, log: silentLogger });

/** Password config of the stack's ordinary user, by names. */
export function userConfig(os: OpenStack, overrides: Partial<OpenStackConfig> = {}): OpenStackConfig {
  return {
    authUrl: os.authUrl,
    credentials: {
      type: 'password',
      username: os.user.username,
      password: os.user.password,
      userDomainName: 'Default',
      projectName: os.user.projectName,
      projectDomainName: 'Default',
    },
    region: os.region,
    subnetId: os.subnetId,
    ...overrides,
  };
}

/** An Octavia backend for the stack's user with fast polling. */
export function backendFor(os: OpenStack, options: Partial<OctaviaBackendOptions> = {}): OctaviaBackend {
  return new OctaviaBackend({
    config: userConfig(os),
    clusterName: 'test',
    poll: { initialMs: 100, factor: 1.3, maxMs: 1000 },
    ...options,
  });
}

/**
 * Calls `fn` until it stops throwing RetryAfterError, waiting each error's `retryAfterMs` in
 * between, as the engine's requeue does. Returns the result and how many RetryAfterErrors came.
 */
export async function drive<T>(fn: () => Promise<T>, maxAttempts = 400): Promise<{ value: T; retries: number }> {
  for (let retries = 0; retries < maxAttempts; retries++) {
    try {
      return { value: await fn(), retries };
    } catch (err) {
      if (!isRetryAfterError(err)) throw err;
      await new Promise((resolve) => setTimeout(resolve, err.retryAfterMs));
    }
  }
  throw new Error(`still retrying after ${maxAttempts} attempts`);
}

let counter = 0;

/** A Service-like spec with one TCP listener per port, node targets and a TCP health check. */
export function specFor(
  name: string,
  ports: readonly number[],
  nodes: readonly string[] = ['192.0.2.11', '192.0.2.12'],
  extra: Partial<LoadBalancerSpec> = {},
): LoadBalancerSpec {
  counter++;
  const namespace = 'octavia';
  return {
    ref: { id: `service/${namespace}/${name}`, kind: 'Service', namespace, name, uid: `uid-${counter}` },
    addresses: [],
    requestedAddresses: [],
    ipFamilies: ['IPv4'],
    listeners: ports.map((port) => ({ name: `tcp-${port}`, port, protocol: 'TCP' as const, upstream: `tcp-${port}` })),
    upstreams: ports.map((port) => ({
      name: `tcp-${port}`,
      targets: nodes.map((address, i) => ({
        kind: 'node' as const,
        address,
        port: 30000 + port,
        ready: true,
        nodeName: `node-${i}`,
      })),
      healthCheck: {
        type: 'tcp' as const,
        intervalSeconds: 5,
        timeoutSeconds: 3,
        unhealthyThreshold: 3,
        healthyThreshold: 2,
      },
    })),
    options: { algorithm: 'round-robin', proxyProtocol: false, sourceRanges: [], timeouts: {} },
    annotations: {},
    ...extra,
  };
}

/** What a Service suite starts, each part possibly absent (a failed start, a skipped suite). */
export interface SuiteParts {
  /** The controller (stopped first). */
  readonly controller?: { stop(): Promise<void> } | undefined;
  /** The Kubernetes client. */
  readonly client?: { close(): void } | undefined;
  /** The OpenStack servers. */
  readonly stack?: OpenStack | undefined;
  /** The control plane (stopped last). */
  readonly plane?: { stop(): Promise<void> } | undefined;
}

/** Stops everything a Service suite started, newest first. */
export async function stopSuite(parts: SuiteParts): Promise<void> {
  await parts.controller?.stop();
  parts.client?.close();
  await parts.stack?.stop();
  await parts.plane?.stop();
}
