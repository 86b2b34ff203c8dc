import { isRetryAfterError, type LoadBalancerSpec } from '@klb/core';
import { type OpenStack, requireComponents, startOpenStack } from '@klb/testing';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { KeystoneAuthError, type OctaviaBackend, OctaviaPendingError } from '../src/index.js';
import { backendFor, ctx, drive, specFor, userConfig } from './helpers.js';

const test = suite('octavia backend (real Keystone + Octavia API)');
const missing = requireComponents('keystone', 'octavia');
const it = missing ? test.skip : test;

let stack: OpenStack | undefined;
if (!missing) {
  stack = await startOpenStack({ provisioningDelaySeconds: 0.2 });
  test.after(async () => {
    await stack?.stop();
  });
}
const os = (): OpenStack => stack as OpenStack;

async function raw<T>(method: string, path: string, body?: unknown, who: 'user' | 'admin' = 'user'): Promise<T> {
  const { token } = await os().issueToken(who);
  const res = await fetch(`${os().octaviaDirectUrl}${path}`, {
    method,
    headers: { 'content-type': 'application/json', 'x-auth-token': token },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return (res.status === 204 ? {} : await res.json()) as T;
}

interface Lb {
  id: string;
  name: string;
  provisioning_status: string;
  vip_address: string;
  tags: string[];
  flavor_id: string | null;
  availability_zone: string | null;
}

async function lbsNamed(name: string): Promise<Lb[]> {
  return (await raw<{ loadbalancers: Lb[] }>('GET', `/v2/lbaas/loadbalancers?name=${encodeURIComponent(name)}`))
    .loadbalancers;
}

async function shape(lbId: string) {
  const listeners = (
    await raw<{ listeners: Array<Record<string, unknown>> }>('GET', `/v2/lbaas/listeners?loadbalancer_id=${lbId}`)
  ).listeners;
  const pools = (await raw<{ pools: Array<Record<string, unknown>> }>('GET', `/v2/lbaas/pools?loadbalancer_id=${lbId}`))
    .pools;
  const members: Record<string, Array<Record<string, unknown>>> = {};
  const monitors: Record<string, Record<string, unknown>> = {};
  for (const pool of pools) {
    members[pool.id as string] = (
      await raw<{ members: Array<Record<string, unknown>> }>('GET', `/v2/lbaas/pools/${pool.id}/members`)
    ).members;
    if (pool.healthmonitor_id) {
      monitors[pool.id as string] = (
        await raw<{ healthmonitor: Record<string, unknown> }>(
          'GET',
          `/v2/lbaas/healthmonitors/${pool.healthmonitor_id}`,
        )
      ).healthmonitor;
    }
  }
  return { listeners, pools, members, monitors };
}

async function writes(): Promise<Array<{ method: string; path: string }>> {
  return (await os().provider.requests()).filter((r) => r.method !== 'GET');
}

async function converge(backend: OctaviaBackend, spec: LoadBalancerSpec) {
  return (await drive(() => backend.ensure(spec, ctx()))).value;
}

it('full lifecycle of a two-port Service: one fully populated create, status, cascade delete', async () => {
  const backend = backendFor(os());
  const spec = specFor('lifecycle', [80, 443]);
  await os().provider.reset();
  const first = await backend.ensure(spec, ctx()).catch((e: unknown) => e);
  assert.instance(first, OctaviaPendingError, 'the first ensure creates and asks to be requeued');
  const status = await converge(backend, spec);
  const [lb] = await lbsNamed(backend.loadBalancerName(spec.ref));
  assert.ok(lb);
  assert.is(status.ingress[0]?.ip, lb.vip_address, 'the VIP Octavia allocated goes to status');
  assert.is(status.ingress[0]?.ipMode, 'Proxy', 'the amphora proxies: kube-proxy must not short-circuit it');
  assert.equal(status.ingress[0]?.ports, [
    { port: 80, protocol: 'TCP' },
    { port: 443, protocol: 'TCP' },
  ]);
  assert.ok(lb.tags.includes('klb-ref=service/octavia/lifecycle'));
  assert.ok(lb.tags.includes('klb-cluster=test'));
  assert.equal(
    (await writes()).map((w) => `${w.method} ${w.path}`),
    ['POST /v2/lbaas/loadbalancers'],
    'everything in one create call',
  );
  const s = await shape(lb.id);
  assert.equal(
    s.listeners.map((l) => l.protocol_port as number).sort((a, b) => a - b),
    [80, 443],
  );
  for (const pool of s.pools) {
    assert.equal(
      (s.members[pool.id as string] ?? []).map((m) => `${m.address}:${m.protocol_port}`).sort(),
      pool.name === 'tcp-80' ? ['192.0.2.11:30080', '192.0.2.12:30080'] : ['192.0.2.11:30443', '192.0.2.12:30443'],
    );
    assert.is(s.monitors[pool.id as string]?.type, 'TCP');
  }
  assert.ok((await backend.list(ctx())).some((r) => r.id === spec.ref.id));

  await os().provider.reset();
  await converge(backend, spec);
  assert.equal(await writes(), [], 'a resync with nothing changed writes nothing');

  await drive(() => backend.remove(spec.ref, ctx()));
  assert.equal(await lbsNamed(backend.loadBalancerName(spec.ref)), []);
  assert.not.ok((await backend.list(ctx())).some((r) => r.id === spec.ref.id));
  await backend.remove(spec.ref, ctx());
});

it('HTTP settings it does not apply are said in the status message', async () => {
  const backend = backendFor(os());
  const spec = specFor('httpset', [80]);
  const http = { maxBodyBytes: 16 * 1024 * 1024, readTimeoutSeconds: 30 };
  const status = await converge(backend, { ...spec, options: { ...spec.options, http } });
  assert.match(
    String(status.message),
    /^Octavia load balancer \S+ ACTIVE\/\w+; request body size, read timeout not applied: the Octavia backend has no HTTP proxy settings$/,
  );
  await drive(() => backend.remove(spec.ref, ctx()));
});

it('ids too long for a 255-character tag: two objects whose long names share a prefix get two load balancers', async () => {
  const backend = backendFor(os());
  // ConfigMap names may have 253 characters: `klb-ref=configmap/<ns>/<name>` would not fit in a tag.
  const stem = `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}`;
  const specs = ['x', 'y'].map((last) => {
    const base = specFor(`${stem}${last}`, [80]);
    const name = `${stem}${last}`;
    return { ...base, ref: { ...base.ref, id: `configmap/octavia/${name}`, kind: 'ConfigMap' as const, name } };
  });
  const ids: string[] = [];
  for (const spec of specs) {
    await converge(backend, spec);
    const lbs = await lbsNamed(backend.loadBalancerName(spec.ref));
    assert.is(lbs.length, 1, 'one load balancer per object, found by its own name');
    const lb = lbs[0] as Lb;
    assert.ok(lb.name.length <= 255 && lb.tags.every((t) => t.length <= 255), 'name and tags within 255 characters');
    ids.push(lb.id);
  }
  assert.is(new Set(ids).size, 2, 'two distinct load balancers');
  for (const spec of specs) await drive(() => backend.remove(spec.ref, ctx()));
  for (const spec of specs) assert.equal(await lbsNamed(backend.loadBalancerName(spec.ref)), []);
});

it('node changes: one batch member PUT per pool and nothing else', async () => {
  const backend = backendFor(os());
  const spec = specFor('nodes', [80, 8080]);
  await converge(backend, spec);
  await os().provider.reset();
  const changed = specFor('nodes', [80, 8080], ['192.0.2.12', '192.0.2.13', '192.0.2.14']);
  const { retries } = await drive(() => backend.ensure(changed, ctx()));
  const w = await writes();
  assert.is(w.length, 2, JSON.stringify(w));
  assert.ok(w.every((x) => x.method === 'PUT' && /^\/v2\/lbaas\/pools\/[^/]+\/members$/.test(x.path)));
  assert.is.not(w[0]?.path, w[1]?.path, 'one per pool');
  assert.ok(retries >= 2, 'each mutation was followed by a requeue, not a wait');
  const [lb] = await lbsNamed(backend.loadBalancerName(spec.ref));
  const s = await shape((lb as Lb).id);
  for (const pool of s.pools) {
    assert.equal((s.members[pool.id as string] ?? []).map((m) => m.address).sort(), [
      '192.0.2.12',
      '192.0.2.13',
      '192.0.2.14',
    ]);
  }
  await drive(() => backend.remove(spec.ref, ctx()));
});

it('ports added and removed, options: source ranges, PROXY, timeouts, affinity, HTTP health check port', async () => {
  const backend = backendFor(os());
  const spec = specFor('options', [80]);
  await converge(backend, spec);
  const base = specFor('options', [80, 9000], ['192.0.2.21']);
  const changed: LoadBalancerSpec = {
    ...base,
    upstreams: base.upstreams.map((u) => ({
      ...u,
      healthCheck: {
        type: 'http',
        port: 32100,
        path: '/healthz',
        intervalSeconds: 4,
        timeoutSeconds: 2,
        unhealthyThreshold: 3,
        healthyThreshold: 1,
      },
    })),
    options: {
      algorithm: 'least-connections',
      proxyProtocol: true,
      sessionAffinity: { timeoutSeconds: 600 },
      sourceRanges: ['10.1.2.3/8', '192.168.0.0/16'],
      timeouts: { connectSeconds: 3, idleSeconds: 120 },
    },
  };
  await converge(backend, changed);
  const [lb] = await lbsNamed(backend.loadBalancerName(spec.ref));
  const s = await shape((lb as Lb).id);
  assert.is(s.listeners.length, 2);
  for (const l of s.listeners) {
    assert.equal([...(l.allowed_cidrs as string[])].sort(), ['10.0.0.0/8', '192.168.0.0/16']);
    assert.is(l.timeout_member_connect, 3000);
    assert.is(l.timeout_client_data, 120000);
  }
  assert.is(s.pools.length, 2, 'the old TCP pool was replaced, not left behind');
  for (const pool of s.pools) {
    assert.is(pool.protocol, 'PROXY');
    assert.is(pool.lb_algorithm, 'LEAST_CONNECTIONS');
    assert.equal(pool.session_persistence && (pool.session_persistence as { type: string }).type, 'SOURCE_IP');
    const monitor = s.monitors[pool.id as string];
    assert.is(monitor?.type, 'HTTP');
    assert.is(monitor?.url_path, '/healthz');
    assert.equal(
      (s.members[pool.id as string] ?? []).map((m) => [m.address, m.monitor_port]),
      [['192.0.2.21', 32100]],
    );
  }
  await os().provider.reset();
  await converge(backend, changed);
  assert.equal(await writes(), [], 'converged: no writes');
  // Back to one port without options: the removed port's listener and pool go away.
  await converge(backend, spec);
  const back = await shape((lb as Lb).id);
  assert.equal(
    back.listeners.map((l) => [l.protocol_port, l.allowed_cidrs ?? []]),
    [[80, []]],
  );
  assert.equal(
    back.pools.map((p) => p.protocol),
    ['TCP'],
  );
  await drive(() => backend.remove(spec.ref, ctx()));
});

it('a load balancer that goes ERROR is deleted and created again', async () => {
  const backend = backendFor(os());
  const spec = specFor('error', [80]);
  await converge(backend, spec);
  const name = backend.loadBalancerName(spec.ref);
  const [before] = await lbsNamed(name);
  await os().provider.failNextProvisioning(name);
  await converge(backend, specFor('error', [80], ['192.0.2.31']));
  const after = await lbsNamed(name);
  assert.is(after.length, 1, 'exactly one load balancer');
  assert.is.not(after[0]?.id, before?.id, 'a new one');
  assert.is(after[0]?.provisioning_status, 'ACTIVE');
  const transitions = await os().provider.transitions();
  assert.ok(transitions.some((t) => t.id === before?.id && t.to === 'ERROR'));
  await drive(() => backend.remove(spec.ref, ctx()));
});

it('recreateOnError: false leaves an ERROR load balancer alone with a clear error', async () => {
  const backend = backendFor(os(), { recreateOnError: false });
  const spec = specFor('error-kept', [80]);
  await os().provider.failNextProvisioning(backend.loadBalancerName(spec.ref));
  const err = await drive(() => backend.ensure(spec, ctx())).catch((e: unknown) => e);
  assert.is((err as { code?: string }).code, 'OCTAVIA_LB_ERROR');
  const [lb] = await lbsNamed(backend.loadBalancerName(spec.ref));
  assert.is(lb?.provisioning_status, 'ERROR', 'not deleted');
  await drive(() => backend.remove(spec.ref, ctx()));
});

it('while one load balancer is PENDING_UPDATE, ensure requeues it and others keep converging', async () => {
  const backend = backendFor(os());
  const slow = specFor('slow', [80]);
  await converge(backend, slow);
  const slowName = backend.loadBalancerName(slow.ref);
  await os().provider.pause(true);
  // A mutation puts it in PENDING_UPDATE, and it stays there while the provider is paused.
  const changed = specFor('slow', [80], ['192.0.2.41']);
  assert.ok(isRetryAfterError(await backend.ensure(changed, ctx()).catch((e: unknown) => e)));
  for (let i = 0; i < 3; i++) {
    const again = await backend.ensure(changed, ctx()).catch((e: unknown) => e);
    assert.instance(again, OctaviaPendingError);
    assert.is((again as OctaviaPendingError).provisioningStatus, 'PENDING_UPDATE');
  }
  // Immutable: a direct child write is refused with 409, which is a RetryAfterError too.
  const [lb] = await lbsNamed(slowName);
  const conflict = await backend.client
    .createListener({ loadbalancer_id: (lb as Lb).id, protocol: 'TCP', protocol_port: 81 })
    .catch((e: unknown) => e);
  assert.ok(isRetryAfterError(conflict));
  assert.is((conflict as { code: string }).code, 'OCTAVIA_IMMUTABLE');
  // Only the slow one is held: another Service converges once the provider works again, while
  // the slow load balancer is given a long provisioning time.
  // Long enough that the other converges first even on a loaded machine (the check is of order, not speed).
  await os().provider.setLoadBalancerDelay(slowName, 20);
  await os().provider.pause(false);
  const other = specFor('fast', [80]);
  await converge(backend, other);
  const [slowNow] = await lbsNamed(slowName);
  assert.is(slowNow?.provisioning_status, 'PENDING_UPDATE', 'the other converged while the slow one was pending');
  await converge(backend, changed);
  await os().provider.setLoadBalancerDelay(slowName, null);
  await drive(() => backend.remove(slow.ref, ctx()));
  await drive(() => backend.remove(other.ref, ctx()));
});

it('a new controller mid-provisioning adopts the load balancer: no duplicates', async () => {
  const spec = specFor('restart', [80, 81]);
  const first = backendFor(os());
  await os().provider.reset();
  assert.ok(isRetryAfterError(await first.ensure(spec, ctx()).catch((e: unknown) => e)));
  await first.close();
  const second = backendFor(os());
  const status = await converge(second, spec);
  const lbs = await lbsNamed(second.loadBalancerName(spec.ref));
  assert.is(lbs.length, 1);
  assert.is(status.ingress[0]?.ip, lbs[0]?.vip_address);
  assert.is((await writes()).filter((w) => w.method === 'POST').length, 1, 'one create in total');
  await drive(() => second.remove(spec.ref, ctx()));
});

it('bad credentials: a clear error from ensure, list and remove; nothing is deleted', async () => {
  const good = backendFor(os());
  const spec = specFor('creds', [80]);
  await converge(good, spec);
  const bad = backendFor(os(), {
    config: userConfig(os(), {
      credentials: { type: 'password', username: 'klb', password: 'wrong', projectName: 'klb' },
    }),
  });
  await os().provider.reset();
  for (const call of [() => bad.ensure(spec, ctx()), () => bad.remove(spec.ref, ctx()), () => bad.list(ctx())] as Array<
    () => Promise<unknown>
  >) {
    const err = await call().catch((e: unknown) => e);
    assert.instance(err, KeystoneAuthError);
    assert.match((err as Error).message, /Keystone refused the credentials of user klb/);
  }
  assert.equal(await writes(), []);
  assert.is((await lbsNamed(good.loadBalancerName(spec.ref))).length, 1, 'still there');
  await drive(() => good.remove(spec.ref, ctx()));
});

it('never touches load balancers that are not its own; list() throws on a read failure', async () => {
  const backend = backendFor(os());
  const spec = specFor('mine', [80]);
  // Same name, no KLB tags (someone else's), and one of another cluster.
  const foreign = await raw<{ loadbalancer: Lb }>('POST', '/v2/lbaas/loadbalancers', {
    loadbalancer: { name: backend.loadBalancerName(spec.ref), vip_subnet_id: os().subnetId },
  });
  const otherCluster = backendFor(os(), { clusterName: 'other' });
  await converge(otherCluster, spec);
  await converge(backend, spec);
  const refs = await backend.list(ctx());
  assert.equal(refs.filter((r) => r.id === spec.ref.id).length, 1);
  await drive(() => backend.remove(spec.ref, ctx()));
  const left = await raw<{ loadbalancers: Lb[] }>('GET', '/v2/lbaas/loadbalancers');
  assert.ok(
    left.loadbalancers.some((l) => l.id === foreign.loadbalancer.id),
    'the foreign one is untouched',
  );
  assert.ok(
    (await otherCluster.list(ctx())).some((r) => r.id === spec.ref.id),
    "the other cluster's is untouched",
  );
  await os().provider.fail503({ count: 1, method: 'GET', pathContains: '/loadbalancers' });
  const err = await backend.list(ctx()).catch((e: unknown) => e);
  assert.ok(isRetryAfterError(err), 'list() throws on a read failure');
  await drive(() => otherCluster.remove(spec.ref, ctx()));
  await raw('DELETE', `/v2/lbaas/loadbalancers/${foreign.loadbalancer.id}?cascade=true`);
});

it('cloud-provider naming adopts the load balancer the OpenStack cloud provider created', async () => {
  const backend = backendFor(os(), { naming: 'cloud-provider' });
  const spec = specFor('legacy', [80]);
  const name = 'kube_service_test_octavia_legacy';
  assert.is(backend.loadBalancerName(spec.ref), name);
  const created = await raw<{ loadbalancer: Lb }>('POST', '/v2/lbaas/loadbalancers', {
    loadbalancer: {
      name,
      vip_subnet_id: os().subnetId,
      listeners: [
        {
          name: 'listener_0_kube_service_test_octavia_legacy',
          protocol: 'TCP',
          protocol_port: 80,
          default_pool: { name: 'pool_0', protocol: 'TCP', lb_algorithm: 'ROUND_ROBIN', members: [] },
        },
      ],
    },
  });
  const status = await converge(backend, spec);
  const lbs = await lbsNamed(name);
  assert.is(lbs.length, 1, 'adopted, not duplicated');
  assert.is(lbs[0]?.id, created.loadbalancer.id);
  assert.ok(lbs[0]?.tags.includes('klb-ref=service/octavia/legacy'));
  assert.is(status.ingress[0]?.ip, created.loadbalancer.vip_address);
  const s = await shape(created.loadbalancer.id);
  assert.is(Object.values(s.members)[0]?.length, 2, 'members reconciled');
  await drive(() => backend.remove(spec.ref, ctx()));
});

it('flavor and availability zone options are used at create', async () => {
  const profile = await raw<{ flavorprofile: { id: string } }>(
    'POST',
    '/v2/lbaas/flavorprofiles',
    { flavorprofile: { name: 'klb-test', provider_name: 'noop_driver', flavor_data: '{}' } },
    'admin',
  );
  const flavor = await raw<{ flavor: { id: string } }>(
    'POST',
    '/v2/lbaas/flavors',
    { flavor: { name: 'klb-small', flavor_profile_id: profile.flavorprofile.id, enabled: true } },
    'admin',
  );
  const azProfile = await raw<{ availability_zone_profile: { id: string } }>(
    'POST',
    '/v2/lbaas/availabilityzoneprofiles',
    { availability_zone_profile: { name: 'klb-az', provider_name: 'noop_driver', availability_zone_data: '{}' } },
    'admin',
  );
  await raw(
    'POST',
    '/v2/lbaas/availabilityzones',
    {
      availability_zone: {
        name: 'az-1',
        availability_zone_profile_id: azProfile.availability_zone_profile.id,
        enabled: true,
      },
    },
    'admin',
  );
  const backend = backendFor(os(), { flavorId: flavor.flavor.id, availabilityZone: 'az-1' });
  const spec = specFor('flavored', [80]);
  await converge(backend, spec);
  const [lb] = await lbsNamed(backend.loadBalancerName(spec.ref));
  assert.is(lb?.flavor_id, flavor.flavor.id);
  assert.is(lb?.availability_zone, 'az-1');
  await drive(() => backend.remove(spec.ref, ctx()));
});

it('invalid specs are TerminalErrors and create nothing', async () => {
  const backend = backendFor(os());
  const base = specFor('invalid', [80]);
  const bad: LoadBalancerSpec[] = [
    { ...base, listeners: [{ ...(base.listeners[0] as LoadBalancerSpec['listeners'][number]), protocol: 'HTTPS' }] },
    { ...base, options: { ...base.options, sourceRanges: ['not-a-cidr'] } },
    { ...base, listeners: [...base.listeners, { name: 'dup', port: 80, protocol: 'HTTP', upstream: 'tcp-80' }] },
  ];
  await os().provider.reset();
  for (const spec of bad) {
    const err = await backend.ensure(spec, ctx()).catch((e: unknown) => e);
    assert.is((err as Error).name, 'TerminalError', String(err));
  }
  const lbErr = await backend.ensure({ ...base, requestedAddresses: ['not-an-ip'] }, ctx()).catch((e: unknown) => e);
  assert.is((lbErr as { code?: string }).code, 'OCTAVIA_VALIDATION', 'Octavia itself rejects a bad VIP address');
  assert.equal(
    (await writes()).filter((w) => w.path !== '/v2/lbaas/loadbalancers'),
    [],
  );
  assert.equal(await lbsNamed(backend.loadBalancerName(base.ref)), []);
});

test.run();
