import {
  addressIngress,
  type BackendCapabilities,
  type BackendContext,
  type LoadBalancerBackend,
  type LoadBalancerProblem,
  type LoadBalancerRef,
  type LoadBalancerSpec,
  type LoadBalancerStatus,
  TerminalError,
} from '@klb/core';
import type { ConformanceFaults, ObservedLoadBalancer } from './conformance.js';

/** One call a {@link RecordingBackend} received. */
export interface RecordedCall {
  /** Which method was called. */
  readonly method: 'ensure' | 'remove' | 'list' | 'watch';
  /** The load balancer id (absent for `list`). */
  readonly id?: string;
  /** The spec passed to `ensure`. */
  readonly spec?: LoadBalancerSpec;
  /** `Date.now()` at the call. */
  readonly at: number;
}

/** Options of {@link RecordingBackend}. */
export interface RecordingBackendOptions {
  /** Capabilities to declare; default: L4 and L7, TCP/UDP/HTTP/HTTPS, node targets, IPAM addresses. */
  readonly capabilities?: Partial<BackendCapabilities>;
  /** With `allocatesAddresses`, the address handed to the n-th load balancer (default `198.51.100.<n>`). */
  readonly allocateAddress?: (n: number) => string;
  /** Milliseconds each call takes (simulated I/O, honouring the abort signal); default 0. */
  readonly latencyMs?: number;
  /** Keep every call in {@link RecordingBackend.calls}; default true (false for long benchmarks). */
  readonly recordCalls?: boolean;
}

const DEFAULT_CAPABILITIES: BackendCapabilities = {
  protocols: ['TCP', 'UDP', 'HTTP', 'HTTPS'],
  l7: true,
  tls: true,
  allocatesAddresses: false,
  targetKinds: ['node', 'pod', 'clusterIP'],
  ipFamilies: ['IPv4', 'IPv6'],
  sourceRanges: true,
  proxyProtocol: true,
};

/**
 * An in-memory backend that records every call and holds the realised load balancers, for
 * testing engines and sources without external systems. Failures can be scripted per call.
 * It honours the backend contract (and passes the conformance suite).
 */
export class RecordingBackend implements LoadBalancerBackend {
  /** Always `recording`. */
  readonly name = 'recording';
  /** The declared capabilities. */
  readonly capabilities: BackendCapabilities;
  /** Every call, in order. */
  readonly calls: RecordedCall[] = [];
  readonly #state = new Map<string, { ref: LoadBalancerRef; spec: LoadBalancerSpec; status: LoadBalancerStatus }>();
  readonly #failures: Array<{ method: RecordedCall['method']; id: string | undefined; error: Error }> = [];
  readonly #options: RecordingBackendOptions;
  readonly #problems = new Map<string, LoadBalancerProblem>();
  readonly #watchers = new Set<(ref: LoadBalancerRef) => void>();
  #allocated = 0;
  #failReads = false;
  #failWrites = false;

  constructor(options: RecordingBackendOptions = {}) {
    this.#options = options;
    this.capabilities = { ...DEFAULT_CAPABILITIES, ...options.capabilities };
  }

  /** Makes the next call of `method` (for load balancer `id`, or any) throw `error`. Queue several for several calls. */
  failNext(method: RecordedCall['method'], error: Error, id?: string): void {
    this.#failures.push({ method, id, error });
  }

  /**
   * Plays the data plane: from now on `ensure` of `id` reports `problem` in its status (or no
   * problem, with `undefined`), and watchers are told, as a node that refused or applied a
   * config would make a real backend tell them.
   */
  setProblem(id: string, problem: LoadBalancerProblem | undefined): void {
    if (problem) this.#problems.set(id, problem);
    else this.#problems.delete(id);
    const ref = this.#state.get(id)?.ref;
    if (ref) for (const notify of this.#watchers) notify(ref);
  }

  /** How many watchers are registered (the engine watches only while it leads). */
  get watchers(): number {
    return this.#watchers.size;
  }

  /**
   * Faults for the conformance suite: while `failReads` holds, `list` throws; while `failWrites`
   * holds, `ensure` and `remove` throw (before changing anything), as a backend's system would.
   */
  readonly faults: ConformanceFaults = {
    failReads: () => {
      this.#failReads = true;
    },
    failWrites: () => {
      this.#failWrites = true;
    },
    clear: () => {
      this.#failReads = false;
      this.#failWrites = false;
    },
  };

  /**
   * The realised load balancers in the conformance suite's terms: each listener on each address,
   * sending to the ready targets of its upstream and routes.
   */
  async observe(): Promise<ObservedLoadBalancer[]> {
    return [...this.#state.values()].map(({ ref, spec, status }) => ({
      id: ref.id,
      listeners: status.ingress.flatMap((ingress) =>
        spec.listeners.map((l) => {
          const names = [l.upstream, ...(l.routes ?? []).map((r) => r.upstream)];
          const targets = spec.upstreams
            .filter((u) => names.includes(u.name))
            .flatMap((u) => u.targets.filter((t) => t.ready))
            .map((t) => (t.address.includes(':') ? `[${t.address}]:${t.port}` : `${t.address}:${t.port}`));
          return { address: ingress.ip ?? '', port: l.port, protocol: l.protocol, targets: [...new Set(targets)] };
        }),
      ),
    }));
  }

  /** The spec last ensured for `id`, if it exists. */
  specOf(id: string): LoadBalancerSpec | undefined {
    return this.#state.get(id)?.spec;
  }

  /** Ids of the load balancers that exist, sorted. */
  ids(): string[] {
    return [...this.#state.keys()].sort();
  }

  /** Calls of `method` (for `id`, if given). */
  callsOf(method: RecordedCall['method'], id?: string): RecordedCall[] {
    return this.calls.filter((c) => c.method === method && (id === undefined || c.id === id));
  }

  async ensure(spec: LoadBalancerSpec, ctx: BackendContext): Promise<LoadBalancerStatus> {
    await this.#enter('ensure', spec.ref.id, ctx, spec);
    for (const listener of spec.listeners) {
      if (!this.capabilities.protocols.includes(listener.protocol)) {
        throw new TerminalError(`protocol ${listener.protocol} is not supported by the ${this.name} backend`, {
          reason: 'UnsupportedProtocol',
        });
      }
      if (listener.routes?.length && !this.capabilities.l7) {
        throw new TerminalError(`the ${this.name} backend does not route L7 traffic`, { reason: 'UnsupportedL7' });
      }
    }
    if (spec.options.proxyProtocol && !this.capabilities.proxyProtocol) {
      throw new TerminalError(`the ${this.name} backend does not send the PROXY protocol`, { reason: 'Unsupported' });
    }
    if (spec.options.sourceRanges.length > 0 && !this.capabilities.sourceRanges) {
      throw new TerminalError(`the ${this.name} backend does not restrict source ranges`, { reason: 'Unsupported' });
    }
    const seen = new Set<string>();
    for (const listener of spec.listeners) {
      const key = `${listener.protocol === 'UDP' ? 'UDP' : 'TCP'}/${listener.port}`;
      if (seen.has(key)) throw new TerminalError(`two listeners on ${key}`, { reason: 'PortConflict' });
      seen.add(key);
    }
    const previous = this.#state.get(spec.ref.id);
    let addresses = spec.addresses;
    if (this.capabilities.allocatesAddresses) {
      const prior = previous?.status.ingress.map((i) => i.ip).filter((ip): ip is string => ip !== undefined);
      addresses = prior?.length
        ? prior
        : [(this.#options.allocateAddress ?? ((n: number) => `198.51.100.${n}`))(++this.#allocated)];
    }
    const problem = this.#problems.get(spec.ref.id);
    const status: LoadBalancerStatus = {
      ingress: addressIngress(addresses, spec.listeners),
      ...(problem ? { problem } : {}),
    };
    this.#state.set(spec.ref.id, { ref: spec.ref, spec, status });
    return status;
  }

  async remove(ref: LoadBalancerRef, ctx: BackendContext): Promise<void> {
    await this.#enter('remove', ref.id, ctx);
    this.#state.delete(ref.id);
  }

  async list(ctx: BackendContext): Promise<LoadBalancerRef[]> {
    await this.#enter('list', undefined, ctx);
    return [...this.#state.values()].map((s) => s.ref);
  }

  /** Registers `notify` for {@link RecordingBackend.setProblem}; a queued `failNext('watch', …)` fails the start. */
  async watch(notify: (ref: LoadBalancerRef) => void, ctx: BackendContext): Promise<() => void> {
    await this.#enter('watch', undefined, ctx);
    this.#watchers.add(notify);
    return () => {
      this.#watchers.delete(notify);
    };
  }

  async #enter(method: RecordedCall['method'], id: string | undefined, ctx: BackendContext, spec?: LoadBalancerSpec) {
    if (this.#options.recordCalls !== false) {
      this.calls.push({ method, ...(id === undefined ? {} : { id }), ...(spec ? { spec } : {}), at: Date.now() });
    }
    const latency = this.#options.latencyMs ?? 0;
    if (latency > 0) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, latency);
        ctx.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(ctx.signal.reason);
        });
      });
    }
    ctx.signal.throwIfAborted();
    if (method === 'list' ? this.#failReads : this.#failWrites) {
      throw new Error(`${method}: the ${this.name} backend's system is failing (injected fault)`);
    }
    const index = this.#failures.findIndex((f) => f.method === method && (f.id === undefined || f.id === id));
    if (index >= 0) {
      const [failure] = this.#failures.splice(index, 1);
      throw failure?.error;
    }
  }
}
