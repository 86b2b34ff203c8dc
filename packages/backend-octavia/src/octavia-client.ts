import { type Logger, silentLogger } from '@klb/core';
import type { Got } from 'got';
import { type AuthedApi, collectPages, type HttpMethod, sendAuthed } from './authed-request.js';
import { faultstringOf, OctaviaApiError, octaviaError } from './errors.js';
import type { KeystoneSession } from './keystone.js';

export type { HttpMethod } from './authed-request.js';

/** What the Octavia API behind the endpoint supports (from version discovery). */
export interface OctaviaFeatures {
  /** Highest API minor version, e.g. 26 for v2.26. */
  readonly minorVersion: number;
  /** Tags on load balancers and children (API >= 2.5). */
  readonly tags: boolean;
  /** `allowed_cidrs` on listeners (API >= 2.12). */
  readonly allowedCidrs: boolean;
}

/** An Octavia load balancer (the fields KLB reads). */
export interface OctaviaLoadBalancer {
  /** Id. */
  readonly id: string;
  /** Name. */
  readonly name: string;
  /** Description. */
  readonly description?: string;
  /** `ACTIVE`, `ERROR`, `PENDING_CREATE`, `PENDING_UPDATE` or `PENDING_DELETE`. */
  readonly provisioning_status: string;
  /** `ONLINE`, `OFFLINE`, `DEGRADED`, `ERROR`, `NO_MONITOR`. */
  readonly operating_status: string;
  /** The VIP. */
  readonly vip_address: string;
  /** The Neutron port of the VIP (floating IPs are associated with it). */
  readonly vip_port_id?: string;
  /** Tags (API >= 2.5). */
  readonly tags?: readonly string[];
  /** Creation time (ISO). */
  readonly created_at?: string;
}

/** An Octavia listener. */
export interface OctaviaListener {
  /** Id. */
  readonly id: string;
  /** Name. */
  readonly name: string;
  /** `TCP`, `UDP`, `HTTP`, ... */
  readonly protocol: string;
  /** Port. */
  readonly protocol_port: number;
  /** The default pool. */
  readonly default_pool_id: string | null;
  /** Allowed client CIDRs (API >= 2.12). */
  readonly allowed_cidrs?: readonly string[] | null;
  /** Client idle timeout, ms. */
  readonly timeout_client_data?: number | null;
  /** Member connect timeout, ms. */
  readonly timeout_member_connect?: number | null;
  /** Member idle timeout, ms. */
  readonly timeout_member_data?: number | null;
  /** Tags. */
  readonly tags?: readonly string[];
}

/** An Octavia pool. */
export interface OctaviaPool {
  /** Id. */
  readonly id: string;
  /** Name. */
  readonly name: string;
  /** `TCP`, `UDP`, `HTTP`, `PROXY`, ... */
  readonly protocol: string;
  /** `ROUND_ROBIN`, `LEAST_CONNECTIONS`, `SOURCE_IP`. */
  readonly lb_algorithm: string;
  /** Session persistence. */
  readonly session_persistence: {
    /** `SOURCE_IP`, `HTTP_COOKIE` or `APP_COOKIE`. */
    readonly type: string;
  } | null;
  /** The pool's health monitor. */
  readonly healthmonitor_id: string | null;
  /** Listeners using it. */
  readonly listeners: ReadonlyArray<{
    /** Listener id. */
    readonly id: string;
  }>;
  /** Tags. */
  readonly tags?: readonly string[];
}

/** An Octavia member. */
export interface OctaviaMember {
  /** Id. */
  readonly id: string;
  /** Name. */
  readonly name: string;
  /** Address. */
  readonly address: string;
  /** Port. */
  readonly protocol_port: number;
  /** Port health checks go to, if not `protocol_port`. */
  readonly monitor_port: number | null;
  /** Subnet of the address. */
  readonly subnet_id?: string | null;
}

/** An Octavia health monitor. */
export interface OctaviaHealthMonitor {
  /** Id. */
  readonly id: string;
  /** `TCP`, `HTTP`, `UDP-CONNECT`, ... */
  readonly type: string;
  /** Seconds between checks. */
  readonly delay: number;
  /** Seconds before a check fails. */
  readonly timeout: number;
  /** Successes before a member is up. */
  readonly max_retries: number;
  /** Failures before a member is down. */
  readonly max_retries_down: number;
  /** HTTP path. */
  readonly url_path: string | null;
  /** HTTP method. */
  readonly http_method: string | null;
  /** Expected HTTP codes. */
  readonly expected_codes: string | null;
}

/** Options of {@link OctaviaClient}. */
export interface OctaviaClientOptions {
  /** Logger. */
  readonly log?: Logger;
  /** Delay to put into RetryAfterErrors for 409-immutable and 503 answers, in ms (called per error). */
  readonly retryAfterMs?: () => number;
}

/**
 * Octavia v2 client over got: authenticates through a {@link KeystoneSession} (once more on a
 * 401), follows pagination, and turns failures into typed errors from the `faultstring` body
 * (409 immutable → {@link OctaviaImmutableError}, other 409 → {@link OctaviaConflictError},
 * 403 quota → {@link OctaviaQuotaError}, 503 → {@link OctaviaUnavailableError}, 400 →
 * {@link OctaviaValidationError}).
 */
export class OctaviaClient {
  readonly #api: AuthedApi;
  readonly #retryAfterMs: () => number;
  #features: Promise<OctaviaFeatures> | undefined;
  #writes = 0;

  /**
   * @param session - the Keystone session that supplies tokens and the endpoint.
   * @param http - the got instance (TLS settings) to use.
   * @param options - logger and retry delays.
   */
  constructor(session: KeystoneSession, http: Got, options: OctaviaClientOptions = {}) {
    this.#api = {
      session,
      http,
      log: options.log ?? silentLogger,
      service: 'Octavia',
      endpoint: (token) => token.octaviaEndpoint,
      linkError: (fault) => new OctaviaApiError(fault),
      onSend: (method) => {
        if (method !== 'GET') this.#writes++;
      },
    };
    this.#retryAfterMs = options.retryAfterMs ?? (() => 2000 + Math.floor(Math.random() * 1000));
  }

  /** Number of write requests (POST/PUT/DELETE) sent so far. */
  get writes(): number {
    return this.#writes;
  }

  /** Sends one request to `path` (below the endpoint, e.g. `/v2/lbaas/loadbalancers`) or to an absolute URL on the endpoint. */
  async request<T>(method: HttpMethod, path: string, body?: unknown, signal?: AbortSignal): Promise<T | undefined> {
    const res = await sendAuthed(this.#api, method, path, body, signal);
    if (res.statusCode === 404 && method !== 'POST') return undefined;
    if (res.statusCode >= 400) {
      const faultstring = faultstringOf(res.body);
      const retryAfter = Number(res.headers['retry-after']);
      const delay = Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : this.#retryAfterMs();
      throw octaviaError(faultstring ? { ...res.fault, faultstring } : res.fault, delay);
    }
    if (res.statusCode === 204 || res.body === '') return undefined;
    return JSON.parse(res.body) as T;
  }

  /** Reads the API versions once (cached) and derives the feature gates. */
  features(signal?: AbortSignal): Promise<OctaviaFeatures> {
    this.#features ??= (async () => {
      const doc = await this.request<{ versions?: Array<{ id: string; status: string }> }>(
        'GET',
        '/',
        undefined,
        signal,
      );
      let minor = 0;
      for (const version of doc?.versions ?? []) {
        const match = /^v2\.(\d+)$/.exec(version.id);
        if (match) minor = Math.max(minor, Number(match[1]));
      }
      return { minorVersion: minor, tags: minor >= 5, allowedCidrs: minor >= 12 };
    })().catch((err: unknown) => {
      this.#features = undefined;
      throw err;
    });
    return this.#features;
  }

  #list<T>(collection: string, key: string, query: Record<string, string>, signal?: AbortSignal): Promise<T[]> {
    const params = new URLSearchParams(query).toString();
    return collectPages<T>(
      `/v2/lbaas/${collection}${params ? `?${params}` : ''}`,
      key,
      (path) => this.request<Record<string, unknown>>('GET', path, undefined, signal),
      () =>
        new OctaviaApiError({
          status: 0,
          method: 'GET',
          path: `/v2/lbaas/${collection}`,
          faultstring: 'no list in the answer',
        }),
    );
  }

  /** Lists load balancers matching `query` (e.g. `{ tags: 'a,b' }`, `{ name }`). */
  listLoadBalancers(query: Record<string, string>, signal?: AbortSignal): Promise<OctaviaLoadBalancer[]> {
    return this.#list('loadbalancers', 'loadbalancers', query, signal);
  }

  /** One load balancer; undefined when it does not exist (404). */
  async getLoadBalancer(id: string, signal?: AbortSignal): Promise<OctaviaLoadBalancer | undefined> {
    const res = await this.request<{ loadbalancer: OctaviaLoadBalancer }>(
      'GET',
      `/v2/lbaas/loadbalancers/${id}`,
      undefined,
      signal,
    );
    return res?.loadbalancer;
  }

  /** Creates a load balancer (possibly fully populated: listeners with default pools, members, monitors). */
  async createLoadBalancer(body: Record<string, unknown>, signal?: AbortSignal): Promise<OctaviaLoadBalancer> {
    const res = await this.request<{ loadbalancer: OctaviaLoadBalancer }>(
      'POST',
      '/v2/lbaas/loadbalancers',
      { loadbalancer: body },
      signal,
    );
    return (res as { loadbalancer: OctaviaLoadBalancer }).loadbalancer;
  }

  /** Updates a load balancer. */
  async updateLoadBalancer(id: string, body: Record<string, unknown>, signal?: AbortSignal): Promise<void> {
    await this.request('PUT', `/v2/lbaas/loadbalancers/${id}`, { loadbalancer: body }, signal);
  }

  /** Deletes a load balancer (with everything in it when `cascade`); a missing one is success. */
  async deleteLoadBalancer(id: string, cascade: boolean, signal?: AbortSignal): Promise<void> {
    await this.request('DELETE', `/v2/lbaas/loadbalancers/${id}${cascade ? '?cascade=true' : ''}`, undefined, signal);
  }

  /** The listeners of a load balancer. */
  listListeners(loadBalancerId: string, signal?: AbortSignal): Promise<OctaviaListener[]> {
    return this.#list('listeners', 'listeners', { loadbalancer_id: loadBalancerId }, signal);
  }

  /** Creates a listener. */
  async createListener(body: Record<string, unknown>, signal?: AbortSignal): Promise<OctaviaListener> {
    const res = await this.request<{ listener: OctaviaListener }>(
      'POST',
      '/v2/lbaas/listeners',
      { listener: body },
      signal,
    );
    return (res as { listener: OctaviaListener }).listener;
  }

  /** Updates a listener. */
  async updateListener(id: string, body: Record<string, unknown>, signal?: AbortSignal): Promise<void> {
    await this.request('PUT', `/v2/lbaas/listeners/${id}`, { listener: body }, signal);
  }

  /** Deletes a listener. */
  async deleteListener(id: string, signal?: AbortSignal): Promise<void> {
    await this.request('DELETE', `/v2/lbaas/listeners/${id}`, undefined, signal);
  }

  /** The pools of a load balancer. */
  listPools(loadBalancerId: string, signal?: AbortSignal): Promise<OctaviaPool[]> {
    return this.#list('pools', 'pools', { loadbalancer_id: loadBalancerId }, signal);
  }

  /** Creates a pool. */
  async createPool(body: Record<string, unknown>, signal?: AbortSignal): Promise<OctaviaPool> {
    const res = await this.request<{ pool: OctaviaPool }>('POST', '/v2/lbaas/pools', { pool: body }, signal);
    return (res as { pool: OctaviaPool }).pool;
  }

  /** Updates a pool. */
  async updatePool(id: string, body: Record<string, unknown>, signal?: AbortSignal): Promise<void> {
    await this.request('PUT', `/v2/lbaas/pools/${id}`, { pool: body }, signal);
  }

  /** Deletes a pool. */
  async deletePool(id: string, signal?: AbortSignal): Promise<void> {
    await this.request('DELETE', `/v2/lbaas/pools/${id}`, undefined, signal);
  }

  /** The members of a pool; throws when the pool is gone. */
  listMembers(poolId: string, signal?: AbortSignal): Promise<OctaviaMember[]> {
    return this.#list(`pools/${poolId}/members`, 'members', {}, signal);
  }

  /** Replaces all members of a pool in one batch PUT. */
  async replaceMembers(
    poolId: string,
    members: ReadonlyArray<Record<string, unknown>>,
    signal?: AbortSignal,
  ): Promise<void> {
    await this.request('PUT', `/v2/lbaas/pools/${poolId}/members`, { members }, signal);
  }

  /** One health monitor; undefined when it does not exist. */
  async getHealthMonitor(id: string, signal?: AbortSignal): Promise<OctaviaHealthMonitor | undefined> {
    const res = await this.request<{ healthmonitor: OctaviaHealthMonitor }>(
      'GET',
      `/v2/lbaas/healthmonitors/${id}`,
      undefined,
      signal,
    );
    return res?.healthmonitor;
  }

  /** Creates a health monitor. */
  async createHealthMonitor(body: Record<string, unknown>, signal?: AbortSignal): Promise<void> {
    await this.request('POST', '/v2/lbaas/healthmonitors', { healthmonitor: body }, signal);
  }

  /** Updates a health monitor. */
  async updateHealthMonitor(id: string, body: Record<string, unknown>, signal?: AbortSignal): Promise<void> {
    await this.request('PUT', `/v2/lbaas/healthmonitors/${id}`, { healthmonitor: body }, signal);
  }

  /** Deletes a health monitor. */
  async deleteHealthMonitor(id: string, signal?: AbortSignal): Promise<void> {
    await this.request('DELETE', `/v2/lbaas/healthmonitors/${id}`, undefined, signal);
  }
}
