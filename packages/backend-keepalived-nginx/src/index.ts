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
export { DaemonConfigConflictError, InvalidDaemonConfigError, InvalidRenderOptionsError } from './errors.js';
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
