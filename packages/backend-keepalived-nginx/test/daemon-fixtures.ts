// Shared fixtures of the daemon, VRRP and failover tests: daemon configs built by hand in the
// controller's format, and small real backend servers.
import http from 'node:http';
import {
  DAEMON_CONFIG_API_VERSION,
  DAEMON_SERVICE_CONFIG_KIND,
  type DaemonServiceConfig,
  daemonConfigVersion,
} from '@klb/backend-keepalived-nginx';
import { type KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';

/** Options of {@link httpService}. */
export interface ServiceShape {
  /** Load balancer id, e.g. `service/default/web`. */
  id: string;
  /** The VIPs. */
  addresses: string[];
  /** The HTTP listener's port. */
  port: number;
  /** Backend `host:port`s. */
  targets: { address: string; port: number }[];
  /** VRRP group and router id (default `default`/51). */
  vrrp?: { group: string; vrid: number };
  /** Listener protocol (default HTTP). */
  protocol?: 'HTTP' | 'TCP';
  /** Timeouts (default a 2 s connect timeout). */
  timeouts?: DaemonServiceConfig['options']['timeouts'];
}

/** A one-listener load balancer in the daemon config format, with its content version set. */
export function httpService(shape: ServiceShape): DaemonServiceConfig {
  const config: Omit<DaemonServiceConfig, 'version'> = {
    apiVersion: DAEMON_CONFIG_API_VERSION,
    kind: DAEMON_SERVICE_CONFIG_KIND,
    id: shape.id,
    addresses: shape.addresses,
    listeners: [{ name: 'web', port: shape.port, protocol: shape.protocol ?? 'HTTP', upstream: 'web' }],
    upstreams: [
      {
        name: 'web',
        targets: shape.targets.map((t) => ({ ...t, ready: true })),
        maxFails: 1,
        failTimeoutSeconds: 1,
      },
    ],
    options: {
      algorithm: 'round-robin',
      sessionAffinity: false,
      proxyProtocol: false,
      sourceRanges: [],
      timeouts: shape.timeouts ?? { connectSeconds: 2 },
      vrrp: shape.vrrp ?? { group: 'default', vrid: 51 },
    },
  };
  return { ...config, version: daemonConfigVersion(config) };
}

/**
 * Gives the user `klb-daemon` (a static-token user of the test control plane) in `namespace` only
 * the rights the reference DaemonSet gets: read Secrets, read and write ConfigMaps.
 */
export async function grantDaemonRole(kubeConfig: KubeConfig, namespace: string): Promise<void> {
  const rbac = kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  await rbac.createNamespacedRole({
    namespace,
    body: {
      metadata: { name: 'klb-daemon' },
      rules: [
        { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch', 'create', 'update'] },
      ],
    },
  });
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name: 'klb-daemon' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'klb-daemon' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'klb-daemon' }],
    },
  });
}

/** An HTTP server source: answers every request with `name`, for running inside a namespace with `node -e`. */
export function backendScript(): string {
  return `
    const [host, port, name] = process.argv.slice(1);
    require('node:http').createServer((req, res) => res.end(name)).listen(Number(port), host);
  `;
}

/** A real HTTP server on 127.0.0.1 in this process that answers `name`; returns its port and a closer. */
export async function httpBackend(name: string): Promise<{ port: number; close: () => Promise<void> }> {
  const server = http.createServer((_req, res) => res.end(name));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Polls `check` every 50 ms until it returns a value (not undefined); throws after `tries`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, tries = 400): Promise<T> {
  let last: unknown;
  for (let i = 0; i < tries; i++) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`gave up waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}
