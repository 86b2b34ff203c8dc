import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Allocator,
  type IpamError,
  isIpamError,
  loadPoolConfigFile,
  parsePoolConfig,
  parsePoolConfigText,
  poolConfigFromConfigMap,
  poolConfigFromEnv,
} from '@klb/ipam';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('pool configuration');

function configError(fn: () => unknown): IpamError {
  try {
    fn();
  } catch (err) {
    assert.ok(isIpamError(err), `expected an IpamError, got ${String(err)}`);
    assert.is(err.code, 'INVALID_CONFIG');
    assert.ok(err.terminal);
    assert.not.ok(err.retryable);
    return err;
  }
  throw new Error('expected INVALID_CONFIG');
}

const pool = (addresses: string[], extra: Record<string, unknown> = {}) => ({
  pools: [{ name: 'p', addresses, ...extra }],
});

test('accepts CIDRs, ranges and single addresses of both families', () => {
  const [p] = parsePoolConfig(
    pool(['fd00::/64', '10.0.0.0/24', '10.0.1.10-10.0.1.20', '10.0.2.7', 'fd01::1 - fd01::9'], {
      reserved: ['10.0.0.1', '10.0.0.250-10.0.0.255'],
      avoidBuggyIPs: true,
      autoAssign: false,
      priority: 3,
      namespaces: ['team-a'],
      serviceSelector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['web'] }] },
    }),
  );
  assert.equal(p?.families, ['IPv4', 'IPv6']);
  assert.is(p?.ranges.length, 5);
  assert.is(p?.autoAssign, false);
  const stats = new Allocator([p as never]).stats();
  // 256 - 1 reserved - 6 reserved (250-255) - .0 avoided = 248; + 11 + 1
  assert.is(stats.find((s) => s.family === 'IPv4')?.size, 260n);
  assert.is(stats.find((s) => s.family === 'IPv6')?.size, (1n << 64n) + 9n);
});

test('names the offending entry: inverted, mixed families, malformed, host bits, overlap', () => {
  const cases: Array<[string[], RegExp]> = [
    [['10.0.0.9-10.0.0.1'], /pools\[0\] \(p\)\.addresses\[0\]: "10\.0\.0\.9-10\.0\.0\.1" is inverted/],
    [['10.0.0.1-fd00::1'], /addresses\[0\]: "10\.0\.0\.1-fd00::1" mixes families/],
    [['10.0.0.300'], /addresses\[0\]: "10\.0\.0\.300" is not an IP address/],
    [['10.0.0.1/33'], /prefix length must be 0\.\.32/],
    [['10.0.0.5/24'], /host bits set; did you mean 10\.0\.0\.0\/24/],
    [['010.0.0.1'], /not an IP address/],
    [['fe80::1%eth0'], /not an IP address/],
    // As Kubernetes reads new values: canonical IPv6 only, never IPv4-mapped.
    [['2001:DB8::/64'], /not a valid CIDR: bad address/],
    [['2001:db8:0:0::1-2001:db8::9'], /bad start address/],
    [['::ffff:10.0.0.1-::ffff:10.0.0.9'], /bad start address/],
    [['10.0.0.0/24', '10.0.0.128/25'], /addresses\[1\] "10\.0\.0\.128\/25" overlaps pools\[0\] \(p\)\.addresses\[0\]/],
  ];
  for (const [addresses, message] of cases) {
    const err = configError(() => parsePoolConfig(pool(addresses)));
    assert.match(err.message, message);
  }
});

test('overlap between pools, duplicate names, schema errors, reserved outside the pool', () => {
  let err = configError(() =>
    parsePoolConfig({
      pools: [
        { name: 'a', addresses: ['10.0.0.0/16'] },
        { name: 'b', addresses: ['10.1.0.0/24', '10.0.9.0-10.0.9.9'] },
      ],
    }),
  );
  assert.match(
    err.message,
    /pools\[1\] \(b\)\.addresses\[1\] "10\.0\.9\.0-10\.0\.9\.9" overlaps pools\[0\] \(a\)\.addresses\[0\]/,
  );
  err = configError(() =>
    parsePoolConfig({
      pools: [
        { name: 'a', addresses: ['10.0.0.0/24'] },
        { name: 'a', addresses: ['10.1.0.0/24'] },
      ],
    }),
  );
  assert.match(err.message, /duplicate pool name/);
  err = configError(() => parsePoolConfig({ pools: [{ name: 'A_b', addresses: ['10.0.0.0/24'], colour: 1 }] }));
  assert.ok(err.details.some((d) => /config\.pools\[0\]: unknown field "colour"/.test(d)));
  assert.ok(err.details.some((d) => /config\.pools\[0\]\.name: must match pattern/.test(d)));
  err = configError(() => parsePoolConfig(pool(['10.0.0.0/24'], { reserved: ['10.0.1.1'] })));
  assert.match(err.message, /reserved\[0\]: "10\.0\.1\.1" is not inside one of the pool's address entries/);
  err = configError(() => parsePoolConfig({}));
  assert.match(err.message, /must have required property 'pools'/);
  err = configError(() => parsePoolConfigText('pools: [ {name: a'));
  assert.match(err.message, /not valid YAML/);
});

test('loads from a YAML file, a JSON file and a ConfigMap', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipam-config-'));
  writeFileSync(
    join(dir, 'pools.yaml'),
    'pools:\n  - name: web\n    addresses: [10.9.0.0/28]\n    avoidBuggyIPs: true\n',
  );
  writeFileSync(join(dir, 'pools.json'), JSON.stringify(pool(['10.8.0.0/28'])));
  assert.is((await loadPoolConfigFile(join(dir, 'pools.yaml')))[0]?.name, 'web');
  assert.is((await loadPoolConfigFile(join(dir, 'pools.json')))[0]?.name, 'p');
  const missing = await loadPoolConfigFile(join(dir, 'nope.yaml')).catch((e: unknown) => e);
  assert.ok(isIpamError(missing) && missing.code === 'INVALID_CONFIG');
  const cm = {
    metadata: { namespace: 'klb', name: 'pools' },
    data: { 'pools.yaml': 'pools: [{name: x, addresses: [10.7.0.1]}]' },
  };
  assert.is(poolConfigFromConfigMap(cm)[0]?.name, 'x');
  assert.match(
    configError(() => poolConfigFromConfigMap(cm, 'other')).message,
    /ConfigMap klb\/pools has no data key "other"/,
  );
});

test('VIP_ALLOCATION_START/END become the pool "default"', () => {
  assert.is(poolConfigFromEnv({}), undefined);
  const [p] = poolConfigFromEnv({ VIP_ALLOCATION_START: '10.4.0.10', VIP_ALLOCATION_END: '10.4.0.20' }) ?? [];
  assert.is(p?.name, 'default');
  assert.is(new Allocator([p as never]).stats()[0]?.size, 11n);
  assert.match(configError(() => poolConfigFromEnv({ VIP_ALLOCATION_START: '10.4.0.10' })).message, /both be set/);
  assert.match(
    configError(() => poolConfigFromEnv({ VIP_ALLOCATION_START: '10.4.0.20', VIP_ALLOCATION_END: '10.4.0.10' }))
      .message,
    /VIP_ALLOCATION_START\/VIP_ALLOCATION_END: .*inverted/,
  );
});

test('a bad configuration leaves the allocator and its allocations untouched', () => {
  const al = new Allocator(parsePoolConfig(pool(['10.3.0.0/29'])));
  const owner = { kind: 'Service' as const, namespace: 'n', name: 's', uid: 'u1' };
  const before = al.allocate(owner).addresses;
  configError(() => al.setPools(parsePoolConfig(pool(['10.3.0.0/29', '10.3.0.4']))));
  assert.equal(al.get(owner)?.addresses, before);
  assert.is(al.pools[0]?.name, 'p');
  // A valid new configuration keeps existing allocations, even outside the new pools.
  al.setPools(parsePoolConfig({ pools: [{ name: 'q', addresses: ['10.5.0.0/29'] }] }));
  assert.equal(al.get(owner)?.addresses, before);
  assert.is(al.allocate(owner).pool, 'q', 'the next allocation moves the owner into a configured pool');
});

test('bad requests get INVALID_REQUEST (or the specific code) and change nothing', () => {
  const al = new Allocator(
    parsePoolConfig({
      pools: [
        { name: 'p', addresses: ['10.3.0.0/29'] },
        { name: 'r', addresses: ['10.3.1.0/29'], namespaces: ['other'] },
      ],
    }),
  );
  const owner = { kind: 'Service' as const, namespace: 'n', name: 's', uid: 'u1' };
  const before = al.allocate(owner).addresses;
  const bad: Array<[unknown, string]> = [
    [{ addresses: ['10.3.0.999'] }, 'INVALID_REQUEST'],
    [{ addresses: ['10.3.0.2', '10.3.0.3'] }, 'INVALID_REQUEST'],
    [{ ports: [{ protocol: 'ICMP', port: 1 }] }, 'INVALID_REQUEST'],
    [{ ports: [{ protocol: 'TCP', port: 70000 }] }, 'INVALID_REQUEST'],
    [{ ipFamilyPolicy: 'SingleStack', ipFamilies: ['IPv4', 'IPv6'] }, 'INVALID_REQUEST'],
    [{ sharingKey: 'has space' }, 'INVALID_REQUEST'],
    [{ pool: 'nope' }, 'NO_MATCHING_POOL'],
    [{ pool: 'r' }, 'NO_MATCHING_POOL'],
    [{ addresses: ['10.3.1.1'] }, 'NO_MATCHING_POOL'],
    [{ addresses: ['192.0.2.1'] }, 'ADDRESS_OUTSIDE_POOLS'],
    [{ ipFamilies: ['IPv6'] }, 'FAMILY_UNAVAILABLE'],
    [{ ipFamilyPolicy: 'RequireDualStack' }, 'FAMILY_UNAVAILABLE'],
  ];
  for (const [request, code] of bad) {
    let got: unknown;
    try {
      al.allocate(owner, request as never);
    } catch (err) {
      got = err;
    }
    assert.ok(isIpamError(got), JSON.stringify(request));
    assert.is(got.code, code, JSON.stringify(request));
    assert.equal(al.get(owner)?.addresses, before, 'existing allocation untouched');
  }
  let err: unknown;
  try {
    al.allocate({ kind: 'Pod', namespace: 'n', name: 's', uid: 'x' } as never);
  } catch (e) {
    err = e;
  }
  assert.ok(isIpamError(err) && err.code === 'INVALID_REQUEST');
  assert.is(al.size, 1);
});

test('the configuration examples in the README and the guide are valid', () => {
  const root = new URL('../../../', import.meta.url);
  for (const file of ['packages/ipam/README.md', 'docs/ipam.md']) {
    const text = readFileSync(new URL(file, root), 'utf8');
    const blocks = [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] as string);
    const configs = blocks.filter((b) => b.startsWith('pools:'));
    assert.ok(configs.length > 0, `${file} has a pool configuration example`);
    for (const yaml of configs) assert.ok(parsePoolConfigText(yaml).length > 0);
  }
});

test.run();
