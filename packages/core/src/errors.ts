/** Options shared by KLB's error classes. */
export interface KlbErrorOptions {
  /** The error that caused this one. */
  readonly cause?: unknown;
}

/**
 * Base class of KLB's errors: a stable machine-readable `code`, whether retrying can help
 * (`retryable`) and the `cause`.
 */
export class KlbError extends Error {
  /** Stable error code, e.g. `TERMINAL`, `RETRY_AFTER`, `POOL_EXHAUSTED`. */
  readonly code: string;
  /** Whether the same operation may succeed if retried later. */
  readonly retryable: boolean;

  constructor(code: string, message: string, retryable: boolean, options: KlbErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = retryable;
  }
}

/**
 * The desired state cannot be realised as written (bad spec, unsupported protocol, unknown
 * pool, conflict): the engine does not retry until the object changes, emits a Warning event
 * and writes the message to the object's status.
 */
export class TerminalError extends KlbError {
  /** A short CamelCase reason for the Warning event, e.g. `InvalidPort`. */
  readonly reason: string;

  constructor(message: string, options: KlbErrorOptions & { readonly code?: string; readonly reason?: string } = {}) {
    super(options.code ?? 'TERMINAL', message, false, options);
    this.reason = options.reason ?? 'InvalidLoadBalancer';
  }
}

/**
 * The backend is busy or still provisioning: requeue after `retryAfterMs` without growing the
 * backoff (a fixed delay, not a failure).
 */
export class RetryAfterError extends KlbError {
  /** How long to wait before the next attempt, in milliseconds. */
  readonly retryAfterMs: number;

  constructor(message: string, retryAfterMs: number, options: KlbErrorOptions & { readonly code?: string } = {}) {
    super(options.code ?? 'RETRY_AFTER', message, true, options);
    this.retryAfterMs = retryAfterMs;
  }
}

/** True for a {@link TerminalError} (also one from another copy of this package). */
export function isTerminalError(err: unknown): err is TerminalError {
  return err instanceof TerminalError || (err instanceof Error && err.name === 'TerminalError');
}

/** True for a {@link RetryAfterError} (also one from another copy of this package). */
export function isRetryAfterError(err: unknown): err is RetryAfterError {
  return (
    err instanceof RetryAfterError ||
    (err instanceof Error &&
      err.name === 'RetryAfterError' &&
      typeof (err as RetryAfterError).retryAfterMs === 'number')
  );
}
