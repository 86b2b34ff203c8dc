import { boundedName } from './bounded-name.js';
import { TerminalError } from './errors.js';
import type { ServiceObject, ServicePortJson } from './kube-types.js';
import type { ClusterState, LoadBalancerDependencies } from './source.js';
import type { Target, Upstream } from './spec.js';
import { buildTargets, chooseTargetKind } from './targets.js';

/** A Service port that traffic goes to: by port name or number. */
export interface ServicePortRef {
  /** The Service's namespace. */
  readonly namespace: string;
  /** The Service's name. */
  readonly name: string;
  /** The port's name. */
  readonly portName?: string;
  /** The port's number. */
  readonly portNumber?: number;
}

/** A Service port resolved against the cluster: the targets the backend can reach it at. */
export interface ResolvedServicePort {
  /** The Service. */
  readonly service: ServiceObject;
  /** The port. */
  readonly servicePort: ServicePortJson;
  /** Where traffic goes, per the backend's target kinds and the Service's traffic policy. */
  readonly targets: readonly Target[];
}

/**
 * Turns the Service ports that L7 and Gateway objects name into {@link Upstream}s, and records
 * what they depend on (Services, endpoints, nodes). Throws TerminalError with reason
 * `UnknownService`, `UnknownPort` or `NoTargets` when a port cannot be resolved.
 */
export class ServiceUpstreams {
  readonly #world: ClusterState;
  readonly #upstreams = new Map<string, Upstream>();
  /** Services (`namespace/name`) read, found or not. */
  readonly services = new Set<string>();
  /** Services whose endpoints decide targets. */
  readonly endpointsOf = new Set<string>();
  /** Whether a target is a node. */
  usesNodes = false;

  constructor(world: ClusterState) {
    this.#world = world;
  }

  /** The upstreams built so far, by name. */
  get upstreams(): Upstream[] {
    return [...this.#upstreams.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The target kinds the backend can reach, most preferred first. */
  get targetKinds(): readonly string[] {
    return this.#world.capabilities.targetKinds;
  }

  /** Resolves a Service port to its targets (`where` prefixes the error message). */
  resolve(ref: ServicePortRef, where: string): ResolvedServicePort {
    const key = `${ref.namespace}/${ref.name}`;
    this.services.add(key);
    const service = this.#world.service(ref.namespace, ref.name);
    if (!service) throw new TerminalError(`${where}: Service ${key} does not exist`, { reason: 'UnknownService' });
    const servicePort = service.spec?.ports?.find((p) =>
      ref.portName !== undefined ? p.name === ref.portName : p.port === ref.portNumber,
    );
    if (!servicePort) {
      throw new TerminalError(`${where}: Service ${key} has no port ${ref.portName ?? ref.portNumber}`, {
        reason: 'UnknownPort',
      });
    }
    const caps = this.#world.capabilities;
    const kind = chooseTargetKind(caps.targetKinds, service);
    if (kind === 'node') this.usesNodes = true;
    const localOnly = service.spec?.externalTrafficPolicy === 'Local';
    if (kind === 'pod' || localOnly) this.endpointsOf.add(key);
    try {
      const targets = buildTargets({
        kind,
        service,
        servicePort,
        nodes: kind === 'node' ? this.#world.nodes() : [],
        endpoints: kind === 'pod' || localOnly ? this.#world.endpoints(ref.namespace, ref.name) : [],
        nodeAddressPreference: this.#world.nodeAddressPreference,
        families: ['IPv4', 'IPv6'],
        localOnly,
      });
      return { service, servicePort, targets };
    } catch (err) {
      throw new TerminalError(`${where}: ${(err as Error).message}`, { reason: 'NoTargets', cause: err });
    }
  }

  /**
   * The upstream of one Service port, named `<service>-<port>` (bounded to 63 characters), built
   * once however many routes name it.
   */
  forServicePort(ref: ServicePortRef, where: string, healthCheckPath?: string): string {
    const { servicePort, targets } = this.resolve(ref, where);
    const name = boundedName(`${ref.name}-${servicePort.port}`.replace(/[^a-z0-9-]/g, '-'), 63);
    if (!this.#upstreams.has(name)) this.add(name, targets, healthCheckPath);
    return name;
  }

  /** The load balancer's dependencies: what the upstreams read, plus the Secrets and watched objects given. */
  dependencies(secrets: Iterable<string>, objects?: Iterable<string>): LoadBalancerDependencies {
    return {
      services: [...this.services],
      endpointsOf: [...this.endpointsOf],
      secrets: [...secrets],
      nodes: this.usesNodes,
      ...(objects ? { objects: [...objects] } : {}),
    };
  }

  /** Adds an upstream of the given targets (a later one of the same name replaces it). */
  add(name: string, targets: readonly Target[], healthCheckPath?: string): void {
    this.#upstreams.set(name, {
      name,
      targets,
      healthCheck: {
        type: healthCheckPath ? 'http' : 'tcp',
        ...(healthCheckPath ? { path: healthCheckPath } : {}),
        intervalSeconds: 5,
        timeoutSeconds: 3,
        unhealthyThreshold: 3,
        healthyThreshold: 2,
      },
    });
  }
}
