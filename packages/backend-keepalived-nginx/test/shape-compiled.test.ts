// The nginx renderer replays each load balancer fragment from its shape (see
// src/shape-compiled-template.ts). These tests hold it to liquidjs itself: for generated configs of
// every kind, and for the fixtures with TLS, redirects and routes, the compiled renderer gives the
// same bytes, files and rejections as one that renders every tag with liquidjs.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type DaemonServiceConfig,
  InvalidDaemonConfigError,
  NginxRenderer,
  type NginxRenderResult,
} from '@klb/backend-keepalived-nginx';
import fc from 'fast-check';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ShapeCompiledTemplate } from '../src/shape-compiled-template.js';
import { l4Service, l7Service, makeCertificate, nginxOptions, tlsService, versioned } from './renderer-fixtures.js';

const test = suite('shape-compiled templates');
const dir = await mkdtemp(join(tmpdir(), 'klb-shape-'));
test.after(async () => {
  await rm(dir, { recursive: true, force: true });
});
const options = nginxOptions(dir);

function same(a: NginxRenderResult, b: NginxRenderResult): void {
  assert.is(a.config, b.config);
  assert.equal(a.files, b.files);
  assert.equal(a.rendered, b.rendered);
  assert.equal(
    [...a.rejected].map(([id, err]) => [id, err.message]),
    [...b.rejected].map(([id, err]) => [id, err.message]),
  );
}

const name = fc.stringMatching(/^[a-z][a-z0-9]{0,5}$/);
const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255)).map(([a, b, c]) => `10.${a}.${b}.${c}`);
const ipv6 = fc.tuple(fc.nat(0xffff), fc.nat(0xffff)).map(([a, b]) => `fd00::${a.toString(16)}:${b.toString(16)}`);
const address = fc.oneof(ipv4, ipv6);
const port = fc.integer({ min: 1, max: 65535 });
const target = fc.record({ address, port, ready: fc.boolean() });
const host = fc.oneof(
  fc.constant(undefined),
  name.map((n) => `${n}.example.com`),
  name.map((n) => `*.${n}.example.org`),
);
const path = fc.oneof(
  fc.constant(undefined),
  fc.constant('/'),
  name.map((n) => `/${n}`),
  name.map((n) => `/${n}/`),
);

/** A load balancer config of any shape: protocols, routes, targets, options. Most are valid. */
const config = fc
  .record({
    ns: name,
    svc: name,
    addresses: fc.uniqueArray(address, { minLength: 1, maxLength: 2 }),
    upstreams: fc.uniqueArray(
      fc.record({
        name,
        targets: fc.array(target, { maxLength: 4 }),
        maxFails: fc.integer({ min: 0, max: 100 }),
        failTimeoutSeconds: fc.integer({ min: 1, max: 600 }),
      }),
      { minLength: 1, maxLength: 3, selector: (u) => u.name },
    ),
    listeners: fc.uniqueArray(
      fc.record({
        port,
        protocol: fc.constantFrom('TCP', 'UDP', 'HTTP', 'TLS'),
        upstream: fc.nat(2),
        defaultUpstream: fc.boolean(),
        routes: fc.array(fc.record({ host, path, pathType: fc.constantFrom('Prefix', 'Exact'), upstream: fc.nat(2) }), {
          maxLength: 4,
        }),
      }),
      { minLength: 1, maxLength: 3, selector: (l) => l.port },
    ),
    algorithm: fc.constantFrom('round-robin', 'least-connections', 'source-ip-hash'),
    sessionAffinity: fc.boolean(),
    proxyProtocol: fc.boolean(),
    sourceRanges: fc.array(
      ipv4.map((a) => `${a}/24`),
      { maxLength: 2 },
    ),
    connectSeconds: fc.option(fc.integer({ min: 1, max: 600 }), { nil: undefined }),
    idleSeconds: fc.option(fc.integer({ min: 1, max: 600 }), { nil: undefined }),
    http: fc.option(
      fc.record(
        {
          maxBodyBytes: fc.integer({ min: 0, max: 2 ** 34 }),
          maxHeaderBytes: fc.integer({ min: 1024, max: 1048576 }),
          connectSeconds: fc.integer({ min: 1, max: 600 }),
          readSeconds: fc.integer({ min: 1, max: 600 }),
          sendSeconds: fc.integer({ min: 1, max: 600 }),
          upgradeSeconds: fc.integer({ min: 1, max: 86400 }),
          buffering: fc.boolean(),
        },
        { requiredKeys: [] },
      ),
      { nil: undefined },
    ),
  })
  .map((c): DaemonServiceConfig => {
    const upstreamOf = (i: number): string => (c.upstreams[i % c.upstreams.length] as { name: string }).name;
    return versioned({
      apiVersion: 'klb.io/v1alpha1',
      kind: 'DaemonServiceConfig',
      id: `service/${c.ns}/${c.svc}`,
      addresses: c.addresses,
      listeners: c.listeners.map((l, i) =>
        l.protocol === 'HTTP'
          ? {
              name: `l${i}`,
              port: l.port,
              protocol: 'HTTP',
              ...(l.defaultUpstream ? { upstream: upstreamOf(l.upstream) } : {}),
              routes: l.routes.map((r) => ({
                ...(r.host === undefined ? {} : { host: r.host }),
                ...(r.path === undefined ? {} : { path: r.path }),
                pathType: r.pathType,
                upstream: upstreamOf(r.upstream),
              })),
            }
          : l.protocol === 'TLS'
            ? {
                name: `l${i}`,
                port: l.port,
                protocol: 'TLS',
                sniRoutes: l.routes.map((r) => ({
                  ...(r.host === undefined ? {} : { host: r.host }),
                  upstream: upstreamOf(r.upstream),
                })),
              }
            : { name: `l${i}`, port: l.port, protocol: l.protocol, upstream: upstreamOf(l.upstream) },
      ),
      upstreams: c.upstreams,
      options: {
        algorithm: c.algorithm,
        sessionAffinity: c.sessionAffinity,
        proxyProtocol: c.proxyProtocol,
        sourceRanges: c.sourceRanges,
        timeouts: {
          ...(c.connectSeconds === undefined ? {} : { connectSeconds: c.connectSeconds }),
          ...(c.idleSeconds === undefined ? {} : { idleSeconds: c.idleSeconds }),
        },
        ...(c.http === undefined ? {} : { http: c.http }),
        vrrp: { group: 'default', vrid: 51 },
      },
    } as Omit<DaemonServiceConfig, 'version'>);
  });

test('generated configs render the same bytes compiled and tag by tag', () => {
  // One compiled renderer across all runs, so later runs replay shapes that earlier ones compiled.
  const compiled = new NginxRenderer();
  let rendered = 0;
  fc.assert(
    fc.property(fc.array(config, { minLength: 1, maxLength: 8 }), (configs) => {
      const a = compiled.render(configs, options);
      same(a, new NginxRenderer({ fragments: 'direct' }).render(structuredClone(configs), options));
      rendered += a.rendered.length;
    }),
    { numRuns: 300 },
  );
  assert.ok(rendered > 500, `only ${rendered} load balancers were valid`);
});

test('TLS, TLS passthrough, redirects and host routes render the same bytes compiled and tag by tag', () => {
  const pem = makeCertificate(join(dir, 'pem'), ['cafe.example.com']);
  const ports = { tcp: 7001, udp: 7002, http: 7080, https: 7443, plain: 7081 };
  const configs = [
    l4Service('service/default/alpha', '127.0.30.1', ports, { tcp: [9001, 9002], udp: [9003] }),
    l7Service('service/default/bravo', '127.0.30.2', ports, { coffee: [9101], tea: [9102, 9103] }, pem),
    l7Service('service/default/charlie', '127.0.30.3', { ...ports, https: 443 }, { coffee: [], tea: [9104] }, pem),
    tlsService('gateway/default/delta', '127.0.30.4', 443, { a: [9201], b: [9202], c: [9203] }),
    tlsService('gateway/default/echo', '127.0.30.5', 443, { a: [9204], b: [] }),
  ];
  const a = new NginxRenderer().render(configs, options);
  assert.equal(a.rendered.length, 5);
  assert.ok(a.config.includes('return 308 https://$host$request_uri;'), 'a redirect to port 443 leaves the port out');
  same(a, new NginxRenderer({ fragments: 'direct' }).render(structuredClone(configs), options));
});

test('a filter still rejects a bad value in a replayed shape', () => {
  const template = new ShapeCompiledTemplate('listen {{ a | listen }};\n');
  assert.is(template.render({ a: { address: '10.0.0.1', port: 80 } }), 'listen 10.0.0.1:80;\n');
  assert.throws(
    () => template.render({ a: { address: '10.0.0.1;\nevil', port: 80 } }),
    (err: unknown) => err instanceof InvalidDaemonConfigError,
  );
  assert.throws(
    () => template.renderDirect({ a: { address: '10.0.0.1;\nevil', port: 80 } }),
    (err: unknown) => err instanceof InvalidDaemonConfigError,
  );
});

test('shapes differ by keys, lengths, flags and nulls, never by values', () => {
  const template = new ShapeCompiledTemplate(
    '{% for p in ports %}{{ p | port }} {% endfor %}{% if flag %}on{% endif %}{% if name %}{{ name | ident }}{% endif %}',
  );
  const scopes = [
    { ports: [1, 2], flag: true, name: 'a' },
    { ports: [3], flag: true, name: 'b' },
    { ports: [4, 5], flag: false, name: null },
    { ports: [], flag: false, name: 'c' },
    { ports: [6, 7], flag: true, name: 'd' },
  ];
  for (const scope of scopes) assert.is(template.render(scope), template.renderDirect(scope));
});

test('a template that compares scope values, prints one without a filter or feeds one filter into another is refused', () => {
  const compares = new ShapeCompiledTemplate('{% if p != 443 %}{{ p | port }}{% endif %}');
  assert.throws(() => compares.render({ p: 8443 }), /may not compare scope values/);
  const chained = new ShapeCompiledTemplate('{{ p | port | port }}');
  assert.throws(() => chained.render({ p: 80 }), /only scope values and literals/);
  const raw = new ShapeCompiledTemplate('listen {{ p }};');
  assert.throws(() => raw.render({ p: '80; evil' }), /only through a filter/);
  assert.throws(() => new ShapeCompiledTemplate('a\u0000b'), /NUL/);
});

test.run();
