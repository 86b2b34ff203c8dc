import type { Logger } from './logger.js';
import type { IpFamily, LoadBalancerRef, LoadBalancerSpec, LoadBalancerStatus, Protocol, TargetKind } from './spec.js';

/** What a backend can do; the engine builds specs within these limits. */
export interface BackendCapabilities {
  /** Listener protocols it can serve. A spec with another protocol is a terminal error. */
  readonly protocols: readonly Protocol[];
  /** Whether it serves L7 routes (host/path) on HTTP/HTTPS listeners, i.e. Ingress. */
  readonly l7: boolean;
  /** Whether it terminates TLS on HTTPS listeners. */
  readonly tls: boolean;
  /**
   * True when the backend allocates the load balancer's addresses itself (Octavia): the engine
   * then passes no addresses and reads them from the returned status.
   */
  readonly allocatesAddresses: boolean;
  /** Target kinds it can send traffic to, most preferred first. */
  readonly targetKinds: readonly TargetKind[];
  /** IP families it can serve. */
  readonly ipFamilies: readonly IpFamily[];
  /** Whether it enforces `sourceRanges`. */
  readonly sourceRanges: boolean;
  /** Whether it can send the PROXY protocol header. */
  readonly proxyProtocol: boolean;
}

/** Per-call context: cancellation and a logger already bound to the load balancer's key. */
export interface BackendContext {
  /** Aborted when the engine shuts down or gives up on the call; backends pass it to their I/O. */
  readonly signal: AbortSignal;
  /** Logger bound to the reconcile (key, reconcile id). */
  readonly log: Logger;
}

/**
 * A load balancer implementation, modelled on the Kubernetes cloud-provider `LoadBalancer`
 * interface but over the backend-neutral {@link LoadBalancerSpec}. Implementations must be
 * idempotent and must only ever touch objects they created (recorded with the spec's
 * `ref.id`).
 *
 * Errors: throw `TerminalError` when the spec cannot be realised as written (no retry),
 * `RetryAfterError` while the backend is busy or provisioning (fixed-delay requeue); anything
 * else is treated as transient and retried with exponential backoff.
 */
export interface LoadBalancerBackend {
  /** Short name, used in metrics and events, e.g. `keepalived-nginx`. */
  readonly name: string;
  /** What it can do. */
  readonly capabilities: BackendCapabilities;
  /**
   * Creates or updates the load balancer so that it matches `spec`, and returns where it can be
   * reached. Calling it again with the same spec changes nothing.
   */
  ensure(spec: LoadBalancerSpec, ctx: BackendContext): Promise<LoadBalancerStatus>;
  /**
   * Removes everything the backend created for `ref`. Removing something already gone succeeds.
   * Must only resolve once removal is confirmed.
   */
  remove(ref: LoadBalancerRef, ctx: BackendContext): Promise<void>;
  /**
   * The load balancers this backend manages (created by this controller), for orphan clean-up.
   * Must throw, never return a partial list, when the backend cannot be read completely.
   */
  list(ctx: BackendContext): Promise<LoadBalancerRef[]>;
  /**
   * For backends whose realised state changes on its own (e.g. node daemons reporting which node
   * holds a VIP, or refusing a config): start watching and call `notify` with the ref of every
   * load balancer whose status may have changed, so the engine reconciles it again. Returns a
   * function that stops watching. The engine calls it while it leads, calls it again with backoff
   * when it rejects, and stops it when leadership ends; a watch that breaks after it started must
   * recover by itself (as an informer does). Report a data plane that refused what `ensure`
   * published with {@link LoadBalancerStatus.problem}.
   */
  watch?(notify: (ref: LoadBalancerRef) => void, ctx: BackendContext): Promise<() => void>;
  /** Releases held resources (sessions, tokens, timers) on shutdown. */
  close?(): Promise<void>;
}
