import type { Logger } from '@klb/core';
import type { Got } from 'got';
import { type ApiFault, KeystoneAuthError } from './errors.js';
import type { KeystoneSession, KeystoneToken } from './keystone.js';

/** HTTP methods the OpenStack APIs KLB calls use. */
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** How one OpenStack API (Octavia, Neutron) is reached through a {@link KeystoneSession}. */
export interface AuthedApi {
  /** Supplies tokens and the catalog. */
  readonly session: KeystoneSession;
  /** The got instance (TLS settings, no automatic retries). */
  readonly http: Got;
  /** Logger. */
  readonly log: Logger;
  /** Name of the service, for messages (`Octavia`, `Neutron`). */
  readonly service: string;
  /** The service's endpoint for a token (may throw when the catalog has none). */
  readonly endpoint: (token: KeystoneToken) => string;
  /** The error for a link (an absolute URL) that leaves the endpoint. */
  readonly linkError: (fault: ApiFault) => Error;
  /** Called before each request is sent (e.g. to count writes). */
  readonly onSend?: (method: HttpMethod) => void;
}

/** An answer other than 401, for the caller to interpret. */
export interface AuthedResponse {
  /** HTTP status code. */
  readonly statusCode: number;
  /** The body, as text. */
  readonly body: string;
  /** Response headers. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Method, path and status, for a typed error. */
  readonly fault: ApiFault;
}

/**
 * Sends one request to `path` below the API's endpoint (or to an absolute URL on it) with the
 * session's token. A 401 drops the token and is retried once with a fresh one; a second 401 is a
 * {@link KeystoneAuthError}. Every other answer is returned; failures to connect are thrown as
 * got throws them.
 */
export async function sendAuthed(
  api: AuthedApi,
  method: HttpMethod,
  path: string,
  body?: unknown,
  signal?: AbortSignal,
): Promise<AuthedResponse> {
  for (let attempt = 0; ; attempt++) {
    const auth = await api.session.token(signal);
    const endpoint = api.endpoint(auth);
    const url = path.startsWith('http') ? path : `${endpoint}${path}`;
    if (new URL(url).origin !== new URL(endpoint).origin) {
      throw api.linkError({ status: 0, method, path: new URL(url).pathname, faultstring: 'link leaves the endpoint' });
    }
    api.onSend?.(method);
    const res = await api.http(url, {
      method,
      headers: { 'x-auth-token': auth.token, accept: 'application/json' },
      ...(body === undefined ? {} : { json: body }),
      ...(signal ? { signal } : {}),
    });
    const fault = { status: res.statusCode, method, path: new URL(url).pathname };
    if (res.statusCode === 401) {
      api.session.invalidate(auth.token);
      if (attempt === 0) {
        api.log.debug({ path: fault.path }, `${api.service} answered 401: re-authenticating once`);
        continue;
      }
      throw new KeystoneAuthError(`${api.service} refused a fresh Keystone token (401)`, fault);
    }
    return { statusCode: res.statusCode, body: String(res.body), headers: res.headers, fault };
  }
}

/**
 * Reads a paginated OpenStack collection: the items under `key` of each page, following the
 * `<key>_links` `next` link until there is none.
 *
 * @param first - path of the first page.
 * @param key - the collection's key, e.g. `loadbalancers`, `floatingips`.
 * @param get - reads one page (undefined: not found).
 * @param missing - the error for a page without the list.
 */
export async function collectPages<T>(
  first: string,
  key: string,
  get: (path: string) => Promise<Record<string, unknown> | undefined>,
  missing: () => Error,
): Promise<T[]> {
  const out: T[] = [];
  let next: string | undefined = first;
  while (next) {
    const page = await get(next);
    if (!page || !Array.isArray(page[key])) throw missing();
    out.push(...(page[key] as T[]));
    const links = (page[`${key}_links`] ?? []) as Array<{ rel: string; href: string }>;
    next = links.find((l) => l.rel === 'next')?.href;
  }
  return out;
}
