import type { IpFamily, SourceKind } from './spec.js';

/** The object an address is allocated to. */
export interface AddressOwner {
  /** Kind of the declaring object. */
  readonly kind: SourceKind;
  /** Namespace. */
  readonly namespace: string;
  /** Name. */
  readonly name: string;
  /** UID (a re-created object is a new owner). */
  readonly uid: string;
}

/** A port a load balancer listens on. */
export interface AddressPort {
  /** Protocol. */
  readonly protocol: 'TCP' | 'UDP' | 'SCTP';
  /** Port number. */
  readonly port: number;
}

/** What the allocator answers. */
export interface AddressAllocation {
  /** The allocated addresses, one per family. */
  readonly addresses: readonly string[];
}

/** What a load balancer asks of the address allocator. */
export interface AddressRequest {
  /** Specific addresses wanted (`spec.loadBalancerIP`, the `klb.io/load-balancer-ips` annotation). */
  readonly addresses?: string[];
  /** Pool name (`klb.io/address-pool`). */
  readonly pool?: string;
  /** Families in order of preference. */
  readonly ipFamilies?: IpFamily[];
  /** Family policy. */
  readonly ipFamilyPolicy?: 'SingleStack' | 'PreferDualStack' | 'RequireDualStack';
  /** Owners with the same key may share an address when their ports do not overlap (`klb.io/allow-shared-ip`). */
  readonly sharingKey?: string;
  /** Ports the load balancer listens on (for sharing). */
  readonly ports?: AddressPort[];
  /** Namespace of the owner (pool namespace selectors). */
  readonly namespace?: string;
  /** Labels of the owner (pool label selectors). */
  readonly labels?: Record<string, string>;
  /** Load balancer class (pool selection). */
  readonly loadBalancerClass?: string;
}

/**
 * Hands out virtual IPs; implemented by `@klb/ipam`'s Kubernetes-backed IPAM. Errors carry a
 * `code`; `terminal: true` means the request cannot succeed unchanged (an address outside every
 * pool, an invalid request): the engine reports it and does not retry. An exhausted pool, a
 * taken address or a sharing conflict (`POOL_EXHAUSTED`, `ADDRESS_TAKEN`, `SHARING_CONFLICT`)
 * are not terminal: they may resolve when another owner lets go, so the engine writes them on
 * the object and retries with backoff.
 */
export interface AddressAllocator {
  /** Imports existing assignments; the engine allocates nothing before it resolves. */
  start(): Promise<void>;
  /** Allocates (or returns the owner's existing) addresses. */
  allocate(owner: AddressOwner, request: AddressRequest): Promise<AddressAllocation>;
  /** Releases the owner's addresses; releasing nothing succeeds. */
  release(owner: AddressOwner): Promise<void>;
  /** Stops what {@link AddressAllocator.start} started (watches); the engine calls it on shutdown. */
  stop?(): Promise<void>;
}
