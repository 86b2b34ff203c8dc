import { isDeepStrictEqual } from 'node:util';
import {
  Annotations,
  klbAnnotations,
  parseAddresses,
  parseCidrs,
  parseOptions,
  parseToken,
  refuseHttpAnnotations,
} from './annotations.js';
import { TerminalError } from './errors.js';
import type { KubeClient } from './kube-client.js';
import type { ServiceObject } from './kube-types.js';
import type {
  ClusterState,
  LoadBalancerDependencies,
  LoadBalancerDraft,
  LoadBalancerSource,
  ReconcileOutcome,
} from './source.js';
import {
  type HealthCheck,
  type IpFamily,
  type Listener,
  type LoadBalancerStatus,
  loadBalancerId,
  type Upstream,
} from './spec.js';
import { buildTargets, chooseTargetKind, familyOf } from './targets.js';

/** Options of {@link ServiceSource}. */
export interface ServiceSourceOptions {
  /** The `spec.loadBalancerClass` KLB owns; default `klb.io/load-balancer`. */
  readonly loadBalancerClass?: string;
  /** Also own LoadBalancer Services that name no class (as the cluster's default implementation); default false. */
  readonly handleUnclassed?: boolean;
}

/** The condition KLB sets on Services. */
export const SERVICE_CONDITION = 'klb.io/LoadBalancerReady';

const DEFAULT_HEALTH: Omit<HealthCheck, 'type'> = {
  intervalSeconds: 5,
  timeoutSeconds: 3,
  unhealthyThreshold: 3,
  healthyThreshold: 2,
};

/**
 * L4 listeners and upstreams for every port of `service`, with targets of the backend's
 * preferred kind. Shared by the Service source and the original ConfigMap source.
 */
export function l4FromService(
  service: ServiceObject,
  world: ClusterState,
  families: readonly IpFamily[],
): { listeners: Listener[]; upstreams: Upstream[]; usesNodes: boolean; usesEndpoints: boolean } {
  const ns = service.metadata?.namespace ?? '';
  const name = service.metadata?.name ?? '';
  const ports = service.spec?.ports ?? [];
  if (ports.length === 0) throw new TerminalError(`Service ${ns}/${name} has no ports`, { reason: 'NoPorts' });
  const kind = chooseTargetKind(world.capabilities.targetKinds, service);
  const localOnly = service.spec?.externalTrafficPolicy === 'Local';
  const endpoints = kind === 'pod' || localOnly ? world.endpoints(ns, name) : [];
  const health: HealthCheck =
    localOnly && kind === 'node' && service.spec?.healthCheckNodePort
      ? { ...DEFAULT_HEALTH, type: 'http', port: service.spec.healthCheckNodePort, path: '/healthz' }
      : { ...DEFAULT_HEALTH, type: 'tcp' };
  const listeners: Listener[] = [];
  const upstreams: Upstream[] = [];
  const seen = new Set<string>();
  for (const port of ports) {
    const protocol = port.protocol ?? 'TCP';
    if (protocol !== 'TCP' && protocol !== 'UDP') {
      throw new TerminalError(`port ${port.port}/${protocol}: only TCP and UDP are supported`, {
        reason: 'UnsupportedProtocol',
      });
    }
    if (!world.capabilities.protocols.includes(protocol)) {
      throw new TerminalError(`port ${port.port}/${protocol}: the backend does not support ${protocol}`, {
        reason: 'UnsupportedProtocol',
      });
    }
    const id = `${protocol.toLowerCase()}-${port.port}`;
    if (seen.has(id))
      throw new TerminalError(`port ${port.port}/${protocol} is declared twice`, { reason: 'PortConflict' });
    seen.add(id);
    let targets: Upstream['targets'];
    try {
      targets = buildTargets({
        kind,
        service,
        servicePort: port,
        nodes: kind === 'node' ? world.nodes() : [],
        endpoints,
        nodeAddressPreference: world.nodeAddressPreference,
        families,
        localOnly,
      });
    } catch (err) {
      throw new TerminalError((err as Error).message, { reason: 'NoTargets', cause: err });
    }
    listeners.push({ name: id, port: port.port, protocol, upstream: id });
    upstreams.push({ name: id, targets, healthCheck: health });
  }
  listeners.sort((a, b) => a.port - b.port || a.protocol.localeCompare(b.protocol));
  upstreams.sort((a, b) => a.name.localeCompare(b.name));
  return { listeners, upstreams, usesNodes: kind === 'node', usesEndpoints: kind === 'pod' || localOnly };
}

/**
 * `status.loadBalancer.ingress` of a Service or Ingress. With `withIpMode` (Services), each IP
 * carries the backend's `ipMode`, `VIP` when it names none (what the apiserver defaults it to),
 * so that comparing with what is stored finds no difference; Ingress status has no `ipMode`.
 */
export function statusIngress(status: LoadBalancerStatus, withIpMode = false): Array<Record<string, unknown>> {
  return status.ingress.map((i) => ({
    ...(i.ip ? { ip: i.ip, ...(withIpMode ? { ipMode: i.ipMode ?? 'VIP' } : {}) } : {}),
    ...(i.hostname ? { hostname: i.hostname } : {}),
    ...(i.ports?.length
      ? { ports: i.ports.map((p) => ({ port: p.port, protocol: p.protocol, ...(p.error ? { error: p.error } : {}) })) }
      : {}),
  }));
}

/** Families requested by a Service, validated against what the backend serves. */
function serviceFamilies(service: ServiceObject): IpFamily[] {
  const families = (service.spec?.ipFamilies ?? ['IPv4']).filter((f): f is IpFamily => f === 'IPv4' || f === 'IPv6');
  return families.length ? families : ['IPv4'];
}

/** Services of `type: LoadBalancer` with KLB's `loadBalancerClass` (optionally also those with none). */
export class ServiceSource implements LoadBalancerSource<ServiceObject> {
  /** Always `Service`. */
  readonly kind = 'Service' as const;
  /** All Services. */
  readonly collectionPath = '/api/v1/services';
  readonly #class: string;
  readonly #unclassed: boolean;

  constructor(options: ServiceSourceOptions = {}) {
    this.#class = options.loadBalancerClass ?? 'klb.io/load-balancer';
    this.#unclassed = options.handleUnclassed ?? false;
  }

  /** The Service's API path. */
  objectPath(namespace: string, name: string): string {
    return `/api/v1/namespaces/${namespace}/services/${name}`;
  }

  /** LoadBalancer Services of KLB's class (or unclassed, when configured). */
  wants(svc: ServiceObject): boolean {
    if (svc.spec?.type !== 'LoadBalancer') return false;
    const cls = svc.spec.loadBalancerClass;
    return cls === undefined ? this.#unclassed : cls === this.#class;
  }

  /** A Service refers to nothing else. */
  references(): Pick<LoadBalancerDependencies, 'services' | 'secrets'> {
    return { services: [], secrets: [] };
  }

  /** Translates the Service. */
  build(svc: ServiceObject, world: ClusterState): LoadBalancerDraft {
    const ns = svc.metadata?.namespace ?? '';
    const name = svc.metadata?.name ?? '';
    const annotations = svc.metadata?.annotations ?? {};
    const families = serviceFamilies(svc);
    for (const f of families) {
      if (!world.capabilities.ipFamilies.includes(f)) {
        if (svc.spec?.ipFamilyPolicy === 'RequireDualStack' || families.length === 1) {
          throw new TerminalError(`the backend does not serve ${f}`, { reason: 'UnsupportedIPFamily' });
        }
      }
    }
    const served = families.filter((f) => world.capabilities.ipFamilies.includes(f));
    const { listeners, upstreams, usesNodes, usesEndpoints } = l4FromService(svc, world, served);
    const requested = [
      ...parseAddresses('spec.loadBalancerIP', svc.spec?.loadBalancerIP),
      ...parseAddresses(Annotations.loadBalancerIPs, annotations[Annotations.loadBalancerIPs]),
    ];
    for (const a of requested) {
      if (!served.includes(familyOf(a) as IpFamily)) {
        throw new TerminalError(`requested address ${a} is not of the Service's IP families`, {
          reason: 'InvalidAddress',
        });
      }
    }
    const sourceRanges = parseCidrs('spec.loadBalancerSourceRanges', svc.spec?.loadBalancerSourceRanges ?? []);
    if (sourceRanges.length && !world.capabilities.sourceRanges) {
      throw new TerminalError('the backend cannot enforce loadBalancerSourceRanges', { reason: 'UnsupportedOption' });
    }
    const affinity =
      svc.spec?.sessionAffinity === 'ClientIP'
        ? (svc.spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? 10800)
        : undefined;
    refuseHttpAnnotations(annotations, `Service ${ns}/${name}`);
    const options = parseOptions(annotations, sourceRanges, affinity);
    if (options.proxyProtocol && !world.capabilities.proxyProtocol) {
      throw new TerminalError('the backend cannot send the PROXY protocol', { reason: 'UnsupportedOption' });
    }
    const pool = parseToken(Annotations.addressPool, annotations[Annotations.addressPool]);
    const sharingKey = parseToken(Annotations.allowSharedIP, annotations[Annotations.allowSharedIP]);
    const policy = svc.spec?.ipFamilyPolicy;
    return {
      spec: {
        ref: {
          id: loadBalancerId('Service', ns, name),
          kind: 'Service',
          namespace: ns,
          name,
          uid: svc.metadata?.uid ?? '',
        },
        requestedAddresses: requested,
        ipFamilies: served,
        listeners,
        upstreams,
        options,
        annotations: klbAnnotations(annotations),
      },
      request: {
        ...(requested.length ? { addresses: requested } : {}),
        ...(pool ? { pool } : {}),
        ipFamilies: served,
        ...(policy === 'SingleStack' || policy === 'PreferDualStack' || policy === 'RequireDualStack'
          ? { ipFamilyPolicy: policy }
          : {}),
        ...(sharingKey ? { sharingKey } : {}),
        ports: listeners.map((l) => ({ protocol: l.protocol === 'UDP' ? 'UDP' : 'TCP', port: l.port })),
        namespace: ns,
        labels: svc.metadata?.labels ?? {},
        ...(svc.spec?.loadBalancerClass ? { loadBalancerClass: svc.spec.loadBalancerClass } : {}),
      },
      dependencies: {
        services: [],
        endpointsOf: usesEndpoints ? [`${ns}/${name}`] : [],
        secrets: [],
        nodes: usesNodes,
      },
    };
  }

  /** Writes `status.loadBalancer.ingress` and the `klb.io/LoadBalancerReady` condition when they changed. */
  async writeOutcome(client: KubeClient, svc: ServiceObject, outcome: ReconcileOutcome): Promise<boolean> {
    const current = svc.status ?? {};
    const ingress = outcome.ok ? statusIngress(outcome.status, true) : (current.loadBalancer?.ingress ?? []);
    const condition = outcome.ok
      ? {
          type: SERVICE_CONDITION,
          status: 'True',
          reason: 'Ensured',
          message: outcome.status.message ?? 'load balancer ensured',
        }
      : {
          type: SERVICE_CONDITION,
          status: 'False',
          reason: outcome.reason,
          message: outcome.message.slice(0, 1024),
        };
    const others = (current.conditions ?? []).filter((c) => c.type !== SERVICE_CONDITION);
    const existing = (current.conditions ?? []).find((c) => c.type === SERVICE_CONDITION);
    const sameCondition =
      existing?.status === condition.status &&
      existing.reason === condition.reason &&
      existing.message === condition.message;
    if (sameCondition && isDeepStrictEqual(current.loadBalancer?.ingress ?? [], ingress)) return false;
    const stamped = {
      ...condition,
      observedGeneration: svc.metadata?.generation ?? 0,
      lastTransitionTime:
        existing?.status === condition.status && existing.lastTransitionTime
          ? existing.lastTransitionTime
          : new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    };
    await client.patch(`${this.objectPath(svc.metadata?.namespace ?? '', svc.metadata?.name ?? '')}/status`, {
      status: { loadBalancer: { ingress }, conditions: [...others, stamped] },
    });
    return true;
  }

  /** Clears `status.loadBalancer` and KLB's condition. */
  async clearOutcome(client: KubeClient, svc: ServiceObject): Promise<boolean> {
    const hasIngress = (svc.status?.loadBalancer?.ingress ?? []).length > 0;
    const hasCondition = (svc.status?.conditions ?? []).some((c) => c.type === SERVICE_CONDITION);
    if (!hasIngress && !hasCondition) return false;
    await client.patch(`${this.objectPath(svc.metadata?.namespace ?? '', svc.metadata?.name ?? '')}/status`, {
      status: {
        loadBalancer: { ingress: null },
        conditions: (svc.status?.conditions ?? []).filter((c) => c.type !== SERVICE_CONDITION),
      },
    });
    return true;
  }
}
