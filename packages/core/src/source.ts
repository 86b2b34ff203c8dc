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
  /** Whether KLB should realise a load balancer for this object. */
  wants(obj: T): boolean;
  /** The Services and Secrets the object refers to, read without validating it. */
  references(obj: T): Pick<LoadBalancerDependencies, 'services' | 'secrets'>;
  /** Translates the object; throws TerminalError when it is invalid. */
  build(obj: T, world: ClusterState): LoadBalancerDraft;
  /** Writes the outcome back to the object if it differs from what is there; returns whether it wrote. */
  writeOutcome(client: KubeClient, obj: T, outcome: ReconcileOutcome): Promise<boolean>;
  /** Clears what KLB wrote (the object is no longer KLB's); returns whether it wrote. */
  clearOutcome(client: KubeClient, obj: T): Promise<boolean>;
}
