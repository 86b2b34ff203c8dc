/**
 * KLB core: the backend-neutral load balancer model, the backend contract, and (growing) the
 * Kubernetes sources and the reconcile engine.
 *
 * @packageDocumentation
 */
export type { BackendCapabilities, BackendContext, LoadBalancerBackend } from './backend.js';
export {
  isRetryAfterError,
  isTerminalError,
  KlbError,
  type KlbErrorOptions,
  RetryAfterError,
  TerminalError,
} from './errors.js';
export { type Logger, silentLogger } from './logger.js';
export {
  type HealthCheck,
  type HttpRoute,
  type IpFamily,
  type Listener,
  type LoadBalancerIngress,
  type LoadBalancerOptions,
  type LoadBalancerRef,
  type LoadBalancerSpec,
  type LoadBalancerStatus,
  loadBalancerId,
  type PortStatus,
  type Protocol,
  parseLoadBalancerId,
  type SourceKind,
  type Target,
  type TargetKind,
  type TlsCertificate,
  type Upstream,
} from './spec.js';
