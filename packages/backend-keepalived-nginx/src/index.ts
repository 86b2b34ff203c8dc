/**
 * The KLB software load balancer: keepalived (VRRP) holds the virtual IPs on labelled nodes and
 * nginx carries L4 (stream) and L7 (http, TLS) traffic. This package has the daemon config model,
 * the nginx.conf and keepalived.conf renderers, and the controller-side backend.
 *
 * @packageDocumentation
 */
export {
  checkDaemonConfigSet,
  DAEMON_CONFIG_API_VERSION,
  DAEMON_SERVICE_CONFIG_KIND,
  type DaemonConfigSetCheck,
  type DaemonHttpRoute,
  type DaemonListener,
  type DaemonServiceConfig,
  type DaemonServiceOptions,
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
