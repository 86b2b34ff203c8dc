import { createHash, randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import type { AddressAllocator, AddressOwner } from './address-allocator.js';
import type { BackendContext, LoadBalancerBackend } from './backend.js';
import { backoffDelay, sleep } from './backoff.js';
import { ConfigMapSource } from './configmap-source.js';
import { isRetryAfterError, isTerminalError, TerminalError } from './errors.js';
import { EventRecorder } from './event-recorder.js';
import { GatewaySource, type GatewaySourceOptions } from './gateway-source.js';
import { type HealthServer, startHealthServer } from './health-server.js';
import { Informer, objectKey } from './informer.js';
import { IngressSource, type IngressSourceOptions } from './ingress-source.js';
import { isConflict, KubeClient, type KubeObject } from './kube-client.js';
import type { EndpointSliceObject, NodeObject, SecretObject, ServiceObject } from './kube-types.js';
import { type LeaderElectionOptions, LeaderElector } from './leader-election.js';
import { type Logger, silentLogger } from './logger.js';
import { ControllerMetrics } from './metrics.js';
import { ServiceSource, type ServiceSourceOptions } from './service-source.js';
import type {
  ClusterState,
  LoadBalancerDependencies,
  LoadBalancerSource,
  ReconcileOutcome,
  WatchedResource,
} from './source.js';
import { type LoadBalancerRef, type LoadBalancerSpec, parseLoadBalancerId, type SourceKind } from './spec.js';
import { nodeTargetFingerprint, serviceEndpoints } from './targets.js';
import { WorkQueue } from './work-queue.js';

/** The finalizer KLB puts on objects it realised, removed after the backend confirmed removal. */
export const FINALIZER = 'klb.io/load-balancer-cleanup';

/** Options of {@link LoadBalancerController}. */
export interface LoadBalancerControllerOptions {
  /** Credentials for the Kubernetes API. */
  readonly kubeConfig: KubeConfig;
  /** The backend that realises load balancers. */
  readonly backend: LoadBalancerBackend;
  /** The address allocator (`@klb/ipam`); required unless the backend allocates addresses. */
  readonly allocator?: AddressAllocator;
  /** Service source settings; `false` disables Services. */
  readonly services?: ServiceSourceOptions | false;
  /** Whether to serve the original `app=loadbalancer` ConfigMaps; default true. */
  readonly configMaps?: boolean;
  /** Ingress source settings; `false` disables Ingress (it is off anyway when the backend has no L7). */
  readonly ingress?: IngressSourceOptions | false;
  /**
   * Gateway API settings; absent or `false`: Gateways are not served. Until the Gateway API
   * CRDs (v1: GatewayClass, Gateway, HTTPRoute, TLSRoute, TCPRoute, UDPRoute, ReferenceGrant)
   * are installed there are no Gateways to serve: their lists are tried again every 30 s.
   */
  readonly gateways?: GatewaySourceOptions | false;
  /** Node address types in order of preference; default `InternalIP`, `ExternalIP`. */
  readonly nodeAddressPreference?: readonly string[];
  /** Concurrent reconciles; default 4. */
  readonly workers?: number;
  /** Period of the full resync (drift repair), in ms; default 10 minutes; 0 disables it. */
  readonly resyncPeriodMs?: number;
  /** Leader election; without it this replica always acts (run one replica only). */
  readonly leaderElection?: LeaderElectionOptions;
  /** Port for /healthz, /readyz and /metrics; absent: no server. */
  readonly healthPort?: number;
  /** Host to bind the health server; default `0.0.0.0`. */
  readonly healthHost?: string;
  /** Metrics registry; default a new one. */
  readonly registry?: Registry;
  /** Logger; default silent. */
  readonly logger?: Logger;
  /** A watch silent this long is restarted, in ms; default 120000. */
  readonly watchdogMs?: number;
  /** Called on every write to the Kubernetes API (verb, path), e.g. to count writes. */
  readonly onWrite?: (verb: string, path: string) => void;
}

interface Known {
  ref: LoadBalancerRef;
  owner: AddressOwner;
  deps: LoadBalancerDependencies;
  specHash: string;
  /** The data-plane problem last reported for it, so that its Warning event is recorded once. */
  problem: string | undefined;
}

/** Allocation outcomes that wait for a change elsewhere: written on the object, then retried. */
const WAITING_ALLOCATION_CODES = new Set(['ADDRESS_TAKEN', 'POOL_EXHAUSTED', 'SHARING_CONFLICT']);

/**
 * The reconcile engine: watches Services, original ConfigMaps and Ingresses, translates each to a
 * {@link LoadBalancerSpec}, allocates addresses, calls the backend, and writes status back —
 * level-triggered, one key never concurrently with itself, with finalizers, events, metrics,
 * leader election and graceful shutdown.
 */
export class LoadBalancerController {
  /** Metrics (registered on the registry served at /metrics). */
  readonly metrics: ControllerMetrics;
  readonly #opts: LoadBalancerControllerOptions;
  readonly #log: Logger;
  readonly #client: KubeClient;
  readonly #backend: LoadBalancerBackend;
  readonly #queue: WorkQueue;
  readonly #events: EventRecorder;
  readonly #sources = new Map<SourceKind, { source: LoadBalancerSource; informer: Informer<KubeObject> }>();
  readonly #services: Informer<ServiceObject>;
  readonly #nodes: Informer<NodeObject>;
  readonly #slices: Informer<EndpointSliceObject>;
  readonly #secrets: Informer<SecretObject> | undefined;
  /** Informers of the sources' further resources ({@link LoadBalancerSource.watches}), by resource. */
  readonly #watched = new Map<string, Informer<KubeObject>>();
  readonly #worldView: ClusterState;
  readonly #slicesByService = new Map<string, Set<string>>();
  readonly #known = new Map<string, Known>();
  /** LoadBalancerDependencies of keys not (yet) ensured, e.g. a ConfigMap whose Service does not exist yet. */
  readonly #pendingDeps = new Map<string, LoadBalancerDependencies>();
  readonly #orphans = new Set<string>();
  /**
   * The resourceVersion each key had when KLB dropped its finalizer, until the informer shows a
   * newer one: a reconcile that still reads that version from the cache finds nothing to do.
   */
  readonly #finalized = new Map<string, string>();
  readonly #stop = new AbortController();
  #leadership: AbortController | undefined;
  #workers: Promise<void>[] = [];
  #inflight = new Set<AbortController>();
  #allocatorReady = false;
  #health: HealthServer | undefined;
  #resyncTimer: NodeJS.Timeout | undefined;
  #electionDone: Promise<void> | undefined;

  constructor(options: LoadBalancerControllerOptions) {
    this.#opts = options;
    this.#log = options.logger ?? silentLogger;
    this.#backend = options.backend;
    if (!options.backend.capabilities.allocatesAddresses && !options.allocator) {
      throw new TerminalError(`the ${options.backend.name} backend needs an address allocator (@klb/ipam)`, {
        code: 'NO_ALLOCATOR',
      });
    }
    this.metrics = new ControllerMetrics(options.registry);
    this.#client = new KubeClient(options.kubeConfig, options.onWrite ? { onWrite: options.onWrite } : {});
    this.#events = new EventRecorder(this.#client, 'klb-controller', this.#log);
    this.#queue = new WorkQueue({
      observer: {
        added: () => this.metrics.queueAdds.inc(),
        depth: (d) => this.metrics.queueDepth.set(d),
        waited: (s) => this.metrics.queueLatency.observe(s),
      },
    });
    const informer = <T extends KubeObject>(
      resource: string,
      path: string,
      extra: { labelSelector?: string; fieldSelector?: string; optional?: boolean } = {},
    ) =>
      new Informer<T>(this.#client, {
        resource,
        path,
        ...extra,
        logger: this.#log,
        ...(options.watchdogMs ? { watchdogMs: options.watchdogMs } : {}),
        onRestart: (reason) => this.metrics.informerRestarts.inc({ resource, reason }),
      });
    this.#services = informer<ServiceObject>('services', '/api/v1/services');
    this.#nodes = informer<NodeObject>('nodes', '/api/v1/nodes');
    this.#slices = informer<EndpointSliceObject>('endpointslices', '/apis/discovery.k8s.io/v1/endpointslices');
    const caps = options.backend.capabilities;
    const ingressOn = options.ingress !== false && caps.l7;
    const gatewaysOn = options.gateways !== undefined && options.gateways !== false;
    this.#secrets =
      (ingressOn || gatewaysOn) && caps.tls
        ? informer<SecretObject>('secrets', '/api/v1/secrets', { fieldSelector: 'type=kubernetes.io/tls' })
        : undefined;

    if (options.services !== false) {
      const source = new ServiceSource(options.services ?? {});
      this.#sources.set('Service', {
        source: source as LoadBalancerSource,
        informer: this.#services as Informer<KubeObject>,
      });
    }
    if (options.configMaps !== false) {
      const source = new ConfigMapSource();
      this.#sources.set('ConfigMap', {
        source: source as LoadBalancerSource,
        informer: informer('configmaps', source.collectionPath, { labelSelector: source.labelSelector }),
      });
    }
    if (ingressOn) {
      const source = new IngressSource(options.ingress || {});
      this.#sources.set('Ingress', {
        source: source as LoadBalancerSource,
        informer: informer('ingresses', source.collectionPath),
      });
    }
    if (gatewaysOn) {
      const source = new GatewaySource(options.gateways || {});
      this.#sources.set('Gateway', {
        source: source as unknown as LoadBalancerSource,
        informer: informer('gateways', source.collectionPath, { optional: true }),
      });
    }
    for (const { source } of this.#sources.values()) {
      for (const w of source.watches ?? []) {
        if (!this.#watched.has(w.resource)) {
          this.#watched.set(w.resource, informer(w.resource, w.collectionPath, { optional: true }));
        }
      }
    }
    this.#worldView = this.#world();
    this.#wireHandlers();
  }

  /** True once caches are synced and existing address assignments are imported. */
  get ready(): boolean {
    return this.#cachesSynced() && this.#allocatorReady;
  }

  /** True while this replica leads (or when leader election is off and it runs). */
  get leading(): boolean {
    return this.#leadership !== undefined && !this.#leadership.signal.aborted;
  }

  /** The port of the health server, if it runs. */
  get healthPort(): number | undefined {
    return this.#health?.port;
  }

  /**
   * Starts informers, the health server, waits for caches and the address import, then
   * campaigns for leadership (or starts at once without leader election). Resolves once ready.
   */
  async start(): Promise<void> {
    if (this.#opts.healthPort !== undefined) {
      this.#health = await startHealthServer({
        port: this.#opts.healthPort,
        ...(this.#opts.healthHost ? { host: this.#opts.healthHost } : {}),
        healthy: () => !this.#stop.signal.aborted,
        ready: () => this.ready,
        registry: this.metrics.registry,
      });
    }
    const informers = this.#allInformers();
    for (const inf of informers) inf.start();
    await Promise.all(informers.map((inf) => inf.waitForSync()));
    this.#log.info({ informers: informers.length }, 'caches synced');
    await this.#startAllocator();
    if (this.#stop.signal.aborted) return;
    this.#allocatorReady = true;
    this.#log.info({}, 'address assignments imported; ready');
    const election = this.#opts.leaderElection;
    if (election) {
      const elector = new LeaderElector(this.#client, { logger: this.#log, ...election });
      this.#electionDone = elector.run(
        {
          onStartedLeading: (signal) => this.#lead(signal),
          onStoppedLeading: () => this.#follow(),
        },
        this.#stop.signal,
      );
    } else {
      this.#lead(this.#stop.signal);
    }
  }

  /**
   * Imports the existing address assignments, retrying with backoff while that fails for a
   * reason that may pass (the apiserver unreachable, a pools ConfigMap not readable yet):
   * meanwhile /healthz answers and /readyz says not ready. An error marked `terminal` (a wrong
   * pool configuration) ends the start.
   */
  async #startAllocator(): Promise<void> {
    const allocator = this.#opts.allocator;
    if (!allocator) return;
    for (let failures = 1; ; failures++) {
      try {
        await allocator.start();
        return;
      } catch (err) {
        if ((err as { terminal?: boolean }).terminal) throw err;
        const delay = backoffDelay(failures, { baseMs: 500, maxMs: 30_000, jitter: 0.2 });
        this.#log.warn({ err: String(err), retryInMs: delay }, 'importing address assignments failed; retrying');
        if (
          !(await sleep(delay, this.#stop.signal).then(
            () => true,
            () => false,
          ))
        )
          return;
      }
    }
  }

  /**
   * Graceful stop: stops taking work, lets in-flight reconciles finish (aborting them after
   * `graceMs`), releases the lease, stops informers and closes the backend.
   */
  async stop(graceMs = 20_000): Promise<void> {
    if (this.#stop.signal.aborted) return;
    this.#log.info({}, 'stopping');
    this.#queue.shutDown();
    const timer = setTimeout(() => {
      for (const ctl of this.#inflight) ctl.abort(new Error('controller stopping'));
    }, graceMs);
    await Promise.all(this.#workers);
    clearTimeout(timer);
    this.#stop.abort(new Error('controller stopped'));
    clearInterval(this.#resyncTimer);
    await this.#electionDone;
    await Promise.all(this.#allInformers().map((inf) => inf.stop()));
    await this.#opts.allocator?.stop?.();
    await this.#backend.close?.();
    await this.#health?.close();
    this.#client.close();
  }

  #allInformers(): Informer<KubeObject>[] {
    const list: Informer<KubeObject>[] = [this.#services, this.#nodes, this.#slices] as Informer<KubeObject>[];
    if (this.#secrets) list.push(this.#secrets as Informer<KubeObject>);
    list.push(...this.#watched.values());
    for (const { informer } of this.#sources.values()) if (!list.includes(informer)) list.push(informer);
    return list;
  }

  #cachesSynced(): boolean {
    return this.#allInformers().every((inf) => inf.synced);
  }

  /** Became leader (or runs alone): workers, orphan clean-up, periodic resync. */
  #lead(signal: AbortSignal): void {
    const leadership = new AbortController();
    // Every worker and every in-flight reconcile listens to it: not a leak.
    setMaxListeners(0, leadership.signal);
    signal.addEventListener('abort', () => leadership.abort(signal.reason), { once: true });
    this.#leadership = leadership;
    this.metrics.leader.set(1);
    this.resync();
    void this.#cleanupOrphans(leadership.signal);
    void this.#watchBackend(leadership.signal);
    const resync = this.#opts.resyncPeriodMs ?? 600_000;
    if (resync > 0) {
      this.#resyncTimer = setInterval(() => this.resync(), resync);
      this.#resyncTimer.unref?.();
    }
    const workers = this.#opts.workers ?? 4;
    this.#workers = Array.from({ length: workers }, () => this.#work(leadership.signal));
  }

  /** Lost leadership: stop working at once (in-flight calls are aborted). */
  #follow(): void {
    this.metrics.leader.set(0);
    clearInterval(this.#resyncTimer);
    this.#leadership?.abort(new Error('leadership lost'));
    for (const ctl of this.#inflight) ctl.abort(new Error('leadership lost'));
  }

  /**
   * Enqueues every object KLB owns for a reconcile (drift repair; unchanged objects cause no
   * writes). The periodic resync calls it; operators may call it after backend maintenance.
   */
  resync(): void {
    for (const [kind, { informer, source }] of this.#sources) {
      for (const obj of informer.list()) if (this.#relevant(source, obj)) this.#queue.add(keyOf(kind, obj));
      for (const w of source.watches ?? []) {
        for (const obj of this.#watched.get(w.resource)?.list() ?? []) this.#settle(w, obj);
      }
    }
  }

  /** While leading: lets the source write what it says of a watched object (e.g. a GatewayClass). */
  #settle(w: WatchedResource, obj: KubeObject): void {
    if (!w.settle || !this.leading) return;
    w.settle(this.#client, obj).catch((err: unknown) => {
      this.#log.warn(
        { resource: w.resource, name: objectKey(obj), err: String(err) },
        'could not write status; retried at the next resync',
      );
    });
  }

  async #work(signal: AbortSignal): Promise<void> {
    const aborted = new Promise<undefined>((resolve) =>
      signal.addEventListener('abort', () => resolve(undefined), { once: true }),
    );
    while (!signal.aborted) {
      const next = this.#queue.get();
      const key = await Promise.race([next, aborted]);
      if (key === undefined) {
        // Leadership ended while waiting: hand a key taken meanwhile back to the queue.
        void next.then((k) => {
          if (k !== undefined) {
            this.#queue.done(k);
            this.#queue.add(k);
          }
        });
        return;
      }
      if (key === undefined) return;
      try {
        if (signal.aborted) {
          this.#queue.add(key);
          return;
        }
        await this.#reconcile(key, signal);
      } finally {
        this.#queue.done(key);
      }
    }
  }

  #relevant(source: LoadBalancerSource, obj: KubeObject): boolean {
    return source.wants(obj, this.#worldView) || (obj.metadata?.finalizers ?? []).includes(FINALIZER);
  }

  /** Reconciles one key (`<kind>/<namespace>/<name>`); never throws. */
  async #reconcile(key: string, leaderSignal: AbortSignal): Promise<void> {
    const ref = parseLoadBalancerId(key);
    if (!ref) return;
    const entry = this.#sources.get(ref.kind);
    const reconcileId = randomBytes(4).toString('hex');
    const log = this.#log.child({ key, reconcile: reconcileId });
    const ctl = new AbortController();
    const onAbort = () => ctl.abort(leaderSignal.reason);
    leaderSignal.addEventListener('abort', onAbort, { once: true });
    this.#inflight.add(ctl);
    const ctx: BackendContext = { signal: ctl.signal, log };
    const started = process.hrtime.bigint();
    const labels = { backend: this.#backend.name, kind: ref.kind };
    let result = 'success';
    try {
      const obj = entry?.informer.get(`${ref.namespace}/${ref.name}`);
      if (!entry || !obj) {
        await this.#removeGone(key, ref, ctx);
      } else if (obj.metadata?.deletionTimestamp || !entry.source.wants(obj, this.#worldView)) {
        await this.#finalize(key, entry.source, obj, ctx);
      } else {
        await this.#ensure(key, entry.source, obj, ctx);
      }
      this.#queue.forget(key);
    } catch (err) {
      const obj = entry?.informer.get(`${ref.namespace}/${ref.name}`);
      if (isTerminalError(err)) {
        result = 'terminal';
        this.#queue.forget(key);
        log.warn({ reason: err.reason, err: err.message }, 'load balancer cannot be realised as declared');
        this.metrics.reconcileErrors.inc({ ...labels, reason: err.reason });
        if (obj && entry) {
          this.#events.record(obj, 'Warning', err.reason, err.message);
          await entry.source
            .writeOutcome(this.#client, obj, { ok: false, reason: err.reason, message: err.message })
            .catch((e: unknown) => {
              log.warn({ err: String(e) }, 'could not write the error to the object');
            });
        }
      } else if (isRetryAfterError(err)) {
        result = 'requeue';
        this.#queue.forget(key);
        this.#queue.addAfter(key, err.retryAfterMs);
        log.debug({ retryAfterMs: err.retryAfterMs, reason: err.message }, 'backend busy; requeued');
      } else if (ctl.signal.aborted) {
        result = 'aborted';
        this.#queue.add(key);
      } else if (isConflict(err)) {
        result = 'conflict';
        this.#queue.addRateLimited(key);
        log.debug({ err: String(err) }, 'conflict; will retry with fresh state');
      } else {
        result = 'error';
        const delay = this.#queue.addRateLimited(key);
        const message = err instanceof Error ? err.message : String(err);
        log.warn({ err: message, retryInMs: delay, failures: this.#queue.failures(key) }, 'reconcile failed; retrying');
        this.metrics.reconcileErrors.inc({ ...labels, reason: (err as { code?: string }).code ?? 'Error' });
        if (obj)
          this.#events.record(obj, 'Warning', 'SyncLoadBalancerFailed', `Error syncing load balancer: ${message}`);
      }
    } finally {
      leaderSignal.removeEventListener('abort', onAbort);
      this.#inflight.delete(ctl);
      this.metrics.reconciles.inc({ ...labels, result });
      this.metrics.reconcileDuration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  async #ensure(key: string, source: LoadBalancerSource, obj: KubeObject, ctx: BackendContext): Promise<void> {
    // Track what the object refers to before translating it, so that a missing Service or
    // Secret that appears later re-triggers it.
    this.#trackDependencies(key, { endpointsOf: [], nodes: false, ...source.references(obj) });
    const draft = source.build(obj, this.#worldView);
    this.#trackDependencies(key, draft.dependencies);
    // Carrying the finalizer already, the object was realised before (by this process, or by
    // the one before a restart): its first reconcile here announces only what it changes.
    const realisedBefore = (obj.metadata?.finalizers ?? []).includes(FINALIZER);
    const finalized = await this.#addFinalizer(source, obj, ctx.signal);
    const meta = finalized.metadata ?? {};
    const owner: AddressOwner = {
      kind: draft.spec.ref.kind,
      namespace: meta.namespace ?? '',
      name: meta.name ?? '',
      uid: meta.uid ?? '',
    };
    let addresses: readonly string[] = [];
    if (!this.#backend.capabilities.allocatesAddresses && this.#opts.allocator) {
      try {
        addresses = (await this.#opts.allocator.allocate(owner, draft.request)).addresses;
      } catch (err) {
        const e = err as { terminal?: boolean; code?: string; message?: string };
        const message = e.message ?? String(err);
        if (e.terminal) {
          throw new TerminalError(message, {
            reason: reasonOf(e.code),
            code: e.code ?? 'ALLOCATION_FAILED',
            cause: err,
          });
        }
        if (e.code && WAITING_ALLOCATION_CODES.has(e.code)) {
          // Retried with backoff, and said on the object until it resolves.
          await source.writeOutcome(this.#client, finalized, { ok: false, reason: reasonOf(e.code), message });
        }
        throw err;
      }
    }
    const spec: LoadBalancerSpec = { ...draft.spec, addresses };
    const hash = createHash('sha256').update(JSON.stringify(spec)).digest('base64');
    const previous = this.#known.get(key);
    const changed = previous ? previous.specHash !== hash : !realisedBefore;
    if (changed) this.#events.record(finalized, 'Normal', 'EnsuringLoadBalancer', 'Ensuring load balancer');
    const status = await this.#backend.ensure(spec, ctx);
    const problem = status.problem;
    this.#known.set(key, {
      ref: spec.ref,
      owner,
      deps: draft.dependencies,
      specHash: hash,
      problem: problem?.message,
    });
    this.#pendingDeps.delete(key);
    this.#orphans.delete(key);
    this.metrics.managed.set({ backend: this.#backend.name }, this.#known.size);
    const outcome: ReconcileOutcome = problem ? { ok: false, ...problem } : { ok: true, status };
    const wrote = await source.writeOutcome(this.#client, finalized, outcome);
    if (problem) {
      if (previous ? problem.message !== previous.problem : wrote) {
        ctx.log.warn(
          { reason: problem.reason, err: problem.message },
          'the data plane does not serve the load balancer',
        );
        this.metrics.reconcileErrors.inc({ backend: this.#backend.name, kind: spec.ref.kind, reason: problem.reason });
        this.#events.record(finalized, 'Warning', problem.reason, problem.message);
      }
    } else if (changed || previous?.problem !== undefined || (!previous && wrote)) {
      const where = status.ingress.map((i) => i.ip ?? i.hostname).join(', ');
      this.#events.record(
        finalized,
        'Normal',
        'EnsuredLoadBalancer',
        `Ensured load balancer${where ? ` at ${where}` : ''}`,
      );
    }
  }

  /** The object is being deleted or is no longer KLB's: remove, release, clean up, drop the finalizer. */
  async #finalize(key: string, source: LoadBalancerSource, obj: KubeObject, ctx: BackendContext): Promise<void> {
    const meta = obj.metadata ?? {};
    if (!(meta.finalizers ?? []).includes(FINALIZER)) {
      this.#finalized.delete(key);
      return;
    }
    // The cache still holds the copy whose finalizer KLB already dropped: the removal is done.
    if (meta.resourceVersion !== undefined && this.#finalized.get(key) === meta.resourceVersion) return;
    const ref = parseLoadBalancerId(key) as LoadBalancerRef;
    this.#events.record(obj, 'Normal', 'DeletingLoadBalancer', 'Deleting load balancer');
    await this.#backend.remove({ ...ref, ...(meta.uid ? { uid: meta.uid } : {}) }, ctx);
    await this.#opts.allocator?.release({
      kind: ref.kind,
      namespace: ref.namespace,
      name: ref.name,
      uid: meta.uid ?? '',
    });
    this.#forgetKey(key);
    await source.forget?.(this.#client, obj);
    if (!meta.deletionTimestamp) await source.clearOutcome(this.#client, obj);
    await this.#client.patch(source.objectPath(ref.namespace, ref.name), {
      metadata: {
        finalizers: (meta.finalizers ?? []).filter((f) => f !== FINALIZER),
        resourceVersion: meta.resourceVersion,
      },
    });
    if (meta.resourceVersion !== undefined) this.#finalized.set(key, meta.resourceVersion);
    this.#events.record(obj, 'Normal', 'DeletedLoadBalancer', 'Deleted load balancer');
  }

  /** The object is gone from the API (deleted without our finalizer, or an orphan found by list()). */
  async #removeGone(key: string, ref: LoadBalancerRef, ctx: BackendContext): Promise<void> {
    this.#pendingDeps.delete(key);
    this.#finalized.delete(key);
    const known = this.#known.get(key);
    if (!known && !this.#orphans.has(key)) return;
    ctx.log.info({}, 'object is gone; removing its load balancer');
    await this.#backend.remove(known?.ref ?? ref, ctx);
    if (known) await this.#opts.allocator?.release(known.owner);
    await this.#sources
      .get(ref.kind)
      ?.source.forget?.(this.#client, { metadata: { namespace: ref.namespace, name: ref.name } });
    this.#orphans.delete(key);
    this.#forgetKey(key);
  }

  async #addFinalizer(source: LoadBalancerSource, obj: KubeObject, signal: AbortSignal): Promise<KubeObject> {
    const meta = obj.metadata ?? {};
    if ((meta.finalizers ?? []).includes(FINALIZER)) return obj;
    return this.#client.patch(
      source.objectPath(meta.namespace ?? '', meta.name ?? ''),
      { metadata: { finalizers: [...(meta.finalizers ?? []), FINALIZER], resourceVersion: meta.resourceVersion } },
      'merge',
      signal,
    );
  }

  /**
   * While leading: the backend's watch (when it has one), so that what its data plane did (a
   * node applied or refused a config, a VIP moved) reaches the objects at once rather than at
   * the next resync. Exactly the refs it names are reconciled again. A watch that fails to start
   * is started again with backoff; it is stopped when leadership ends.
   */
  async #watchBackend(signal: AbortSignal): Promise<void> {
    const watch = this.#backend.watch?.bind(this.#backend);
    if (!watch) return;
    const notify = (ref: LoadBalancerRef) => {
      if (signal.aborted) return;
      const parsed = parseLoadBalancerId(ref.id);
      if (parsed && this.#sources.has(parsed.kind)) this.#queue.add(ref.id);
    };
    for (let failures = 0; !signal.aborted; failures++) {
      try {
        const stop = await watch(notify, { signal, log: this.#log });
        if (signal.aborted) stop();
        else signal.addEventListener('abort', () => stop(), { once: true });
        this.#log.debug({ backend: this.#backend.name }, 'watching the backend');
        return;
      } catch (err) {
        const delay = backoffDelay(failures + 1, { baseMs: 500, maxMs: 30_000, jitter: 0.2 });
        this.metrics.backendWatchRestarts.inc({ backend: this.#backend.name });
        this.#log.warn({ err: String(err), retryInMs: delay }, 'backend watch failed to start; retrying');
        await sleep(delay, signal).catch(() => undefined);
      }
    }
  }

  /**
   * At start (as leader): removes load balancers the backend has for objects that no longer
   * exist. Only after a complete, successful list — never on a failed read.
   */
  async #cleanupOrphans(signal: AbortSignal): Promise<void> {
    let refs: LoadBalancerRef[];
    try {
      refs = await this.#backend.list({ signal, log: this.#log });
    } catch (err) {
      this.#log.warn({ err: String(err) }, 'backend list failed; skipping orphan clean-up');
      return;
    }
    for (const ref of refs) {
      const entry = this.#sources.get(ref.kind);
      const obj = entry?.informer.get(`${ref.namespace}/${ref.name}`);
      if (obj && entry && this.#relevant(entry.source, obj)) continue;
      if (!entry && !parseLoadBalancerId(ref.id)) continue;
      this.#log.info({ key: ref.id }, 'orphaned load balancer found; removing');
      this.#orphans.add(ref.id);
      this.#queue.add(ref.id);
    }
  }

  #forgetKey(key: string): void {
    this.#known.delete(key);
    this.#pendingDeps.delete(key);
    this.metrics.managed.set({ backend: this.#backend.name }, this.#known.size);
  }

  #trackDependencies(key: string, deps: LoadBalancerDependencies): void {
    const known = this.#known.get(key);
    if (known) known.deps = deps;
    else this.#pendingDeps.set(key, deps);
  }

  #depsOf(key: string): LoadBalancerDependencies | undefined {
    return this.#known.get(key)?.deps ?? this.#pendingDeps.get(key);
  }

  #world(): ClusterState {
    return {
      service: (ns, name) => this.#services.get(`${ns}/${name}`),
      nodes: () => this.#nodes.list(),
      endpoints: (ns, name) => {
        const slices = [...(this.#slicesByService.get(`${ns}/${name}`) ?? [])]
          .map((k) => this.#slices.get(k))
          .filter((s): s is EndpointSliceObject => s !== undefined);
        return serviceEndpoints(slices);
      },
      secret: (ns, name) => this.#secrets?.get(`${ns}/${name}`),
      objects: (resource) => this.#watched.get(resource)?.list() ?? [],
      object: (resource, ns, name) => this.#watched.get(resource)?.get(ns ? `${ns}/${name}` : name),
      capabilities: this.#backend.capabilities,
      nodeAddressPreference: this.#opts.nodeAddressPreference ?? ['InternalIP', 'ExternalIP'],
    };
  }

  /** Keys whose load balancers depend on `predicate`. */
  #enqueueDependents(predicate: (deps: LoadBalancerDependencies) => boolean): void {
    const keys = new Set([...this.#known.keys(), ...this.#pendingDeps.keys()]);
    for (const key of keys) {
      const deps = this.#depsOf(key);
      if (deps && predicate(deps)) this.#queue.add(key);
    }
  }

  #wireHandlers(): void {
    for (const [kind, { informer, source }] of this.#sources) {
      const enqueue = (obj: KubeObject) => {
        if (this.#relevant(source, obj) || this.#known.has(keyOf(kind, obj))) this.#queue.add(keyOf(kind, obj));
      };
      informer.on({
        add: enqueue,
        update: (oldObj, newObj) => {
          if (inputOf(oldObj) !== inputOf(newObj)) enqueue(newObj);
        },
        delete: (obj) => {
          this.#queue.add(keyOf(kind, obj));
        },
      });
    }
    this.#services.on({
      add: (svc) => this.#serviceChanged(svc),
      update: (oldSvc, svc) => {
        if (inputOf(oldSvc) !== inputOf(svc)) this.#serviceChanged(svc);
      },
      delete: (svc) => this.#serviceChanged(svc),
    });
    this.#nodes.on({
      add: (node) => this.#nodeChanged(node),
      update: (oldNode, node) => {
        if (nodeTargetFingerprint(oldNode) !== nodeTargetFingerprint(node)) this.#nodeChanged(node);
      },
      delete: (node) => this.#nodeChanged(node),
    });
    const sliceService = (slice: EndpointSliceObject) =>
      `${slice.metadata?.namespace}/${slice.metadata?.labels?.['kubernetes.io/service-name'] ?? ''}`;
    this.#slices.on({
      add: (slice) => {
        const svc = sliceService(slice);
        const set = this.#slicesByService.get(svc) ?? new Set<string>();
        set.add(objectKey(slice));
        this.#slicesByService.set(svc, set);
        this.#enqueueDependents((d) => d.endpointsOf.includes(svc));
      },
      update: (oldSlice, slice) => {
        if (JSON.stringify([oldSlice.endpoints, oldSlice.ports]) === JSON.stringify([slice.endpoints, slice.ports]))
          return;
        const svc = sliceService(slice);
        this.#enqueueDependents((d) => d.endpointsOf.includes(svc));
      },
      delete: (slice) => {
        const svc = sliceService(slice);
        this.#slicesByService.get(svc)?.delete(objectKey(slice));
        this.#enqueueDependents((d) => d.endpointsOf.includes(svc));
      },
    });
    for (const [kind, { source }] of this.#sources) {
      for (const w of source.watches ?? []) this.#wireWatched(kind, w);
    }
    this.#secrets?.on({
      add: (s) => this.#enqueueDependents((d) => d.secrets.includes(objectKey(s))),
      update: (_o, s) => this.#enqueueDependents((d) => d.secrets.includes(objectKey(s))),
      delete: (s) => this.#enqueueDependents((d) => d.secrets.includes(objectKey(s))),
    });
  }

  /** A watched object changed: re-reconcile what depends on it and what it names, and settle it. */
  #wireWatched(kind: SourceKind, w: WatchedResource): void {
    const changed = (objs: readonly KubeObject[]) => {
      const keys = new Set<string>();
      for (const obj of objs) {
        const ns = obj.metadata?.namespace ?? '';
        for (const k of [`${w.resource}/${ns}/${obj.metadata?.name}`, `${w.resource}/${ns}/*`, `${w.resource}/*`]) {
          keys.add(k);
        }
        const owners = w.owners?.(obj) ?? [];
        if (owners === 'all') {
          const entry = this.#sources.get(kind);
          for (const o of entry?.informer.list() ?? []) this.#queue.add(keyOf(kind, o));
        } else {
          for (const o of owners) this.#queue.add(`${kind.toLowerCase()}/${o.namespace}/${o.name}`);
        }
      }
      this.#enqueueDependents((d) => (d.objects ?? []).some((o) => keys.has(o)));
    };
    this.#watched.get(w.resource)?.on({
      add: (obj) => {
        changed([obj]);
        this.#settle(w, obj);
      },
      update: (oldObj, obj) => {
        if (inputOf(oldObj) === inputOf(obj)) return;
        changed([oldObj, obj]);
        this.#settle(w, obj);
      },
      delete: (obj) => changed([obj]),
    });
  }

  #serviceChanged(svc: ServiceObject): void {
    const key = objectKey(svc);
    this.#enqueueDependents((d) => d.services.includes(key));
  }

  #nodeChanged(_node: NodeObject): void {
    this.#enqueueDependents((d) => d.nodes);
  }
}

function keyOf(kind: SourceKind, obj: KubeObject): string {
  return `${kind.toLowerCase()}/${obj.metadata?.namespace}/${obj.metadata?.name}`;
}

/** The metadata KLB reacts to; its own finalizer is left out, so adding it triggers nothing. */
function metaInput(o: KubeObject): unknown[] {
  const m = o.metadata ?? {};
  return [m.annotations, m.labels, (m.finalizers ?? []).filter((f) => f !== FINALIZER), m.deletionTimestamp];
}

/**
 * What KLB reads of an object, to tell its own writes (status, `bind-ip`, its finalizer) from
 * changes that need a reconcile. Services carry no `metadata.generation`, so specs are compared.
 * A changed ConfigMap `bind-ip` request takes effect on the next resync or change.
 */
function inputOf(o: KubeObject): string {
  const { status: _s, 'bind-ip': _b, ...data } = (o as { data?: Record<string, string> }).data ?? {};
  return JSON.stringify([(o as { spec?: unknown }).spec, data, ...metaInput(o)]);
}

function reasonOf(code: string | undefined): string {
  if (!code) return 'AllocationFailed';
  return code
    .toLowerCase()
    .split('_')
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join('');
}
