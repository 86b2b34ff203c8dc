import { type BackoffOptions, backoffDelay } from './backoff.js';

/** Options of {@link WorkQueue}. */
export interface WorkQueueOptions {
  /** Per-key exponential backoff of {@link WorkQueue.addRateLimited}; default 250 ms doubling to 5 min. */
  readonly backoff?: BackoffOptions;
  /** Global limit on rate-limited (retry) adds, per second; default 20. */
  readonly retriesPerSecond?: number;
  /** Burst of the global retry limit; default 200. */
  readonly retryBurst?: number;
  /** Observer of queue events, for metrics. */
  readonly observer?: WorkQueueObserver;
}

/** Receives queue events (metrics). */
export interface WorkQueueObserver {
  /** A key was added (possibly de-duplicated). */
  added?(): void;
  /** The number of waiting keys changed. */
  depth?(depth: number): void;
  /** A key waited `seconds` between being added and being handed to a worker. */
  waited?(seconds: number): void;
}

/**
 * A de-duplicating work queue of keys, in the manner of client-go's: a key waiting is held once
 * however often it is added; a key being processed is never handed to a second worker, and if it
 * was added meanwhile it is handed out again after {@link WorkQueue.done}. Retries back off per
 * key (exponentially) and under a global token bucket.
 */
export class WorkQueue {
  readonly #queue: string[] = [];
  readonly #dirty = new Map<string, number>(); // key → time added
  readonly #processing = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  readonly #waiters: Array<(key: string | undefined) => void> = [];
  readonly #backoff: BackoffOptions;
  readonly #observer: WorkQueueObserver;
  readonly #ratePerSecond: number;
  readonly #burst: number;
  #tokens: number;
  #tokensAt = Date.now();
  #shuttingDown = false;

  constructor(options: WorkQueueOptions = {}) {
    this.#backoff = options.backoff ?? { baseMs: 250, maxMs: 300_000, jitter: 0.1 };
    this.#observer = options.observer ?? {};
    this.#ratePerSecond = options.retriesPerSecond ?? 20;
    this.#burst = options.retryBurst ?? 200;
    this.#tokens = this.#burst;
  }

  /** Number of keys waiting to be handed out. */
  get length(): number {
    return this.#queue.length;
  }

  /** Adds `key` now. */
  add(key: string): void {
    if (this.#shuttingDown) return;
    this.#observer.added?.();
    if (this.#dirty.has(key)) return;
    this.#dirty.set(key, Date.now());
    if (this.#processing.has(key)) return; // handed out again by done()
    this.#queue.push(key);
    this.#observer.depth?.(this.#queue.length);
    this.#wake();
  }

  /** Adds `key` after `ms` (an earlier pending delay for the key wins). */
  addAfter(key: string, ms: number): void {
    if (this.#shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + ms;
    const pending = this.#timers.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, ms);
    this.#timers.set(key, { at, timer });
  }

  /** Adds `key` after its next backoff delay (and the global retry limit); returns the delay. */
  addRateLimited(key: string): number {
    const failures = (this.#failures.get(key) ?? 0) + 1;
    this.#failures.set(key, failures);
    const delay = Math.max(backoffDelay(failures, this.#backoff), this.#bucketDelay());
    this.addAfter(key, delay);
    return delay;
  }

  /** How many times `key` was retried since it was last forgotten. */
  failures(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  /** Resets `key`'s backoff (after a success, or when retrying cannot help). */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  /** Waits for the next key; undefined once the queue is shut down and drained. */
  get(): Promise<string | undefined> {
    const key = this.#take();
    if (key !== undefined || this.#shuttingDown) return Promise.resolve(key);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Marks `key` finished; if it was added while processing, it is queued again. */
  done(key: string): void {
    this.#processing.delete(key);
    if (this.#dirty.has(key) && !this.#shuttingDown) {
      this.#queue.push(key);
      this.#observer.depth?.(this.#queue.length);
      this.#wake();
    }
  }

  /** Stops handing out keys: waiting `get()` calls resolve undefined; delayed adds are dropped. */
  shutDown(): void {
    this.#shuttingDown = true;
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    this.#queue.length = 0;
    for (const waiter of this.#waiters.splice(0)) waiter(undefined);
  }

  #take(): string | undefined {
    const key = this.#queue.shift();
    if (key === undefined) return undefined;
    const added = this.#dirty.get(key);
    this.#dirty.delete(key);
    this.#processing.add(key);
    this.#observer.depth?.(this.#queue.length);
    if (added !== undefined) this.#observer.waited?.((Date.now() - added) / 1000);
    return key;
  }

  #wake(): void {
    while (this.#waiters.length > 0 && this.#queue.length > 0) {
      const waiter = this.#waiters.shift();
      waiter?.(this.#take());
    }
  }

  /** Token bucket for retries: the delay until a token is free (and takes it). */
  #bucketDelay(): number {
    const now = Date.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#tokensAt) / 1000) * this.#ratePerSecond);
    this.#tokensAt = now;
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens / this.#ratePerSecond) * 1000);
  }
}
