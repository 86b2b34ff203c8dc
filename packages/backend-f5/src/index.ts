/**
 * KLB's F5 BIG-IP backend: an iControl REST client (token auth, transactions, typed errors)
 * and a `LoadBalancerBackend` that writes virtual servers, pools, members and monitors.
 *
 * @packageDocumentation
 */
export {
  type As3Application,
  type As3Settings,
  as3Application,
  as3ApplicationName,
  as3Declaration,
  as3SchemaVersion,
} from './as3-declaration.js';
export { F5As3Backend, type F5As3BackendOptions } from './f5-as3-backend.js';
export { F5Backend, type F5BackendOptions } from './f5-backend.js';
export { F5ConfigError, type F5ConnectionConfig, f5ConfigFromEnv, f5ConfigFromSecret } from './f5-config.js';
export { F5Error, type F5ErrorCode, type F5ErrorOptions, isF5Error } from './f5-error.js';
export { addressPort, destination, urlName } from './f5-path.js';
export {
  type F5Command,
  type F5RequestOptions,
  IControlClient,
  type IControlClientOptions,
} from './icontrol-client.js';
