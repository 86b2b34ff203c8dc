/**
 * KLB core: the backend-neutral load balancer model, the backend contract, the Kubernetes
 * sources (Service `type: LoadBalancer`, the original `app=loadbalancer` ConfigMaps, Ingress)
 * and the reconcile engine.
 *
 * @packageDocumentation
 */
export type {
  AddressAllocation,
  AddressAllocator,
  AddressOwner,
  AddressPort,
  AddressRequest,
} from './address-allocator.js';
export { ANNOTATION_PREFIX, Annotations } from './annotations.js';
export type { BackendCapabilities, BackendContext, LoadBalancerBackend } from './backend.js';
export type { BackoffOptions } from './backoff.js';
export { boundedName } from './bounded-name.js';
export { ConfigMapKeys, ConfigMapSource, ORIGINAL_LABEL_SELECTOR } from './configmap-source.js';
export { FINALIZER, LoadBalancerController, type LoadBalancerControllerOptions } from './controller.js';
export {
  isRetryAfterError,
  isTerminalError,
  KlbError,
  type KlbErrorOptions,
  RetryAfterError,
  TerminalError,
} from './errors.js';
export { EventRecorder, type EventType } from './event-recorder.js';
export type {
  BackendRefJson,
  GatewayAddressJson,
  GatewayClassObject,
  GatewayListenerJson,
  GatewayObject,
  HttpRouteMatchJson,
  LabelSelectorJson,
  ListenerStatusJson,
  ObjectReferenceJson,
  ParentReferenceJson,
  ReferenceGrantObject,
  RouteGroupKindJson,
  RouteObject,
  RouteParentStatusJson,
  RouteRuleJson,
} from './gateway-api-types.js';
export { GatewaySource, type GatewaySourceOptions } from './gateway-source.js';
export { GATEWAY_GROUP } from './gateway-translation.js';
export { type HealthServer, type HealthServerOptions, startHealthServer } from './health-server.js';
export { Informer, type InformerHandler, type InformerOptions } from './informer.js';
export { IngressSource, type IngressSourceOptions } from './ingress-source.js';
export {
  isConflict,
  isNotFound,
  KubeApiError,
  KubeClient,
  type KubeClientOptions,
  type KubeObject,
  type ListResult,
  type ObjectMeta,
  type PatchType,
} from './kube-client.js';
export { type KubeIpResult, readKubeCidr, readKubeIp } from './kube-ip.js';
export type {
  ConditionJson,
  ConfigMapObject,
  EndpointJson,
  EndpointPortJson,
  EndpointSliceObject,
  IngressBackend,
  IngressObject,
  IngressPathJson,
  IngressRuleJson,
  IngressTlsJson,
  LoadBalancerIngressJson,
  NodeAddressJson,
  NodeConditionJson,
  NodeObject,
  SecretObject,
  ServiceObject,
  ServicePortJson,
  ServiceSpecJson,
} from './kube-types.js';
export { type LeaderCallbacks, type LeaderElectionOptions, LeaderElector } from './leader-election.js';
export { type Logger, silentLogger } from './logger.js';
export { ControllerMetrics } from './metrics.js';
export { SERVICE_CONDITION, ServiceSource, type ServiceSourceOptions } from './service-source.js';
export type {
  ClusterState,
  FailureOutcome,
  LoadBalancerDependencies,
  LoadBalancerDraft,
  LoadBalancerSource,
  ObjectName,
  ReconcileOutcome,
  SuccessOutcome,
  WatchedResource,
} from './source.js';
export {
  addressIngress,
  describeHttpSettings,
  type HealthCheck,
  type HttpRoute,
  type HttpSettings,
  type IpFamily,
  type IpMode,
  type Listener,
  type LoadBalancerIngress,
  type LoadBalancerOptions,
  type LoadBalancerProblem,
  type LoadBalancerRef,
  type LoadBalancerSpec,
  type LoadBalancerStatus,
  listenerPorts,
  loadBalancerId,
  type PortStatus,
  type Protocol,
  parseLoadBalancerId,
  type SniRoute,
  type SourceKind,
  type Target,
  type TargetKind,
  type TlsCertificate,
  type Upstream,
} from './spec.js';
export { EXCLUDE_FROM_LB_LABEL, familyOf, nodeEligible, type ServiceEndpoint } from './targets.js';

// Plumbing that KLB's own packages share: exported, but marked internal (left out of the API
// reference, flagged in the API report) so that it can change without notice.
import type { BackoffOptions } from './backoff.js';
import * as backoff from './backoff.js';
import * as informer from './informer.js';
import type { KubeObject } from './kube-client.js';
import * as kubeClient from './kube-client.js';
import * as workQueue from './work-queue.js';

/**
 * Resolves after `ms`, or rejects with the signal's reason when `signal` aborts first.
 * @internal
 */
export const sleep: (ms: number, signal?: AbortSignal) => Promise<void> = backoff.sleep;
/**
 * The delay before attempt `failures` + 1: `baseMs · 2^(failures-1)`, capped, with optional jitter.
 * @internal
 */
export const backoffDelay: (failures: number, options: BackoffOptions) => number = backoff.backoffDelay;
/**
 * Appends query parameters (skipping undefined ones) to a path.
 * @internal
 */
export const withQuery: (path: string, query: Record<string, string | undefined>) => string = kubeClient.withQuery;
/**
 * `namespace/name` (or `name` for cluster-scoped objects): the key of an object in caches and queues.
 * @internal
 */
export const objectKey: (obj: KubeObject) => string = informer.objectKey;
/**
 * The engine's de-duplicating work queue of keys, with per-key backoff and a global retry limit.
 * @internal
 */
export const WorkQueue: typeof workQueue.WorkQueue = workQueue.WorkQueue;
/** @internal */
export type WorkQueue = workQueue.WorkQueue;
/**
 * Options of the work queue.
 * @internal
 */
export type WorkQueueOptions = workQueue.WorkQueueOptions;
/**
 * Receives work queue events (metrics).
 * @internal
 */
export type WorkQueueObserver = workQueue.WorkQueueObserver;
