/** Exponential backoff settings. */
export interface BackoffOptions {
  /** First delay, in milliseconds. */
  readonly baseMs: number;
  /** Largest delay, in milliseconds. */
  readonly maxMs: number;
  /** Random spread as a fraction of the delay (0.2 = ±20 %); default 0. */
  readonly jitter?: number;
}

/** The delay before attempt `failures` + 1: `baseMs · 2^(failures-1)`, capped, with optional jitter. */
export function backoffDelay(failures: number, options: BackoffOptions): number {
  const exp = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, failures - 1));
  const jitter = options.jitter ?? 0;
  return Math.max(0, Math.round(exp * (1 + jitter * (Math.random() * 2 - 1))));
}

/** Resolves after `ms`, or rejects with the signal's reason when `signal` aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
