import {
  isRetryAfterError,
  isTerminalError,
  type LoadBalancerBackend,
  type LoadBalancerSpec,
  type Protocol,
  silentLogger,
} from '@klb/core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

/** What a conformance factory returns: a backend ready to use, and how to clean up after it. */
export interface ConformanceSubject {
  /** The backend under test, connected to its (real or emulated) system. */
  readonly backend: LoadBalancerBackend;
  /**
   * Number of writes the backend has made to its external system so far, if it can be observed
   * (an emulator's call log, a server's audit). When given, a repeated `ensure` must add none.
   */
  readonly writes?: () => number | Promise<number>;
  /** Called after every conformance test (stop servers, delete namespaces). */
  readonly cleanup?: () => Promise<void>;
}

/** Options of {@link runBackendConformance}. */
export interface ConformanceOptions {
  /** Suite name; default `conformance: <backend name>`. */
  readonly name?: string;
  /** The VIP given to the n-th load balancer when the backend does not allocate its own; default `192.0.2.<n>`. */
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
 * called again after the requested delay (at most 2 s at a time), until it settles.
 */
function settling(backend: LoadBalancerBackend, timeoutMs: number): LoadBalancerBackend {
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
    ensure: (spec, ctx) => settle(() => backend.ensure(spec, ctx)),
    remove: (ref, ctx) => settle(() => backend.remove(ref, ctx)),
    list: (ctx) => backend.list(ctx),
  };
}

let specCounter = 0;

/**
 * Registers and runs the backend conformance suite (uvu) against backends made by `factory`
 * (called once per test): ensure is idempotent, remove of something absent succeeds, list
 * reflects ensure/remove, declared capabilities are honoured, and errors are typed.
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

  const specFor = (backend: LoadBalancerBackend, overrides: { ports?: number[]; protocol?: Protocol } = {}) => {
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
          ready: true,
          nodeName: `node-${i}`,
        })),
        healthCheck: { type: 'tcp', intervalSeconds: 5, timeoutSeconds: 3, unhealthyThreshold: 3, healthyThreshold: 2 },
      })),
      options: { algorithm: 'round-robin', proxyProtocol: false, sourceRanges: [], timeouts: {} },
      annotations: {},
    };
    return spec;
  };

  const withSubject = (fn: (subject: ConformanceSubject) => Promise<void>) => async () => {
    const subject = await factory();
    try {
      await fn({ ...subject, backend: settling(subject.backend, options.settleTimeoutMs ?? 300_000) });
    } finally {
      await subject.cleanup?.();
    }
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
        const err = await backend.ensure(spec, ctx()).then(
          () => undefined,
          (e: unknown) => e,
        );
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
        const err = await backend.ensure(spec, ctx()).then(
          () => undefined,
          (e: unknown) => e,
        );
        assert.ok(isTerminalError(err), 'L7 routes on a backend without L7 must be rejected with a TerminalError');
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
      const err = await backend.ensure(spec, ctx()).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(isTerminalError(err), 'a TerminalError');
      assert.not.ok(
        (await backend.list(ctx())).some((r) => r.id === spec.ref.id),
        'nothing was created',
      );
    }),
  );

  test.run();
}
