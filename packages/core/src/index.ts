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
export { type BackoffOptions, backoffDelay, sleep } from './backoff.js';
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
export { type HealthServer, type HealthServerOptions, startHealthServer } from './health-server.js';
export { Informer, type InformerHandler, type InformerOptions, objectKey } from './informer.js';
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
  withQuery,
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
  Dependencies,
  Draft,
  FailureOutcome,
  LoadBalancerSource,
  Outcome,
  SourceWorld,
  SuccessOutcome,
} from './source.js';
export {
  addressIngress,
  type HealthCheck,
  type HttpRoute,
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
  type SourceKind,
  type Target,
  type TargetKind,
  type TlsCertificate,
  type Upstream,
} from './spec.js';
export { EXCLUDE_FROM_LB_LABEL, familyOf, nodeEligible, type ServiceEndpoint } from './targets.js';
export { WorkQueue, type WorkQueueObserver, type WorkQueueOptions } from './work-queue.js';
