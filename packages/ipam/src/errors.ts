/**
 * Stable codes of {@link IpamError}. They never change meaning; match on them, not on messages.
 *
 * - `POOL_EXHAUSTED`: every matching pool is full (retryable: an address may be released).
 * - `ADDRESS_OUTSIDE_POOLS`: a requested address is in no configured pool (or not in the named pool).
 * - `ADDRESS_RESERVED`: a requested address is in a pool but reserved (or avoided as `.0`/`.255`).
 * - `ADDRESS_TAKEN`: a requested address belongs to another owner that does not share it (retryable).
 * - `SHARING_CONFLICT`: same sharing key, but the protocol/port sets overlap (retryable).
 * - `FAMILY_UNAVAILABLE`: no matching pool offers the IP family the request needs.
 * - `NO_MATCHING_POOL`: no pool is available to this owner (name, namespace, labels, class).
 * - `INVALID_CONFIG`: the pool configuration is invalid; nothing was changed.
 * - `INVALID_REQUEST`: the request itself is malformed.
 * - `CONFLICT_RETRY`: the Kubernetes API kept answering 409 Conflict; retry later.
 * - `NOT_READY`: `KubeIpam.start()` has not finished importing existing assignments.
 * - `API_ERROR`: the Kubernetes API failed (network, 5xx, permissions); retry later.
 */
export type IpamErrorCode =
  | 'POOL_EXHAUSTED'
  | 'ADDRESS_OUTSIDE_POOLS'
  | 'ADDRESS_RESERVED'
  | 'ADDRESS_TAKEN'
  | 'SHARING_CONFLICT'
  | 'FAMILY_UNAVAILABLE'
  | 'NO_MATCHING_POOL'
  | 'INVALID_CONFIG'
  | 'INVALID_REQUEST'
  | 'CONFLICT_RETRY'
  | 'NOT_READY'
  | 'API_ERROR';

/** Whether each code is retryable and whether it is terminal (retrying without a change cannot help). */
const CODE_TRAITS: Record<IpamErrorCode, { readonly retryable: boolean; readonly terminal: boolean }> = {
  POOL_EXHAUSTED: { retryable: true, terminal: false },
  ADDRESS_OUTSIDE_POOLS: { retryable: false, terminal: true },
  ADDRESS_RESERVED: { retryable: false, terminal: true },
  ADDRESS_TAKEN: { retryable: true, terminal: false },
  SHARING_CONFLICT: { retryable: true, terminal: false },
  FAMILY_UNAVAILABLE: { retryable: false, terminal: true },
  NO_MATCHING_POOL: { retryable: false, terminal: true },
  INVALID_CONFIG: { retryable: false, terminal: true },
  INVALID_REQUEST: { retryable: false, terminal: true },
  CONFLICT_RETRY: { retryable: true, terminal: false },
  NOT_READY: { retryable: true, terminal: false },
  API_ERROR: { retryable: true, terminal: false },
};

/** Options of {@link IpamError}. */
export interface IpamErrorOptions {
  /** The error that caused this one. */
  readonly cause?: unknown;
  /** Every problem found, for errors that collect several (e.g. all invalid pool entries). */
  readonly details?: readonly string[];
}

/**
 * The error every @klb/ipam operation throws: a stable {@link IpamErrorCode}, whether a retry
 * may succeed (`retryable`), whether retrying without a change cannot help (`terminal`, which a
 * reconcile engine maps to its terminal error) and the `cause`.
 */
export class IpamError extends Error {
  /** Stable machine-readable code. */
  readonly code: IpamErrorCode;
  /** Whether the same operation may succeed if retried later (something else may change). */
  readonly retryable: boolean;
  /** True when retrying without a change to the request or the configuration cannot help. */
  readonly terminal: boolean;
  /** Every problem found (at least the message's). */
  readonly details: readonly string[];

  constructor(code: IpamErrorCode, message: string, options: IpamErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'IpamError';
    this.code = code;
    this.retryable = CODE_TRAITS[code].retryable;
    this.terminal = CODE_TRAITS[code].terminal;
    this.details = options.details ?? [message];
  }
}

/** True for an {@link IpamError} (also one from another copy of this package). */
export function isIpamError(err: unknown): err is IpamError {
  return (
    err instanceof IpamError ||
    (err instanceof Error && err.name === 'IpamError' && typeof (err as IpamError).code === 'string')
  );
}
