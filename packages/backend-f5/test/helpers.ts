import type { Logger } from '@klb/core';

/** A logger that records every line, to check what gets logged. */
export function recordingLogger(): { logger: Logger; lines: unknown[] } {
  const lines: unknown[] = [];
  const make = (bindings: Record<string, unknown>): Logger => {
    const log =
      (level: string) =>
      (obj: object | string, msg?: string): void => {
        lines.push({ level, bindings, obj, msg });
      };
    return {
      debug: log('debug'),
      info: log('info'),
      warn: log('warn'),
      error: log('error'),
      child: (more) => make({ ...bindings, ...more }),
    };
  };
  return { logger: make({}), lines };
}

import type { HealthCheck, LoadBalancerSpec, Protocol } from '@klb/core';

/** Options of {@link makeSpec}. */
export interface SpecOptions {
  namespace?: string;
  name?: string;
  address?: string;
  ports?: number[];
  protocol?: Protocol;
  nodes?: string[];
  notReady?: string[];
  healthCheck?: HealthCheck;
}

/** A Service-like spec: one listener per port, node targets on nodePort 30000+port. */
export function makeSpec(o: SpecOptions = {}): LoadBalancerSpec {
  const namespace = o.namespace ?? 'default';
  const name = o.name ?? 'web';
  const ports = o.ports ?? [80];
  const protocol = o.protocol ?? 'TCP';
  const nodes = o.nodes ?? ['10.0.0.1', '10.0.0.2'];
  return {
    ref: { id: `service/${namespace}/${name}`, kind: 'Service', namespace, name },
    addresses: [o.address ?? '192.0.2.10'],
    requestedAddresses: [],
    ipFamilies: [o.address?.includes(':') ? 'IPv6' : 'IPv4'],
    listeners: ports.map((port) => ({
      name: `${protocol.toLowerCase()}-${port}`,
      port,
      protocol,
      upstream: `up-${port}`,
    })),
    upstreams: ports.map((port) => ({
      name: `up-${port}`,
      targets: nodes.map((address) => ({
        kind: 'node' as const,
        address,
        port: 30000 + port,
        ready: !(o.notReady ?? []).includes(address),
      })),
      ...(o.healthCheck ? { healthCheck: o.healthCheck } : {}),
    })),
    options: { algorithm: 'round-robin', proxyProtocol: false, sourceRanges: [], timeouts: {} },
    annotations: {},
  };
}
