import { F5Backend, IControlClient, isF5Error } from '@klb/backend-f5';
import { type BackendContext, isTerminalError, type LoadBalancerSpec, silentLogger } from '@klb/core';
import { type F5Emulator, requireComponents, startF5Emulator } from '@klb/testing';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { makeSpec } from './helpers.js';

const test = suite('F5 backend');
const missing = requireComponents('openssl');
const it = missing ? test.skip : test;
let f5!: F5Emulator;
if (!missing) {
  f5 = await startF5Emulator({ partitions: ['klb'] });
  test.after(async () => {
    await f5.stop();
  });
}

const ctx: BackendContext = { signal: new AbortController().signal, log: silentLogger };
const backends: F5Backend[] = [];
function backend(options: { drainSeconds?: number; retries?: number } = {}): F5Backend {
  const client = new IControlClient({
    host: f5.host,
    username: 'admin',
    password: 'admin',
    ca: f5.ca,
    retryBaseDelayMs: 5,
    ...(options.retries !== undefined ? { retries: options.retries } : {}),
  });
  const b = new F5Backend({
    client,
    partition: 'klb',
    snapshotMaxAgeMs: 0,
    ...(options.drainSeconds ? { drainSeconds: options.drainSeconds } : {}),
  });
  backends.push(b);
  return b;
}
test.after.each(async () => {
  f5.faults.clear();
  for (const b of backends.splice(0)) await b.close();
});

function memberNames(pool: Record<string, unknown> | undefined): string[] {
  return ((pool?.members ?? []) as { name: string }[]).map((m) => m.name);
}

async function rejects(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

function objectsOf(prefix: string) {
  const s = f5.state();
  const has = (o: { fullPath: string }) => o.fullPath.startsWith(`/klb/${prefix}`);
  return {
    virtuals: s.virtuals.filter(has),
    pools: s.pools.filter(has),
    monitors: [...s.monitors.tcp, ...s.monitors.http].filter(has),
  };
}

it('ensure creates a virtual, pool and monitor per listener, marked as KLB, in one transaction', async () => {
  const b = backend();
  const spec = makeSpec({ name: 'create', ports: [80, 443, 8080], address: '192.0.2.1' });
  const mark = f5.calls.length;
  const status = await b.ensure(spec, ctx);
  assert.is(f5.calls.counts(mark).writes, 1, 'one transaction commit');
  assert.equal(status.ingress[0]?.ip, '192.0.2.1');
  assert.is(status.ingress[0]?.ipMode, 'Proxy', 'the virtual server proxies: kube-proxy must not short-circuit it');
  assert.equal(
    status.ingress[0]?.ports?.map((p) => p.port),
    [80, 443, 8080],
  );
  const o = objectsOf('klb_svc_default_create_');
  assert.is(o.virtuals.length, 3);
  assert.is(o.pools.length, 3);
  assert.is(o.monitors.length, 3);
  const vs = o.virtuals.find((v) => v.name === 'klb_svc_default_create_tcp-80');
  assert.is(vs?.destination, '/klb/192.0.2.1:80');
  assert.is(vs?.pool, '/klb/klb_svc_default_create_tcp-80');
  assert.is(vs?.description, 'klb:klb service/default/create');
  assert.equal(vs?.sourceAddressTranslation, { type: 'automap' });
  const pool = o.pools.find((p) => p.name === 'klb_svc_default_create_tcp-80');
  assert.equal(memberNames(pool), ['10.0.0.1:30080', '10.0.0.2:30080']);
  assert.is(pool?.loadBalancingMode, 'round-robin');
  assert.is(pool?.monitor, '/klb/klb_svc_default_create_tcp-80_tcp');
});

it('HTTP settings it does not apply are said in the status message', async () => {
  const b = backend();
  const spec = makeSpec({ name: 'httpset', ports: [80], address: '192.0.2.40' });
  assert.not.match(String((await b.ensure(spec, ctx)).message), 'not applied');
  const http = { maxBodyBytes: 16 * 1024 * 1024, buffering: false };
  const status = await b.ensure({ ...spec, options: { ...spec.options, http } }, ctx);
  assert.match(
    String(status.message),
    /^1 virtual server\(s\), 2 member\(s\) in \/klb; request body size, buffering not applied: the F5 backend has no HTTP proxy settings$/,
  );
});

it('ensure with nothing changed makes zero writes', async () => {
  const b = backend();
  const spec = makeSpec({ name: 'noop', ports: [80, 81], address: '192.0.2.2' });
  await b.ensure(spec, ctx);
  const mark = f5.calls.length;
  await b.ensure(spec, ctx);
  await backend().ensure(spec, ctx);
  const counts = f5.calls.counts(mark);
  assert.is(counts.writes, 0);
  assert.is(counts.queued, 0);
  assert.is(counts.transaction, 0);
});

it('a node added changes the members with one PATCH of the pool', async () => {
  const b = backend();
  await b.ensure(makeSpec({ name: 'members', address: '192.0.2.3', nodes: ['10.0.1.1', '10.0.1.2'] }), ctx);
  await b.ensure(makeSpec({ name: 'members', address: '192.0.2.3', nodes: ['10.0.1.1', '10.0.1.2', '10.0.0.1'] }), ctx);
  const mark = f5.calls.length;
  await b.ensure(makeSpec({ name: 'members', address: '192.0.2.3', nodes: ['10.0.1.1', '10.0.0.1'] }), ctx);
  const calls = f5.calls
    .records()
    .slice(mark)
    .filter((r) => r.method !== 'GET');
  assert.is(`${calls[0]?.method} ${calls[0]?.path}`, 'PATCH /mgmt/tm/ltm/pool/~klb~klb_svc_default_members_tcp-80');
  // Then the node no member uses any more (KLB created it) is deleted, in one transaction.
  assert.equal(
    calls.slice(1).map((c) => c.method),
    ['POST', 'DELETE', 'PATCH'],
  );
  assert.ok(calls[2]?.path.endsWith('/node/~klb~10.0.1.2'));
  assert.not.ok(f5.state().nodes.some((n) => n.address === '10.0.1.2'));
  const pool = objectsOf('klb_svc_default_members_').pools[0];
  assert.equal(memberNames(pool), ['10.0.0.1:30080', '10.0.1.1:30080']);
});

it('only ready targets become members', async () => {
  const b = backend();
  await b.ensure(
    makeSpec({ name: 'ready', address: '192.0.2.4', nodes: ['10.0.0.1', '10.0.0.2'], notReady: ['10.0.0.2'] }),
    ctx,
  );
  const pool = objectsOf('klb_svc_default_ready_').pools[0];
  assert.equal(memberNames(pool), ['10.0.0.1:30080']);
});

it('drift is repaired: a changed pool and a deleted virtual come back', async () => {
  const b = backend();
  const spec = makeSpec({ name: 'drift', address: '192.0.2.5' });
  await b.ensure(spec, ctx);
  const c = new IControlClient({ host: f5.host, username: 'admin', password: 'admin', ca: f5.ca });
  await c.request('PATCH', '/mgmt/tm/ltm/pool/~klb~klb_svc_default_drift_tcp-80', {
    body: { loadBalancingMode: 'least-connections-member' },
  });
  await c.request('DELETE', '/mgmt/tm/ltm/virtual/~klb~klb_svc_default_drift_tcp-80');
  await c.close();
  await b.ensure(spec, ctx);
  const o = objectsOf('klb_svc_default_drift_');
  assert.is(o.virtuals.length, 1);
  assert.is(o.pools[0]?.loadBalancingMode, 'round-robin');
});

it('remove deletes everything in dependency order, including the nodes KLB created; list follows', async () => {
  const b = backend();
  const spec = makeSpec({ name: 'gone', ports: [80, 81], address: '192.0.2.6', nodes: ['10.0.9.1', '10.0.9.2'] });
  await b.ensure(spec, ctx);
  assert.ok((await b.list(ctx)).some((r) => r.id === 'service/default/gone'));
  await b.remove(spec.ref, ctx);
  const o = objectsOf('klb_svc_default_gone_');
  assert.equal([o.virtuals.length, o.pools.length, o.monitors.length], [0, 0, 0]);
  const s = f5.state();
  assert.not.ok(s.nodes.some((n) => String(n.address).startsWith('10.0.9.')));
  assert.not.ok(s.virtualAddresses.some((a) => a.address === '192.0.2.6'));
  assert.not.ok((await b.list(ctx)).some((r) => r.id === 'service/default/gone'));
  await b.remove(spec.ref, ctx);
});

it('objects KLB does not own are never modified or deleted', async () => {
  const c = new IControlClient({ host: f5.host, username: 'admin', password: 'admin', ca: f5.ca });
  await c.request('POST', '/mgmt/tm/ltm/pool', {
    body: { name: 'user_pool', partition: 'klb', members: [{ name: '10.0.0.1:9999', partition: 'klb' }] },
  });
  await c.request('POST', '/mgmt/tm/ltm/virtual', {
    body: { name: 'user_vs', partition: 'klb', destination: '/klb/192.0.2.99:80', pool: '/klb/user_pool' },
  });
  await c.request('POST', '/mgmt/tm/ltm/pool', { body: { name: 'klb_svc_default_squat_tcp-80', partition: 'klb' } });
  const before = JSON.stringify(
    f5
      .state()
      .pools.filter((p) => !String(p.name).startsWith('klb_svc_default_squat'))
      .filter((p) => !String(p.description ?? '').startsWith('klb:')),
  );
  const b = backend();
  const err = await rejects(b.ensure(makeSpec({ name: 'squat', address: '192.0.2.7' }), ctx));
  assert.ok(isTerminalError(err), String(err));
  assert.match((err as Error).message, 'not managed by KLB');
  const squat = f5.state().pools.find((p) => p.name === 'klb_svc_default_squat_tcp-80');
  assert.is(squat?.description, undefined);
  await b.remove(makeSpec({ name: 'squat' }).ref, ctx);
  assert.ok(f5.state().pools.some((p) => p.name === 'klb_svc_default_squat_tcp-80'));
  assert.ok(f5.state().virtuals.some((v) => v.name === 'user_vs'));
  const after = JSON.stringify(
    f5
      .state()
      .pools.filter((p) => !String(p.name).startsWith('klb_svc_default_squat'))
      .filter((p) => !String(p.description ?? '').startsWith('klb:')),
  );
  assert.is(after, before);
  await c.close();
});

it('a failing transaction leaves nothing behind', async () => {
  const c = new IControlClient({ host: f5.host, username: 'admin', password: 'admin', ca: f5.ca });
  await c.request('POST', '/mgmt/tm/ltm/pool', { body: { name: 'other', partition: 'klb' } });
  await c.request('POST', '/mgmt/tm/ltm/virtual', {
    body: { name: 'other_vs', partition: 'klb', destination: '/klb/192.0.2.8:80', pool: '/klb/other' },
  });
  await c.close();
  const b = backend();
  const err = await rejects(b.ensure(makeSpec({ name: 'clash', address: '192.0.2.8' }), ctx));
  assert.ok(isF5Error(err, 'F5_TRANSACTION_FAILED'), String(err));
  assert.match((err as Error).message, 'illegally shares destination');
  const o = objectsOf('klb_svc_default_clash_');
  assert.equal([o.virtuals.length, o.pools.length, o.monitors.length], [0, 0, 0]);
});

it('list() throws when the BIG-IP cannot be read, and remove() deletes nothing then', async () => {
  const b = backend({ retries: 1 });
  const spec = makeSpec({ name: 'readfail', address: '192.0.2.9' });
  await b.ensure(spec, ctx);
  f5.faults.add({ effect: 'service-unavailable', method: 'GET', path: '/mgmt/tm/ltm/pool' });
  const err = await rejects(b.list(ctx));
  assert.ok(isF5Error(err, 'F5_UNAVAILABLE'));
  await rejects(b.remove(spec.ref, ctx));
  f5.faults.clear();
  assert.is(objectsOf('klb_svc_default_readfail_').virtuals.length, 1);
});

it('draining: a removed member is user-disabled first, then removed after drainSeconds', async () => {
  const b = backend({ drainSeconds: 3600 });
  await b.ensure(makeSpec({ name: 'drain', address: '192.0.2.11', nodes: ['10.0.0.1', '10.0.0.2'] }), ctx);
  await b.ensure(makeSpec({ name: 'drain', address: '192.0.2.11', nodes: ['10.0.0.1'] }), ctx);
  const members = objectsOf('klb_svc_default_drain_').pools[0]?.members as { name: string; session: string }[];
  assert.equal(
    members.map((m) => [m.name, m.session]),
    [
      ['10.0.0.1:30080', 'monitor-enabled'],
      ['10.0.0.2:30080', 'user-disabled'],
    ],
  );
  const mark = f5.calls.length;
  await b.ensure(makeSpec({ name: 'drain', address: '192.0.2.11', nodes: ['10.0.0.1'] }), ctx);
  assert.is(f5.calls.counts(mark).writes, 0, 'draining does not rewrite');
  await new Promise((resolve) => setTimeout(resolve, 5));
  const quick = backend({ drainSeconds: 0.001 });
  await quick.ensure(makeSpec({ name: 'drain', address: '192.0.2.11', nodes: ['10.0.0.1'] }), ctx);
  const after = objectsOf('klb_svc_default_drain_').pools[0]?.members as { name: string }[];
  assert.equal(
    after.map((m) => m.name),
    ['10.0.0.1:30080'],
  );
});

it('IPv6 VIPs and targets use addr.port', async () => {
  const b = backend();
  await b.ensure(makeSpec({ name: 'six', address: '2001:db8::10', nodes: ['2001:db8::a', 'fd00::1'] }), ctx);
  const o = objectsOf('klb_svc_default_six_');
  assert.is(o.virtuals[0]?.destination, '/klb/2001:db8::10.80');
  assert.equal(memberNames(o.pools[0]), ['2001:db8::a.30080', 'fd00::1.30080']);
  await b.remove(makeSpec({ name: 'six' }).ref, ctx);
});

it('an http health check makes an http monitor; HTTP listeners get the http profile', async () => {
  const b = backend();
  await b.ensure(
    makeSpec({
      name: 'hc',
      address: '192.0.2.12',
      protocol: 'HTTP',
      healthCheck: {
        type: 'http',
        path: '/healthz',
        port: 32000,
        intervalSeconds: 3,
        timeoutSeconds: 2,
        unhealthyThreshold: 3,
        healthyThreshold: 1,
      },
    }),
    ctx,
  );
  const monitor = f5.state().monitors.http.find((m) => m.name === 'klb_svc_default_hc_http-80_http');
  assert.is(monitor?.send, 'GET /healthz HTTP/1.1\\r\\nHost: klb\\r\\nConnection: Close\\r\\n\\r\\n');
  assert.is(monitor?.destination, '*:32000');
  assert.is(monitor?.interval, 3);
  assert.is(monitor?.timeout, 10);
  const vs = f5.state().virtuals.find((v) => v.name === 'klb_svc_default_hc_http-80');
  assert.ok(((vs?.profiles ?? []) as { fullPath: string }[]).some((p) => p.fullPath === '/Common/http'));
  const mark = f5.calls.length;
  await b.ensure(
    makeSpec({
      name: 'hc',
      address: '192.0.2.12',
      protocol: 'HTTP',
      healthCheck: {
        type: 'http',
        path: '/healthz',
        port: 32000,
        intervalSeconds: 3,
        timeoutSeconds: 2,
        unhealthyThreshold: 3,
        healthyThreshold: 1,
      },
    }),
    ctx,
  );
  assert.is(f5.calls.counts(mark).writes, 0, 'monitor trailing space and string flags compare equal');
});

it('specs the F5 backend cannot realise are terminal errors and write nothing', async () => {
  const b = backend();
  const mark = f5.calls.length;
  for (const spec of [
    { ...makeSpec({ name: 'bad1' }), addresses: [] },
    makeSpec({ name: 'bad2', protocol: 'HTTPS' }),
    makeSpec({ name: 'bad3', nodes: ['not-an-ip'] }),
    makeSpec({
      name: 'bad4',
      healthCheck: {
        type: 'http',
        path: '/x\r\nHost: evil',
        intervalSeconds: 5,
        timeoutSeconds: 2,
        unhealthyThreshold: 3,
        healthyThreshold: 1,
      },
    }),
  ]) {
    const err = await rejects(b.ensure(spec, ctx));
    assert.ok(isTerminalError(err), String(err));
  }
  assert.is(f5.calls.counts(mark).writes, 0);
});

/** A spec with client IP affinity (`timeoutSeconds` undefined: none). */
function affinitySpec(timeoutSeconds: number | undefined, nodes = ['10.0.0.1', '10.0.0.2']): LoadBalancerSpec {
  const spec = makeSpec({ name: 'sticky', ports: [80, 443], address: '192.0.2.14', nodes });
  return {
    ...spec,
    options: {
      ...spec.options,
      ...(timeoutSeconds === undefined ? {} : { sessionAffinity: { timeoutSeconds } }),
    },
  };
}

/** The writes and queued commands since `mark`, as `METHOD path`. */
function writesSince(mark: number): string[] {
  return f5.calls
    .records()
    .slice(mark)
    .filter((r) => r.category === 'write' || r.category === 'queued')
    .map((r) => `${r.method} ${r.path.replace(/\?.*$/, '')}`);
}

const stickyProfile = '/mgmt/tm/ltm/persistence/source-addr/~klb~klb_svc_default_sticky_source_addr';

function stickyState() {
  const s = f5.state();
  return {
    profile: s.persistence.sourceAddr.find((p) => p.fullPath === '/klb/klb_svc_default_sticky_source_addr'),
    persist: s.virtuals
      .filter((v) => v.name.startsWith('klb_svc_default_sticky_'))
      .map((v) => (v.persist as { name: string; partition: string; tmDefault: string }[]) ?? []),
  };
}

it('client IP affinity: a source-address persistence profile of its own, with the timeout, attached to every virtual', async () => {
  const b = backend();
  let mark = f5.calls.length;
  await b.ensure(affinitySpec(600), ctx);
  assert.is(f5.calls.counts(mark).writes, 1, 'one transaction');
  const writes = writesSince(mark);
  assert.ok(
    writes.indexOf('POST /mgmt/tm/ltm/persistence/source-addr') < writes.indexOf('POST /mgmt/tm/ltm/virtual'),
    `the profile is created before the virtuals that use it: ${writes.join(', ')}`,
  );
  const { profile, persist } = stickyState();
  assert.is(profile?.timeout, '600');
  assert.is(profile?.defaultsFrom, '/Common/source_addr');
  assert.is(profile?.description, 'klb:klb service/default/sticky');
  assert.is(persist.length, 2);
  for (const p of persist) {
    assert.equal(
      p.map((e) => [e.name, e.partition, e.tmDefault]),
      [['klb_svc_default_sticky_source_addr', 'klb', 'yes']],
    );
  }
  mark = f5.calls.length;
  await b.ensure(affinitySpec(600), ctx);
  await backend().ensure(affinitySpec(600), ctx);
  assert.is(f5.calls.counts(mark).writes, 0, 'the timeout string "600" compares equal to 600');
  mark = f5.calls.length;
  await b.ensure(affinitySpec(600, ['10.0.0.1', '10.0.0.2', '10.0.0.3']), ctx);
  assert.is(f5.calls.counts(mark).writes, 1, 'a member change is one write');
  assert.not.ok(
    writesSince(mark).some((w) => w.includes('/persistence/') || w.includes('/virtual')),
    `a member change does not touch the profile or the virtuals: ${writesSince(mark).join(', ')}`,
  );
});

it('client IP affinity: a new timeout updates the profile alone, in one transaction', async () => {
  const b = backend();
  await b.ensure(affinitySpec(600), ctx);
  const mark = f5.calls.length;
  await b.ensure(affinitySpec(30), ctx);
  assert.is(f5.calls.counts(mark).writes, 1);
  assert.equal(writesSince(mark).slice(0, -1), [`PATCH ${stickyProfile}`]);
  assert.match(writesSince(mark).at(-1) ?? '', /^PATCH \/mgmt\/tm\/transaction\/\d+$/);
  assert.is(stickyState().profile?.timeout, '30');
});

it('client IP affinity off: the virtuals are detached first, then the profile is deleted, in one transaction', async () => {
  const b = backend();
  await b.ensure(affinitySpec(30), ctx);
  const mark = f5.calls.length;
  await b.ensure(affinitySpec(undefined), ctx);
  assert.is(f5.calls.counts(mark).writes, 1);
  const writes = writesSince(mark);
  const deleteAt = writes.indexOf(`DELETE ${stickyProfile}`);
  assert.ok(deleteAt > 0, writes.join(', '));
  assert.ok(
    writes.slice(0, deleteAt).filter((w) => w.startsWith('PATCH /mgmt/tm/ltm/virtual/')).length === 2,
    `both virtuals are updated before the profile is deleted: ${writes.join(', ')}`,
  );
  const { profile, persist } = stickyState();
  assert.is(profile, undefined);
  assert.equal(persist, [[], []]);
  const again = f5.calls.length;
  await b.ensure(affinitySpec(undefined), ctx);
  assert.is(f5.calls.counts(again).writes, 0);
});

it('remove deletes the persistence profile after the virtuals; list() finds a profile left alone', async () => {
  const b = backend();
  await b.ensure(affinitySpec(120), ctx);
  assert.ok(stickyState().profile);
  const mark = f5.calls.length;
  await b.remove(affinitySpec(120).ref, ctx);
  const writes = writesSince(mark);
  assert.ok(
    writes.indexOf(`DELETE ${stickyProfile}`) >
      writes.lastIndexOf('DELETE /mgmt/tm/ltm/virtual/~klb~klb_svc_default_sticky_tcp-443'),
    writes.join(', '),
  );
  assert.equal(stickyState(), { profile: undefined, persist: [] });
  assert.equal(objectsOf('klb_svc_default_sticky_'), { virtuals: [], pools: [], monitors: [] });
  // A profile that outlived its load balancer (a crash between two writes, say) is still KLB's:
  // list() reports its load balancer and remove() deletes it.
  const c = new IControlClient({ host: f5.host, username: 'admin', password: 'admin', ca: f5.ca });
  await c.request('POST', '/mgmt/tm/ltm/persistence/source-addr', {
    body: {
      name: 'klb_svc_default_left_source_addr',
      partition: 'klb',
      defaultsFrom: '/Common/source_addr',
      timeout: '60',
      description: 'klb:klb service/default/left',
    },
  });
  await c.close();
  assert.ok((await b.list(ctx)).some((r) => r.id === 'service/default/left'));
  await b.remove(makeSpec({ name: 'left' }).ref, ctx);
  assert.not.ok(f5.state().persistence.sourceAddr.some((p) => p.name === 'klb_svc_default_left_source_addr'));
  assert.not.ok((await b.list(ctx)).some((r) => r.id === 'service/default/left'));
});

it('a persistence profile KLB does not own is never taken over; source-ip-hash alone uses the stock profile', async () => {
  const c = new IControlClient({ host: f5.host, username: 'admin', password: 'admin', ca: f5.ca });
  await c.request('POST', '/mgmt/tm/ltm/persistence/source-addr', {
    body: { name: 'klb_svc_default_taken_source_addr', partition: 'klb', timeout: '5' },
  });
  await c.close();
  const b = backend();
  const taken = makeSpec({ name: 'taken', address: '192.0.2.15' });
  const err = await rejects(
    b.ensure({ ...taken, options: { ...taken.options, sessionAffinity: { timeoutSeconds: 60 } } }, ctx),
  );
  assert.ok(isTerminalError(err), String(err));
  assert.match((err as Error).message, 'not managed by KLB');
  const foreign = f5.state().persistence.sourceAddr.find((p) => p.name === 'klb_svc_default_taken_source_addr');
  assert.is(foreign?.timeout, '5');
  const hash = makeSpec({ name: 'hash', address: '192.0.2.16' });
  await b.ensure({ ...hash, options: { ...hash.options, algorithm: 'source-ip-hash' } }, ctx);
  const vs = f5.state().virtuals.find((v) => v.name === 'klb_svc_default_hash_tcp-80');
  assert.equal(
    ((vs?.persist ?? []) as { name: string; partition: string }[]).map((p) => [p.name, p.partition]),
    [['source_addr', 'Common']],
  );
  assert.not.ok(f5.state().persistence.sourceAddr.some((p) => p.name.startsWith('klb_svc_default_hash')));
  const bad = makeSpec({ name: 'badaffinity' });
  const invalid = await rejects(
    b.ensure({ ...bad, options: { ...bad.options, sessionAffinity: { timeoutSeconds: 0 } } }, ctx),
  );
  assert.ok(isTerminalError(invalid), String(invalid));
  await b.remove(hash.ref, ctx);
});

it('the token is reused across reconciles and re-obtained after expiry mid-run', async () => {
  f5.expireTokens();
  const b = backend();
  const spec = makeSpec({ name: 'token', address: '192.0.2.13' });
  await b.ensure(spec, ctx);
  await b.ensure(makeSpec({ name: 'token', address: '192.0.2.13', nodes: ['10.0.0.1'] }), ctx);
  assert.is(f5.activeTokens('admin'), 1);
  f5.expireTokens();
  await b.ensure(makeSpec({ name: 'token', address: '192.0.2.13', nodes: ['10.0.0.2'] }), ctx);
  assert.equal(memberNames(objectsOf('klb_svc_default_token_').pools[0]), ['10.0.0.2:30080']);
  await b.close();
  assert.is(f5.activeTokens('admin'), 0);
});

test.run();
