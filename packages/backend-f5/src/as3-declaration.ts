import {
  boundedName,
  type LoadBalancerRef,
  type LoadBalancerSpec,
  parseLoadBalancerId,
  TerminalError,
} from '@klb/core';
import { affinitySeconds, baseName, desiredLoadBalancer } from './desired-state.js';
import { canonicalAddress } from './f5-path.js';

/** The AS3 schema version KLB writes. */
export const as3SchemaVersion = '3.56.0';

/** An AS3 Application (one per load balancer), as JSON. */
export type As3Application = Record<string, unknown>;

/** Settings of {@link as3Application}. */
export interface As3Settings {
  /** The tenant (a partition). */
  readonly tenant: string;
  /** Controller id, written as the application's `remark` (`klb:<controllerId>`). */
  readonly controllerId: string;
  /** `auto` (SNAT automap, the default) or `none`. */
  readonly snat: 'auto' | 'none';
}

/** The application name of a load balancer (the same base name as LTM mode). */
export function as3ApplicationName(ref: LoadBalancerRef): string {
  return baseName(ref);
}

/** The `remark` that marks an application as this controller's. */
export function as3Remark(controllerId: string): string {
  return `klb:${controllerId}`;
}

/** Longest AS3 `label` (F5's schema). */
const as3LabelMax = 64;

/** The application constant that holds a load balancer id too long for the label. */
const as3RefConstant = 'klbRef';

/**
 * The load balancer an application KLB declared belongs to: the id in its constants when it has
 * one there, else its label; undefined when neither holds an id.
 */
export function as3ApplicationRef(app: Readonly<Record<string, unknown>>): LoadBalancerRef | undefined {
  const constants = app.constants;
  const kept =
    constants !== null && typeof constants === 'object'
      ? (constants as Record<string, unknown>)[as3RefConstant]
      : undefined;
  const id = typeof kept === 'string' ? kept : app.label;
  return typeof id === 'string' ? parseLoadBalancerId(id) : undefined;
}

/** The name of the application's `Persist` object (listener names have no `_`, so it never clashes). */
export const as3PersistName = 'source_addr_persist';

/**
 * The AS3 Application for a spec: per listener a `Service_TCP`/`Service_UDP`/`Service_HTTP`
 * named after the listener, a `Pool` `<listener>_pool` with the ready node targets, and an HTTP
 * `Monitor` `<listener>_monitor` when the upstream asks for an http check (`tcp` otherwise).
 * Client IP affinity adds a `Persist` `source_addr_persist` (`source-address`, `duration` = the
 * affinity timeout) that every service uses; `source-ip-hash` alone uses AS3's stock
 * `source-address`. The application's `label` is the load balancer's id (an id longer than
 * the label's 64 characters is bounded there with a digest and kept whole in the application's
 * `constants` as `klbRef`). Throws
 * {@link TerminalError} for what the backend cannot realise (the same rules as LTM mode).
 */
export function as3Application(spec: LoadBalancerSpec, settings: As3Settings): As3Application {
  // Same validation as LTM mode (addresses, ports, protocols, paths).
  desiredLoadBalancer(spec, { partition: settings.tenant, controllerId: settings.controllerId, snat: 'none' });
  const upstreams = new Map(spec.upstreams.map((u) => [u.name, u]));
  const app: As3Application = {
    class: 'Application',
    remark: as3Remark(settings.controllerId),
    label: boundedName(spec.ref.id, as3LabelMax),
    // An id longer than a label (a Gateway or Ingress name near 253 characters) is kept whole
    // in the application's constants, where list() reads it back.
    ...(spec.ref.id.length > as3LabelMax ? { constants: { class: 'Constants', [as3RefConstant]: spec.ref.id } } : {}),
  };
  const virtualAddresses = spec.addresses.map(canonicalAddress);
  const affinity = affinitySeconds(spec);
  const persistenceMethods: unknown[] =
    affinity !== undefined
      ? [{ use: as3PersistName }]
      : spec.options.algorithm === 'source-ip-hash'
        ? ['source-address']
        : [];
  for (const listener of spec.listeners) {
    const upstream = upstreams.get(listener.upstream ?? '');
    if (!upstream) throw new TerminalError(`listener ${listener.name} has no upstream`, { reason: 'InvalidUpstream' });
    const check = upstream.healthCheck;
    const poolName = `${listener.name}_pool`;
    let monitors: unknown[] = [listener.protocol === 'UDP' ? 'icmp' : 'tcp'];
    if (check?.type === 'http') {
      const interval = Math.max(1, Math.round(check.intervalSeconds));
      app[`${listener.name}_monitor`] = {
        class: 'Monitor',
        monitorType: 'http',
        interval,
        timeout: Math.max(interval + 1, interval * Math.max(1, check.unhealthyThreshold) + 1),
        send: `GET ${check.path ?? '/'} HTTP/1.1\\r\\nHost: klb\\r\\nConnection: Close\\r\\n\\r\\n`,
        receive: 'HTTP/1\\.[01] [23]',
        ...(check.port !== undefined ? { targetPort: check.port } : {}),
      };
      monitors = [{ use: `${listener.name}_monitor` }];
    }
    const byPort = new Map<number, string[]>();
    for (const target of upstream.targets) {
      if (target.kind !== 'node' || !target.ready) continue;
      const list = byPort.get(target.port) ?? [];
      list.push(canonicalAddress(target.address));
      byPort.set(target.port, list);
    }
    app[poolName] = {
      class: 'Pool',
      loadBalancingMode: spec.options.algorithm === 'least-connections' ? 'least-connections-member' : 'round-robin',
      monitors,
      members: [...byPort.entries()]
        .sort(([a], [b]) => a - b)
        .map(([servicePort, addresses]) => ({
          servicePort,
          serverAddresses: [...new Set(addresses)].sort(),
          shareNodes: true,
        })),
    };
    app[listener.name] = {
      class:
        listener.protocol === 'UDP' ? 'Service_UDP' : listener.protocol === 'HTTP' ? 'Service_HTTP' : 'Service_TCP',
      virtualAddresses,
      virtualPort: listener.port,
      pool: poolName,
      snat: settings.snat,
      persistenceMethods,
    };
  }
  if (affinity !== undefined) {
    app[as3PersistName] = { class: 'Persist', persistenceMethod: 'source-address', duration: affinity };
  }
  return app;
}

/** A whole AS3 request (`class: AS3`) with one tenant holding `applications`, for validation or a full post. */
export function as3Declaration(
  tenant: string,
  applications: Readonly<Record<string, As3Application>>,
  id = 'klb',
): Record<string, unknown> {
  return {
    class: 'AS3',
    action: 'deploy',
    persist: true,
    declaration: {
      class: 'ADC',
      schemaVersion: as3SchemaVersion,
      id,
      updateMode: 'selective',
      [tenant]: { class: 'Tenant', ...applications },
    },
  };
}
