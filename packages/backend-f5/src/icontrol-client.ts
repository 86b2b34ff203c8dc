import { Agent } from 'node:https';
import { type Logger, silentLogger } from '@klb/core';
import got, { type Got } from 'got';
import type { F5ConnectionConfig } from './f5-config.js';
import { F5Error, f5ErrorFromResponse, isF5Error } from './f5-error.js';

/** Options of an {@link IControlClient}. */
export interface IControlClientOptions extends F5ConnectionConfig {
  /** `token` (default: one token, reused and renewed) or `basic` (credentials on every call). */
  readonly auth?: 'token' | 'basic';
  /** Login provider for token auth (default `tmos`). */
  readonly loginProviderName?: string;
  /** Timeout of one HTTP request, ms (default 30000). */
  readonly timeoutMs?: number;
  /** Retries of a call that got 503 / `Public URI path not registered` / `mcpd lost` (default 4). */
  readonly retries?: number;
  /** First retry delay, ms, doubled per retry with jitter (default 200). */
  readonly retryBaseDelayMs?: number;
  /** Renew the token when it has fewer seconds left than this (default 120). */
  readonly tokenRefreshMarginSeconds?: number;
  /** Concurrent connections to the BIG-IP (default 16). */
  readonly maxSockets?: number;
  /** Logger; no password or token is ever logged. */
  readonly logger?: Logger;
}

/** One write of a transaction. */
export interface F5Command {
  /** HTTP method. */
  readonly method: 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path, e.g. `/mgmt/tm/ltm/pool` or `/mgmt/tm/ltm/pool/~klb~web`. */
  readonly path: string;
  /** JSON body. */
  readonly body?: unknown;
}

/** Per-call options. */
export interface F5RequestOptions {
  /** JSON body. */
  readonly body?: unknown;
  /** Cancels the call (and its retries). */
  readonly signal?: AbortSignal;
  /** Queue the write into this transaction (`X-F5-REST-Coordination-Id`). */
  readonly transId?: string;
}

/** The token lifetime F5 gives at login, seconds. */
const loginLifetimeSeconds = 1200;
/** The longest a token can be extended to, seconds from its start. */
const maxLifetimeSeconds = 36000;

interface TokenState {
  readonly token: string;
  readonly startedAt: number;
  timeoutSeconds: number;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * An iControl REST client over got: token auth with one token reused, renewed before it
 * expires and deleted on {@link IControlClient.close} (or basic auth), one re-login on a 401 for
 * an expired or unknown token, TLS verified against a CA bundle unless explicitly skipped,
 * retries with backoff on 503 / `Public URI path not registered` / `mcpd lost`, typed
 * {@link F5Error}s, and transactions.
 */
export class IControlClient {
  readonly #options: IControlClientOptions;
  readonly #base: string;
  readonly #got: Got;
  readonly #agent: Agent;
  readonly #log: Logger;
  #token: TokenState | undefined;
  #tokenPromise: Promise<TokenState> | undefined;
  #closed = false;
  /** Number of logins made (for tests and metrics). */
  logins = 0;

  constructor(options: IControlClientOptions) {
    this.#options = options;
    this.#log = (options.logger ?? silentLogger).child({ component: 'icontrol' });
    const host = options.host.replace(/\/+$/, '');
    this.#base = /^https?:\/\//.test(host) ? host : `https://${host}`;
    if (this.#base.startsWith('http://')) {
      throw new F5Error('F5_NETWORK', 'the F5 management URL must use https', false);
    }
    if (options.insecureSkipVerify) {
      this.#log.warn(
        { host: this.#base },
        'TLS verification of the F5 management certificate is DISABLED (insecureSkipVerify)',
      );
    }
    this.#agent = new Agent({
      keepAlive: true,
      maxSockets: options.maxSockets ?? 16,
      rejectUnauthorized: !options.insecureSkipVerify,
      ...(options.ca !== undefined ? { ca: options.ca } : {}),
    });
    this.#got = got.extend({
      agent: { https: this.#agent },
      https: {
        rejectUnauthorized: !options.insecureSkipVerify,
        ...(options.ca !== undefined ? { certificateAuthority: options.ca } : {}),
      },
      timeout: { request: options.timeoutMs ?? 30_000 },
      retry: { limit: 0 },
      throwHttpErrors: false,
      followRedirect: false,
      responseType: 'text',
    });
  }

  /** The management base URL. */
  get baseUrl(): string {
    return this.#base;
  }

  /** GET `path` and parse the JSON answer. */
  async get<T>(path: string, options: Omit<F5RequestOptions, 'body' | 'transId'> = {}): Promise<T> {
    return (await this.request('GET', path, options)) as T;
  }

  /**
   * Sends one call with retries on F5's transient errors (and, for GETs, on network errors).
   * Resolves with the parsed JSON answer (undefined for an empty body).
   */
  async request(method: string, path: string, options: F5RequestOptions = {}): Promise<unknown> {
    const retries = this.#options.retries ?? 4;
    const base = this.#options.retryBaseDelayMs ?? 200;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#withAuth(method, path, options);
      } catch (err) {
        const retryable =
          isF5Error(err, 'F5_UNAVAILABLE') ||
          (method === 'GET' && isF5Error(err, 'F5_NETWORK') && !options.signal?.aborted);
        if (!retryable || attempt >= retries) throw err;
        const delay = base * 2 ** attempt * (0.5 + Math.random());
        this.#log.debug(
          { method, path: this.#loggable(path), attempt: attempt + 1, delayMs: Math.round(delay) },
          'F5 busy, retrying',
        );
        await sleep(delay, options.signal);
      }
    }
  }

  /**
   * Applies `commands` as one transaction: all or nothing. Throws `F5_TRANSACTION_FAILED`
   * (with F5's failure reason) when the commit fails; nothing was applied then.
   */
  async commit(commands: readonly F5Command[], signal?: AbortSignal): Promise<void> {
    if (commands.length === 0) return;
    const opts = signal ? { signal } : {};
    const tx = (await this.request('POST', '/mgmt/tm/transaction', { ...opts, body: {} })) as { transId?: unknown };
    const id = String(tx?.transId ?? '');
    if (!/^\d+$/.test(id)) throw new F5Error('F5_HTTP', 'the BIG-IP did not return a transaction id', true);
    try {
      for (const command of commands) {
        await this.request(command.method, command.path, { ...opts, body: command.body, transId: id });
      }
    } catch (err) {
      await this.request('DELETE', `/mgmt/tm/transaction/${id}`).catch(() => undefined);
      throw err;
    }
    let result: { state?: unknown; failureReason?: unknown };
    try {
      result = (await this.request('PATCH', `/mgmt/tm/transaction/${id}`, {
        ...opts,
        body: { state: 'VALIDATING' },
      })) as typeof result;
    } catch (err) {
      if (isF5Error(err, 'F5_BAD_REQUEST') && /transaction failed/i.test(err.message)) {
        throw new F5Error('F5_TRANSACTION_FAILED', err.message, true, {
          cause: err,
          ...(err.status ? { status: err.status } : {}),
        });
      }
      if (isF5Error(err, 'F5_BAD_REQUEST')) {
        // A retried commit of a transaction that already went through is refused: look.
        result = (await this.get(`/mgmt/tm/transaction/${id}`, opts).catch(() => ({}))) as typeof result;
        if (result.state !== 'COMPLETED') throw err;
      } else {
        throw err;
      }
    }
    for (let polls = 0; result.state === 'VALIDATING' && polls < 600; polls++) {
      await sleep(100, signal);
      result = (await this.get(`/mgmt/tm/transaction/${id}`, opts)) as typeof result;
    }
    if (result.state === 'COMPLETED') return;
    throw new F5Error(
      'F5_TRANSACTION_FAILED',
      `transaction ${id} ${String(result.state)}: ${String(result.failureReason ?? 'no reason given')}`,
      true,
    );
  }

  /** Deletes the token (logout) and closes connections. The client cannot be used afterwards. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const token = this.#token ?? (await this.#tokenPromise?.catch(() => undefined));
    this.#token = undefined;
    if (token) {
      await this.#send(
        'DELETE',
        `/mgmt/shared/authz/tokens/${encodeURIComponent(token.token)}`,
        {},
        { 'X-F5-Auth-Token': token.token },
      )
        .then(() => this.#log.debug('F5 token deleted'))
        .catch((err: unknown) => this.#log.warn({ err: (err as Error).message }, 'could not delete the F5 token'));
    }
    this.#agent.destroy();
  }

  #loggable(path: string): string {
    return path.startsWith('/mgmt/shared/authz/tokens/') ? '/mgmt/shared/authz/tokens/<token>' : path;
  }

  async #withAuth(method: string, path: string, options: F5RequestOptions): Promise<unknown> {
    if (this.#closed) throw new F5Error('F5_NETWORK', 'the iControl client is closed', false);
    const headers: Record<string, string> = {};
    if (options.transId !== undefined) headers['X-F5-REST-Coordination-Id'] = options.transId;
    if (this.#options.auth === 'basic') {
      headers.authorization = `Basic ${Buffer.from(`${this.#options.username}:${this.#options.password}`).toString('base64')}`;
      return this.#send(method, path, options, headers);
    }
    const token = await this.#validToken(options.signal);
    try {
      return await this.#send(method, path, options, { ...headers, 'X-F5-Auth-Token': token.token });
    } catch (err) {
      if (!isF5Error(err, 'F5_UNAUTHORIZED') || !/X-F5-Auth-Token (has expired|does not exist)/.test(err.message))
        throw err;
      this.#log.info({ reason: err.message.replace(/^.*: 401 /, '') }, 'F5 token refused, logging in again');
      if (this.#token === token) this.#token = undefined;
      const fresh = await this.#validToken(options.signal);
      return this.#send(method, path, options, { ...headers, 'X-F5-Auth-Token': fresh.token });
    }
  }

  async #validToken(signal: AbortSignal | undefined): Promise<TokenState> {
    const margin = (this.#options.tokenRefreshMarginSeconds ?? 120) * 1000;
    const token = this.#token;
    if (token && Date.now() < token.startedAt + token.timeoutSeconds * 1000 - margin) return token;
    this.#tokenPromise ??= this.#renew(token, signal).finally(() => {
      this.#tokenPromise = undefined;
    });
    return this.#tokenPromise;
  }

  async #renew(old: TokenState | undefined, signal: AbortSignal | undefined): Promise<TokenState> {
    if (old) {
      const elapsed = Math.ceil((Date.now() - old.startedAt) / 1000);
      const wanted = elapsed + loginLifetimeSeconds;
      if (wanted <= maxLifetimeSeconds) {
        try {
          await this.#send(
            'PATCH',
            `/mgmt/shared/authz/tokens/${encodeURIComponent(old.token)}`,
            signal ? { body: { timeout: wanted }, signal } : { body: { timeout: wanted } },
            { 'X-F5-Auth-Token': old.token },
          );
          old.timeoutSeconds = wanted;
          this.#log.debug({ timeoutSeconds: wanted }, 'F5 token extended');
          return old;
        } catch (err) {
          this.#log.info({ err: (err as Error).message }, 'F5 token could not be extended, logging in again');
        }
      }
    }
    const fresh = await this.#login(signal);
    if (old && old.token !== fresh.token) {
      // Log the old token out so it does not count against the 100-token cap.
      void this.#send(
        'DELETE',
        `/mgmt/shared/authz/tokens/${encodeURIComponent(old.token)}`,
        {},
        { 'X-F5-Auth-Token': fresh.token },
      ).catch(() => undefined);
    }
    this.#token = fresh;
    return fresh;
  }

  async #login(signal: AbortSignal | undefined): Promise<TokenState> {
    const body = {
      username: this.#options.username,
      password: this.#options.password,
      loginProviderName: this.#options.loginProviderName ?? 'tmos',
    };
    const retries = this.#options.retries ?? 4;
    for (let attempt = 0; ; attempt++) {
      try {
        const answer = (await this.#send(
          'POST',
          '/mgmt/shared/authn/login',
          signal ? { body, signal } : { body },
          {},
        )) as {
          token?: { token?: unknown; timeout?: unknown };
        };
        const token = answer?.token?.token;
        if (typeof token !== 'string' || token === '')
          throw new F5Error('F5_UNAUTHORIZED', 'F5 login returned no token', false);
        this.logins += 1;
        this.#log.debug({ user: this.#options.username }, 'F5 login');
        const timeout = typeof answer.token?.timeout === 'number' ? answer.token.timeout : loginLifetimeSeconds;
        return { token, startedAt: Date.now(), timeoutSeconds: timeout };
      } catch (err) {
        if (!isF5Error(err, 'F5_UNAVAILABLE') || attempt >= retries) throw err;
        await sleep((this.#options.retryBaseDelayMs ?? 200) * 2 ** attempt, signal);
      }
    }
  }

  async #send(
    method: string,
    path: string,
    options: F5RequestOptions,
    headers: Record<string, string>,
  ): Promise<unknown> {
    const what = `${method} ${this.#loggable(path)}`;
    let response: { statusCode: number; body: string };
    try {
      response = await this.#got(`${this.#base}${path}`, {
        method: method as 'GET',
        headers: { accept: 'application/json', ...headers },
        ...(options.body !== undefined ? { json: options.body } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (err) {
      // got's error holds the request options (headers with credentials): keep only its text.
      const code = (err as { code?: string }).code ?? '';
      throw new F5Error('F5_NETWORK', `${what}: ${code} ${(err as Error).message}`.trim(), true);
    }
    this.#log.debug({ method, path: this.#loggable(path), status: response.statusCode }, 'F5 call');
    if (response.statusCode >= 400) throw f5ErrorFromResponse(response.statusCode, response.body, what);
    if (response.body.trim() === '') return undefined;
    try {
      return JSON.parse(response.body) as unknown;
    } catch (err) {
      throw new F5Error('F5_HTTP', `${what}: the answer is not JSON`, true, {
        cause: err,
        status: response.statusCode,
      });
    }
  }
}
