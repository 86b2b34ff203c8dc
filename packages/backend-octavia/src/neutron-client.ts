import { KlbError, type Logger, silentLogger } from '@klb/core';
import type { Got } from 'got';
import { type AuthedApi, collectPages, type HttpMethod, sendAuthed } from './authed-request.js';
import { faultstringOf, KeystoneAuthError, NeutronApiError, neutronError } from './errors.js';
import type { KeystoneSession } from './keystone.js';

/** A Neutron floating IP (the fields KLB reads). */
export interface NeutronFloatingIp {
  /** Id. */
  readonly id: string;
  /** The floating address. */
  readonly floating_ip_address: string;
  /** The external network it comes from. */
  readonly floating_network_id: string;
  /** The port it is associated with; null when it is not associated. */
  readonly port_id: string | null;
  /** The fixed address on that port it maps to. */
  readonly fixed_ip_address?: string | null;
  /** Description (KLB marks the floating IPs it creates here). */
  readonly description?: string;
  /** Tags (`standard-attr-tag` extension). */
  readonly tags?: readonly string[];
  /** Project. */
  readonly project_id?: string;
  /** Creation time (ISO). */
  readonly created_at?: string;
}

/** Options of {@link NeutronClient}. */
export interface NeutronClientOptions {
  /** Logger. */
  readonly log?: Logger;
}

/**
 * Neutron v2.0 client over got, for floating IPs: authenticates through a
 * {@link KeystoneSession} (once more on a 401), finds Neutron in the catalog (service type
 * `network`, same region and interface as Octavia; or `networkEndpointOverride`), follows
 * pagination, and turns failures into typed errors (no answer or 5xx →
 * {@link NeutronUnavailableError}, 409 → {@link NeutronConflictError}, 400 →
 * {@link NeutronValidationError}, else {@link NeutronApiError}). A missing object (404) reads as
 * undefined, and deleting one is success.
 */
export class NeutronClient {
  readonly #session: KeystoneSession;
  readonly #api: AuthedApi;
  #writes = 0;

  /**
   * @param session - the Keystone session that supplies tokens and the endpoint.
   * @param http - the got instance (TLS settings) to use.
   * @param options - logger.
   */
  constructor(session: KeystoneSession, http: Got, options: NeutronClientOptions = {}) {
    this.#session = session;
    this.#api = {
      session,
      http,
      log: options.log ?? silentLogger,
      service: 'Neutron',
      endpoint: (token) => {
        if (token.networkEndpoint) return token.networkEndpoint;
        throw new KeystoneAuthError(
          'the Keystone catalog has no network (Neutron) endpoint for this region and interface: floating IPs need one (or networkEndpointOverride)',
        );
      },
      linkError: (fault) => new NeutronApiError(fault),
      onSend: (method) => {
        if (method !== 'GET') this.#writes++;
      },
    };
  }

  /** Number of write requests (POST/PUT/DELETE) sent so far. */
  get writes(): number {
    return this.#writes;
  }

  /** Whether Neutron is reachable in principle: the catalog has a `network` endpoint, or an override is set. */
  async available(signal?: AbortSignal): Promise<boolean> {
    return (await this.#session.token(signal)).networkEndpoint !== undefined;
  }

  /** Sends one request to `path` (below the endpoint, e.g. `/v2.0/floatingips`) or to an absolute URL on the endpoint. */
  async request<T>(method: HttpMethod, path: string, body?: unknown, signal?: AbortSignal): Promise<T | undefined> {
    let res: Awaited<ReturnType<typeof sendAuthed>>;
    try {
      res = await sendAuthed(this.#api, method, path, body, signal);
    } catch (err) {
      if (err instanceof KlbError || signal?.aborted) throw err;
      // No answer (refused, reset, timed out): what Neutron holds is unknown.
      throw neutronError(
        { status: 0, method, path: path.split('?')[0] ?? path, faultstring: (err as Error).message },
        { cause: err },
      );
    }
    if (res.statusCode === 404 && method !== 'POST') return undefined;
    if (res.statusCode >= 400) {
      const faultstring = faultstringOf(res.body);
      throw neutronError(faultstring ? { ...res.fault, faultstring } : res.fault);
    }
    if (res.statusCode === 204 || res.body === '') return undefined;
    return JSON.parse(res.body) as T;
  }

  /**
   * Lists floating IPs matching `query`, Neutron's filters: e.g. `{ description }`,
   * `{ port_id }`, `{ floating_ip_address }`, `{ tags: 'a,b' }` (all of them).
   */
  listFloatingIps(query: Record<string, string>, signal?: AbortSignal): Promise<NeutronFloatingIp[]> {
    const params = new URLSearchParams(query).toString();
    return collectPages<NeutronFloatingIp>(
      `/v2.0/floatingips${params ? `?${params}` : ''}`,
      'floatingips',
      (path) => this.request<Record<string, unknown>>('GET', path, undefined, signal),
      () => neutronError({ status: 0, method: 'GET', path: '/v2.0/floatingips', faultstring: 'no list in the answer' }),
    );
  }

  /** Creates a floating IP (`floating_network_id`, optionally `port_id`, `floating_ip_address`, `description`). */
  async createFloatingIp(body: Record<string, unknown>, signal?: AbortSignal): Promise<NeutronFloatingIp> {
    const res = await this.request<{ floatingip: NeutronFloatingIp }>(
      'POST',
      '/v2.0/floatingips',
      { floatingip: body },
      signal,
    );
    return (res as { floatingip: NeutronFloatingIp }).floatingip;
  }

  /** Updates a floating IP, e.g. `{ port_id }` to associate it or `{ port_id: null }` to disassociate it. */
  async updateFloatingIp(
    id: string,
    body: Record<string, unknown>,
    signal?: AbortSignal,
  ): Promise<NeutronFloatingIp | undefined> {
    const res = await this.request<{ floatingip: NeutronFloatingIp }>(
      'PUT',
      `/v2.0/floatingips/${id}`,
      { floatingip: body },
      signal,
    );
    return res?.floatingip;
  }

  /** Replaces the tags of a floating IP (`standard-attr-tag`). */
  async setFloatingIpTags(id: string, tags: readonly string[], signal?: AbortSignal): Promise<void> {
    await this.request('PUT', `/v2.0/floatingips/${id}/tags`, { tags }, signal);
  }

  /** Deletes a floating IP; a missing one is success. */
  async deleteFloatingIp(id: string, signal?: AbortSignal): Promise<void> {
    await this.request('DELETE', `/v2.0/floatingips/${id}`, undefined, signal);
  }
}
