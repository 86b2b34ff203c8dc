/**
 * Virtual IP address pools for KLB: IPv4, IPv6 and dual-stack pools, allocation with sharing,
 * and persistence in the Kubernetes API so that one address is never handed to two owners.
 *
 * @packageDocumentation
 */
export {
  ADDRESS_CLAIM_GROUP,
  ADDRESS_CLAIM_PLURAL,
  ADDRESS_CLAIM_VERSION,
  type AddressClaim,
  addressClaimCrd,
  addressClaimName,
  HOLDER_LABEL_PREFIX,
  installAddressClaimCrd,
  POOL_LABEL,
} from './address-claim.js';
export { type AllocationPlan, Allocator } from './allocator.js';
export { IpamError, type IpamErrorCode, type IpamErrorOptions, isIpamError } from './errors.js';
export {
  type AddressRange,
  canonicalAddress,
  formatAddress,
  type IpFamily,
  type ParsedAddress,
  parseAddress,
  parseRange,
} from './ip.js';
export { KubeIpam, type KubeIpamOptions, SHARING_KEY_ANNOTATION } from './kube-ipam.js';
export { type LabelSelector, type LabelSelectorRequirement, matchesSelector } from './label-selector.js';
export { type IpamLogger, silentIpamLogger } from './logger.js';
export { IpamMetrics } from './metrics.js';
export {
  describePool,
  loadPoolConfigFile,
  loadPoolConfigMap,
  POOL_CONFIGMAP_KEY,
  type Pool,
  type PoolConfig,
  type PoolRange,
  type PoolSpec,
  parsePoolConfig,
  parsePoolConfigText,
  poolConfigFromConfigMap,
  poolConfigFromEnv,
  poolConfigSchema,
} from './pool-config.js';
export type { AddressHolder, Allocation, AllocationOwner, AllocationRequest, PoolStats, PortSpec } from './types.js';
