import ipaddr from 'ipaddr.js';
import type { EndpointSliceObject, NodeObject, ServiceObject } from './kube-types.js';
import type { IpFamily, Target, TargetKind } from './spec.js';

/** Label that keeps a node out of every load balancer. */
export const EXCLUDE_FROM_LB_LABEL = 'node.kubernetes.io/exclude-from-external-load-balancers';

/** True when `node` may receive load-balanced traffic: Ready, schedulable, not excluded. */
export function nodeEligible(node: NodeObject): boolean {
  if (node.spec?.unschedulable) return false;
  if (node.metadata?.labels?.[EXCLUDE_FROM_LB_LABEL] !== undefined) return false;
  return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** The node's address for `family`, by the first address type in `preference` that has one. */
export function nodeAddress(node: NodeObject, preference: readonly string[], family: IpFamily): string | undefined {
  for (const type of preference) {
    for (const a of node.status?.addresses ?? []) {
      if (a.type === type && familyOf(a.address) === family) return a.address;
    }
  }
  return undefined;
}

/** The fields of a node that decide whether and how it is a target (changes elsewhere are ignored). */
export function nodeTargetFingerprint(node: NodeObject): string {
  return JSON.stringify([nodeEligible(node), node.status?.addresses ?? []]);
}

/** `IPv4` or `IPv6` for a valid address, else undefined. */
export function familyOf(address: string): IpFamily | undefined {
  if (!ipaddr.isValid(address)) return undefined;
  return ipaddr.parse(address).kind() === 'ipv6' ? 'IPv6' : 'IPv4';
}

/** Ready endpoints of a Service (from its EndpointSlices): address, node, and port by port name. */
export interface ServiceEndpoint {
  /** Pod address. */
  readonly address: string;
  /** Node the pod runs on. */
  readonly nodeName?: string;
  /** Ready (and not terminating). */
  readonly ready: boolean;
  /**
   * Serving (EndpointSlice `serving`): able to take traffic, terminating or not. A terminating
   * endpoint that still serves takes traffic only while no endpoint is ready, as kube-proxy does.
   */
  readonly serving: boolean;
  /** Ports by EndpointSlice port name (`''` for an unnamed port). */
  readonly ports: ReadonlyMap<string, number>;
}

/** Flattens a Service's EndpointSlices into endpoints. */
export function serviceEndpoints(slices: readonly EndpointSliceObject[]): ServiceEndpoint[] {
  const out: ServiceEndpoint[] = [];
  for (const slice of slices) {
    if (slice.addressType === 'FQDN') continue;
    const ports = new Map<string, number>();
    for (const p of slice.ports ?? []) if (p.port !== undefined) ports.set(p.name ?? '', p.port);
    for (const ep of slice.endpoints ?? []) {
      const ready = ep.conditions?.ready !== false && ep.conditions?.terminating !== true;
      const serving = ep.conditions?.serving ?? ep.conditions?.ready !== false;
      for (const address of ep.addresses) {
        out.push({ address, ready, serving, ports, ...(ep.nodeName ? { nodeName: ep.nodeName } : {}) });
      }
    }
  }
  return out;
}

/** Inputs of {@link buildTargets}. */
export interface TargetInputs {
  /** The target kind chosen for the backend. */
  readonly kind: TargetKind;
  /** The Service carrying traffic. */
  readonly service: ServiceObject;
  /** The Service port (by its `port` number). */
  readonly servicePort: NonNullable<NonNullable<ServiceObject['spec']>['ports']>[number];
  /** All nodes. */
  readonly nodes: readonly NodeObject[];
  /** The Service's endpoints. */
  readonly endpoints: readonly ServiceEndpoint[];
  /** Node address types in order of preference. */
  readonly nodeAddressPreference: readonly string[];
  /** Families to produce targets for. */
  readonly families: readonly IpFamily[];
  /** Only nodes with a ready endpoint (`externalTrafficPolicy: Local`). */
  readonly localOnly: boolean;
}

/** Targets for one Service port, sorted for stable specs; throws a message string when impossible. */
export function buildTargets(inputs: TargetInputs): Target[] {
  const { kind, service, servicePort } = inputs;
  const targets: Target[] = [];
  // While no endpoint is ready (a rollout whose old pods all terminate), the terminating ones
  // that still serve take the traffic, as kube-proxy does; otherwise they only drain.
  const anyReady = inputs.endpoints.some((e) => e.ready);
  const takesTraffic = (e: ServiceEndpoint) => (anyReady ? e.ready : e.serving);
  if (kind === 'node') {
    const nodePort = servicePort.nodePort;
    if (!nodePort) throw new Error(`Service port ${servicePort.port} has no nodePort`);
    const withEndpoints = new Set(inputs.endpoints.filter((e) => takesTraffic(e) && e.nodeName).map((e) => e.nodeName));
    for (const node of inputs.nodes) {
      const name = node.metadata?.name ?? '';
      if (!nodeEligible(node)) continue;
      if (inputs.localOnly && !withEndpoints.has(name)) continue;
      for (const family of inputs.families) {
        const address = nodeAddress(node, inputs.nodeAddressPreference, family);
        if (address) targets.push({ kind, address, port: nodePort, ready: true, nodeName: name });
      }
    }
  } else if (kind === 'pod') {
    for (const ep of inputs.endpoints) {
      const family = familyOf(ep.address);
      if (!family || !inputs.families.includes(family)) continue;
      const port =
        ep.ports.get(servicePort.name ?? '') ??
        (typeof servicePort.targetPort === 'number' ? servicePort.targetPort : undefined);
      if (port === undefined) continue;
      targets.push({
        kind,
        address: ep.address,
        port,
        ready: takesTraffic(ep),
        ...(ep.nodeName ? { nodeName: ep.nodeName } : {}),
      });
    }
  } else {
    const ips = service.spec?.clusterIPs ?? (service.spec?.clusterIP ? [service.spec.clusterIP] : []);
    for (const ip of ips) {
      const family = familyOf(ip);
      if (ip !== 'None' && family && inputs.families.includes(family)) {
        targets.push({ kind, address: ip, port: servicePort.port, ready: true });
      }
    }
    if (targets.length === 0) throw new Error(`Service ${service.metadata?.name} has no ClusterIP`);
  }
  return targets.sort((a, b) => (a.address === b.address ? a.port - b.port : a.address < b.address ? -1 : 1));
}

/** The target kind to use: the backend's most preferred kind the Service can serve. */
export function chooseTargetKind(supported: readonly TargetKind[], service: ServiceObject): TargetKind {
  const hasNodePorts = (service.spec?.ports ?? []).every((p) => p.nodePort);
  for (const kind of supported) {
    if (kind === 'node' && !hasNodePorts) continue;
    if (kind === 'clusterIP' && (!service.spec?.clusterIP || service.spec.clusterIP === 'None')) continue;
    return kind;
  }
  return supported[0] ?? 'node';
}
