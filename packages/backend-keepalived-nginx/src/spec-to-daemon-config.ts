import type { HttpSettings, LoadBalancerSpec } from '@klb/core';
import {
  DAEMON_CONFIG_API_VERSION,
  DAEMON_SERVICE_CONFIG_KIND,
  type DaemonHttpOptions,
  type DaemonListener,
  type DaemonServiceConfig,
  type DaemonUpstream,
  type DaemonVrrp,
  daemonConfigVersion,
  validateDaemonServiceConfig,
} from './daemon-config.js';
import { validIp } from './validate-values.js';

/** Passive health defaults for upstreams whose spec has no health check. */
export interface PassiveHealthDefaults {
  /** nginx `max_fails`; default 3. */
  readonly maxFails: number;
  /** nginx `fail_timeout` in seconds; default 10. */
  readonly failTimeoutSeconds: number;
}

const DEFAULTS: PassiveHealthDefaults = { maxFails: 3, failTimeoutSeconds: 10 };

const seconds = (n: number | undefined): number | undefined => (n === undefined ? undefined : Math.ceil(n));

/** The daemon's HTTP options from the spec's (timeouts rounded up to whole seconds); undefined when none is set. */
function daemonHttpOptions(http: HttpSettings | undefined): DaemonHttpOptions | undefined {
  if (http === undefined) return undefined;
  const options: DaemonHttpOptions = {
    ...(http.maxBodyBytes !== undefined ? { maxBodyBytes: http.maxBodyBytes } : {}),
    ...(http.maxHeaderBytes !== undefined ? { maxHeaderBytes: http.maxHeaderBytes } : {}),
    ...(http.connectTimeoutSeconds !== undefined ? { connectSeconds: Math.ceil(http.connectTimeoutSeconds) } : {}),
    ...(http.readTimeoutSeconds !== undefined ? { readSeconds: Math.ceil(http.readTimeoutSeconds) } : {}),
    ...(http.sendTimeoutSeconds !== undefined ? { sendSeconds: Math.ceil(http.sendTimeoutSeconds) } : {}),
    ...(http.upgradeTimeoutSeconds !== undefined ? { upgradeSeconds: Math.ceil(http.upgradeTimeoutSeconds) } : {}),
    ...(http.buffering !== undefined ? { buffering: http.buffering } : {}),
  };
  return Object.keys(options).length > 0 ? options : undefined;
}

/**
 * Builds the validated daemon config of a load balancer from its backend-neutral spec. Addresses
 * are written canonically; a spec health check becomes nginx's passive health (`max_fails` =
 * unhealthy threshold, `fail_timeout` = interval × threshold), since nginx has no active checks;
 * TLS certificates are carried with their material, a TLS passthrough listener's SNI routes
 * as they are, and the HTTP settings (`options.http`) with timeouts in whole seconds.
 *
 * @throws InvalidDaemonConfigError (a `TerminalError`) when any value cannot be rendered safely.
 */
export function daemonConfigFromSpec(
  spec: LoadBalancerSpec,
  vrrp: DaemonVrrp,
  defaults: PassiveHealthDefaults = DEFAULTS,
): DaemonServiceConfig {
  const upstreams: DaemonUpstream[] = spec.upstreams.map((u, i) => {
    const hc = u.healthCheck;
    return {
      name: u.name,
      targets: u.targets.map((t, j) => ({
        address: validIp(t.address, `upstreams[${i}].targets[${j}].address`),
        port: t.port,
        ready: t.ready,
      })),
      maxFails: hc ? Math.min(100, Math.max(1, hc.unhealthyThreshold)) : defaults.maxFails,
      failTimeoutSeconds: hc
        ? Math.min(604_800, Math.max(1, Math.ceil(hc.intervalSeconds * hc.unhealthyThreshold)))
        : defaults.failTimeoutSeconds,
    };
  });
  const listeners: DaemonListener[] = spec.listeners.map((l) => ({
    name: l.name,
    port: l.port,
    protocol: l.protocol,
    ...(l.upstream !== undefined ? { upstream: l.upstream } : {}),
    ...(l.routes !== undefined
      ? {
          routes: l.routes.map((r) => ({
            ...(r.host !== undefined ? { host: r.host } : {}),
            ...(r.path !== undefined ? { path: r.path } : {}),
            pathType: r.pathType,
            upstream: r.upstream,
          })),
        }
      : {}),
    ...(l.tls !== undefined
      ? {
          tls: l.tls.map((t, i) => ({
            name: `cert-${i}`,
            secret: { namespace: t.secret.namespace, name: t.secret.name },
            hosts: [...t.hosts],
            certificate: t.certificate,
            privateKey: t.privateKey,
          })),
        }
      : {}),
    ...(l.redirectToHttpsPort !== undefined ? { redirectToHttpsPort: l.redirectToHttpsPort } : {}),
    ...(l.sniRoutes !== undefined
      ? {
          sniRoutes: l.sniRoutes.map((r) => ({
            ...(r.host !== undefined ? { host: r.host } : {}),
            upstream: r.upstream,
          })),
        }
      : {}),
  }));
  const connect = seconds(spec.options.timeouts.connectSeconds);
  const idle = seconds(spec.options.timeouts.idleSeconds);
  const http = daemonHttpOptions(spec.options.http);
  const draft = {
    apiVersion: DAEMON_CONFIG_API_VERSION,
    kind: DAEMON_SERVICE_CONFIG_KIND,
    id: spec.ref.id,
    addresses: spec.addresses.map((a, i) => validIp(a, `addresses[${i}]`)),
    listeners,
    upstreams,
    options: {
      algorithm: spec.options.algorithm,
      sessionAffinity: spec.options.sessionAffinity !== undefined,
      proxyProtocol: spec.options.proxyProtocol,
      sourceRanges: [...spec.options.sourceRanges],
      timeouts: {
        ...(connect !== undefined ? { connectSeconds: connect } : {}),
        ...(idle !== undefined ? { idleSeconds: idle } : {}),
      },
      ...(http ? { http } : {}),
      vrrp: { group: vrrp.group, vrid: vrrp.vrid },
    },
  } as const;
  return validateDaemonServiceConfig({ ...draft, version: daemonConfigVersion(draft) });
}
