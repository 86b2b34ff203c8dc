import { type Logger, silentLogger } from '@klb/core';
import got, { type Got } from 'got';
import type { OpenStackConfig } from './config.js';
import { faultstringOf, KeystoneAuthError } from './errors.js';

/** Options of {@link KeystoneSession}. */
export interface KeystoneSessionOptions {
  /** Logger (never receives credentials or tokens). */
  readonly log?: Logger;
  /**
   * Re-authenticate when the token expires within this many seconds (capped at a quarter of the
   * token's lifetime); default 300.
   */
  readonly reauthMarginSeconds?: number;
  /** Timeout of one HTTP request, in milliseconds; default 30000. */
  readonly requestTimeoutMs?: number;
}

/** A Keystone token with what KLB needs from its catalog. */
export interface KeystoneToken {
  /** The token (`X-Subject-Token`). Never logged. */
  readonly token: string;
  /** When Keystone says it expires (epoch ms). */
  readonly expiresAt: number;
  /** When it was issued (epoch ms). */
  readonly issuedAt: number;
  /** The Octavia endpoint: the override, or the catalog's `load-balancer` entry. */
  readonly octaviaEndpoint: string;
  /**
   * The Neutron endpoint: the network override, or the catalog's `network` entry for the same
   * region and interface; undefined when the catalog has none.
   */
  readonly networkEndpoint?: string;
  /** The project the token is scoped to, if any. */
  readonly projectId?: string;
}

interface CatalogEntry {
  type: string;
  endpoints: Array<{ interface: string; url: string; region_id?: string; region?: string }>;
}

/** Creates the got instance shared by Keystone, Octavia and Neutron calls (TLS settings, no automatic retries). */
export function createHttp(config: OpenStackConfig, requestTimeoutMs: number, log: Logger): Got {
  if (config.insecure) log.warn({}, 'OpenStack TLS certificate verification is disabled (insecure: true)');
  return got.extend({
    https: {
      ...(config.caBundle ? { certificateAuthority: config.caBundle } : {}),
      rejectUnauthorized: !config.insecure,
    },
    retry: { limit: 0 },
    throwHttpErrors: false,
    timeout: { request: requestTimeoutMs },
    responseType: 'text',
  });
}

/**
 * A Keystone v3 session: authenticates with password or application credentials, reads the
 * token from `X-Subject-Token`, finds the `load-balancer` endpoint (and the `network` one, if
 * any) for the configured region and interface (or uses the overrides), and re-authenticates before the token expires or when a
 * caller reports a 401 ({@link KeystoneSession.invalidate}). Concurrent callers share one
 * authentication request.
 */
export class KeystoneSession {
  readonly #config: OpenStackConfig;
  readonly #http: Got;
  readonly #log: Logger;
  readonly #marginMs: number;
  #current: KeystoneToken | undefined;
  #pending: Promise<KeystoneToken> | undefined;
  #authentications = 0;

  /**
   * @param config - where Keystone is and the credentials.
   * @param options - logger, re-auth margin and timeouts.
   * @param http - a got instance to share (default: one made from `config`).
   */
  constructor(config: OpenStackConfig, options: KeystoneSessionOptions = {}, http?: Got) {
    this.#config = config;
    this.#log = options.log ?? silentLogger;
    this.#http = http ?? createHttp(config, options.requestTimeoutMs ?? 30_000, this.#log);
    this.#marginMs = (options.reauthMarginSeconds ?? 300) * 1000;
  }

  /** How many times this session has authenticated with Keystone. */
  get authentications(): number {
    return this.#authentications;
  }

  /** A valid token: the cached one, or a new one when it is missing or about to expire. */
  async token(signal?: AbortSignal): Promise<KeystoneToken> {
    const current = this.#current;
    if (current) {
      const margin = Math.min(this.#marginMs, (current.expiresAt - current.issuedAt) / 4);
      if (Date.now() < current.expiresAt - margin) return current;
      this.#log.debug({}, 'Keystone token expires soon: re-authenticating');
    }
    this.#pending ??= this.#authenticate(signal).finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  /** Drops `token` (Octavia answered 401 with it) so the next {@link KeystoneSession.token} authenticates again. */
  invalidate(token: string): void {
    if (this.#current?.token === token) this.#current = undefined;
  }

  /** Forgets the token. */
  close(): void {
    this.#current = undefined;
  }

  #body(): unknown {
    const c = this.#config.credentials;
    const domain = (id: string | undefined, name: string | undefined) => (id ? { id } : { name: name ?? 'Default' });
    if (c.type === 'applicationCredential') {
      const user = c.userId ? { id: c.userId } : { name: c.username, domain: domain(c.userDomainId, c.userDomainName) };
      const credential = c.id ? { id: c.id, secret: c.secret } : { name: c.name, secret: c.secret, user };
      return { auth: { identity: { methods: ['application_credential'], application_credential: credential } } };
    }
    const user = c.userId
      ? { id: c.userId, password: c.password }
      : { name: c.username, domain: domain(c.userDomainId, c.userDomainName), password: c.password };
    const project = c.projectId
      ? { id: c.projectId }
      : { name: c.projectName, domain: domain(c.projectDomainId, c.projectDomainName) };
    return { auth: { identity: { methods: ['password'], password: { user } }, scope: { project } } };
  }

  #who(): string {
    const c = this.#config.credentials;
    if (c.type === 'applicationCredential') return `application credential ${c.id ?? c.name}`;
    return `user ${c.userId ?? c.username}`;
  }

  async #authenticate(signal?: AbortSignal): Promise<KeystoneToken> {
    const url = `${this.#config.authUrl.replace(/\/+$/, '')}/auth/tokens`;
    const path = new URL(url).pathname;
    let res: { statusCode: number; body: string; headers: Record<string, string | string[] | undefined> };
    try {
      res = await this.#http.post(url, { json: this.#body(), ...(signal ? { signal } : {}) });
    } catch (err) {
      throw new KeystoneAuthError(
        `cannot reach Keystone at ${this.#config.authUrl}: ${(err as Error).message}`,
        undefined,
        {
          cause: err,
        },
      );
    }
    this.#authentications++;
    const fault = { status: res.statusCode, method: 'POST', path, ...withFault(res.body) };
    if (res.statusCode === 401) {
      throw new KeystoneAuthError(`Keystone refused the credentials of ${this.#who()} (401)`, fault);
    }
    const token = res.headers['x-subject-token'];
    if (res.statusCode !== 201 || typeof token !== 'string' || !token) {
      throw new KeystoneAuthError(`Keystone authentication failed for ${this.#who()}: HTTP ${res.statusCode}`, fault);
    }
    let body: {
      token?: { expires_at?: string; issued_at?: string; catalog?: CatalogEntry[]; project?: { id?: string } };
    };
    try {
      body = JSON.parse(res.body) as typeof body;
    } catch (err) {
      throw new KeystoneAuthError('Keystone answered with a body that is not JSON', fault, { cause: err });
    }
    const expiresAt = Date.parse(body.token?.expires_at ?? '');
    const issuedAt = Date.parse(body.token?.issued_at ?? '') || Date.now();
    if (!Number.isFinite(expiresAt)) throw new KeystoneAuthError('Keystone token has no expires_at', fault);
    const catalog = body.token?.catalog ?? [];
    const octaviaEndpoint = this.#config.endpointOverride ?? this.#findEndpoint(catalog, 'load-balancer');
    const networkEndpoint = this.#config.networkEndpointOverride ?? this.#findEndpoint(catalog, 'network', false);
    const projectId = body.token?.project?.id;
    this.#current = {
      token,
      expiresAt,
      issuedAt,
      octaviaEndpoint: octaviaEndpoint.replace(/\/+$/, '').replace(/\/v2(\.0)?$/, ''),
      ...(networkEndpoint ? { networkEndpoint: networkEndpoint.replace(/\/+$/, '').replace(/\/v2\.0$/, '') } : {}),
      ...(projectId ? { projectId } : {}),
    };
    this.#log.debug({ expiresAt: new Date(expiresAt).toISOString() }, 'authenticated with Keystone');
    return this.#current;
  }

  #findEndpoint(catalog: readonly CatalogEntry[], type: string): string;
  #findEndpoint(catalog: readonly CatalogEntry[], type: string, required: false): string | undefined;
  #findEndpoint(catalog: readonly CatalogEntry[], type: string, required = true): string | undefined {
    const iface = this.#config.interface ?? 'public';
    const region = this.#config.region;
    for (const service of catalog) {
      if (service.type !== type) continue;
      const endpoint = service.endpoints.find(
        (e) => e.interface === iface && (region === undefined || e.region_id === region || e.region === region),
      );
      if (endpoint) return endpoint.url;
    }
    if (!required) return undefined;
    throw new KeystoneAuthError(
      `the Keystone catalog has no ${type} endpoint for interface ${iface}${region ? ` in region ${region}` : ''}`,
    );
  }
}

function withFault(body: string): { faultstring?: string } {
  const faultstring = faultstringOf(body);
  return faultstring ? { faultstring } : {};
}
