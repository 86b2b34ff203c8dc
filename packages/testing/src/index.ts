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
export { ProcessGroup, type StartProcessOptions } from './process-group.js';
export { type RecordedCall, RecordingBackend, type RecordingBackendOptions } from './recording-backend.js';
