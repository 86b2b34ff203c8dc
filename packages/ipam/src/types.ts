import type { IpFamily } from './ip.js';

/** The Kubernetes object an allocation belongs to. Identity is the `uid`. */
export interface AllocationOwner {
  /** Kind of the owning object. */
  readonly kind: 'Service' | 'ConfigMap' | 'Ingress' | 'Gateway';
  /** Namespace of the owning object. */
  readonly namespace: string;
  /** Name of the owning object. */
  readonly name: string;
  /** `metadata.uid` of the owning object: the allocation's identity. */
  readonly uid: string;
}

/** A protocol and port an owner serves on its address (used to decide whether it can share it). */
export interface PortSpec {
  /** Transport protocol. */
  readonly protocol: 'TCP' | 'UDP' | 'SCTP';
  /** Port number, 1-65535. */
  readonly port: number;
}

/** What an owner asks for. Every field is optional; `{}` asks for one address from any matching pool. */
export interface AllocationRequest {
  /** Specific addresses (from `spec.loadBalancerIP` or an annotation), at most one per family. */
  readonly addresses?: readonly string[];
  /** Use only this pool (its `autoAssign: false` does not matter then). */
  readonly pool?: string;
  /** Families in order of preference, as in `spec.ipFamilies`. */
  readonly ipFamilies?: readonly IpFamily[];
  /** As `spec.ipFamilyPolicy`: one address, one of each family if the pool has both, or one of each or fail. */
  readonly ipFamilyPolicy?: 'SingleStack' | 'PreferDualStack' | 'RequireDualStack';
  /** Owners with the same key may share an address when their protocol/port sets do not overlap. */
  readonly sharingKey?: string;
  /** The protocols and ports the owner serves (checked against other sharers). */
  readonly ports?: readonly PortSpec[];
  /** Namespace for pool selection (default: the owner's). */
  readonly namespace?: string;
  /** Labels of the owner's namespace, matched by pools' `namespaceSelector`. */
  readonly namespaceLabels?: Readonly<Record<string, string>>;
  /** Labels of the owner, matched by pools' `serviceSelector`. */
  readonly labels?: Readonly<Record<string, string>>;
  /** The owner's `spec.loadBalancerClass`, matched by pools' `loadBalancerClasses`. */
  readonly loadBalancerClass?: string;
}

/** Addresses held by one owner. */
export interface Allocation {
  /** The owner. */
  readonly owner: AllocationOwner;
  /** The addresses, primary family first. */
  readonly addresses: string[];
  /** The pool they come from (empty when every address lies outside the configured pools). */
  readonly pool: string;
}

/** One holder of an address, as recorded. */
export interface AddressHolder {
  /** The owner holding the address. */
  readonly owner: AllocationOwner;
  /** Its sharing key, if it allows sharing. */
  readonly sharingKey?: string;
  /** The ports it serves on the address. */
  readonly ports?: readonly PortSpec[];
}

/** Usage of one family of one pool. */
export interface PoolStats {
  /** Pool name. */
  readonly pool: string;
  /** Address family. */
  readonly family: IpFamily;
  /** Assignable addresses (excluding reserved and avoided ones). */
  readonly size: bigint;
  /** Addresses held by at least one owner. */
  readonly used: number;
  /** Assignable addresses that nobody holds. */
  readonly available: bigint;
}
