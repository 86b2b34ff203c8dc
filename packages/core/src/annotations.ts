import { TerminalError } from './errors.js';
import { readKubeCidr, readKubeIp } from './kube-ip.js';
import type { HttpSettings, LoadBalancerOptions } from './spec.js';

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
  /** HTTP listeners: largest request body (`10m`, `512k`, bytes; `0` is no limit). */
  proxyBodySize: 'klb.io/proxy-body-size',
  /** HTTP listeners: seconds allowed to connect to a target. */
  proxyConnectTimeout: 'klb.io/proxy-connect-timeout',
  /** HTTP listeners: seconds a target may stay silent while its response is read. */
  proxyReadTimeout: 'klb.io/proxy-read-timeout',
  /** HTTP listeners: seconds a target may take to accept more of the request. */
  proxySendTimeout: 'klb.io/proxy-send-timeout',
  /** HTTP listeners: seconds an upgraded (WebSocket) connection may stay idle. */
  proxyUpgradeTimeout: 'klb.io/proxy-upgrade-timeout',
  /** HTTP listeners: `on` buffers request and response bodies, `off` streams them. */
  proxyBuffering: 'klb.io/proxy-buffering',
  /** HTTP listeners: longest request line or header field (`16k`, bytes). */
  clientMaxHeaderSize: 'klb.io/client-max-header-size',
} as const;

/** The annotations that set {@link HttpSettings}: they apply to HTTP and HTTPS listeners only. */
const HTTP_ANNOTATIONS = [
  Annotations.proxyBodySize,
  Annotations.proxyConnectTimeout,
  Annotations.proxyReadTimeout,
  Annotations.proxySendTimeout,
  Annotations.proxyUpgradeTimeout,
  Annotations.proxyBuffering,
  Annotations.clientMaxHeaderSize,
] as const;

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

const SIZE_UNITS = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 } as const;

/**
 * A size as nginx writes one (`0`, `65536`, `512k`, `10m`, `1g`, the unit in either case) in
 * bytes, from `min` to `max`.
 */
function size(key: string, value: string | undefined, min: number, max: number, range: string): number | undefined {
  if (value === undefined) return undefined;
  const match = /^(\d{1,13})([kKmMgG]?)$/.exec(value);
  const bytes = match ? Number(match[1]) * SIZE_UNITS[(match[2] ?? '').toLowerCase() as keyof typeof SIZE_UNITS] : NaN;
  if (!(bytes >= min && bytes <= max)) {
    throw invalid(key, value, `must be a size in bytes, or with k, m or g (such as 10m), ${range}`);
  }
  return bytes;
}

/**
 * The HTTP proxy settings from an object's annotations, each value validated (a TerminalError
 * with reason `InvalidAnnotation` names the annotation); undefined when none is set.
 */
export function parseHttpSettings(annotations: Record<string, string>): HttpSettings | undefined {
  const buffering = annotations[Annotations.proxyBuffering];
  if (buffering !== undefined && buffering !== 'on' && buffering !== 'off') {
    throw invalid(Annotations.proxyBuffering, buffering, 'must be on or off');
  }
  const settings: Record<keyof HttpSettings, number | boolean | undefined> = {
    maxBodyBytes: size(
      Annotations.proxyBodySize,
      annotations[Annotations.proxyBodySize],
      0,
      1024 ** 4,
      'from 0 (no limit) to 1024g',
    ),
    maxHeaderBytes: size(
      Annotations.clientMaxHeaderSize,
      annotations[Annotations.clientMaxHeaderSize],
      1024,
      1024 ** 2,
      'from 1k to 1m',
    ),
    connectTimeoutSeconds: seconds(Annotations.proxyConnectTimeout, annotations[Annotations.proxyConnectTimeout]),
    readTimeoutSeconds: seconds(Annotations.proxyReadTimeout, annotations[Annotations.proxyReadTimeout]),
    sendTimeoutSeconds: seconds(Annotations.proxySendTimeout, annotations[Annotations.proxySendTimeout]),
    upgradeTimeoutSeconds: seconds(Annotations.proxyUpgradeTimeout, annotations[Annotations.proxyUpgradeTimeout]),
    buffering: buffering === undefined ? undefined : buffering === 'on',
  };
  const set = Object.entries(settings).filter(([, v]) => v !== undefined);
  return set.length ? (Object.fromEntries(set) as HttpSettings) : undefined;
}

/**
 * Refuses the HTTP annotations on an object whose load balancer has no HTTP listener (a
 * Service, an original ConfigMap without `host`/`path`): they would change nothing.
 */
export function refuseHttpAnnotations(annotations: Record<string, string>, what: string): void {
  const key = HTTP_ANNOTATIONS.find((k) => annotations[k] !== undefined);
  if (key === undefined) return;
  throw invalid(
    key,
    annotations[key] as string,
    `applies to HTTP listeners (Ingress, Gateway, an original ConfigMap with host or path) and ${what} has only TCP/UDP ports; their timeouts are ${Annotations.connectTimeout} and ${Annotations.idleTimeout}`,
  );
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
  const http = parseHttpSettings(annotations);
  return {
    algorithm,
    proxyProtocol: proxy === 'true',
    sourceRanges,
    timeouts: { ...(connect ? { connectSeconds: connect } : {}), ...(idle ? { idleSeconds: idle } : {}) },
    ...(sessionAffinityTimeout !== undefined ? { sessionAffinity: { timeoutSeconds: sessionAffinityTimeout } } : {}),
    ...(http ? { http } : {}),
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
