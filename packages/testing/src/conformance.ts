import {
  isRetryAfterError,
  isTerminalError,
  type LoadBalancerBackend,
  type LoadBalancerRef,
  type LoadBalancerSpec,
  type LoadBalancerStatus,
  type Protocol,
  parseLoadBalancerId,
  silentLogger,
  type Target,
} from '@klb/core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

/** One listener as it exists on the backend's system, in backend-neutral terms. */
export interface ObservedListener {
  /** The address it listens on. */
  readonly address: string;
  /** The port it listens on. */
  readonly port: number;
  /** Its protocol, in the spec's terms. */
  readonly protocol: Protocol;
  /** Every target that receives its traffic, as `address:port` (any order). */
  readonly targets: readonly string[];
}

/** One load balancer as it exists on the backend's system, in backend-neutral terms. */
export interface ObservedLoadBalancer {
  /** The `spec.ref.id` it was made for, read from the marker the backend left on the system. */
  readonly id: string;
  /** Its listeners. */
  readonly listeners: readonly ObservedListener[];
  /**
   * Objects the backend made for this load balancer that no listener uses any more (a pool or
   * monitor left behind, a config entry without a listener), by name. Default none.
   */
  readonly strays?: readonly string[];
}

/**
 * Faults the suite injects into the backend's system (not into the backend). Each lasts until
 * {@link ConformanceFaults.clear}, so a client that retries still meets it. Give what your system
 * can do; the suite runs the cases of the faults you give.
 */
export interface ConformanceFaults {
  /** From now on every read (list, get) of the system fails with an error answer (a 503, a refused call). */
  readonly failReads?: () => void | Promise<void>;
  /** From now on every read answers success with a body of the wrong shape (an HTML page, `{}`). */
  readonly malformReads?: () => void | Promise<void>;
  /** From now on every write (create, update, delete) of the system fails with an error answer. */
  readonly failWrites?: () => void | Promise<void>;
  /** Ends every fault. */
  readonly clear: () => void | Promise<void>;
}

/** What a conformance factory returns: a backend ready to use, and how to clean up after it. */
export interface ConformanceSubject {
  /** The backend under test, connected to its (real or emulated) system. */
  readonly backend: LoadBalancerBackend;
  /**
   * Number of writes the backend has made to its external system so far, if it can be observed
   * (an emulator's call log, a server's audit). When given, a repeated `ensure` must add none.
   */
  readonly writes?: () => number | Promise<number>;
  /**
   * What exists on the backend's system now, read from the system itself (an emulator's state,
   * the appliance's API), not from the backend's memory: every load balancer that carries a
   * backend's marker. When given, the suite checks that `ensure` realises every listener with
   * its ready targets, leaves nothing behind when a listener or a target goes, and that
   * `remove` leaves nothing.
   */
  readonly observe?: () => Promise<readonly ObservedLoadBalancer[]>;
  /** Fault injection into the system; when given, the suite checks how the backend meets failures. */
  readonly faults?: ConformanceFaults;
  /**
   * For a backend with `watch`: makes the realised state of load balancer `ref` change on its own,
   * as its system would (a node applies or refuses its config, an appliance marks it down). When
   * given, the suite checks that `watch` then names `ref` (so the engine reconciles it again), and
   * that it names nothing once stopped.
   */
  readonly changeDataPlane?: (ref: LoadBalancerRef, status: LoadBalancerStatus) => Promise<void>;
  /** Called after every conformance test (stop servers, delete namespaces). */
  readonly cleanup?: () => Promise<void>;
}

/** Options of {@link runBackendConformance}. */
export interface ConformanceOptions {
  /** Suite name; default `backend conformance`. */
  readonly name?: string;
  /** The VIP given to the n-th load balancer when the backend does not allocate its own; default `192.0.2.<n % 100>`. */
  readonly address?: (n: number) => string;
  /** Node target addresses; default `192.0.2.101`–`103`. */
  readonly targetAddresses?: readonly string[];
  /** Namespace written into the specs' refs; default `conformance`. */
  readonly namespace?: string;
  /**
   * How long one `ensure`/`remove` may keep answering `RetryAfterError` (the backend is
   * provisioning) before the test fails; the suite waits and calls again as the engine would.
   * Default 300000 ms.
   */
  readonly settleTimeoutMs?: number;
}

/**
 * The backend as the engine drives it: an `ensure` or `remove` that throws `RetryAfterError` is
 * called again after the requested delay (at most 2 s at a time), until it settles. Every spec
 * passed to `ensure` is kept in `sent`, for failure messages.
 */
function settling(backend: LoadBalancerBackend, timeoutMs: number, sent: LoadBalancerSpec[]): LoadBalancerBackend {
  const settle = async <T>(call: () => Promise<T>): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await call();
      } catch (err) {
        if (!isRetryAfterError(err) || Date.now() > deadline) throw err;
        await new Promise((resolve) => setTimeout(resolve, Math.min(err.retryAfterMs, 2000)));
      }
    }
  };
  return {
    name: backend.name,
    capabilities: backend.capabilities,
    ensure: (spec, ctx) => {
      sent.push(spec);
      return settle(() => backend.ensure(spec, ctx));
    },
    remove: (ref, ctx) => settle(() => backend.remove(ref, ctx)),
    list: (ctx) => backend.list(ctx),
    ...(backend.watch ? { watch: backend.watch.bind(backend) } : {}),
  };
}

/** Resolves to the error `promise` rejects with, or undefined when it resolves. */
function failureOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (err: unknown) => err ?? new Error('rejected without a reason'),
  );
}

const targetKey = (t: Target) => (t.address.includes(':') ? `[${t.address}]:${t.port}` : `${t.address}:${t.port}`);

/** The listeners `spec` asks for, as they should be observed once `status` is returned. */
function expectedListeners(spec: LoadBalancerSpec, status: LoadBalancerStatus): ObservedListener[] {
  const addresses = spec.addresses.length
    ? spec.addresses
    : status.ingress.map((i) => i.ip).filter((ip): ip is string => ip !== undefined);
  return addresses.flatMap((address) =>
    spec.listeners.map((l) => {
      const names = [l.upstream, ...(l.routes ?? []).map((r) => r.upstream)];
      const targets = spec.upstreams
        .filter((u) => names.includes(u.name))
        .flatMap((u) => u.targets.filter((t) => t.ready).map(targetKey));
      return { address, port: l.port, protocol: l.protocol, targets: [...new Set(targets)].sort() };
    }),
  );
}

function normalise(listeners: readonly ObservedListener[]): ObservedListener[] {
  return listeners
    .map((l) => ({ address: l.address, port: l.port, protocol: l.protocol, targets: [...l.targets].sort() }))
    .sort((a, b) => `${a.address}/${a.port}/${a.protocol}`.localeCompare(`${b.address}/${b.port}/${b.protocol}`));
}

let specCounter = 0;

/**
 * Registers and runs the backend conformance suite (uvu) against backends made by `factory`
 * (called once per test): ensure is idempotent, remove of something absent succeeds, list
 * reflects ensure/remove, declared capabilities are honoured, and errors are typed. With
 * {@link ConformanceSubject.observe} it also checks the realised state (listeners, targets,
 * nothing stale); with {@link ConformanceSubject.faults}, that failures of the system are
 * errors and never an empty list or a false success. A failure message ends with the last spec the
 * test sent to `ensure`.
 *
 * @example
 * ```ts
 * runBackendConformance(async () => ({ backend: new MyBackend(await connect()) }));
 * ```
 */
export function runBackendConformance(
  factory: () => Promise<ConformanceSubject>,
  options: ConformanceOptions = {},
): void {
  const test = suite(options.name ?? 'backend conformance');
  const ctx = () => ({ signal: new AbortController().signal, log: silentLogger });
  const namespace = options.namespace ?? 'conformance';
  const targets = options.targetAddresses ?? ['192.0.2.101', '192.0.2.102', '192.0.2.103'];

  interface SpecShape {
    ports?: number[];
    protocol?: Protocol;
    /** Readiness of each target; default all ready. */
    ready?: boolean[];
  }
  const specFor = (backend: LoadBalancerBackend, overrides: SpecShape = {}) => {
    const n = ++specCounter;
    const caps = backend.capabilities;
    const protocol = overrides.protocol ?? (caps.protocols.includes('TCP') ? 'TCP' : (caps.protocols[0] as Protocol));
    const ports = overrides.ports ?? [80];
    const name = `lb-${process.pid}-${n}`;
    const targetKind = caps.targetKinds[0] ?? 'node';
    const spec: LoadBalancerSpec = {
      ref: { id: `service/${namespace}/${name}`, kind: 'Service', namespace, name, uid: `uid-${process.pid}-${n}` },
      addresses: caps.allocatesAddresses ? [] : [(options.address ?? ((i: number) => `192.0.2.${i % 100}`))(n)],
      requestedAddresses: [],
      ipFamilies: ['IPv4'],
      listeners: ports.map((port) => ({
        name: `${protocol.toLowerCase()}-${port}`,
        port,
        protocol,
        upstream: `up-${port}`,
      })),
      upstreams: ports.map((port) => ({
        name: `up-${port}`,
        targets: targets.map((address, i) => ({
          kind: targetKind,
          address,
          port: 30000 + (port % 1000),
          ready: overrides.ready?.[i] ?? true,
          nodeName: `node-${i}`,
        })),
        healthCheck: { type: 'tcp', intervalSeconds: 5, timeoutSeconds: 3, unhealthyThreshold: 3, healthyThreshold: 2 },
      })),
      options: { algorithm: 'round-robin', proxyProtocol: false, sourceRanges: [], timeouts: {} },
      annotations: {},
    };
    return spec;
  };

  type Body = (subject: ConformanceSubject) => Promise<void>;
  const withSubject =
    (fn: Body, needs: { observe?: boolean; fault?: keyof ConformanceFaults; dataPlane?: boolean } = {}) =>
    async () => {
      const subject = await factory();
      const sent: LoadBalancerSpec[] = [];
      try {
        const missing =
          needs.observe && !subject.observe
            ? 'observe'
            : needs.fault && !subject.faults?.[needs.fault]
              ? `faults.${needs.fault}`
              : needs.dataPlane && !(subject.backend.watch && subject.changeDataPlane)
                ? 'watch with changeDataPlane'
                : undefined;
        if (missing) {
          process.stdout.write(`conformance: not checked, the subject gives no ${missing}\n`);
          return;
        }
        await fn({ ...subject, backend: settling(subject.backend, options.settleTimeoutMs ?? 300_000, sent) });
      } catch (err) {
        if (err instanceof Error && sent.length > 0) {
          // One line: uvu prints the stack after the message's first line, which would repeat more.
          err.message += ` — last spec sent to ensure() (call ${sent.length}): ${JSON.stringify(sent.at(-1))}`;
        }
        throw err;
      } finally {
        await subject.faults?.clear();
        await subject.cleanup?.();
      }
    };

  /** The observed load balancer `id`, or undefined. */
  const observed = async (subject: ConformanceSubject, id: string) =>
    (await (subject.observe as NonNullable<ConformanceSubject['observe']>)()).find((lb) => lb.id === id);

  /** Asserts that the system holds exactly what `spec` asks for. */
  const assertRealised = async (
    subject: ConformanceSubject,
    spec: LoadBalancerSpec,
    status: LoadBalancerStatus,
    what: string,
  ) => {
    const lb = await observed(subject, spec.ref.id);
    assert.ok(lb, `${what}: the load balancer exists on the system`);
    assert.equal(
      normalise(lb?.listeners ?? []),
      normalise(expectedListeners(spec, status)),
      `${what}: the system has exactly the spec's listeners, each sending to the spec's ready targets`,
    );
    assert.equal(lb?.strays ?? [], [], `${what}: nothing left over on the system`);
  };

  test(
    'declares well-formed capabilities',
    withSubject(async ({ backend }) => {
      const caps = backend.capabilities;
      assert.ok(backend.name.length > 0, 'a name');
      assert.ok(caps.protocols.length > 0, 'at least one protocol');
      assert.ok(caps.targetKinds.length > 0, 'at least one target kind');
      assert.ok(caps.ipFamilies.length > 0, 'at least one IP family');
      if (caps.l7) assert.ok(caps.protocols.includes('HTTP') || caps.protocols.includes('HTTPS'), 'L7 needs HTTP(S)');
      if (caps.tls) assert.ok(caps.protocols.includes('HTTPS'), 'TLS needs HTTPS');
    }),
  );

  test(
    'ensure creates a load balancer that list() reports, with its addresses in the status',
    withSubject(async ({ backend }) => {
      const spec = specFor(backend);
      const status = await backend.ensure(spec, ctx());
      assert.ok(status.ingress.length > 0, 'status has an ingress');
      const ips = status.ingress.map((i) => i.ip);
      if (backend.capabilities.allocatesAddresses) assert.ok(ips[0], 'the backend allocated an address');
      else assert.equal(ips, spec.addresses, 'status reports the spec addresses');
      const listed = await backend.list(ctx());
      assert.ok(
        listed.some((r) => r.id === spec.ref.id),
        'list() contains the ensured load balancer',
      );
      await backend.remove(spec.ref, ctx());
    }),
  );

  test(
    'ensure is idempotent: same status, no extra load balancer, no writes',
    withSubject(async ({ backend, writes }) => {
      const spec = specFor(backend, { ports: [80, 443] });
      const first = await backend.ensure(spec, ctx());
      const before = await writes?.();
      const second = await backend.ensure(spec, ctx());
      const after = await writes?.();
      assert.equal(second.ingress, first.ingress);
      if (before !== undefined) assert.is(after, before, 'a repeated ensure makes no writes');
      const listed = (await backend.list(ctx())).filter((r) => r.id === spec.ref.id);
      assert.is(listed.length, 1, 'exactly one load balancer for the ref');
      await backend.remove(spec.ref, ctx());
    }),
  );

  test(
    'ensure with a changed spec updates in place and keeps the address',
    withSubject(async ({ backend }) => {
      const spec = specFor(backend, { ports: [80] });
      const first = await backend.ensure(spec, ctx());
      const changed = specFor(backend, { ports: [80, 8080] });
      const updated = { ...changed, ref: spec.ref, addresses: spec.addresses };
      const second = await backend.ensure(updated, ctx());
      assert.equal(
        second.ingress.map((i) => i.ip),
        first.ingress.map((i) => i.ip),
      );
      const listed = (await backend.list(ctx())).filter((r) => r.id === spec.ref.id);
      assert.is(listed.length, 1);
      await backend.remove(spec.ref, ctx());
    }),
  );

  test(
    'remove deletes it; removing again, or something never created, succeeds',
    withSubject(async ({ backend }) => {
      const spec = specFor(backend);
      const other = specFor(backend);
      await backend.ensure(spec, ctx());
      await backend.ensure(other, ctx());
      await backend.remove(spec.ref, ctx());
      const listed = await backend.list(ctx());
      assert.not.ok(
        listed.some((r) => r.id === spec.ref.id),
        'removed load balancer is gone',
      );
      assert.ok(
        listed.some((r) => r.id === other.ref.id),
        'the other load balancer is untouched',
      );
      await backend.remove(spec.ref, ctx());
      const never = specFor(backend);
      await backend.remove(never.ref, ctx());
      await backend.remove(other.ref, ctx());
    }),
  );

  test(
    'honours declared capabilities: an unsupported protocol or L7 route is a TerminalError',
    withSubject(async ({ backend }) => {
      const caps = backend.capabilities;
      const unsupported = (['TCP', 'UDP', 'HTTP', 'HTTPS'] as const).find((p) => !caps.protocols.includes(p));
      if (unsupported) {
        const spec = specFor(backend, { protocol: unsupported });
        const err = await failureOf(backend.ensure(spec, ctx()));
        assert.ok(isTerminalError(err), `${unsupported} must be rejected with a TerminalError`);
        assert.not.ok(
          (await backend.list(ctx())).some((r) => r.id === spec.ref.id),
          'nothing was created',
        );
      }
      if (!caps.l7 && caps.protocols.includes('TCP')) {
        const base = specFor(backend);
        const [listener] = base.listeners;
        const spec = {
          ...base,
          listeners: [
            {
              ...(listener as NonNullable<typeof listener>),
              routes: [{ pathType: 'Prefix' as const, path: '/', upstream: 'up-80' }],
            },
          ],
        };
        const err = await failureOf(backend.ensure(spec, ctx()));
        assert.ok(isTerminalError(err), 'L7 routes on a backend without L7 must be rejected with a TerminalError');
      }
    }),
  );

  test(
    'honours declared capabilities: PROXY protocol and source ranges beyond them are TerminalErrors',
    withSubject(async ({ backend }) => {
      const caps = backend.capabilities;
      const beyond: Array<[string, LoadBalancerSpec['options']]> = [];
      const base = specFor(backend).options;
      if (!caps.proxyProtocol) beyond.push(['PROXY protocol', { ...base, proxyProtocol: true }]);
      if (!caps.sourceRanges) beyond.push(['source ranges', { ...base, sourceRanges: ['203.0.113.0/24'] }]);
      for (const [what, options] of beyond) {
        const spec = { ...specFor(backend), options };
        const err = await failureOf(backend.ensure(spec, ctx()));
        assert.ok(isTerminalError(err), `${what} on a backend without it must be rejected with a TerminalError`);
        assert.not.ok(
          (await backend.list(ctx())).some((r) => r.id === spec.ref.id),
          'nothing was created',
        );
      }
    }),
  );

  test(
    'a spec with two listeners on one port is a TerminalError and creates nothing',
    withSubject(async ({ backend }) => {
      const base = specFor(backend, { ports: [80] });
      const [listener] = base.listeners;
      const spec = {
        ...base,
        listeners: [listener, { ...(listener as NonNullable<typeof listener>), name: 'dup-80' }].filter(
          (l): l is NonNullable<typeof l> => l !== undefined,
        ),
      };
      const err = await failureOf(backend.ensure(spec, ctx()));
      assert.ok(isTerminalError(err), 'a TerminalError');
      assert.not.ok(
        (await backend.list(ctx())).some((r) => r.id === spec.ref.id),
        'nothing was created',
      );
    }),
  );

  test(
    'observed: ensure realises every listener, sending to the ready targets only',
    withSubject(
      async (subject) => {
        const { backend } = subject;
        const spec = specFor(backend, { ports: [80, 443], ready: [true, true, false] });
        const status = await backend.ensure(spec, ctx());
        await assertRealised(subject, spec, status, 'after ensure');
        await backend.remove(spec.ref, ctx());
      },
      { observe: true },
    ),
  );

  test(
    'observed: a removed listener leaves nothing behind',
    withSubject(
      async (subject) => {
        const { backend } = subject;
        const spec = specFor(backend, { ports: [80, 8080] });
        const status = await backend.ensure(spec, ctx());
        await assertRealised(subject, spec, status, 'with two listeners');
        const fewer = { ...specFor(backend, { ports: [80] }), ref: spec.ref, addresses: spec.addresses };
        const after = await backend.ensure(fewer, ctx());
        await assertRealised(subject, fewer, after, 'after the listener on 8080 was removed');
        await backend.remove(spec.ref, ctx());
      },
      { observe: true },
    ),
  );

  test(
    'observed: target changes are realised (one no longer ready, one gone, one back)',
    withSubject(
      async (subject) => {
        const { backend } = subject;
        const spec = specFor(backend, { ports: [80] });
        const status = await backend.ensure(spec, ctx());
        await assertRealised(subject, spec, status, 'with three ready targets');
        const base = specFor(backend, { ports: [80], ready: [true, false, true] });
        const [upstream] = base.upstreams;
        const changed: LoadBalancerSpec = {
          ...base,
          ref: spec.ref,
          addresses: spec.addresses,
          upstreams: [{ ...(upstream as NonNullable<typeof upstream>), targets: upstream?.targets.slice(0, 2) ?? [] }],
        };
        await assertRealised(subject, changed, await backend.ensure(changed, ctx()), 'after the target change');
        await assertRealised(subject, spec, await backend.ensure(spec, ctx()), 'after the targets came back');
        await backend.remove(spec.ref, ctx());
      },
      { observe: true },
    ),
  );

  test(
    'observed: remove leaves nothing on the system',
    withSubject(
      async (subject) => {
        const { backend } = subject;
        const spec = specFor(backend, { ports: [80, 443] });
        await backend.ensure(spec, ctx());
        await backend.remove(spec.ref, ctx());
        assert.is(await observed(subject, spec.ref.id), undefined, 'nothing of the load balancer is left');
      },
      { observe: true },
    ),
  );

  test(
    'faults: list() fails, never answers [], when the system fails to answer',
    withSubject(
      async ({ backend, faults }) => {
        const spec = specFor(backend);
        await backend.ensure(spec, ctx());
        await faults?.failReads?.();
        const err = await failureOf(backend.list(ctx()));
        assert.ok(err, 'list() rejects while reads fail (an empty list would delete every load balancer as orphans)');
        assert.not.ok(isTerminalError(err), 'a failed read is retryable, not a TerminalError');
        await faults?.clear();
        assert.ok(
          (await backend.list(ctx())).some((r) => r.id === spec.ref.id),
          'list() works again',
        );
        await backend.remove(spec.ref, ctx());
      },
      { fault: 'failReads' },
    ),
  );

  test(
    'faults: list() fails, never answers [], when the answer is malformed',
    withSubject(
      async ({ backend, faults }) => {
        const spec = specFor(backend);
        await backend.ensure(spec, ctx());
        await faults?.malformReads?.();
        const err = await failureOf(backend.list(ctx()));
        assert.ok(err, 'list() rejects a malformed answer (an empty list would delete every load balancer as orphans)');
        await faults?.clear();
        assert.ok(
          (await backend.list(ctx())).some((r) => r.id === spec.ref.id),
          'list() works again',
        );
        await backend.remove(spec.ref, ctx());
      },
      { fault: 'malformReads' },
    ),
  );

  test(
    'faults: ensure fails while writes fail, and the next ensure realises the spec',
    withSubject(
      async (subject) => {
        const { backend, faults } = subject;
        const spec = specFor(backend, { ports: [80] });
        await faults?.failWrites?.();
        const err = await failureOf(backend.ensure(spec, ctx()));
        assert.ok(err, 'ensure rejects when its writes fail (a status now would be a lie)');
        assert.not.ok(isTerminalError(err), 'a failed write is retryable, not a TerminalError');
        await faults?.clear();
        const status = await backend.ensure(spec, ctx());
        if (subject.observe) await assertRealised(subject, spec, status, 'after the writes work again');
        await backend.remove(spec.ref, ctx());
      },
      { fault: 'failWrites' },
    ),
  );

  test(
    'faults: remove fails while writes fail, and the load balancer stays listed',
    withSubject(
      async ({ backend, faults }) => {
        const spec = specFor(backend, { ports: [80] });
        await backend.ensure(spec, ctx());
        await faults?.failWrites?.();
        const err = await failureOf(backend.remove(spec.ref, ctx()));
        assert.ok(err, 'remove rejects when its deletes fail (the engine would drop the finalizer)');
        await faults?.clear();
        assert.ok(
          (await backend.list(ctx())).some((r) => r.id === spec.ref.id),
          'still listed',
        );
        await backend.remove(spec.ref, ctx());
        assert.not.ok(
          (await backend.list(ctx())).some((r) => r.id === spec.ref.id),
          'gone after a good remove',
        );
      },
      { fault: 'failWrites' },
    ),
  );

  test(
    'watch: a change of the data plane names its load balancer, and nothing once stopped',
    withSubject(
      async (subject) => {
        const backend = subject.backend;
        const change = subject.changeDataPlane as NonNullable<ConformanceSubject['changeDataPlane']>;
        const spec = specFor(backend);
        const status = await backend.ensure(spec, ctx());
        const named: string[] = [];
        const stop = await (backend.watch as NonNullable<LoadBalancerBackend['watch']>)(
          (ref) => named.push(ref.id),
          ctx(),
        );
        try {
          await change(spec.ref, status);
          const deadline = Date.now() + 30_000;
          while (!named.includes(spec.ref.id) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
          assert.ok(named.includes(spec.ref.id), 'watch named the load balancer whose data plane changed');
          for (const id of named) assert.ok(parseLoadBalancerId(id), `watch names load balancer ids only (${id})`);
        } finally {
          stop();
        }
        named.length = 0;
        await change(spec.ref, status);
        await new Promise((r) => setTimeout(r, 1000));
        assert.equal(named, [], 'nothing is named once the watch is stopped');
        await backend.remove(spec.ref, ctx());
      },
      { dataPlane: true },
    ),
  );

  test.run();
}
