/**
 * Test harnesses for KLB and for SDK users: real components, started and stopped by the test.
 *
 * @packageDocumentation
 */
export {
  ComponentMissingError,
  findEtcd,
  findKubeApiserver,
  findKubeBinary,
  KUBE_VERSION,
  type KubeBinary,
  klbCacheDir,
  which,
} from './binaries.js';
export {
  CLUSTER_INTERFACE,
  type Cluster,
  ClusterBusyError,
  ClusterError,
  type ClusterOptions,
  startCluster,
} from './cluster/cluster.js';
export { CLUSTER_HOST_SYSCTLS } from './cluster/host-sysctls.js';
export { type Component, requireComponents } from './components.js';
export {
  type ConformanceFaults,
  type ConformanceOptions,
  type ConformanceSubject,
  type ObservedListener,
  type ObservedLoadBalancer,
  runBackendConformance,
} from './conformance.js';
export {
  type ControlPlane,
  type ControlPlaneOptions,
  type ControlPlaneUser,
  startControlPlane,
} from './control-plane.js';
export { as3SchemaValidator, as3Version } from './f5/as3-service.js';
export { CallLog, type F5CallCategory, type F5CallCounts, type F5CallRecord } from './f5/call-log.js';
export { generateSelfSignedCertificate, type SelfSignedCertificate } from './f5/certificate.js';
export { EmulatorClock } from './f5/emulator-clock.js';
export {
  type F5Emulator,
  type F5EmulatorOptions,
  type F5EmulatorState,
  startF5Emulator,
} from './f5/f5-emulator.js';
export { type F5Fault, type F5FaultEffect, FaultInjector } from './f5/fault-injector.js';
export type { LtmObject } from './f5/ltm-database.js';
export type { F5User } from './f5/token-store.js';
export { freePort } from './free-port.js';
export { CrdNotEstablishedError, GATEWAY_API_VERSION, installGatewayApiCrds } from './gateway-api-crds.js';
export { createNode, createTestNamespace, eventually, setNodeStatus } from './kube-fixtures.js';
export type { NetnsClient, NetnsHttpOptions, NetnsReply, NetnsSocketOptions } from './netns/client.js';
export { type CommandResult, NetnsCommandError } from './netns/ip.js';
export { type NetnsLab, type NetnsLabOptions, type NetnsNode, startNetnsLab } from './netns/lab.js';
export {
  type IssuedToken,
  type OpenStack,
  type OpenStackOptions,
  type OpenStackPids,
  type OpenStackUser,
  startOpenStack,
} from './openstack/launcher.js';
export type { OpenStackNeutron } from './openstack/neutron.js';
export {
  type Fail503Rule,
  type HoldRule,
  ProviderControl,
  type ProvisioningTransition,
  type ProxiedRequest,
  type ProxiedService,
} from './openstack/provider-control.js';
export { ProcessGroup, type StartProcessOptions } from './process-group.js';
export { type RecordedCall, RecordingBackend, type RecordingBackendOptions } from './recording-backend.js';
