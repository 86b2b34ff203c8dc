// AS3 mode: every generated declaration validates against F5's published schema (F5's own
// example too, which proves the validator setup), and the backend drives the emulator's AS3
// per-application API with async tasks.
import { readFileSync } from 'node:fs';
import { as3Application, as3ApplicationName, as3Declaration, F5As3Backend, IControlClient } from '@klb/backend-f5';
import { type BackendContext, isTerminalError, type LoadBalancerSpec, silentLogger } from '@klb/core';
import { as3SchemaValidator, type F5Emulator, requireComponents, startF5Emulator } from '@klb/testing';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { makeSpec } from './helpers.js';

const shared = new URL('../../../../shared/data/f5-as3/', import.meta.url).pathname;
const schemaPath = `${shared}as3-schema-3.56.0.json`;
const validate = as3SchemaValidator(schemaPath);
const test = suite('F5 AS3 mode');
const missing = requireComponents('openssl');
const it = missing ? test.skip : test;
let f5!: F5Emulator;
if (!missing) {
  f5 = await startF5Emulator({ as3SchemaPath: schemaPath, as3TaskPolls: 1 });
  test.after(async () => {
    await f5.stop();
  });
}
const ctx: BackendContext = { signal: new AbortController().signal, log: silentLogger };

function valid(declaration: unknown): void {
  const ok = validate(structuredClone(declaration));
  assert.ok(ok, JSON.stringify(validate.errors?.slice(0, 5)));
}

const specs: LoadBalancerSpec[] = [
  makeSpec({ name: 'tcp3', ports: [80, 443, 8080] }),
  makeSpec({ name: 'udp', protocol: 'UDP', ports: [53] }),
  makeSpec({
    name: 'http',
    protocol: 'HTTP',
    healthCheck: {
      type: 'http',
      path: '/healthz',
      port: 31000,
      intervalSeconds: 5,
      timeoutSeconds: 2,
      unhealthyThreshold: 3,
      healthyThreshold: 1,
    },
  }),
  makeSpec({ name: 'six', address: '2001:db8::10', nodes: ['2001:db8::a', 'fd00::1'] }),
  makeSpec({ name: 'empty', nodes: ['10.0.0.1'], notReady: ['10.0.0.1'] }),
  {
    ...makeSpec({ name: 'lc' }),
    options: {
      algorithm: 'least-connections',
      sessionAffinity: { timeoutSeconds: 60 },
      proxyProtocol: false,
      sourceRanges: [],
      timeouts: {},
    },
  },
];

it("F5's example declaration validates (the validator is set up right)", () => {
  valid(JSON.parse(readFileSync(`${shared}example-http-https-one-declaration.json`, 'utf8')));
});

it('every generated declaration validates against the AS3 3.56.0 schema', () => {
  const apps: Record<string, Record<string, unknown>> = {};
  for (const spec of specs) {
    const app = as3Application(spec, { tenant: 'klb', controllerId: 'klb', snat: 'auto' });
    valid(as3Declaration('klb', { [`klb_svc_default_${spec.ref.name}`]: app }));
    apps[`klb_svc_default_${spec.ref.name}`] = app;
  }
  valid(as3Declaration('klb', apps));
  const invalidPort = as3Declaration('klb', {
    a: { class: 'Application', s: { class: 'Service_TCP', virtualPort: 70000, virtualAddresses: ['10.0.0.1'] } },
  });
  assert.not.ok(validate(invalidPort), 'the validator rejects what is invalid');
});

it('ensure declares one application per load balancer (per-application API, async task); unchanged means no write', async () => {
  const backend = new F5As3Backend({
    client: new IControlClient({ host: f5.host, username: 'admin', password: 'admin', ca: f5.ca }),
    taskPollMs: 5,
  });
  try {
    const spec = specs[0] as LoadBalancerSpec;
    const status = await backend.ensure(spec, ctx);
    assert.is(status.ingress[0]?.ip, '192.0.2.10');
    const app = f5.state().as3.klb?.klb_svc_default_tcp3 as Record<string, Record<string, unknown>>;
    assert.is(app.label as unknown, 'service/default/tcp3');
    assert.equal(app['tcp-80']?.virtualPort, 80);
    assert.equal(((app['tcp-80_pool']?.members ?? []) as unknown[]).length, 1);
    valid(as3Declaration('klb', f5.state().as3.klb as Record<string, Record<string, unknown>>));
    let mark = f5.calls.length;
    await backend.ensure(spec, ctx);
    assert.equal(f5.calls.counts(mark), { reads: 1, writes: 0, auth: 0, transaction: 0, queued: 0, total: 1 });
    await backend.ensure(specs[1] as LoadBalancerSpec, ctx);
    mark = f5.calls.length;
    await backend.ensure(
      makeSpec({ name: 'tcp3', ports: [80, 443, 8080], nodes: ['10.0.0.1', '10.0.0.2', '10.0.0.3'] }),
      ctx,
    );
    assert.is(f5.calls.counts(mark).writes, 1, 'a member change is one per-application post');
    assert.ok(f5.state().as3.klb?.klb_svc_default_udp, 'the other application is untouched');
    assert.equal(
      (await backend.list(ctx)).map((r) => r.id),
      ['service/default/tcp3', 'service/default/udp'],
    );
    await backend.remove(spec.ref, ctx);
    await backend.remove(spec.ref, ctx);
    assert.is(f5.state().as3.klb?.klb_svc_default_tcp3, undefined);
    assert.equal(
      (await backend.list(ctx)).map((r) => r.id),
      ['service/default/udp'],
    );
  } finally {
    await backend.close();
  }
});

it('client IP affinity: a Persist with the timeout as duration, used by every service; it follows the timeout and goes with affinity', async () => {
  const sticky = (timeoutSeconds?: number): LoadBalancerSpec => {
    const spec = makeSpec({ name: 'sticky', ports: [80, 443] });
    return {
      ...spec,
      options: { ...spec.options, ...(timeoutSeconds === undefined ? {} : { sessionAffinity: { timeoutSeconds } }) },
    };
  };
  const app = as3Application(sticky(600), { tenant: 'klb', controllerId: 'klb', snat: 'auto' }) as Record<
    string,
    Record<string, unknown>
  >;
  assert.equal(app.source_addr_persist, { class: 'Persist', persistenceMethod: 'source-address', duration: 600 });
  assert.equal(app['tcp-80']?.persistenceMethods, [{ use: 'source_addr_persist' }]);
  assert.equal(app['tcp-443']?.persistenceMethods, [{ use: 'source_addr_persist' }]);
  valid(as3Declaration('klb', { klb_svc_default_sticky: app }));
  const backend = new F5As3Backend({
    client: new IControlClient({ host: f5.host, username: 'admin', password: 'admin', ca: f5.ca }),
    taskPollMs: 5,
  });
  const declared = () => f5.state().as3.klb?.klb_svc_default_sticky as Record<string, Record<string, unknown>>;
  try {
    await backend.ensure(sticky(600), ctx);
    assert.is(declared().source_addr_persist?.duration, 600);
    let mark = f5.calls.length;
    await backend.ensure(sticky(30), ctx);
    assert.is(f5.calls.counts(mark).writes, 1, 'one per-application post');
    assert.is(declared().source_addr_persist?.duration, 30);
    mark = f5.calls.length;
    await backend.ensure(sticky(undefined), ctx);
    assert.is(f5.calls.counts(mark).writes, 1);
    assert.is(declared().source_addr_persist, undefined);
    assert.equal(declared()['tcp-80']?.persistenceMethods, []);
    valid(as3Declaration('klb', f5.state().as3.klb as Record<string, Record<string, unknown>>));
    await backend.ensure(sticky(600), ctx);
    await backend.remove(sticky(600).ref, ctx);
    assert.is(f5.state().as3.klb?.klb_svc_default_sticky, undefined);
  } finally {
    await backend.close();
  }
});

it('gateway refs: declarations validate for names up to 253 characters; a long id is kept in the constants and listed back', async () => {
  const gatewaySpec = (namespace: string, name: string): LoadBalancerSpec => {
    const spec = makeSpec({ name: 'x', ports: [5432] });
    const udp = makeSpec({ name: 'x', protocol: 'UDP', ports: [53] });
    return {
      ...spec,
      ref: { id: `gateway/${namespace}/${name}`, kind: 'Gateway', namespace, name },
      listeners: [...spec.listeners, ...udp.listeners],
      upstreams: [...spec.upstreams, ...udp.upstreams],
    };
  };
  const longName = ['a', 'b', 'c', 'd'].map((c, i) => c.repeat(i === 3 ? 61 : 63)).join('.');
  const specs = [
    gatewaySpec('default', 'edge'),
    gatewaySpec('default', 'edge.example-1'),
    gatewaySpec('n'.repeat(63), longName),
    gatewaySpec('n'.repeat(63), `${longName.slice(0, -1)}e`),
  ];
  const settings = { tenant: 'klb', controllerId: 'klb', snat: 'auto' } as const;
  const apps = Object.fromEntries(specs.map((s) => [as3ApplicationName(s.ref), as3Application(s, settings)]));
  assert.is(Object.keys(apps).length, specs.length, 'distinct application names');
  for (const [name, app] of Object.entries(apps)) {
    valid(as3Declaration('klb', { [name]: app }));
    assert.ok(String(app.label).length <= 64, `label of ${name} fits`);
  }
  valid(as3Declaration('klb', apps));
  const short = apps[as3ApplicationName(specs[0]?.ref as LoadBalancerSpec['ref'])] as Record<string, unknown>;
  assert.is(short.label, 'gateway/default/edge');
  assert.is(short.constants, undefined, 'an id that fits the label needs no constants');

  const backend = new F5As3Backend({
    client: new IControlClient({ host: f5.host, username: 'admin', password: 'admin', ca: f5.ca }),
    tenant: 'klb_gw',
    taskPollMs: 5,
  });
  try {
    for (const spec of specs) await backend.ensure(spec, ctx);
    assert.equal((await backend.list(ctx)).map((r) => r.id).sort(), specs.map((s) => s.ref.id).sort());
    const mark = f5.calls.length;
    for (const spec of specs) await backend.ensure(spec, ctx);
    assert.is(f5.calls.counts(mark).writes, 0, 'unchanged: no write');
    for (const spec of specs) await backend.remove(spec.ref, ctx);
    assert.equal(await backend.list(ctx), []);
  } finally {
    await backend.close();
  }
});

it('HTTP settings AS3 mode does not apply are said in the status message', async () => {
  const backend = new F5As3Backend({
    client: new IControlClient({ host: f5.host, username: 'admin', password: 'admin', ca: f5.ca }),
    taskPollMs: 5,
  });
  try {
    const spec = makeSpec({ name: 'httpset', ports: [80] });
    const http = { readTimeoutSeconds: 30, upgradeTimeoutSeconds: 3600 };
    const status = await backend.ensure({ ...spec, options: { ...spec.options, http } }, ctx);
    assert.is(
      status.message,
      'AS3 application /klb/klb_svc_default_httpset; read timeout, upgraded connection timeout not applied: the F5 backend has no HTTP proxy settings',
    );
    await backend.remove(spec.ref, ctx);
  } finally {
    await backend.close();
  }
});

it('specs AS3 mode cannot realise are terminal errors', async () => {
  const backend = new F5As3Backend({
    client: new IControlClient({ host: f5.host, username: 'admin', password: 'admin', ca: f5.ca }),
  });
  try {
    const err = await backend.ensure(makeSpec({ name: 'bad', protocol: 'HTTPS' }), ctx).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(isTerminalError(err));
  } finally {
    await backend.close();
  }
});

test.run();
