import { Agent, type RequestOptions, request } from 'node:https';
import { type KubeConfig, Watch } from '@kubernetes/client-node';
import { KlbError } from './errors.js';

/** The metadata every Kubernetes object carries (the fields KLB reads). */
export interface ObjectMeta {
  /** Object name. */
  name?: string;
  /** Namespace (absent for cluster-scoped objects). */
  namespace?: string;
  /** Unique id of this incarnation of the object. */
  uid?: string;
  /** Optimistic-concurrency version. */
  resourceVersion?: string;
  /** Incremented on spec changes. */
  generation?: number;
  /** Labels. */
  labels?: Record<string, string>;
  /** Annotations. */
  annotations?: Record<string, string>;
  /** Finalizers. */
  finalizers?: string[];
  /** Set when deletion was requested. */
  deletionTimestamp?: string;
  /** When the object was created (RFC 3339). */
  creationTimestamp?: string;
  /** Server-side apply bookkeeping (stripped from caches). */
  managedFields?: unknown[];
}

/** A Kubernetes object as plain JSON. */
export interface KubeObject {
  /** API group/version. */
  apiVersion?: string;
  /** Kind. */
  kind?: string;
  /** Metadata. */
  metadata?: ObjectMeta;
}

/** An error answered by the Kubernetes API (or a failure to reach it). */
export class KubeApiError extends KlbError {
  /** HTTP status, or 0 when the API could not be reached. */
  readonly status: number;
  /** The `reason` of the API's Status object (`Conflict`, `NotFound`, `Forbidden`, ...). */
  readonly reason: string;

  constructor(status: number, reason: string, message: string, cause?: unknown) {
    super(
      `KUBE_${reason.toUpperCase() || 'ERROR'}`,
      message,
      status === 0 || status === 409 || status === 429 || status >= 500,
      {
        cause,
      },
    );
    this.status = status;
    this.reason = reason;
  }
}

/** True when `err` is a 404 from the Kubernetes API. */
export function isNotFound(err: unknown): boolean {
  return err instanceof KubeApiError && err.status === 404;
}

/** True when `err` is a 409 (conflict or already exists) from the Kubernetes API. */
export function isConflict(err: unknown): boolean {
  return err instanceof KubeApiError && err.status === 409;
}

/** Patch content types. */
export type PatchType = 'merge' | 'strategic' | 'json';

const PATCH_CONTENT_TYPES: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  json: 'application/json-patch+json',
};

/** Options of {@link KubeClient}. */
export interface KubeClientOptions {
  /** Per-request timeout in milliseconds (not for watches); default 30000. */
  readonly timeoutMs?: number;
  /** Called for every write (POST, PUT, PATCH, DELETE) with its verb and path, e.g. for counting writes. */
  readonly onWrite?: (verb: string, path: string) => void;
}

/** One page-complete list: all items and the collection's resourceVersion. */
export interface ListResult<T> {
  /** Every item, across pages. */
  readonly items: T[];
  /** The resourceVersion to watch from. */
  readonly resourceVersion: string;
}

/**
 * A small JSON client for the Kubernetes API over a keep-alive HTTPS agent, authenticated from a
 * `KubeConfig`. Objects stay plain JSON (no per-object class instances), which keeps caches of
 * ten thousand objects small. Watches go through `@kubernetes/client-node`'s `Watch`.
 */
export class KubeClient {
  readonly #kc: KubeConfig;
  readonly #server: URL;
  readonly #timeoutMs: number;
  readonly #onWrite: ((verb: string, path: string) => void) | undefined;
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 32 });
  #baseOptions: Promise<RequestOptions> | undefined;
  #baseOptionsAt = 0;

  constructor(kubeConfig: KubeConfig, options: KubeClientOptions = {}) {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new KlbError('KUBECONFIG_INVALID', 'the kubeconfig has no current cluster', false);
    this.#kc = kubeConfig;
    this.#server = new URL(cluster.server);
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#onWrite = options.onWrite;
  }

  /** The kubeconfig this client authenticates with. */
  get kubeConfig(): KubeConfig {
    return this.#kc;
  }

  /** GET an object. Throws {@link KubeApiError} (404 when absent). */
  get<T extends KubeObject>(path: string, signal?: AbortSignal): Promise<T> {
    return this.request<T>('GET', path, undefined, undefined, signal);
  }

  /** Lists a collection completely (paginated by `limit`), returning plain objects. */
  async list<T extends KubeObject>(
    path: string,
    query: Record<string, string | undefined> = {},
    signal?: AbortSignal,
  ): Promise<ListResult<T>> {
    const items: T[] = [];
    let cont: string | undefined;
    let resourceVersion = '';
    do {
      const page = await this.request<{ items?: T[]; metadata?: { continue?: string; resourceVersion?: string } }>(
        'GET',
        withQuery(path, { ...query, limit: '500', continue: cont }),
        undefined,
        undefined,
        signal,
      );
      for (const item of page.items ?? []) items.push(item);
      cont = page.metadata?.continue || undefined;
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
    } while (cont);
    return { items, resourceVersion };
  }

  /** POST a new object. */
  create<T extends KubeObject>(path: string, body: T, signal?: AbortSignal): Promise<T> {
    return this.request<T>('POST', path, body, 'application/json', signal);
  }

  /** PUT (replace) an object; its `metadata.resourceVersion` is the precondition. */
  replace<T extends KubeObject>(path: string, body: T, signal?: AbortSignal): Promise<T> {
    return this.request<T>('PUT', path, body, 'application/json', signal);
  }

  /** PATCH an object (merge patch by default). */
  patch<T extends KubeObject>(
    path: string,
    body: unknown,
    type: PatchType = 'merge',
    signal?: AbortSignal,
  ): Promise<T> {
    return this.request<T>('PATCH', path, body, PATCH_CONTENT_TYPES[type], signal);
  }

  /** DELETE an object, optionally only if its uid/resourceVersion still match. */
  delete(
    path: string,
    preconditions?: { readonly uid?: string; readonly resourceVersion?: string },
    signal?: AbortSignal,
  ): Promise<unknown> {
    const body = preconditions ? { kind: 'DeleteOptions', apiVersion: 'v1', preconditions } : undefined;
    return this.request('DELETE', path, body, body ? 'application/json' : undefined, signal);
  }

  /**
   * Starts a watch; `onEvent` gets each event (`ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK`,
   * `ERROR`) and `onDone` is called once when the watch ends, for whatever reason.
   */
  watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    onEvent: (type: string, object: KubeObject) => void,
    onDone: (err: unknown) => void,
  ): Promise<AbortController> {
    return new Watch(this.#kc).watch(path, query, (type, obj) => onEvent(type, obj as KubeObject), onDone);
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.#agent.destroy();
  }

  /** Sends one request and parses the JSON answer; non-2xx answers become {@link KubeApiError}. */
  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    contentType?: string,
    signal?: AbortSignal,
  ): Promise<T> {
    if (method !== 'GET') this.#onWrite?.(method, path);
    const base = await this.#options();
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise<T>((resolve, reject) => {
      const req = request(
        {
          ...base,
          agent: this.#agent,
          method,
          path: `${this.#server.pathname.replace(/\/$/, '')}${path}`,
          headers: {
            ...(base.headers as Record<string, string>),
            accept: 'application/json',
            ...(contentType ? { 'content-type': contentType } : {}),
            ...(payload ? { 'content-length': Buffer.byteLength(payload).toString() } : {}),
          },
          timeout: this.#timeoutMs,
          ...(signal ? { signal } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', (err) =>
            reject(new KubeApiError(0, 'ConnectionError', `${method} ${path}: ${err.message}`, err)),
          );
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown;
            try {
              parsed = text ? JSON.parse(text) : {};
            } catch {
              parsed = { message: text };
            }
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) {
              resolve(parsed as T);
              return;
            }
            const s = parsed as { reason?: string; message?: string };
            reject(
              new KubeApiError(
                status,
                s.reason ?? `Http${status}`,
                `${method} ${path}: ${status} ${s.message ?? text}`,
              ),
            );
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`timed out after ${this.#timeoutMs} ms`)));
      req.on('error', (err) =>
        reject(new KubeApiError(0, 'ConnectionError', `${method} ${path}: ${err.message}`, err)),
      );
      if (payload) req.write(payload);
      req.end();
    });
  }

  /** Connection and auth options, re-read from the kubeconfig every minute (rotated tokens). */
  #options(): Promise<RequestOptions> {
    if (Date.now() - this.#baseOptionsAt > 60_000) this.#baseOptions = undefined;
    this.#baseOptions ??= (async () => {
      this.#baseOptionsAt = Date.now();
      const opts: RequestOptions = {
        hostname: this.#server.hostname.replace(/^\[|\]$/g, ''),
        port: this.#server.port || 443,
        headers: {},
      };
      await this.#kc.applyToHTTPSOptions(opts);
      return opts;
    })();
    return this.#baseOptions;
  }
}

/** Appends query parameters (skipping undefined ones) to a path. */
export function withQuery(path: string, query: Record<string, string | undefined>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined && value !== '') params.set(key, value);
  const qs = params.toString();
  return qs ? `${path}${path.includes('?') ? '&' : '?'}${qs}` : path;
}
