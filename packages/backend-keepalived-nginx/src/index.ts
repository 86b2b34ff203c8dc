/**
 * The KLB software load balancer: keepalived (VRRP) holds the virtual IPs on labelled nodes and
 * nginx carries L4 (stream) and L7 (http, TLS) traffic. This package has the daemon config model,
 * the nginx.conf and keepalived.conf renderers, and the controller-side backend.
 *
 * @packageDocumentation
 */

export { writeFileAtomic } from './daemon/atomic-file.js';
export {
  type ApplyOutcome,
  ConfigApplier,
  type ConfigApplierOptions,
  ConfigValidationError,
  type DataPlane,
} from './daemon/config-applier.js';
export {
  type DaemonConfigSnapshot,
  DaemonConfigWatcher,
  type DaemonConfigWatcherOptions,
} from './daemon/config-watcher.js';
export {
  type Daemon,
  type DaemonKeepalivedOptions,
  type DaemonOptions,
  type DaemonStatus,
  runDaemon,
} from './daemon/daemon.js';
export { DaemonMetrics } from './daemon/metrics.js';
export { confirmNginxReload, logOffset, NginxReloadError } from './daemon/nginx-reload.js';
export { NodeStatusReporter, type NodeStatusReporterOptions } from './daemon/status-reporter.js';
export {
  type ProcessExit,
  ProcessSupervisor,
  type ProcessSupervisorOptions,
} from './daemon/supervisor.js';
export { enableNonlocalBind, NONLOCAL_BIND_SYSCTLS, SysctlError, setSysctl } from './daemon/sysctl.js';
export { type InterfaceAddress, interfaceAddresses, removeVips } from './daemon/vip-cleanup.js';
export { VrrpStateTracker } from './daemon/vrrp-state.js';
export {
  checkDaemonConfigSet,
  DAEMON_CONFIG_API_VERSION,
  DAEMON_SERVICE_CONFIG_KIND,
  type DaemonConfigSetCheck,
  type DaemonHttpOptions,
  type DaemonHttpRoute,
  type DaemonListener,
  type DaemonServiceConfig,
  type DaemonServiceOptions,
  type DaemonSniRoute,
  type DaemonTarget,
  type DaemonTlsCertificate,
  type DaemonUpstream,
  type DaemonVrrp,
  daemonConfigVersion,
  daemonServiceConfigSchema,
  validateDaemonServiceConfig,
} from './daemon-config.js';
export {
  COMPAT_CONFIGMAP_LABEL,
  COMPAT_CONFIGMAP_NAME,
  CONFIG_VERSION_ANNOTATION,
  compatConfigKey,
  DAEMON_CONFIG_KEY,
  DAEMON_CONFIG_LABEL,
  DAEMON_CONFIG_SECRET_TYPE,
  type DaemonConfigObject,
  type DaemonConfigObjectContent,
  daemonConfigObjectName,
  daemonConfigSecret,
  LOAD_BALANCER_ID_ANNOTATION,
  readDaemonConfigObject,
} from './daemon-config-object.js';
export { DaemonConfigConflictError, InvalidDaemonConfigError, InvalidRenderOptionsError } from './errors.js';
export {
  type DaemonConfigPublishMode,
  KeepalivedNginxBackend,
  type KeepalivedNginxBackendOptions,
  VRRP_GROUP_ANNOTATION,
} from './keepalived-nginx-backend.js';
export {
  type KeepalivedInstance,
  KeepalivedRenderer,
  type KeepalivedRenderOptions,
  type KeepalivedRenderResult,
  renderKeepalivedConfig,
} from './keepalived-renderer.js';
export {
  NginxRenderer,
  type NginxRendererOptions,
  type NginxRenderOptions,
  type NginxRenderResult,
  type RenderedFile,
  renderNginxConfig,
} from './nginx-renderer.js';
export {
  DAEMON_NODE_REPORT_KIND,
  DAEMON_REPORT_KEY,
  DAEMON_REPORT_LABEL,
  type DaemonNodeReport,
  type DaemonReportObject,
  type DaemonReportRejection,
  type DaemonVrrpInstanceReport,
  daemonReportObject,
  daemonReportObjectName,
  parseDaemonNodeReport,
  type VrrpState,
} from './node-report.js';
export { daemonConfigFromSpec, type PassiveHealthDefaults } from './spec-to-daemon-config.js';
