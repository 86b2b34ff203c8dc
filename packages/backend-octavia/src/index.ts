/**
 * KLB backend for OpenStack Octavia (LBaaS v2) with Keystone v3: a got-based Keystone and
 * Octavia client and the {@link OctaviaBackend}.
 *
 * @packageDocumentation
 */
export {
  type ApplicationCredentials,
  type EndpointInterface,
  type OpenStackConfig,
  type OpenStackCredentials,
  type OpenStackEnv,
  openStackConfigFromCloudsYaml,
  openStackConfigFromEnv,
  openStackConfigFromSecret,
  type PasswordCredentials,
  validateOpenStackConfig,
} from './config.js';
export {
  type ApiErrorOptions,
  type ApiFault,
  faultstringOf,
  KeystoneAuthError,
  OctaviaApiError,
  OctaviaConflictError,
  OctaviaImmutableError,
  OctaviaPendingError,
  OctaviaQuotaError,
  OctaviaUnavailableError,
  OctaviaValidationError,
  OpenStackConfigError,
  octaviaError,
} from './errors.js';
export { createHttp, KeystoneSession, type KeystoneSessionOptions, type KeystoneToken } from './keystone.js';
export {
  OctaviaBackend,
  type OctaviaBackendOptions,
  type OctaviaPollOptions,
} from './octavia-backend.js';
export {
  type HttpMethod,
  OctaviaClient,
  type OctaviaClientOptions,
  type OctaviaFeatures,
  type OctaviaHealthMonitor,
  type OctaviaListener,
  type OctaviaLoadBalancer,
  type OctaviaMember,
  type OctaviaPool,
} from './octavia-client.js';
