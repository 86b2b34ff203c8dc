import type { AddressRequest } from './address-allocator.js';
import type { BackendCapabilities } from './backend.js';
import type { KubeClient, KubeObject } from './kube-client.js';
import type { NodeObject, SecretObject, ServiceObject } from './kube-types.js';
import type { LoadBalancerSpec, LoadBalancerStatus, SourceKind } from './spec.js';
import type { ServiceEndpoint } from './targets.js';

/** Read-only views of the informer caches that sources translate against. */
export interface ClusterState {
  /** A Service by namespace and name. */
  service(namespace: string, name: string): ServiceObject | undefined;
  /** All nodes. */
  nodes(): readonly NodeObject[];
  /** A Service's endpoints. */
  endpoints(namespace: string, name: string): readonly ServiceEndpoint[];
  /** A Secret by namespace and name (TLS Secrets only). */
  secret(namespace: string, name: string): SecretObject | undefined;
  /**
   * The objects of a resource a source watches ({@link LoadBalancerSource.watches}), e.g.
   * `httproutes`; cluster-scoped ones have the namespace `''`.
   */
  objects(resource: string): readonly KubeObject[];
  /** One object of a watched resource by namespace (`''` when cluster-scoped) and name. */
  object(resource: string, namespace: string, name: string): KubeObject | undefined;
  /** The backend's capabilities. */
  readonly capabilities: BackendCapabilities;
  /** Node address types in order of preference. */
  readonly nodeAddressPreference: readonly string[];
}

/** What a load balancer's targets depend on, so that only affected load balancers are re-reconciled. */
export interface LoadBalancerDependencies {
  /** Services (`namespace/name`) whose spec the load balancer is built from. */
  readonly services: readonly string[];
  /** Services (`namespace/name`) whose endpoints decide the targets. */
  readonly endpointsOf: readonly string[];
  /** Secrets (`namespace/name`) it reads. */
  readonly secrets: readonly string[];
  /** Whether node changes affect it. */
  readonly nodes: boolean;
  /**
   * Objects of watched resources ({@link LoadBalancerSource.watches}) it was built from, as
   * `<resource>/<namespace>/<name>` (`<namespace>` is empty for cluster-scoped objects);
   * `<resource>/<namespace>/*` stands for every object of the namespace and `<resource>/*` for
   * every object of the resource.
   */
  readonly objects?: readonly string[];
}

/** A namespaced object's namespace and name. */
export interface ObjectName {
  /** The namespace. */
  readonly namespace: string;
  /** The name. */
  readonly name: string;
}

/** A kind of object besides Services, endpoints, Secrets and nodes that a source reads. */
export interface WatchedResource {
  /** Name in dependency keys and metrics: the plural resource name, e.g. `httproutes`. */
  readonly resource: string;
  /** Collection path to list and watch (all namespaces). */
  readonly collectionPath: string;
  /**
   * The objects of the source's kind (namespace and name) that this object says it feeds, e.g.
   * the Gateways a Route's `parentRefs` name, so that a new object reaches them before any
   * depends on it; `'all'` for every object of the source's kind (e.g. a GatewayClass changed).
   */
  owners?(obj: KubeObject): readonly ObjectName[] | 'all';
  /**
   * Writes what the source says of the watched object itself (e.g. a GatewayClass's `Accepted`
   * condition) when it differs; returns whether it wrote. Called by the leader on every change
   * of the object and at each resync.
   */
  settle?(client: KubeClient, obj: KubeObject): Promise<boolean>;
}

/** A translated object: the spec without addresses, the address request and the dependencies. */
export interface LoadBalancerDraft {
  /** The spec; `addresses` is filled in by the engine. */
  readonly spec: Omit<LoadBalancerSpec, 'addresses'>;
  /** What to ask the address allocator. */
  readonly request: AddressRequest;
  /** What the load balancer depends on. */
  readonly dependencies: LoadBalancerDependencies;
}

/** A reconcile that realised the load balancer. */
export interface SuccessOutcome {
  /** Always true. */
  readonly ok: true;
  /** What the backend returned. */
  readonly status: LoadBalancerStatus;
}

/**
 * A reconcile that did not realise the load balancer: the object is invalid (a terminal error),
 * its address cannot be had yet (taken, exhausted, a sharing conflict), or the data plane refused
 * what the backend published ({@link LoadBalancerStatus.problem}).
 */
export interface FailureOutcome {
  /** Always false. */
  readonly ok: false;
  /** A CamelCase reason (condition reason, event reason), e.g. `AddressTaken`. */
  readonly reason: string;
  /** Why, for people. */
  readonly message: string;
}

/** How a reconcile ended, for the source to write back to the object. */
export type ReconcileOutcome = SuccessOutcome | FailureOutcome;

/**
 * A kind of Kubernetes object that declares load balancers: which objects it owns, how they
 * translate to a {@link LoadBalancerDraft}, and how the outcome is written back.
 */
export interface LoadBalancerSource<T extends KubeObject = KubeObject> {
  /** The kind. */
  readonly kind: SourceKind;
  /** Collection path to list and watch (all namespaces). */
  readonly collectionPath: string;
  /** Label selector to list and watch, if the source filters server-side. */
  readonly labelSelector?: string;
  /** The object's API path (for finalizer and status patches). */
  objectPath(namespace: string, name: string): string;
  /** Whether KLB should realise a load balancer for this object (`world` for what decides it elsewhere, e.g. its class). */
  wants(obj: T, world: ClusterState): boolean;
  /** The Services and Secrets the object refers to, read without validating it. */
  references(obj: T): Pick<LoadBalancerDependencies, 'services' | 'secrets'>;
  /** Translates the object; throws TerminalError when it is invalid. */
  build(obj: T, world: ClusterState): LoadBalancerDraft;
  /** Writes the outcome back to the object if it differs from what is there; returns whether it wrote. */
  writeOutcome(client: KubeClient, obj: T, outcome: ReconcileOutcome): Promise<boolean>;
  /** Clears what KLB wrote (the object is no longer KLB's); returns whether it wrote. */
  clearOutcome(client: KubeClient, obj: T): Promise<boolean>;
  /** Further kinds of object it reads; a change to one re-reconciles exactly the objects that depend on it. */
  readonly watches?: readonly WatchedResource[];
  /**
   * KLB stopped serving the object (deleted, or no longer KLB's) and its load balancer is gone:
   * remove what the source wrote on other objects for it (e.g. a Route's `status.parents` entry).
   */
  forget?(client: KubeClient, obj: T): Promise<void>;
}
