import { KlbError, RetryAfterError, TerminalError } from '@klb/core';

/** Where an Octavia, Neutron or Keystone error came from. */
export interface ApiFault {
  /** HTTP status code; 0 when there was no answer (unreachable, timed out). */
  readonly status: number;
  /** HTTP method of the failed request. */
  readonly method: string;
  /** URL path of the failed request (no query, no credentials). */
  readonly path: string;
  /**
   * Octavia's `faultstring` (or Keystone's `error.message`, Neutron's `NeutronError.message`),
   * when the body had one.
   */
  readonly faultstring?: string;
}

/** Options of the API error classes. */
export interface ApiErrorOptions {
  /** The error that caused this one. */
  readonly cause?: unknown;
}

function describe(fault: ApiFault): string {
  return `${fault.method} ${fault.path}: HTTP ${fault.status}${fault.faultstring ? `: ${fault.faultstring}` : ''}`;
}

/** A failed Octavia or Neutron request, with the request in {@link ApiFaultError.fault}. */
export class ApiFaultError extends KlbError {
  /** The failed request. */
  readonly fault: ApiFault;
  constructor(code: string, message: string, retryable: boolean, fault: ApiFault, options: ApiErrorOptions = {}) {
    super(code, `${message}: ${describe(fault)}`, retryable, options);
    this.fault = fault;
  }
}

/**
 * The load balancer is immutable right now (409 while it is PENDING_*): retry after the delay,
 * once the provider has finished.
 */
export class OctaviaImmutableError extends RetryAfterError {
  /** The failed request. */
  readonly fault: ApiFault;
  constructor(fault: ApiFault, retryAfterMs: number, options: ApiErrorOptions = {}) {
    super(`Octavia load balancer is immutable (provisioning): ${describe(fault)}`, retryAfterMs, {
      ...options,
      code: 'OCTAVIA_IMMUTABLE',
    });
    this.fault = fault;
  }
}

/** Octavia is busy or unavailable (503): retry after the delay. */
export class OctaviaUnavailableError extends RetryAfterError {
  /** The failed request. */
  readonly fault: ApiFault;
  constructor(fault: ApiFault, retryAfterMs: number, options: ApiErrorOptions = {}) {
    super(`Octavia is unavailable: ${describe(fault)}`, retryAfterMs, { ...options, code: 'OCTAVIA_UNAVAILABLE' });
    this.fault = fault;
  }
}

/** A load balancer is PENDING_* (KLB just changed it, or someone else did): check again later. */
export class OctaviaPendingError extends RetryAfterError {
  /** The load balancer's id. */
  readonly loadBalancerId: string;
  /** Its provisioning status, e.g. `PENDING_UPDATE`. */
  readonly provisioningStatus: string;
  constructor(loadBalancerId: string, provisioningStatus: string, retryAfterMs: number, why: string) {
    super(`Octavia load balancer ${loadBalancerId} is ${provisioningStatus} (${why})`, retryAfterMs, {
      code: 'OCTAVIA_PENDING',
    });
    this.loadBalancerId = loadBalancerId;
    this.provisioningStatus = provisioningStatus;
  }
}

/** Octavia refused the request as invalid (400): the spec cannot be realised as written. */
export class OctaviaValidationError extends TerminalError {
  /** The failed request. */
  readonly fault: ApiFault;
  constructor(fault: ApiFault, options: ApiErrorOptions = {}) {
    super(`Octavia rejected the request: ${describe(fault)}`, {
      ...options,
      code: 'OCTAVIA_VALIDATION',
      reason: 'OctaviaValidationFailed',
    });
    this.fault = fault;
  }
}

/**
 * A conflicting object exists (409 that is not "immutable", e.g. a duplicate listener port):
 * KLB's view was stale; re-reading and diffing again resolves it, so it is retried.
 */
export class OctaviaConflictError extends ApiFaultError {
  constructor(fault: ApiFault, options: ApiErrorOptions = {}) {
    super('OCTAVIA_CONFLICT', 'Octavia reported a conflict', true, fault, options);
  }
}

/** The project's Octavia quota is used up (403 "Quota has been met"): retried with backoff. */
export class OctaviaQuotaError extends ApiFaultError {
  constructor(fault: ApiFault, options: ApiErrorOptions = {}) {
    super('OCTAVIA_QUOTA', 'Octavia quota exceeded', true, fault, options);
  }
}

/** Any other Octavia API failure; `retryable` for 5xx, not for other 4xx (403 policy, 404...). */
export class OctaviaApiError extends ApiFaultError {
  constructor(fault: ApiFault, options: ApiErrorOptions = {}) {
    super(`OCTAVIA_HTTP_${fault.status}`, 'Octavia request failed', fault.status >= 500, fault, options);
  }
}

/**
 * Keystone refused the credentials (401) or the token has no usable catalog entry. Retried with
 * backoff (a fixed Secret or role assignment makes it work) and never a reason to delete anything.
 */
export class KeystoneAuthError extends KlbError {
  /** The failed request, when there was one. */
  readonly fault?: ApiFault;
  constructor(message: string, fault?: ApiFault, options: ApiErrorOptions = {}) {
    super('KEYSTONE_AUTH', message, true, options);
    if (fault) this.fault = fault;
  }
}

/** The OpenStack configuration (env, clouds.yaml, Secret, options) is incomplete or invalid. */
export class OpenStackConfigError extends KlbError {
  constructor(message: string, options: ApiErrorOptions = {}) {
    super('OPENSTACK_CONFIG', message, false, options);
  }
}

/** Octavia's `faultstring` (Keystone's `error.message`, Neutron's `NeutronError.message`) from an error body, if any. */
export function faultstringOf(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as {
      faultstring?: unknown;
      error?: { message?: unknown };
      NeutronError?: { message?: unknown };
    };
    if (typeof parsed.faultstring === 'string') return parsed.faultstring;
    if (typeof parsed.error?.message === 'string') return parsed.error.message;
    if (typeof parsed.NeutronError?.message === 'string') return parsed.NeutronError.message;
  } catch {
    // not JSON (an HTML error page): no faultstring
  }
  return undefined;
}

/** Maps a failed Octavia response to the matching typed error. */
export function octaviaError(fault: ApiFault, retryAfterMs: number): Error {
  const text = fault.faultstring ?? '';
  if (fault.status === 409 && /immutable/i.test(text)) return new OctaviaImmutableError(fault, retryAfterMs);
  if (fault.status === 409) return new OctaviaConflictError(fault);
  if (fault.status === 403 && /quota/i.test(text)) return new OctaviaQuotaError(fault);
  if (fault.status === 503) return new OctaviaUnavailableError(fault, retryAfterMs);
  if (fault.status === 400) return new OctaviaValidationError(fault);
  return new OctaviaApiError(fault);
}

/**
 * Neutron did not answer (unreachable, timed out: `fault.status` 0) or failed (5xx). Retried with
 * backoff, recorded on the Service, and never a reason to delete anything: what Neutron holds is
 * unknown.
 */
export class NeutronUnavailableError extends ApiFaultError {
  constructor(fault: ApiFault, options: ApiErrorOptions = {}) {
    super(
      'NEUTRON_UNAVAILABLE',
      fault.status === 0 ? 'Neutron did not answer' : 'Neutron failed',
      true,
      fault,
      options,
    );
  }
}

/**
 * Neutron reported a conflict (409, e.g. the port already has a floating IP, or the address is
 * taken): KLB's view was stale; re-reading resolves it, so it is retried.
 */
export class NeutronConflictError extends ApiFaultError {
  constructor(fault: ApiFault, options: ApiErrorOptions = {}) {
    super('NEUTRON_CONFLICT', 'Neutron reported a conflict', true, fault, options);
  }
}

/** Neutron refused the request as invalid (400, e.g. not an external network): a `TerminalError`. */
export class NeutronValidationError extends TerminalError {
  /** The failed request. */
  readonly fault: ApiFault;
  constructor(fault: ApiFault, options: ApiErrorOptions = {}) {
    super(`Neutron rejected the request: ${describe(fault)}`, {
      ...options,
      code: 'NEUTRON_VALIDATION',
      reason: 'NeutronValidationFailed',
    });
    this.fault = fault;
  }
}

/** Any other Neutron API failure (403 policy, 404 on a create...): retried with backoff. */
export class NeutronApiError extends ApiFaultError {
  constructor(fault: ApiFault, options: ApiErrorOptions = {}) {
    super(`NEUTRON_HTTP_${fault.status}`, 'Neutron request failed', false, fault, options);
  }
}

/** Maps a failed Neutron response (or no response: status 0) to the matching typed error. */
export function neutronError(fault: ApiFault, options: ApiErrorOptions = {}): Error {
  if (fault.status === 0 || fault.status >= 500) return new NeutronUnavailableError(fault, options);
  if (fault.status === 409) return new NeutronConflictError(fault, options);
  if (fault.status === 400) return new NeutronValidationError(fault, options);
  return new NeutronApiError(fault, options);
}

/**
 * The floating IP a Service asks for (by address) is associated with a port other than its load
 * balancer's VIP port, and KLB does not own it: KLB does not take it away. Retried with backoff
 * (it may be released).
 */
export class FloatingIpInUseError extends KlbError {
  /** The floating IP address. */
  readonly address: string;
  /** The port it is associated with. */
  readonly portId: string;
  constructor(address: string, portId: string) {
    super(
      'NEUTRON_FLOATING_IP_IN_USE',
      `floating IP ${address} is associated with port ${portId}, not with this load balancer's VIP port; KLB does not take it away`,
      true,
    );
    this.address = address;
    this.portId = portId;
  }
}
