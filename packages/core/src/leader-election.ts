import { sleep } from './backoff.js';
import { isConflict, isNotFound, type KubeClient, type KubeObject } from './kube-client.js';
import { type Logger, silentLogger } from './logger.js';

/** Options of {@link LeaderElector}. */
export interface LeaderElectionOptions {
  /** Namespace of the Lease. */
  readonly namespace: string;
  /** Name of the Lease, shared by all replicas; default `klb-controller`. */
  readonly name?: string;
  /** This replica's identity (e.g. the pod name); must be unique among replicas. */
  readonly identity: string;
  /** How long a lease is valid without renewal, in ms; default 15000. */
  readonly leaseDurationMs?: number;
  /** A leader that could not renew for this long stops leading (must be < lease duration); default 10000. */
  readonly renewDeadlineMs?: number;
  /** Interval between acquire/renew attempts, in ms; default 2000. */
  readonly retryPeriodMs?: number;
  /** Logger. */
  readonly logger?: Logger;
}

/** Callbacks of {@link LeaderElector.run}. */
export interface LeaderCallbacks {
  /** Became leader: start working. `signal` aborts when leadership is lost or released. */
  onStartedLeading(signal: AbortSignal): void;
  /** Stopped leading (lost the lease or released it). */
  onStoppedLeading?(): void;
}

interface Lease extends KubeObject {
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

/** Kubernetes MicroTime: RFC 3339 with exactly six fractional digits. */
function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/**
 * Leader election over a `coordination.k8s.io/v1` Lease, like client-go's: one replica holds the
 * lease and renews it; the others retry until it expires. A leader that cannot renew within the
 * renew deadline stops working before its lease can expire, so two replicas never act at once.
 * Releasing on shutdown lets a successor take over at once.
 */
export class LeaderElector {
  readonly #client: KubeClient;
  readonly #opts: Required<Omit<LeaderElectionOptions, 'logger'>>;
  readonly #log: Logger;
  #leading = false;
  #observedRenew = 0;
  #observedRenewSource = -1;

  constructor(client: KubeClient, options: LeaderElectionOptions) {
    this.#client = client;
    this.#opts = {
      name: 'klb-controller',
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      ...options,
    };
    if (this.#opts.renewDeadlineMs >= this.#opts.leaseDurationMs) {
      throw new Error('renewDeadlineMs must be shorter than leaseDurationMs');
    }
    this.#log = (options.logger ?? silentLogger).child({ lease: `${this.#opts.namespace}/${this.#opts.name}` });
  }

  /** Whether this replica currently leads. */
  get leading(): boolean {
    return this.#leading;
  }

  get #path(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${this.#opts.namespace}/leases/${this.#opts.name}`;
  }

  /**
   * Campaigns until `signal` aborts: acquires the lease, calls `onStartedLeading`, renews; when
   * renewal fails past the deadline it calls `onStoppedLeading` and campaigns again. On abort a
   * held lease is released.
   */
  async run(callbacks: LeaderCallbacks, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      if (await this.#tryAcquireOrRenew(signal)) {
        this.#leading = true;
        this.#log.info({ identity: this.#opts.identity }, 'became leader');
        const leadership = new AbortController();
        callbacks.onStartedLeading(leadership.signal);
        let lastRenew = Date.now();
        while (!signal.aborted) {
          await sleep(this.#opts.retryPeriodMs, signal).catch(() => {});
          if (signal.aborted) break;
          if (await this.#tryAcquireOrRenew(signal)) {
            lastRenew = Date.now();
          } else if (Date.now() - lastRenew >= this.#opts.renewDeadlineMs) {
            this.#log.warn({ identity: this.#opts.identity }, 'could not renew the lease in time; stopping work');
            break;
          }
        }
        this.#leading = false;
        leadership.abort(new Error('leadership lost'));
        callbacks.onStoppedLeading?.();
        if (signal.aborted) {
          await this.#release();
          return;
        }
      }
      await sleep(this.#opts.retryPeriodMs, signal).catch(() => {});
    }
  }

  async #tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const now = new Date();
    const durationSeconds = Math.ceil(this.#opts.leaseDurationMs / 1000);
    try {
      let lease: Lease;
      try {
        lease = await this.#client.get<Lease>(this.#path, signal);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        await this.#client.create<Lease>(
          `/apis/coordination.k8s.io/v1/namespaces/${this.#opts.namespace}/leases`,
          {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name: this.#opts.name, namespace: this.#opts.namespace },
            spec: {
              holderIdentity: this.#opts.identity,
              leaseDurationSeconds: durationSeconds,
              acquireTime: microTime(now),
              renewTime: microTime(now),
              leaseTransitions: 0,
            },
          },
          signal,
        );
        return true;
      }
      const spec = lease.spec ?? {};
      const holder = spec.holderIdentity ?? '';
      const renewedAt = spec.renewTime ? Date.parse(spec.renewTime) : 0;
      // Expiry is judged by when *we* last saw the lease change, not by the holder's clock.
      if (renewedAt !== this.#observedRenewSource) {
        this.#observedRenewSource = renewedAt;
        this.#observedRenew = Date.now();
      }
      const expired = Date.now() - this.#observedRenew > (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
      if (holder && holder !== this.#opts.identity && !expired) return false;
      const transitions = (spec.leaseTransitions ?? 0) + (holder === this.#opts.identity ? 0 : 1);
      await this.#client.replace<Lease>(
        this.#path,
        {
          ...lease,
          spec: {
            holderIdentity: this.#opts.identity,
            leaseDurationSeconds: durationSeconds,
            acquireTime: holder === this.#opts.identity && spec.acquireTime ? spec.acquireTime : microTime(now),
            renewTime: microTime(now),
            leaseTransitions: transitions,
          },
        },
        signal,
      );
      return true;
    } catch (err) {
      if (!isConflict(err) && !signal.aborted) this.#log.warn({ err: String(err) }, 'lease acquire/renew failed');
      return false;
    }
  }

  /** Gives the lease up (holder cleared, 1 s duration) so a successor need not wait for expiry. */
  async #release(): Promise<void> {
    try {
      const lease = await this.#client.get<Lease>(this.#path);
      if (lease.spec?.holderIdentity !== this.#opts.identity) return;
      await this.#client.replace<Lease>(this.#path, {
        ...lease,
        spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime(new Date()) },
      });
      this.#log.info({ identity: this.#opts.identity }, 'released the lease');
    } catch (err) {
      this.#log.warn({ err: String(err) }, 'could not release the lease');
    }
  }
}
