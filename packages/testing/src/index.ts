/**
 * Test harnesses for KLB and for SDK users: real components, started and stopped by the test.
 *
 * @packageDocumentation
 */
export { ComponentMissingError, findKubeApiserver, which } from './binaries.js';
export { type Component, requireComponents } from './components.js';
export { type ConformanceOptions, type ConformanceSubject, runBackendConformance } from './conformance.js';
export {
  type ControlPlane,
  type ControlPlaneOptions,
  type ControlPlaneUser,
  startControlPlane,
} from './control-plane.js';
export { freePort } from './free-port.js';
export { type F5CallCategory, type F5CallCounts, type F5CallRecord, CallLog } from './f5/call-log.js';
export { type SelfSignedCertificate, generateSelfSignedCertificate } from './f5/certificate.js';
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
export {
  type OpenStack,
  type OpenStackOptions,
  type OpenStackUser,
  startOpenStack,
} from './openstack/launcher.js';
export {
  type Fail503Rule,
  type ProvisioningTransition,
  type ProxiedRequest,
  ProviderControl,
} from './openstack/provider-control.js';
export { ProcessGroup, type StartProcessOptions } from './process-group.js';
export { type RecordedCall, RecordingBackend, type RecordingBackendOptions } from './recording-backend.js';
