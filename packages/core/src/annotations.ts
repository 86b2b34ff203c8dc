import { TerminalError } from './errors.js';
import { readKubeCidr, readKubeIp } from './kube-ip.js';
import type { LoadBalancerOptions } from './spec.js';

/** Prefix of KLB's annotations; those under it are passed to backends in `spec.annotations`. */
export const ANNOTATION_PREFIX = 'klb.io/';

/** Annotations the engine itself reads. */
export const Annotations = {
  /** Comma-separated addresses requested for the load balancer. */
  loadBalancerIPs: 'klb.io/load-balancer-ips',
  /** Address pool to allocate from. */
  addressPool: 'klb.io/address-pool',
  /** Sharing key: owners with the same key may share an address. */
  allowSharedIP: 'klb.io/allow-shared-ip',
  /** `round-robin`, `least-connections` or `source-ip-hash`. */
  algorithm: 'klb.io/algorithm',
  /** `true` sends the PROXY protocol header to targets. */
  proxyProtocol: 'klb.io/proxy-protocol',
  /** Connect timeout in seconds. */
  connectTimeout: 'klb.io/connect-timeout-seconds',
  /** Idle timeout in seconds. */
  idleTimeout: 'klb.io/idle-timeout-seconds',
  /** HTTP path of the health check (L7 upstreams). */
  healthCheckPath: 'klb.io/health-check-path',
} as const;

function invalid(key: string, value: string, why: string): TerminalError {
  return new TerminalError(`annotation ${key}=${JSON.stringify(value.slice(0, 80))}: ${why}`, {
    reason: 'InvalidAnnotation',
    code: 'INVALID_ANNOTATION',
  });
}

/** The `klb.io/` annotations of an object. */
export function klbAnnotations(annotations: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(annotations ?? {})) if (k.startsWith(ANNOTATION_PREFIX)) out[k] = v;
  return out;
}

/**
 * Parses an IP address list (comma-separated) as Kubernetes validates new values ({@link readKubeIp});
 * throws a TerminalError naming `field` (an annotation or a field path).
 */
export function parseAddresses(field: string, value: string | undefined): string[] {
  if (value === undefined || value.trim() === '') return [];
  return value.split(',').map((raw) => {
    const a = raw.trim();
    const read = readKubeIp(a);
    if (!read.ok) {
      throw new TerminalError(`${field}: ${JSON.stringify(a.slice(0, 60))} ${read.error}`, {
        reason: 'InvalidAddress',
        code: 'INVALID_ADDRESS',
      });
    }
    return read.value;
  });
}

/** Validates CIDRs as Kubernetes validates new values ({@link readKubeCidr}); throws a TerminalError naming `what`. */
export function parseCidrs(what: string, values: readonly string[]): string[] {
  return values.map((raw, i) => {
    const v = raw.trim();
    const read = readKubeCidr(v);
    if (!read.ok) {
      throw new TerminalError(`${what}[${i}]: ${JSON.stringify(v.slice(0, 60))} ${read.error}`, {
        reason: 'InvalidSourceRange',
        code: 'INVALID_CIDR',
      });
    }
    return read.value;
  });
}

function seconds(key: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 86400) {
    throw invalid(key, value, 'must be a whole number of seconds from 1 to 86400');
  }
  return Number(value);
}

/** The load balancer options from an object's annotations (and its session affinity). */
export function parseOptions(
  annotations: Record<string, string>,
  sourceRanges: readonly string[],
  sessionAffinityTimeout: number | undefined,
): LoadBalancerOptions {
  const algorithm = annotations[Annotations.algorithm] ?? 'round-robin';
  if (algorithm !== 'round-robin' && algorithm !== 'least-connections' && algorithm !== 'source-ip-hash') {
    throw invalid(Annotations.algorithm, algorithm, 'must be round-robin, least-connections or source-ip-hash');
  }
  const proxy = annotations[Annotations.proxyProtocol];
  if (proxy !== undefined && proxy !== 'true' && proxy !== 'false') {
    throw invalid(Annotations.proxyProtocol, proxy, 'must be true or false');
  }
  const connect = seconds(Annotations.connectTimeout, annotations[Annotations.connectTimeout]);
  const idle = seconds(Annotations.idleTimeout, annotations[Annotations.idleTimeout]);
  return {
    algorithm,
    proxyProtocol: proxy === 'true',
    sourceRanges,
    timeouts: { ...(connect ? { connectSeconds: connect } : {}), ...(idle ? { idleSeconds: idle } : {}) },
    ...(sessionAffinityTimeout !== undefined ? { sessionAffinity: { timeoutSeconds: sessionAffinityTimeout } } : {}),
  };
}

/** Validates a sharing key or pool name (a DNS label-like token). */
export function parseToken(key: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!/^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/.test(value)) {
    throw invalid(key, value, 'must be lower-case letters, digits, ".", "_" or "-" (at most 63)');
  }
  return value;
}
