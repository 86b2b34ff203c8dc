/**
 * How a call is counted:
 * - `auth`: `/mgmt/shared/authn/*` and `/mgmt/shared/authz/*` (login, token refresh, logout);
 * - `transaction`: transaction bookkeeping (create, read, list commands, delete);
 * - `queued`: a write sent with `X-F5-REST-Coordination-Id` (queued, applied at commit);
 * - `write`: a POST/PUT/PATCH/DELETE that changes configuration by itself, and each transaction
 *   commit (one write, however many commands it applies);
 * - `read`: every other GET.
 */
export type F5CallCategory = 'read' | 'write' | 'auth' | 'transaction' | 'queued';

/** One call the emulator answered. */
export interface F5CallRecord {
  /** HTTP method. */
  readonly method: string;
  /** Path with query. */
  readonly path: string;
  /** Status answered. */
  readonly status: number;
  /** How it counts (see {@link F5CallCategory}). */
  readonly category: F5CallCategory;
}

/** Totals per category. */
export interface F5CallCounts {
  /** Reads (GETs of configuration). */
  readonly reads: number;
  /** Writes (changes applied by one call; a transaction commit counts once). */
  readonly writes: number;
  /** Authentication and token calls. */
  readonly auth: number;
  /** Transaction bookkeeping (create, read, commands, delete). */
  readonly transaction: number;
  /** Commands queued into transactions. */
  readonly queued: number;
  /** Every call. */
  readonly total: number;
}

/** The emulator's call log, for tests and benchmarks. */
export class CallLog {
  readonly #records: F5CallRecord[] = [];

  /** Appends a record. */
  add(record: F5CallRecord): void {
    this.#records.push(record);
  }

  /** The records so far (a copy). */
  records(): F5CallRecord[] {
    return [...this.#records];
  }

  /** Forgets every record. */
  clear(): void {
    this.#records.length = 0;
  }

  /** Totals per category, over all records or those from index `since` on. */
  counts(since = 0): F5CallCounts {
    const counts = { reads: 0, writes: 0, auth: 0, transaction: 0, queued: 0, total: 0 };
    for (const r of this.#records.slice(since)) {
      counts.total += 1;
      if (r.category === 'read') counts.reads += 1;
      else if (r.category === 'write') counts.writes += 1;
      else if (r.category === 'auth') counts.auth += 1;
      else if (r.category === 'transaction') counts.transaction += 1;
      else counts.queued += 1;
    }
    return counts;
  }

  /** Number of records (a mark to pass to {@link CallLog.counts} later). */
  get length(): number {
    return this.#records.length;
  }
}
