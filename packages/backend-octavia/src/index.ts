/**
 * KLB backend for OpenStack Octavia (LBaaS v2) with Keystone v3: got-based Keystone, Octavia
 * and Neutron (floating IPs) clients and the {@link OctaviaBackend}.
 *
 * @packageDocumentation
 */

export { type AuthedApi, type AuthedResponse, collectPages, type HttpMethod, sendAuthed } from './authed-request.js';
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
  ApiFaultError,
  FloatingIpInUseError,
  faultstringOf,
  KeystoneAuthError,
  NeutronApiError,
  NeutronConflictError,
  NeutronUnavailableError,
  NeutronValidationError,
  neutronError,
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
export {
  FLOATING_ADDRESS_ANNOTATION,
  FLOATING_NETWORK_ANNOTATION,
  type FloatingIpRequest,
  FloatingIps,
  type FloatingIpTarget,
  floatingIpRequest,
} from './floating-ips.js';
export { createHttp, KeystoneSession, type KeystoneSessionOptions, type KeystoneToken } from './keystone.js';
export { NeutronClient, type NeutronClientOptions, type NeutronFloatingIp } from './neutron-client.js';
export {
  OctaviaBackend,
  type OctaviaBackendOptions,
  type OctaviaPollOptions,
} from './octavia-backend.js';
export {
  OctaviaClient,
  type OctaviaClientOptions,
  type OctaviaFeatures,
  type OctaviaHealthMonitor,
  type OctaviaListener,
  type OctaviaLoadBalancer,
  type OctaviaMember,
  type OctaviaPool,
} from './octavia-client.js';
