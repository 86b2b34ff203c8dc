import { type BackoffOptions, backoffDelay, sleep } from './backoff.js';
import { isNotFound, type KubeClient, type KubeObject, withQuery } from './kube-client.js';
import { type Logger, silentLogger } from './logger.js';

/** Handlers of an {@link Informer}'s changes. */
export interface InformerHandler<T extends KubeObject> {
  /** An object appeared (also for every object of the first list). */
  add?(obj: T): void;
  /** An object changed. */
  update?(oldObj: T, newObj: T): void;
  /** An object disappeared (the last known state). */
  delete?(obj: T): void;
}

/** Options of {@link Informer}. */
export interface InformerOptions<T extends KubeObject> {
  /** Name for logs and metrics, e.g. `services`. */
  readonly resource: string;
  /** Collection path, e.g. `/api/v1/services` (all namespaces) or `/api/v1/namespaces/x/configmaps`. */
  readonly path: string;
  /** Label selector to list and watch. */
  readonly labelSelector?: string;
  /** Field selector to list and watch. */
  readonly fieldSelector?: string;
  /** Reduces an object before caching (default: drops `metadata.managedFields`). */
  readonly transform?: (obj: T) => T;
  /** A watch silent for this long (no event, no bookmark) is restarted; default 120000 ms. */
  readonly watchdogMs?: number;
  /** Server-side watch timeout in seconds (the server ends the watch; it is resumed); default 300. */
  readonly watchTimeoutSeconds?: number;
  /** Backoff between failed attempts; default 500 ms doubling to 30 s. */
  readonly backoff?: BackoffOptions;
  /** Logger. */
  readonly logger?: Logger;
  /**
   * The resource may not be served (a CustomResourceDefinition not installed): a list answered
   * 404 counts as a complete, empty list, and the list is tried again every `unservedRetryMs`
   * until the resource is served. Default false: a 404 is an error, retried with backoff.
   */
  readonly optional?: boolean;
  /** How often an {@link InformerOptions.optional} resource that is not served is listed again; default 30000 ms. */
  readonly unservedRetryMs?: number;
  /** Called on every restart with its reason (`error`, `gone`, `watchdog`, `closed`), for metrics. */
  readonly onRestart?: (reason: 'error' | 'gone' | 'watchdog' | 'closed') => void;
}

/** `namespace/name` (or `name` for cluster-scoped objects): the key of an object in caches and queues. */
export function objectKey(obj: KubeObject): string {
  const ns = obj.metadata?.namespace;
  return ns ? `${ns}/${obj.metadata?.name}` : `${obj.metadata?.name}`;
}

function stripManagedFields<T extends KubeObject>(obj: T): T {
  if (obj.metadata?.managedFields) obj.metadata.managedFields = undefined as never;
  return obj;
}

/**
 * A list-then-watch cache of one resource that survives: any watch error restarts it with
 * backoff, a 410 Gone relists (emitting the differences as add/update/delete), a silent watch is
 * restarted by a watchdog, and an ended watch resumes from the last resourceVersion seen.
 */
export class Informer<T extends KubeObject> {
  readonly #client: KubeClient;
  readonly #options: InformerOptions<T>;
  readonly #log: Logger;
  readonly #cache = new Map<string, T>();
  readonly #handlers: InformerHandler<T>[] = [];
  #resourceVersion = '';
  #synced = false;
  #served: boolean | undefined;
  #syncWaiters: Array<() => void> = [];
  #stop = new AbortController();
  #loop: Promise<void> | undefined;

  constructor(client: KubeClient, options: InformerOptions<T>) {
    this.#client = client;
    this.#options = options;
    this.#log = (options.logger ?? silentLogger).child({ informer: options.resource });
  }

  /** Registers change handlers (before {@link Informer.start}). */
  on(handler: InformerHandler<T>): void {
    this.#handlers.push(handler);
  }

  /** True once the first complete list is in the cache. */
  get synced(): boolean {
    return this.#synced;
  }

  /** Resolves once the first complete list is in the cache. */
  waitForSync(): Promise<void> {
    if (this.#synced) return Promise.resolve();
    return new Promise((resolve) => this.#syncWaiters.push(resolve));
  }

  /** The cached object with key `namespace/name`. */
  get(key: string): T | undefined {
    return this.#cache.get(key);
  }

  /** All cached objects. */
  list(): T[] {
    return [...this.#cache.values()];
  }

  /** Number of cached objects. */
  get size(): number {
    return this.#cache.size;
  }

  /** Starts listing and watching in the background. */
  start(): void {
    this.#loop ??= this.#run();
  }

  /** Stops watching and waits for the loop to end. */
  async stop(): Promise<void> {
    this.#stop.abort(new Error('informer stopped'));
    await this.#loop?.catch(() => {});
  }

  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    let failures = 0;
    let needList = true;
    while (!signal.aborted) {
      try {
        if (needList) {
          if (!(await this.#relist(signal))) {
            await sleep(this.#options.unservedRetryMs ?? 30_000, signal).catch(() => {});
            continue;
          }
          needList = false;
        }
        const startedAt = Date.now();
        const outcome = await this.#watchOnce(signal);
        if (signal.aborted) return;
        this.#options.onRestart?.(outcome);
        if (outcome === 'gone') needList = true;
        // A watch that ends at once, again and again, backs off like an error.
        if (outcome === 'closed' && Date.now() - startedAt < 1000) throw new Error('watch closed immediately');
        failures = 0;
      } catch (err) {
        if (signal.aborted) return;
        failures++;
        needList = needList || !this.#resourceVersion;
        this.#options.onRestart?.('error');
        const delay = backoffDelay(failures, this.#options.backoff ?? { baseMs: 500, maxMs: 30_000, jitter: 0.2 });
        this.#log.warn({ err: String(err), delayMs: delay }, 'list/watch failed; retrying');
        await sleep(delay, signal).catch(() => {});
      }
    }
  }

  /** Lists into the cache; false when an optional resource is not served (the cache is then empty). */
  async #relist(signal: AbortSignal): Promise<boolean> {
    const { labelSelector, fieldSelector } = this.#options;
    let listed: { items: T[]; resourceVersion: string };
    try {
      listed = await this.#client.list<T>(this.#options.path, { labelSelector, fieldSelector }, signal);
    } catch (err) {
      if (!this.#options.optional || !isNotFound(err)) throw err;
      if (this.#served !== false)
        this.#log.info({ path: this.#options.path }, 'resource not served; empty until it is');
      this.#served = false;
      this.#replace([], '');
      return false;
    }
    this.#served = true;
    this.#replace(listed.items, listed.resourceVersion);
    return true;
  }

  /** Replaces the cache with a complete list, emitting the differences. */
  #replace(items: readonly T[], resourceVersion: string): void {
    const transform = this.#options.transform ?? stripManagedFields;
    const fresh = new Map<string, T>();
    for (const item of items) fresh.set(objectKey(item), transform(item));
    const old = new Map(this.#cache);
    this.#cache.clear();
    for (const [key, obj] of fresh) this.#cache.set(key, obj);
    for (const [key, obj] of fresh) {
      const before = old.get(key);
      if (!before) this.#emit('add', obj);
      else if (before.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.#emit('update', obj, before);
    }
    for (const [key, obj] of old) if (!fresh.has(key)) this.#emit('delete', obj);
    this.#resourceVersion = resourceVersion;
    if (!this.#synced) {
      this.#synced = true;
      for (const resolve of this.#syncWaiters.splice(0)) resolve();
    }
  }

  /** One watch from the last resourceVersion; resolves with why it ended. */
  #watchOnce(signal: AbortSignal): Promise<'closed' | 'gone' | 'watchdog'> {
    const transform = this.#options.transform ?? stripManagedFields;
    const watchdogMs = this.#options.watchdogMs ?? 120_000;
    return new Promise((resolve, reject) => {
      let outcome: 'closed' | 'gone' | 'watchdog' = 'closed';
      let controller: AbortController | undefined;
      let finished = false;
      let watchdog: NodeJS.Timeout | undefined;
      const finish = (err?: unknown) => {
        if (finished) return;
        finished = true;
        clearTimeout(watchdog);
        signal.removeEventListener('abort', onAbort);
        controller?.abort();
        if (err && outcome === 'closed' && !signal.aborted) reject(err);
        else resolve(outcome);
      };
      const arm = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => {
          outcome = 'watchdog';
          this.#log.warn({ silentMs: watchdogMs }, 'watch silent; restarting');
          finish();
        }, watchdogMs);
        watchdog.unref?.();
      };
      const onAbort = () => finish();
      signal.addEventListener('abort', onAbort, { once: true });
      arm();
      const query = {
        resourceVersion: this.#resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: this.#options.watchTimeoutSeconds ?? 300,
        labelSelector: this.#options.labelSelector,
        fieldSelector: this.#options.fieldSelector,
      };
      this.#client
        .watch(
          withQuery(this.#options.path, {}),
          query,
          (type, raw) => {
            if (finished) return;
            arm();
            if (type === 'ERROR') {
              const status = raw as { code?: number; message?: string };
              if (status.code === 410) outcome = 'gone';
              else this.#log.warn({ status }, 'watch error event');
              finish(outcome === 'gone' ? undefined : new Error(status.message ?? 'watch error'));
              return;
            }
            const rv = raw.metadata?.resourceVersion;
            if (rv) this.#resourceVersion = rv;
            if (type === 'BOOKMARK') return;
            const obj = transform(raw as T);
            const key = objectKey(obj);
            const before = this.#cache.get(key);
            if (type === 'DELETED') {
              this.#cache.delete(key);
              this.#emit('delete', obj);
            } else {
              this.#cache.set(key, obj);
              if (before) this.#emit('update', obj, before);
              else this.#emit('add', obj);
            }
          },
          (err) => {
            const status = (err as { statusCode?: number } | null)?.statusCode;
            if (status === 410) outcome = 'gone';
            finish(err ?? undefined);
          },
        )
        .then(
          (c) => {
            controller = c;
            if (finished) c.abort();
          },
          (err) => finish(err),
        );
    });
  }

  #emit(kind: 'add' | 'update' | 'delete', obj: T, before?: T): void {
    for (const handler of this.#handlers) {
      try {
        if (kind === 'add') handler.add?.(obj);
        else if (kind === 'update') handler.update?.(before as T, obj);
        else handler.delete?.(obj);
      } catch (err) {
        this.#log.error({ err: String(err) }, 'informer handler threw');
      }
    }
  }
}
