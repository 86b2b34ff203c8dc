import { createHash } from 'node:crypto';
import { describeHttpSettings, type LoadBalancerRef, type LoadBalancerSpec, TerminalError } from '@klb/core';
import ipaddr from 'ipaddr.js';
import { addressPort, canonicalAddress, destination, fullPath, isValidF5Name } from './f5-path.js';
import type { MemberState, MonitorState, PersistenceState, PoolState, VirtualState } from './ltm-state.js';

/** What KLB wants in the partition for one load balancer. */
export interface DesiredLoadBalancer {
  /** Virtual servers (one per listener and address). */
  readonly virtuals: readonly VirtualState[];
  /** Pools (one per listener), with the members KLB wants (ready node targets). */
  readonly pools: readonly PoolState[];
  /** Monitors (one per listener). */
  readonly monitors: readonly MonitorState[];
  /**
   * The load balancer's source-address persistence profile (one, shared by its virtuals) when
   * the spec asks for client IP affinity; empty otherwise.
   */
  readonly persistence: readonly PersistenceState[];
}

/** Settings that shape the generated objects. */
export interface DesiredStateSettings {
  /** The partition. */
  readonly partition: string;
  /** The ownership marker prefix `klb:<controllerId>`. */
  readonly controllerId: string;
  /** Source address translation of virtuals (`automap` or `none`). */
  readonly snat: 'automap' | 'none';
}

const kindShort = { Service: 'svc', ConfigMap: 'cm', Ingress: 'ing', Gateway: 'gw' } as const;

/** The description that marks an object as this controller's and names its load balancer. */
export function ownerMarker(controllerId: string, refId: string): string {
  return `klb:${controllerId} ${refId}`;
}

/** Parses an ownership marker; undefined for an object KLB (this controller) does not own. */
export function parseOwnerMarker(description: string, controllerId: string): string | undefined {
  const prefix = `klb:${controllerId} `;
  if (!description.startsWith(prefix)) return undefined;
  const id = description.slice(prefix.length);
  return /^\S+$/.test(id) ? id : undefined;
}

/** The marker of nodes this controller created. */
export function nodeMarker(controllerId: string): string {
  return `klb:${controllerId} node`;
}

/** The base name of a load balancer's objects: `klb_svc_<ns>_<name>` (hashed when too long). */
export function baseName(ref: LoadBalancerRef): string {
  const readable = `klb_${kindShort[ref.kind]}_${ref.namespace}_${ref.name}`;
  if (readable.length <= 150 && isValidF5Name(readable)) return readable;
  return `klb_${kindShort[ref.kind]}_${createHash('sha256').update(ref.id).digest('hex').slice(0, 24)}`;
}

function checkAddress(address: string, what: string): string {
  if (!ipaddr.isValid(address))
    throw new TerminalError(`${what} ${JSON.stringify(address)} is not an IP address`, { reason: 'InvalidAddress' });
  return canonicalAddress(address);
}

const pathPattern = /^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/;

/** The stock source-address persistence profile (its timeout is BIG-IP's default, 180 s). */
const stockSourceAddr = '/Common/source_addr';

/** Longest affinity timeout KLB writes: AS3's limit for `Persist.duration` (7 days). */
const maxAffinitySeconds = 604_800;

/** The name of a load balancer's source-address persistence profile: `<base>_source_addr`. */
export function persistenceName(ref: LoadBalancerRef): string {
  return `${baseName(ref)}_source_addr`;
}

/**
 * What the status message adds for the spec's HTTP settings, which the F5 backends do not apply
 * (an HTTP virtual server has the stock `/Common/http` profile): `; … not applied: …`, or `''`.
 */
export function unappliedHttpSettings(spec: LoadBalancerSpec): string {
  const http = describeHttpSettings(spec.options.http);
  return http === undefined ? '' : `; ${http} not applied: the F5 backend has no HTTP proxy settings`;
}

/** The client IP affinity timeout of a spec, validated; undefined without affinity. */
export function affinitySeconds(spec: LoadBalancerSpec): number | undefined {
  const affinity = spec.options.sessionAffinity;
  if (affinity === undefined) return undefined;
  const seconds = affinity.timeoutSeconds;
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > maxAffinitySeconds) {
    throw new TerminalError(`session affinity timeout ${seconds} s is not an integer from 1 to ${maxAffinitySeconds}`, {
      reason: 'InvalidSessionAffinity',
    });
  }
  return seconds;
}

/**
 * Builds the F5 objects for a spec. Throws {@link TerminalError} for what the F5 backend cannot
 * realise (no address, L7 routes, HTTPS termination, an unknown upstream, bad values).
 */
export function desiredLoadBalancer(spec: LoadBalancerSpec, settings: DesiredStateSettings): DesiredLoadBalancer {
  const { partition } = settings;
  const description = ownerMarker(settings.controllerId, spec.ref.id);
  if (spec.addresses.length === 0)
    throw new TerminalError('the F5 backend needs an allocated address', { reason: 'NoAddress' });
  // Beyond the declared capabilities: the engine never sends these, a direct caller may.
  if (spec.options.proxyProtocol)
    throw new TerminalError('the F5 backend does not send the PROXY protocol', { reason: 'UnsupportedProxyProtocol' });
  if (spec.options.sourceRanges.length > 0) {
    throw new TerminalError('the F5 backend does not restrict client source ranges', {
      reason: 'UnsupportedSourceRanges',
    });
  }
  const addresses = spec.addresses.map((a) => checkAddress(a, 'address'));
  const base = baseName(spec.ref);
  const upstreams = new Map(spec.upstreams.map((u) => [u.name, u]));
  const mode =
    spec.options.algorithm === 'least-connections'
      ? 'least-connections-member'
      : spec.options.algorithm === 'round-robin'
        ? 'round-robin'
        : 'round-robin';
  // Client IP affinity: a profile of this load balancer's own, with the Service's timeout (the
  // stock profile's is fixed at 180 s). `source-ip-hash` alone keeps the stock profile.
  const affinity = affinitySeconds(spec);
  const persistence: PersistenceState[] =
    affinity === undefined
      ? []
      : [
          {
            fullPath: fullPath(partition, persistenceName(spec.ref)),
            defaultsFrom: stockSourceAddr,
            timeout: affinity,
            description,
          },
        ];
  const persist =
    persistence[0] !== undefined
      ? [persistence[0].fullPath]
      : spec.options.algorithm === 'source-ip-hash'
        ? [stockSourceAddr]
        : [];
  const virtuals: VirtualState[] = [];
  const pools: PoolState[] = [];
  const monitors: MonitorState[] = [];
  const seen = new Set<string>();
  for (const listener of spec.listeners) {
    const key = `${listener.protocol === 'UDP' ? 'udp' : 'tcp'}/${listener.port}`;
    if (seen.has(key)) {
      throw new TerminalError(`two listeners on ${key}: a virtual server needs a unique address, port and protocol`, {
        reason: 'DuplicateListener',
      });
    }
    seen.add(key);
    if (!/^[a-z0-9-]{1,40}$/.test(listener.name)) {
      throw new TerminalError(`listener name ${JSON.stringify(listener.name)} is invalid`, {
        reason: 'InvalidListener',
      });
    }
    if (!Number.isInteger(listener.port) || listener.port < 1 || listener.port > 65535) {
      throw new TerminalError(`listener port ${listener.port} is invalid`, { reason: 'InvalidPort' });
    }
    if (listener.protocol === 'HTTPS') {
      throw new TerminalError('the F5 backend does not terminate TLS; use a TCP listener', {
        reason: 'UnsupportedProtocol',
      });
    }
    if (listener.routes && listener.routes.length > 0) {
      throw new TerminalError('the F5 backend does not serve L7 routes', { reason: 'UnsupportedL7' });
    }
    const upstream = listener.upstream === undefined ? undefined : upstreams.get(listener.upstream);
    if (!upstream) throw new TerminalError(`listener ${listener.name} has no upstream`, { reason: 'InvalidUpstream' });
    const name = `${base}_${listener.name}`;
    const check = upstream.healthCheck;
    const type = check?.type === 'http' ? 'http' : 'tcp';
    if (check?.path !== undefined && !pathPattern.test(check.path)) {
      throw new TerminalError(`health check path ${JSON.stringify(check.path)} is invalid`, {
        reason: 'InvalidHealthCheck',
      });
    }
    const interval = Math.max(1, Math.round(check?.intervalSeconds ?? 5));
    const timeout = check ? Math.max(interval + 1, interval * Math.max(1, check.unhealthyThreshold) + 1) : 16;
    const monitorPath = fullPath(partition, `${name}_${type}`);
    monitors.push({
      fullPath: monitorPath,
      type,
      defaultsFrom: `/Common/${type}`,
      interval,
      timeout,
      // F5 takes `\r\n` as the literal backslash sequences.
      send:
        type === 'http' ? `GET ${check?.path ?? '/'} HTTP/1.1\\r\\nHost: klb\\r\\nConnection: Close\\r\\n\\r\\n` : '',
      recv: type === 'http' ? '^HTTP/1\\.[01] [23]' : '',
      destination: check?.port !== undefined ? `*:${check.port}` : '*:*',
      description,
    });
    const members = new Map<string, MemberState>();
    for (const target of upstream.targets) {
      if (target.kind !== 'node' || !target.ready) continue;
      const address = checkAddress(target.address, 'target');
      if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) {
        throw new TerminalError(`target port ${target.port} is invalid`, { reason: 'InvalidPort' });
      }
      const memberName = addressPort(address, target.port);
      members.set(memberName, { name: memberName, address, disabled: false, description: '' });
    }
    const poolPath = fullPath(partition, name);
    pools.push({
      fullPath: poolPath,
      loadBalancingMode: mode,
      monitor: monitorPath,
      description,
      members: [...members.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    });
    const profiles =
      listener.protocol === 'UDP'
        ? ['/Common/udp']
        : listener.protocol === 'HTTP'
          ? ['/Common/http', '/Common/tcp']
          : ['/Common/tcp'];
    addresses.forEach((address, i) => {
      virtuals.push({
        fullPath: fullPath(partition, i === 0 ? name : `${name}_${i}`),
        destination: destination(partition, address, listener.port),
        ipProtocol: listener.protocol === 'UDP' ? 'udp' : 'tcp',
        pool: poolPath,
        profiles,
        snat: settings.snat,
        persist,
        description,
      });
    });
  }
  return { virtuals, pools, monitors, persistence };
}
