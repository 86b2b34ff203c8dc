// Property tests of the in-memory allocator: random allocate/release/share sequences are run
// against the Allocator and against a simple reference model (explicit sets of addresses).
import { type AllocationOwner, Allocator, type IpFamily, isIpamError, type PoolSpec, parsePoolConfig } from '@klb/ipam';
import fc from 'fast-check';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('allocator properties');

interface ModelHold {
  addrs: string[];
  key: string | undefined;
  ports: Set<string>;
}

interface Op {
  kind: 'alloc' | 'release';
  owner: number;
  explicit: number | undefined;
  share: boolean;
  ports: number[];
}

const opArb = (owners: number, candidates: number): fc.Arbitrary<Op> =>
  fc.record({
    kind: fc.constantFrom<'alloc' | 'release'>('alloc', 'alloc', 'alloc', 'release'),
    owner: fc.nat({ max: owners - 1 }),
    explicit: fc.option(fc.nat({ max: candidates - 1 }), { nil: undefined }),
    share: fc.boolean(),
    ports: fc.uniqueArray(fc.integer({ min: 80, max: 84 }), { maxLength: 2 }),
  });

function owner(i: number): AllocationOwner {
  return { kind: 'Service', namespace: 'ns', name: `svc-${i}`, uid: `uid-${i}` };
}

/**
 * Runs `ops` against a one-pool allocator and the model. `assignable` lists every assignable
 * address of the pool; `candidates` the addresses explicit requests pick from (assignable,
 * reserved, avoided and outside ones), with the error code the model expects for unusable ones.
 */
function check(spec: PoolSpec, assignable: string[], unusable: Map<string, string>, ops: Op[]): void {
  const al = new Allocator(parsePoolConfig({ pools: [spec] }));
  const model = new Map<number, ModelHold>();
  const candidates = [...assignable.slice(0, 6), ...assignable.slice(-3), ...unusable.keys()];
  const holdersOf = (addr: string, except?: number): Array<[number, ModelHold]> =>
    [...model].filter(([o, h]) => o !== except && h.addrs.includes(addr));
  const compatible = (addr: string, self: number, key: string | undefined, ports: Set<string>): boolean => {
    const others = holdersOf(addr, self);
    if (others.length === 0) return true;
    if (key === undefined) return false;
    return others.every(([, h]) => h.key === key && [...h.ports].every((p) => !ports.has(p)));
  };
  const snapshot = (): string =>
    JSON.stringify(
      [...al.allocations()]
        .map((a) => [a.owner.uid, a.addresses])
        .sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
    );

  for (const op of ops) {
    const self = op.owner;
    if (op.kind === 'release') {
      al.release(owner(self));
      model.delete(self);
    } else {
      const key = op.share ? 'shared' : undefined;
      const portSet = new Set(op.ports.map((p) => `TCP/${p}`));
      const explicit = op.explicit === undefined ? undefined : candidates[op.explicit % candidates.length];
      const request = {
        ...(explicit === undefined ? {} : { addresses: [explicit] }),
        ...(key === undefined ? {} : { sharingKey: key }),
        ports: op.ports.map((port) => ({ protocol: 'TCP' as const, port })),
      };
      const mine = model.get(self);
      // What the model expects.
      let expected: string | undefined; // error code, or undefined for success
      let mustBe: string | undefined; // the address the owner must get, when determined
      if (explicit !== undefined) {
        const bad = unusable.get(explicit);
        if (bad && !(bad === 'ADDRESS_RESERVED' && mine?.addrs.includes(explicit))) expected = bad;
        else if (!compatible(explicit, self, key, portSet)) {
          const others = holdersOf(explicit, self);
          expected = key !== undefined && others.every(([, h]) => h.key === key) ? 'SHARING_CONFLICT' : 'ADDRESS_TAKEN';
        } else mustBe = explicit;
      } else {
        const sticky = mine?.addrs.find((a) => compatible(a, self, key, portSet));
        const held = new Set([...model.values()].flatMap((h) => h.addrs));
        const free = assignable.some((a) => !held.has(a));
        const shareable = key !== undefined && assignable.some((a) => held.has(a) && compatible(a, self, key, portSet));
        if (sticky) mustBe = sticky;
        else if (!free && !shareable) expected = 'POOL_EXHAUSTED';
      }
      const before = snapshot();
      let got: string[] | undefined;
      let code: string | undefined;
      try {
        got = al.allocate(owner(self), request).addresses;
      } catch (err) {
        if (!isIpamError(err)) throw err;
        code = err.code;
      }
      assert.is(code, expected, `op ${JSON.stringify(op)} explicit=${explicit}`);
      if (code !== undefined) {
        assert.is(snapshot(), before, 'a failed request leaves every allocation untouched');
      } else {
        const addr = (got as string[])[0] as string;
        assert.is((got as string[]).length, 1);
        if (mustBe !== undefined) assert.is(addr, mustBe, 'sticky or explicit address');
        else assert.ok(assignable.includes(addr), `${addr} is assignable`);
        assert.ok(compatible(addr, self, key, portSet), `${addr} may be held by ${self}`);
        model.set(self, { addrs: [addr], key, ports: portSet });
        // Idempotent: the same request again returns the same addresses.
        assert.equal(al.allocate(owner(self), request).addresses, got);
      }
    }
    // Global invariants: the allocator agrees with the model, and no address has two
    // owners unless they all share one key with disjoint ports.
    for (const [o, h] of model) assert.equal(al.get(owner(o))?.addresses, h.addrs);
    assert.is(al.size, model.size);
    const byAddr = new Map<string, ModelHold[]>();
    for (const h of model.values()) for (const a of h.addrs) byAddr.set(a, [...(byAddr.get(a) ?? []), h]);
    for (const [a, hs] of byAddr) {
      if (hs.length < 2) continue;
      assert.ok(
        hs.every((h) => h.key === 'shared'),
        `${a} shared only under one key`,
      );
      const all = hs.flatMap((h) => [...h.ports]);
      assert.is(new Set(all).size, all.length, `${a}: sharers' ports are disjoint`);
    }
    const stats = al.stats();
    const used = stats.reduce((n, s) => n + s.used, 0);
    assert.is(used, byAddr.size);
    for (const s of stats) assert.is(s.available, s.size - BigInt(s.used));
  }
}

function v4Range(prefix: string, from: number, to: number): string[] {
  return Array.from({ length: to - from + 1 }, (_, i) => `${prefix}.${from + i}`);
}

test('IPv4: random allocate/release/share sequences match the reference model', () => {
  // 10.0.0.248/29 with .255 avoided, plus 10.0.1.0-10.0.1.3 with .0 avoided and .2 reserved.
  const spec: PoolSpec = {
    name: 'v4',
    addresses: ['10.0.0.248/29', '10.0.1.0-10.0.1.3'],
    reserved: ['10.0.1.2'],
    avoidBuggyIPs: true,
  };
  const assignable = [...v4Range('10.0.0', 248, 254), '10.0.1.1', '10.0.1.3'];
  const unusable = new Map([
    ['10.0.0.255', 'ADDRESS_RESERVED'],
    ['10.0.1.0', 'ADDRESS_RESERVED'],
    ['10.0.1.2', 'ADDRESS_RESERVED'],
    ['10.0.2.1', 'ADDRESS_OUTSIDE_POOLS'],
  ]);
  fc.assert(
    fc.property(fc.array(opArb(14, 13), { minLength: 1, maxLength: 80 }), (ops) =>
      check(spec, assignable, unusable, ops),
    ),
    { numRuns: 300 },
  );
});

test('IPv6: random allocate/release/share sequences match the reference model', () => {
  const spec: PoolSpec = {
    name: 'v6',
    addresses: ['fd00:0:0:1::/125', 'fd00::fffe-fd00::1:1'],
    reserved: ['fd00::1:0'],
  };
  const assignable = [
    ...Array.from({ length: 8 }, (_, i) => `fd00:0:0:1::${i === 0 ? '' : i.toString(16)}`),
    'fd00::fffe',
    'fd00::ffff',
    'fd00::1:1',
  ].sort();
  const unusable = new Map([
    ['fd00::1:0', 'ADDRESS_RESERVED'],
    ['fd00:0:0:2::1', 'ADDRESS_OUTSIDE_POOLS'],
  ]);
  fc.assert(
    fc.property(fc.array(opArb(14, 13), { minLength: 1, maxLength: 80 }), (ops) =>
      check(spec, assignable, unusable, ops),
    ),
    { numRuns: 300 },
  );
});

test('IPv6 /64: many allocations are unique, inside the prefix, and never materialise the pool', () => {
  fc.assert(
    fc.property(fc.array(fc.boolean(), { minLength: 50, maxLength: 400 }), (releases) => {
      const al = new Allocator(parsePoolConfig({ pools: [{ name: 'big', addresses: ['fd12:3456:789a:1::/64'] }] }));
      const held = new Map<number, string>();
      releases.forEach((release, i) => {
        if (release && held.size > 0) {
          const [victim] = held.keys();
          al.release(owner(victim as number));
          held.delete(victim as number);
        }
        const [addr] = al.allocate(owner(i)).addresses;
        assert.match(addr as string, /^fd12:3456:789a:1:/);
        assert.not.ok([...held.values()].includes(addr as string), `${addr} handed out twice`);
        held.set(i, addr as string);
      });
      const [stats] = al.stats();
      assert.is(stats?.size, 1n << 64n);
      assert.is(stats?.used, held.size);
    }),
    { numRuns: 50 },
  );
});

test('dual-stack: families follow ipFamilyPolicy and no address is handed out twice', () => {
  const policyArb = fc.constantFrom('SingleStack', 'PreferDualStack', 'RequireDualStack') as fc.Arbitrary<
    'SingleStack' | 'PreferDualStack' | 'RequireDualStack'
  >;
  const famArb = fc.constantFrom<IpFamily[]>(['IPv4'], ['IPv6'], ['IPv4', 'IPv6'], ['IPv6', 'IPv4'], []);
  fc.assert(
    fc.property(
      fc.boolean(),
      fc.array(fc.record({ owner: fc.nat({ max: 12 }), policy: policyArb, fams: famArb, release: fc.boolean() }), {
        maxLength: 60,
      }),
      (withV6, ops) => {
        const addresses = withV6 ? ['192.168.5.0/29', 'fd00:5::/125'] : ['192.168.5.0/29'];
        const al = new Allocator(parsePoolConfig({ pools: [{ name: 'ds', addresses }] }));
        for (const op of ops) {
          if (op.release) {
            al.release(owner(op.owner));
            continue;
          }
          if (op.policy === 'SingleStack' && op.fams.length === 2) continue; // invalid, tested elsewhere
          const request = { ipFamilyPolicy: op.policy, ...(op.fams.length ? { ipFamilies: op.fams } : {}) };
          const before = JSON.stringify([...al.allocations()]);
          try {
            const got = al.allocate(owner(op.owner), request).addresses;
            const fams = got.map((a) => (a.includes(':') ? 'IPv6' : 'IPv4'));
            if (op.policy === 'SingleStack') assert.is(got.length, 1);
            if (op.policy === 'RequireDualStack') assert.equal(new Set(fams).size, 2);
            if (op.policy === 'PreferDualStack')
              assert.is(got.length, withV6 && (op.fams[0] !== 'IPv6' || withV6) ? 2 : 1);
            if (op.fams.length > 0) assert.is(fams[0], op.fams[0], 'primary family first');
          } catch (err) {
            if (!isIpamError(err)) throw err;
            assert.is(JSON.stringify([...al.allocations()]), before);
            if (op.policy === 'RequireDualStack' && !withV6) assert.is(err.code, 'FAMILY_UNAVAILABLE');
            else if (!withV6 && op.fams[0] === 'IPv6') assert.is(err.code, 'FAMILY_UNAVAILABLE');
            else assert.is(err.code, 'POOL_EXHAUSTED');
          }
          const all = [...al.allocations()].flatMap((a) => a.addresses);
          assert.is(new Set(all).size, all.length, 'no address twice');
        }
      },
    ),
    { numRuns: 200 },
  );
});

test.run();
