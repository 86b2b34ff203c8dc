import { Counter, Gauge, type Registry } from 'prom-client';
import type { IpamErrorCode } from './errors.js';
import type { PoolStats } from './types.js';

/**
 * The IPAM's Prometheus metrics, registered on an injected registry:
 *
 * - `klb_ipam_pool_size{pool,family}`: assignable addresses (a float: an IPv6 /64 is 1.8e19);
 * - `klb_ipam_pool_used{pool,family}`: addresses held by at least one owner;
 * - `klb_ipam_pool_available{pool,family}`: assignable addresses nobody holds (a float);
 * - `klb_ipam_rejected_requests_total{reason}`: allocate() calls that failed, by error code.
 *
 * The gauges are computed from the allocator when scraped.
 */
export class IpamMetrics {
  readonly #rejected: Counter<'reason'>;

  /**
   * @param registry - where to register (metrics names must be free there).
   * @param stats - current usage, read at every scrape.
   */
  constructor(registry: Registry, stats: () => readonly PoolStats[]) {
    const gauge = (name: string, help: string, pick: (s: PoolStats) => number): Gauge<'pool' | 'family'> =>
      new Gauge({
        name,
        help,
        labelNames: ['pool', 'family'],
        registers: [registry],
        collect() {
          this.reset();
          for (const s of stats()) this.set({ pool: s.pool, family: s.family }, pick(s));
        },
      });
    gauge('klb_ipam_pool_size', 'Assignable addresses in the pool (reserved and avoided ones excluded).', (s) =>
      Number(s.size),
    );
    gauge('klb_ipam_pool_used', 'Addresses of the pool held by at least one owner.', (s) => s.used);
    gauge('klb_ipam_pool_available', 'Assignable addresses of the pool that nobody holds.', (s) => Number(s.available));
    this.#rejected = new Counter({
      name: 'klb_ipam_rejected_requests_total',
      help: 'Allocation requests that failed, by reason (the IpamError code).',
      labelNames: ['reason'],
      registers: [registry],
    });
  }

  /** Counts one rejected request. */
  rejected(reason: IpamErrorCode): void {
    this.#rejected.inc({ reason });
  }
}
