import { type KubeConfig, Watch } from '@kubernetes/client-node';
import type { AddressClaim } from './address-claim.js';
import { listAllVersioned } from './kube-list.js';
import type { IpamLogger } from './logger.js';

/** A change of one AddressClaim seen by a {@link ClaimWatch}. */
export type ClaimEvent = { readonly type: 'upsert' | 'delete'; readonly claim: AddressClaim };

/** Options of {@link ClaimWatch}. */
export interface ClaimWatchOptions {
  /** Credentials. */
  readonly kubeConfig: KubeConfig;
  /** Collection path of the claims. */
  readonly path: string;
  /** Called for every change, in the order the API sent them. */
  readonly onEvent: (event: ClaimEvent) => void;
  /** Called with the complete list after a relist (the watch was too far behind: 410 Gone). */
  readonly onRelist: (claims: readonly AddressClaim[]) => void;
  /** Logger. */
  readonly logger: IpamLogger;
  /** Page size of relists. */
  readonly pageSize?: number;
}

/**
 * Keeps following the AddressClaims after the import at start, so that a claim another writer
 * changed (a former leader, a person) reaches memory without reading every claim again: with a
 * live watch, confirming an unchanged allocation costs no API call. A dropped watch resumes from
 * the last resourceVersion with backoff (bookmarks keep it current while nothing changes), and
 * relists after 410 Gone. While it is not {@link ClaimWatch.live}, callers read the API instead.
 */
export class ClaimWatch {
  readonly #options: ClaimWatchOptions;
  readonly #watch: Watch;
  #resourceVersion: string;
  #abort: AbortController | undefined;
  #stopped = false;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #live = false;

  constructor(options: ClaimWatchOptions, resourceVersion: string) {
    this.#options = options;
    this.#watch = new Watch(options.kubeConfig);
    this.#resourceVersion = resourceVersion;
  }

  /** True from the start and while the watch has not failed since the claims were last listed. */
  get live(): boolean {
    return this.#live;
  }

  /** Starts following (in the background); memory is current as of the list it starts from. */
  start(): void {
    this.#live = true;
    void this.#connect();
  }

  /** Stops following. */
  stop(): void {
    this.#stopped = true;
    this.#live = false;
    clearTimeout(this.#timer);
    this.#abort?.abort();
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    let ended = false;
    const end = (err: unknown) => {
      if (ended) return;
      ended = true;
      this.#live = false;
      if (this.#stopped) return;
      const gone = (err as { code?: number; status?: number } | undefined)?.code === 410;
      if (err) this.#options.logger.warn({ err: String(err) }, 'AddressClaim watch ended; resuming');
      this.#retry(gone);
    };
    try {
      this.#abort = await this.#watch.watch(
        this.#options.path,
        { resourceVersion: this.#resourceVersion, allowWatchBookmarks: true },
        (phase, obj: AddressClaim & { code?: number }) => {
          if (phase === 'ERROR') {
            end(obj);
            this.#abort?.abort();
            return;
          }
          const rv = obj.metadata?.resourceVersion;
          if (rv) this.#resourceVersion = rv;
          this.#failures = 0;
          if (phase === 'ADDED' || phase === 'MODIFIED') this.#options.onEvent({ type: 'upsert', claim: obj });
          else if (phase === 'DELETED') this.#options.onEvent({ type: 'delete', claim: obj });
        },
        (err) => end(err ?? undefined),
      );
      if (!ended) this.#live = true; // again, after a resumed or relisted watch
    } catch (err) {
      end(err ?? new Error('watch could not start'));
    }
  }

  #retry(relist: boolean): void {
    const delay = Math.min(30_000, 500 * 2 ** Math.min(this.#failures++, 6));
    this.#timer = setTimeout(() => {
      if (!relist) {
        void this.#connect();
        return;
      }
      listAllVersioned<AddressClaim>(this.#options.kubeConfig, this.#options.path, {}, this.#options.pageSize)
        .then(({ items, resourceVersion }) => {
          this.#resourceVersion = resourceVersion;
          this.#options.onRelist(items);
          return this.#connect();
        })
        .catch((err: unknown) => {
          this.#options.logger.warn({ err: String(err) }, 'relisting AddressClaims failed; retrying');
          this.#retry(true);
        });
    }, delay);
    this.#timer.unref?.();
  }
}
