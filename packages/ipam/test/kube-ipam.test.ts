// KubeIpam against a real kube-apiserver + etcd: persistence, restart safety, races between
// separate allocator processes, kill -9, import of existing assignments, reclaim.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ADDRESS_CLAIM_GROUP,
  ADDRESS_CLAIM_PLURAL,
  ADDRESS_CLAIM_VERSION,
  type AddressClaim,
  type Allocation,
  type AllocationOwner,
  installAddressClaimCrd,
  isIpamError,
  KubeIpam,
  loadPoolConfigMap,
  type PoolSpec,
  parsePoolConfig,
} from '@klb/ipam';
import {
  type ControlPlane,
  eventually,
  freePort,
  ProcessGroup,
  requireComponents,
  startControlPlane,
} from '@klb/testing';
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  RbacAuthorizationV1Api,
  type V1Service,
} from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('kube ipam');
const missing = requireComponents('kube-apiserver', 'etcd');
const it = missing ? test.skip : test;

let plane: ControlPlane | undefined;
let group: ProcessGroup | undefined;
let kubeconfigFile = '';
if (!missing) {
  plane = await startControlPlane();
  await installAddressClaimCrd(plane.kubeConfig);
  kubeconfigFile = plane.writeKubeConfig();
  group = new ProcessGroup(mkdtempSync(join(tmpdir(), 'ipam-procs-')));
  test.after(async () => {
    await group?.stopAll();
    await plane?.stop();
  });
}
const cp = (): ControlPlane => plane as ControlPlane;
const core = (): CoreV1Api => cp().kubeConfig.makeApiClient(CoreV1Api);
const custom = (): CustomObjectsApi => cp().kubeConfig.makeApiClient(CustomObjectsApi);

let nsCount = 0;
async function namespace(): Promise<string> {
  const name = `ipam-${process.pid}-${++nsCount}`;
  await core().createNamespace({ body: { metadata: { name } } });
  return name;
}

function ownerOf(svc: V1Service): AllocationOwner {
  const md = svc.metadata ?? {};
  return { kind: 'Service', namespace: md.namespace as string, name: md.name as string, uid: md.uid as string };
}

async function service(
  ns: string,
  name: string,
  ip?: string,
  annotations?: Record<string, string>,
): Promise<V1Service> {
  const created = await core().createNamespacedService({
    namespace: ns,
    body: {
      metadata: { name, ...(annotations ? { annotations } : {}) },
      spec: {
        type: 'LoadBalancer',
        allocateLoadBalancerNodePorts: false,
        selector: { app: name },
        ports: [{ port: 80, protocol: 'TCP' }],
      },
    },
  });
  if (ip === undefined) return created;
  return writeStatus(created, ip);
}

async function writeStatus(svc: V1Service, ip: string): Promise<V1Service> {
  const fresh = await core().readNamespacedService({
    namespace: svc.metadata?.namespace as string,
    name: svc.metadata?.name as string,
  });
  return core().replaceNamespacedServiceStatus({
    namespace: fresh.metadata?.namespace as string,
    name: fresh.metadata?.name as string,
    body: { ...fresh, status: { loadBalancer: { ingress: [{ ip }] } } },
  });
}

async function claims(ns: string): Promise<AddressClaim[]> {
  const list = (await custom().listNamespacedCustomObject({
    group: ADDRESS_CLAIM_GROUP,
    version: ADDRESS_CLAIM_VERSION,
    namespace: ns,
    plural: ADDRESS_CLAIM_PLURAL,
  })) as { items: AddressClaim[] };
  return list.items;
}

/** address -> holder uids, from the API. */
async function claimMap(ns: string): Promise<Map<string, string[]>> {
  return new Map((await claims(ns)).map((c) => [c.spec.address, c.spec.holders.map((h) => h.uid)]));
}

function ipam(ns: string, pools: PoolSpec[], registry?: Registry): KubeIpam {
  return new KubeIpam({
    kubeConfig: cp().kubeConfig,
    namespace: ns,
    pools: parsePoolConfig({ pools }),
    ...(registry ? { registry } : {}),
  });
}

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'OK';
  } catch (err) {
    if (isIpamError(err)) return err.code;
    throw err;
  }
}

/** A KubeIpam in its own Node process (test/fixtures/ipam-process.ts), driven over HTTP. */
class IpamProcess {
  static #count = 0;
  readonly name = `ipam-${++IpamProcess.#count}`;
  port = 0;

  async start(ns: string, pools: PoolSpec[]): Promise<this> {
    this.port = await freePort();
    (group as ProcessGroup).start(
      this.name,
      process.execPath,
      ['--conditions=klb-source', '--import', 'tsx', join(import.meta.dirname, 'fixtures', 'ipam-process.ts')],
      {
        env: {
          KUBECONFIG: kubeconfigFile,
          IPAM_NAMESPACE: ns,
          IPAM_POOLS: JSON.stringify({ pools }),
          IPAM_PORT: String(this.port),
        },
        cwd: process.cwd(),
      },
    );
    for (let i = 0; i < 600; i++) {
      const exited = (group as ProcessGroup).exited();
      if (exited) throw new Error(exited);
      const res = await fetch(`http://127.0.0.1:${this.port}/ready`).catch(() => undefined);
      if (res?.status === 200) return this;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${this.name} not ready\n${(group as ProcessGroup).logTail(this.name)}`);
  }

  async call(
    op: string,
    owner: AllocationOwner,
    request: object = {},
  ): Promise<{ ok: boolean; code?: string; message?: string; allocation?: Allocation }> {
    const res = await fetch(`http://127.0.0.1:${this.port}/`, {
      method: 'POST',
      body: JSON.stringify({ op, owner, request }),
    });
    return (await res.json()) as { ok: boolean; code?: string; allocation?: Allocation };
  }

  /** Fire a request without waiting for its answer (the process may be killed first). */
  fire(op: string, owner: AllocationOwner, request: object = {}): void {
    fetch(`http://127.0.0.1:${this.port}/`, { method: 'POST', body: JSON.stringify({ op, owner, request }) }).catch(
      () => undefined,
    );
  }

  async kill9(): Promise<void> {
    await (group as ProcessGroup).stop(this.name, 'SIGKILL');
  }

  async stop(): Promise<void> {
    await (group as ProcessGroup).stop(this.name);
  }
}

it('the apiserver validates AddressClaims against the shipped CRD schema', async () => {
  const ns = await namespace();
  const create = (spec: object, name = 'ipv4-10-0-0-1') =>
    custom()
      .createNamespacedCustomObject({
        group: ADDRESS_CLAIM_GROUP,
        version: ADDRESS_CLAIM_VERSION,
        namespace: ns,
        plural: ADDRESS_CLAIM_PLURAL,
        body: { apiVersion: 'ipam.klb.io/v1alpha1', kind: 'AddressClaim', metadata: { name }, spec },
      })
      .then(
        () => 201,
        (err: unknown) => (err instanceof ApiException ? err.code : 0),
      );
  const holder = { kind: 'Service', namespace: 'a', name: 'b', uid: 'u' };
  assert.is(await create({ address: '10.0.0.1', family: 'IPv6', holders: [holder] }), 422, 'family must match');
  assert.is(await create({ address: 'nope', family: 'IPv4', holders: [holder] }), 422, 'must be an IP');
  assert.is(await create({ address: '10.0.0.1', family: 'IPv4', holders: [] }), 422, 'at least one holder');
  assert.is(await create({ address: '10.0.0.1', family: 'IPv4', holders: [{ ...holder, kind: 'Pod' }] }), 422);
  assert.is(
    await create({ address: '10.0.0.1', family: 'IPv4', holders: [holder, { ...holder, uid: 'v' }] }),
    422,
    'several holders need one sharing key',
  );
  assert.is(
    await create({
      address: '10.0.0.1',
      family: 'IPv4',
      holders: [{ ...holder, ports: [{ protocol: 'TCP', port: 0 }] }],
    }),
    422,
  );
  assert.is(await create({ address: '10.0.0.1', family: 'IPv4', holders: [holder] }), 201);
  assert.is(await create({ address: '10.0.0.1', family: 'IPv4', holders: [holder] }), 409, 'the name is the lock');
  const api = {
    group: ADDRESS_CLAIM_GROUP,
    version: ADDRESS_CLAIM_VERSION,
    namespace: ns,
    plural: ADDRESS_CLAIM_PLURAL,
  };
  const stored = (await custom().getNamespacedCustomObject({ ...api, name: 'ipv4-10-0-0-1' })) as AddressClaim;
  const moved = await custom()
    .replaceNamespacedCustomObject({
      ...api,
      name: 'ipv4-10-0-0-1',
      body: { ...stored, spec: { ...stored.spec, address: '10.0.0.2' } },
    })
    .then(
      () => 200,
      (err: unknown) => (err instanceof ApiException ? err.code : 0),
    );
  assert.is(moved, 422, 'address is immutable');
});

it('allocates, is idempotent and sticky across a restart, releases idempotently; metrics', async () => {
  const ns = await namespace();
  const pools: PoolSpec[] = [{ name: 'web', addresses: ['10.10.0.0/29', 'fd10::/64'] }];
  const registry = new Registry();
  const first = ipam(ns, pools, registry);
  assert.is(await code(first.allocate(ownerOf(await service(ns, 'early')))), 'NOT_READY');
  assert.is(first.ready, false);
  await first.start();
  assert.ok(first.ready);
  const a = ownerOf(await service(ns, 'a'));
  const b = ownerOf(await service(ns, 'b'));
  const got = await first.allocate(a, { ipFamilyPolicy: 'RequireDualStack' });
  assert.is(got.addresses.length, 2);
  assert.equal((await first.allocate(a, { ipFamilyPolicy: 'RequireDualStack' })).addresses, got.addresses);
  const gotB = await first.allocate(b);
  assert.is(gotB.addresses.length, 1);
  assert.not.ok(got.addresses.includes(gotB.addresses[0] as string));
  assert.equal(
    await claimMap(ns),
    new Map([
      [got.addresses[0] as string, [a.uid]],
      [got.addresses[1] as string, [a.uid]],
      [gotB.addresses[0] as string, [b.uid]],
    ]),
  );
  const metrics = await registry.getMetricsAsJSON();
  const size = metrics.find((m) => m.name === 'klb_ipam_pool_size')?.values;
  assert.ok(size?.some((v) => v.labels.family === 'IPv6' && v.value === 2 ** 64));
  const used = metrics.find((m) => m.name === 'klb_ipam_pool_used')?.values;
  assert.ok(used?.some((v) => v.labels.family === 'IPv4' && v.value === 2));
  const rejected = metrics.find((m) => m.name === 'klb_ipam_rejected_requests_total')?.values;
  assert.ok(rejected?.some((v) => v.labels.reason === 'NOT_READY' && v.value === 1));

  // A new instance (a restart) gives the same owners the same addresses.
  const second = ipam(ns, pools);
  await second.start();
  assert.equal(second.get(a)?.addresses, got.addresses);
  assert.equal((await second.allocate(a, { ipFamilyPolicy: 'RequireDualStack' })).addresses, got.addresses);
  assert.equal((await second.allocate(b)).addresses, gotB.addresses);

  // A changed request re-allocates and frees what is no longer needed.
  const single = await second.allocate(a, { ipFamilyPolicy: 'SingleStack' });
  assert.equal(single.addresses, [got.addresses[0]]);
  assert.not.ok((await claimMap(ns)).has(got.addresses[1] as string), 'the IPv6 claim was deleted');

  await second.release(a);
  await second.release(a);
  assert.is(second.get(a), undefined);
  assert.equal([...(await claimMap(ns)).keys()], gotB.addresses);
});

it('sharing across two instances: same key and disjoint ports share, overlapping ports conflict', async () => {
  const ns = await namespace();
  const pools: PoolSpec[] = [{ name: 'p', addresses: ['10.11.0.0/30'] }];
  const one = ipam(ns, pools);
  const two = ipam(ns, pools);
  await Promise.all([one.start(), two.start()]);
  const dns = ownerOf(await service(ns, 'dns-tcp'));
  const dnsUdp = ownerOf(await service(ns, 'dns-udp'));
  const clash = ownerOf(await service(ns, 'clash'));
  const x = await one.allocate(dns, { sharingKey: 'dns', ports: [{ protocol: 'TCP', port: 53 }] });
  // `two` does not know about x yet; it learns from the API when its claim collides.
  const y = await two.allocate(dnsUdp, {
    addresses: x.addresses,
    sharingKey: 'dns',
    ports: [{ protocol: 'UDP', port: 53 }],
  });
  assert.equal(y.addresses, x.addresses);
  assert.equal((await claimMap(ns)).get(x.addresses[0] as string), [dns.uid, dnsUdp.uid]);
  assert.is(
    await code(
      one.allocate(clash, { addresses: x.addresses, sharingKey: 'dns', ports: [{ protocol: 'UDP', port: 53 }] }),
    ),
    'SHARING_CONFLICT',
  );
  assert.is(await code(two.allocate(clash, { addresses: x.addresses })), 'ADDRESS_TAKEN');
  // Releasing one sharer keeps the claim for the other.
  await one.release(dns);
  assert.equal((await claimMap(ns)).get(x.addresses[0] as string), [dnsUdp.uid]);
});

it('an instance with stale memory re-checks the claim instead of returning a re-assigned address', async () => {
  const ns = await namespace();
  const pools: PoolSpec[] = [{ name: 's', addresses: ['10.16.0.0/29'] }];
  const a = ipam(ns, pools);
  await a.start();
  const first = ownerOf(await service(ns, 'first'));
  const second = ownerOf(await service(ns, 'second'));
  const x = (await a.allocate(first)).addresses;
  const b = ipam(ns, pools);
  await b.start();
  assert.equal(b.get(first)?.addresses, x, 'b imported the claim');
  // a frees the address and gives it to another owner; b does not know.
  await a.release(first);
  await a.allocate(second, { addresses: x });
  const again = await b.allocate(first);
  assert.not.equal(again.addresses, x);
  const recorded = await claimMap(ns);
  assert.equal(recorded.get(x[0] as string), [second.uid]);
  assert.equal(recorded.get(again.addresses[0] as string), [first.uid]);
  // b never learns that `third` holds an address; releasing `third` through b still frees it.
  const third = ownerOf(await service(ns, 'third'));
  const y = (await a.allocate(third)).addresses[0] as string;
  assert.is(b.get(third), undefined);
  await b.release(third);
  assert.not.ok((await claimMap(ns)).has(y));
});

it('a single writer follows the claims through its watch: a change by someone else reaches memory', async () => {
  const ns = await namespace();
  const pools: PoolSpec[] = [{ name: 'w', addresses: ['10.18.0.0/29'] }];
  const a = ipam(ns, pools);
  await a.start();
  const b = new KubeIpam({
    kubeConfig: cp().kubeConfig,
    namespace: ns,
    pools: parsePoolConfig({ pools }),
    singleWriter: true,
  });
  await b.start();
  try {
    const first = ownerOf(await service(ns, 'first'));
    const second = ownerOf(await service(ns, 'second'));
    const x = (await b.allocate(first)).addresses;
    // Someone else (a former leader, a person) gives the address to another owner.
    await a.release(first);
    await a.allocate(second, { addresses: x });
    await eventually('b sees the change through its watch', () =>
      b.allocator.holders(x[0] as string).some((h) => h.owner.uid === second.uid) ? true : undefined,
    );
    const again = await b.allocate(first);
    assert.not.equal(again.addresses, x, 'b does not hand out the re-assigned address');
    assert.equal((await claimMap(ns)).get(x[0] as string), [second.uid]);
  } finally {
    await b.stop();
  }
});

it('reclaims the claim of a deleted owner at start, but never on a failed read', async () => {
  const ns = await namespace();
  const pools: PoolSpec[] = [{ name: 'r', addresses: ['10.17.0.0/29'] }];
  const first = ipam(ns, pools);
  await first.start();
  const gone = ownerOf(await service(ns, 'gone'));
  const kept = ownerOf(await service(ns, 'kept'));
  const goneAddress = (await first.allocate(gone)).addresses[0] as string;
  const keptAddress = (await first.allocate(kept)).addresses[0] as string;
  await core().deleteNamespacedService({ namespace: ns, name: 'gone' });
  // A controller that may list owners but not read them one by one cannot confirm the
  // deletion: it must keep the claim.
  const rbac = cp().kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  const role = `ipam-list-only-${ns}`;
  await rbac.createClusterRole({
    body: {
      metadata: { name: role },
      rules: [
        { apiGroups: [''], resources: ['services', 'configmaps'], verbs: ['list'] },
        { apiGroups: ['networking.k8s.io'], resources: ['ingresses'], verbs: ['list'] },
        {
          apiGroups: ['ipam.klb.io'],
          resources: ['addressclaims'],
          verbs: ['get', 'list', 'create', 'update', 'delete'],
        },
      ],
    },
  });
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: role },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'klb-controller' }],
    },
  });
  let limited: KubeIpam | undefined;
  for (let attempt = 0; attempt < 100 && !limited?.ready; attempt++) {
    limited = new KubeIpam({
      kubeConfig: cp().kubeConfigFor('klb-controller'),
      namespace: ns,
      pools: parsePoolConfig({ pools }),
    });
    await limited.start().catch(() => new Promise((r) => setTimeout(r, 100)));
  }
  assert.ok(limited?.ready);
  assert.equal((await claimMap(ns)).get(goneAddress), [gone.uid], 'kept: the deletion could not be confirmed');
  // With the rights to read the owner, the claim is freed.
  const admin = ipam(ns, pools);
  await admin.start();
  const recorded = await claimMap(ns);
  assert.not.ok(recorded.has(goneAddress));
  assert.equal(recorded.get(keptAddress), [kept.uid]);
  assert.is(admin.get(gone), undefined);
  await rbac.deleteClusterRoleBinding({ name: role });
  await rbac.deleteClusterRole({ name: role });
});

it('two allocator processes racing for the last free addresses: no duplicates, losers get POOL_EXHAUSTED', async () => {
  for (let round = 0; round < 3; round++) {
    const ns = await namespace();
    const pools: PoolSpec[] = [{ name: 'small', addresses: ['10.12.0.0/29'] }]; // 8 addresses
    // 5 are taken before the race.
    const setup = ipam(ns, pools);
    await setup.start();
    for (let i = 0; i < 5; i++) await setup.allocate(ownerOf(await service(ns, `pre-${i}`)));
    const owners = await Promise.all(Array.from({ length: 8 }, (_, i) => service(ns, `race-${i}`).then(ownerOf)));
    const [p1, p2] = await Promise.all([new IpamProcess().start(ns, pools), new IpamProcess().start(ns, pools)]);
    const p = [p1 as IpamProcess, p2 as IpamProcess];
    // Each process allocates for 4 owners at once; 3 addresses are left.
    const results = await Promise.all(owners.map((o, i) => (p[i % 2] as IpamProcess).call('allocate', o)));
    await Promise.all(p.map((x) => x.stop()));
    const winners = results.filter((r) => r.ok);
    const losers = results.filter((r) => !r.ok);
    assert.is(winners.length, 3, JSON.stringify(results));
    assert.is(losers.length, 5);
    for (const l of losers) {
      assert.is(l.code, 'POOL_EXHAUSTED');
      assert.match(l.message as string, /pool small has no free address/);
    }
    const won = winners.map((w) => w.allocation?.addresses[0] as string);
    assert.is(new Set(won).size, 3, 'no address handed out twice');
    const recorded = await claimMap(ns);
    assert.is(recorded.size, 8);
    for (const holders of recorded.values()) assert.is(holders.length, 1);
    for (const w of winners)
      assert.equal(recorded.get(w.allocation?.addresses[0] as string), [w.allocation?.owner.uid]);
  }
});

it('kill -9 between allocation and status write, then restart: no leak, no duplicate', async () => {
  const ns = await namespace();
  const pools: PoolSpec[] = [{ name: 'k', addresses: ['10.13.0.0/28'] }];
  const svcs = await Promise.all(Array.from({ length: 6 }, (_, i) => service(ns, `k-${i}`)));
  const owners = svcs.map(ownerOf);
  // Case 1: the allocation answered, the process died before anyone wrote the status.
  let proc = await new IpamProcess().start(ns, pools);
  const first = await proc.call('allocate', owners[0] as AllocationOwner);
  assert.ok(first.ok);
  await proc.kill9();
  // Case 2: killed at random moments while allocations are in flight.
  for (let i = 1; i < owners.length; i++) {
    proc = await new IpamProcess().start(ns, pools);
    proc.fire('allocate', owners[i] as AllocationOwner);
    await new Promise((r) => setTimeout(r, i * 7));
    await proc.kill9();
  }
  // Meanwhile one owner was deleted: its claim (if any) must be reclaimed, not leaked.
  await core().deleteNamespacedService({ namespace: ns, name: 'k-5' });
  const restarted = ipam(ns, pools);
  await restarted.start();
  const before = await claimMap(ns);
  for (const holders of before.values()) {
    assert.is(holders.length, 1);
    assert.not.equal(holders[0], owners[5]?.uid, 'the deleted owner holds nothing');
  }
  // The owner whose allocation was answered gets the same address back.
  const again = await restarted.allocate(owners[0] as AllocationOwner);
  assert.equal(again.addresses, first.allocation?.addresses);
  const all: string[] = [];
  for (const o of owners.slice(0, 5)) {
    const got = await restarted.allocate(o);
    await writeStatus(svcs[owners.indexOf(o)] as V1Service, got.addresses[0] as string);
    all.push(...got.addresses);
  }
  assert.is(new Set(all).size, 5, 'no duplicates');
  const after = await claimMap(ns);
  assert.is(after.size, 5, 'exactly one claim per live owner: no leak');
  for (const o of owners.slice(0, 5)) {
    assert.equal(after.get(restarted.get(o)?.addresses[0] as string), [o.uid]);
  }
});

it('restart with 1,000 existing assignments: all imported, none re-assigned', async () => {
  const ns = await namespace();
  const pools: PoolSpec[] = [{ name: 'big', addresses: ['10.14.0.0/22'] }]; // 1024 addresses
  const assigned = new Map<string, AllocationOwner>();
  const ips = Array.from({ length: 1000 }, (_, i) => `10.14.${i >> 8}.${i & 255}`);
  // 990 Services with status (as the original controller or another tool left them) ...
  const batch = 25;
  for (let i = 0; i < 990; i += batch) {
    const made = await Promise.all(
      ips.slice(i, Math.min(i + batch, 990)).map((ip, j) => service(ns, `old-${i + j}`, ip)),
    );
    for (const s of made) assigned.set(s.status?.loadBalancer?.ingress?.[0]?.ip as string, ownerOf(s));
  }
  // ... and 10 original-style ConfigMaps with bind-ip.
  for (let i = 990; i < 1000; i++) {
    const cm = await core().createNamespacedConfigMap({
      namespace: ns,
      body: {
        metadata: { name: `lb-${i}`, labels: { app: 'loadbalancer' } },
        data: { namespace: ns, 'target-service-name': `t-${i}`, 'bind-ip': ips[i] as string, status: 'SUCCESS' },
      },
    });
    const md = cm.metadata ?? {};
    assigned.set(ips[i] as string, {
      kind: 'ConfigMap',
      namespace: ns,
      name: md.name as string,
      uid: md.uid as string,
    });
  }
  const restarted = ipam(ns, pools);
  await restarted.start();
  const recorded = await claimMap(ns);
  assert.is(recorded.size, 1000, 'every assignment has a claim');
  for (const [ip, owner] of assigned) {
    assert.equal(recorded.get(ip), [owner.uid]);
    assert.equal(restarted.get(owner)?.addresses, [ip]);
  }
  // Existing owners keep their addresses; new owners get the 24 free ones, then exhaustion.
  for (const [ip, owner] of [...assigned].slice(0, 50)) {
    assert.equal((await restarted.allocate(owner)).addresses, [ip]);
  }
  const fresh: string[] = [];
  for (let i = 0; i < 24; i++) {
    const got = await restarted.allocate(ownerOf(await service(ns, `new-${i}`)));
    assert.not.ok(assigned.has(got.addresses[0] as string), `${got.addresses[0]} re-assigned`);
    fresh.push(got.addresses[0] as string);
  }
  assert.is(new Set(fresh).size, 24);
  assert.is(await code(restarted.allocate(ownerOf(await service(ns, 'one-too-many')))), 'POOL_EXHAUSTED');
});

it('bad configuration and bad requests: typed errors, existing allocations untouched', async () => {
  const ns = await namespace();
  const pools: PoolSpec[] = [{ name: 'ok', addresses: ['10.15.0.0/29'] }];
  const one = ipam(ns, pools);
  await one.start();
  const a = ownerOf(await service(ns, 'a'));
  const got = await one.allocate(a);
  const before = await claimMap(ns);
  // A loader that returns a bad configuration fails start() with INVALID_CONFIG.
  const bad = new KubeIpam({
    kubeConfig: cp().kubeConfig,
    namespace: ns,
    pools: async () => parsePoolConfig({ pools: [{ name: 'x', addresses: ['10.15.0.9-10.15.0.1'] }] }),
  });
  assert.is(await code(bad.start()), 'INVALID_CONFIG');
  assert.not.ok(bad.ready);
  // Pools from a ConfigMap: missing, invalid, then valid.
  const fromConfigMap = () =>
    new KubeIpam({
      kubeConfig: cp().kubeConfig,
      namespace: ns,
      pools: () => loadPoolConfigMap(cp().kubeConfig, ns, 'pools'),
    });
  assert.is(await code(fromConfigMap().start()), 'INVALID_CONFIG');
  await core().createNamespacedConfigMap({
    namespace: ns,
    body: {
      metadata: { name: 'pools' },
      data: { 'pools.yaml': 'pools:\n  - name: ok\n    addresses: [10.15.0.0/29, 10.15.0.4]\n' },
    },
  });
  const overlapping = await loadPoolConfigMap(cp().kubeConfig, ns, 'pools').catch((e: unknown) => e);
  assert.ok(isIpamError(overlapping) && overlapping.code === 'INVALID_CONFIG');
  assert.match((overlapping as Error).message, /addresses\[1\] "10\.15\.0\.4" overlaps/);
  await core().replaceNamespacedConfigMap({
    namespace: ns,
    name: 'pools',
    body: {
      metadata: { name: 'pools' },
      data: { 'pools.yaml': 'pools:\n  - name: ok\n    addresses: [10.15.0.0/29]\n' },
    },
  });
  const viaConfigMap = fromConfigMap();
  await viaConfigMap.start();
  assert.equal(viaConfigMap.get(a)?.addresses, got.addresses, 'same claims, same answer');
  const reload = async () => one.setPools(parsePoolConfig({ pools: [{ name: 'x', addresses: ['nope'] }] }));
  assert.is(await code(reload()), 'INVALID_CONFIG');
  assert.is(one.allocator.pools[0]?.name, 'ok', 'the old pools stay');
  const requests: Array<[object, string]> = [
    [{ addresses: ['10.15.0.300'] }, 'INVALID_REQUEST'],
    [{ addresses: ['192.0.2.1'] }, 'ADDRESS_OUTSIDE_POOLS'],
    [{ pool: 'missing' }, 'NO_MATCHING_POOL'],
    [{ ipFamilies: ['IPv6'] }, 'FAMILY_UNAVAILABLE'],
    [{ ports: [{ protocol: 'TCP', port: -1 }] }, 'INVALID_REQUEST'],
  ];
  for (const [request, expected] of requests) {
    assert.is(await code(one.allocate(a, request)), expected, JSON.stringify(request));
    assert.equal(one.get(a)?.addresses, got.addresses);
  }
  const b = ownerOf(await service(ns, 'b'));
  assert.is(await code(one.allocate(b, { addresses: got.addresses })), 'ADDRESS_TAKEN');
  assert.is(await code(one.allocate({ ...b, uid: '' })), 'INVALID_REQUEST');
  assert.equal(await claimMap(ns), before, 'nothing changed in the API');

  // Bad input in the cluster does not stop an import: an invalid sharing-key annotation is
  // ignored (the address is imported as exclusive), a claim whose name does not match its
  // address is skipped.
  const odd = await service(ns, 'odd', '10.15.0.6', { 'klb.io/allow-shared-ip': 'not a valid key!' });
  await custom().createNamespacedCustomObject({
    group: ADDRESS_CLAIM_GROUP,
    version: ADDRESS_CLAIM_VERSION,
    namespace: ns,
    plural: ADDRESS_CLAIM_PLURAL,
    body: {
      apiVersion: 'ipam.klb.io/v1alpha1',
      kind: 'AddressClaim',
      metadata: { name: 'ipv4-10-15-0-5' },
      spec: { address: '10.15.0.4', family: 'IPv4', holders: [{ ...b, kind: 'Service' }] },
    },
  });
  // A Service whose status shows an address claimed by another owner (a duplicate left by
  // some earlier tool) does not get it: the claim wins.
  const dup = await service(ns, 'dup', got.addresses[0]);
  const restarted = ipam(ns, pools);
  await restarted.start();
  assert.is(restarted.get(ownerOf(dup)), undefined);
  const moved = await restarted.allocate(ownerOf(dup));
  assert.not.equal(moved.addresses, got.addresses);
  assert.equal((await claimMap(ns)).get(got.addresses[0] as string), [a.uid]);
  assert.equal(restarted.get(ownerOf(odd))?.addresses, ['10.15.0.6']);
  assert.equal(restarted.get(a)?.addresses, got.addresses);
  assert.is(restarted.get(b), undefined, 'the mismatched claim was not imported');
});

test.run();
