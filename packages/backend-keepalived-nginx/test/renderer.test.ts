import { statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DaemonConfigConflictError,
  type DaemonServiceConfig,
  daemonConfigFromSpec,
  InvalidDaemonConfigError,
  InvalidRenderOptionsError,
  KeepalivedRenderer,
  NginxRenderer,
  renderKeepalivedConfig,
  renderNginxConfig,
  validateDaemonServiceConfig,
} from '@klb/backend-keepalived-nginx';
import type { LoadBalancerSpec } from '@klb/core';
import { freePort, requireComponents } from '@klb/testing';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  clone,
  KeepalivedChecker,
  keepalivedOptions,
  l4Service,
  l7Service,
  makeCertificate,
  nginxOptions,
  nginxTest,
  type Pem,
  tlsService,
  versioned,
  writeNginx,
} from './renderer-fixtures.js';

const test = suite('renderers');
const missingNginx = requireComponents('nginx');
const missingKeepalived = requireComponents('keepalived', 'netns');
const withNginx = missingNginx ? test.skip : test;
const withKeepalived = missingKeepalived ? test.skip : test;

const dir = await mkdtemp(join(tmpdir(), 'klb-render-'));
const pem: Pem = makeCertificate(join(dir, 'pem'), ['cafe.example.com']);
const checker = missingKeepalived ? undefined : new KeepalivedChecker();
test.after(async () => {
  checker?.close();
  await rm(dir, { recursive: true, force: true });
});

// nginx -t binds every listen address, so the ports are picked free at run time.
const P = {
  tcp: await freePort(),
  udp: await freePort(),
  http: await freePort(),
  https: await freePort(),
  plain: await freePort(),
};
const P6 = { tcp: await freePort('::1'), udp: await freePort('::1') };
const PT = await freePort();

const a = l4Service(
  'service/default/alpha',
  '127.0.10.1',
  { tcp: P.tcp, udp: P.udp },
  { tcp: [9001, 9002], udp: [9003] },
);
const b = l7Service(
  'ingress/shop/cafe',
  '127.0.10.2',
  { http: P.http, https: P.https, plain: P.plain },
  { coffee: [9101], tea: [9102, 9103] },
  pem,
);
const c = l4Service('service/other/gamma', '::1', { tcp: P6.tcp, udp: P6.udp }, { tcp: [9201], udp: [9202] });
const t = tlsService('gateway/edge/passthrough', '127.0.10.3', PT, { a: [9301], b: [9302], c: [9303] });

test('renders stream servers bound to VIP:port with upstream health, algorithm, limits and timeouts', () => {
  const { config, rejected, rendered } = renderNginxConfig([a, c], nginxOptions(dir));
  assert.is(rejected.size, 0);
  assert.equal(rendered, ['service/default/alpha', 'service/other/gamma']);
  assert.match(config, 'load_module /usr/lib/nginx/modules/ngx_stream_module.so;');
  assert.match(config, `listen 127.0.10.1:${P.tcp};\n`);
  assert.match(config, `listen 127.0.10.1:${P.udp} udp;\n`);
  assert.match(config, `listen [::1]:${P6.tcp};\n`);
  assert.match(config, 'upstream service_default_alpha.tcp {\n        least_conn;\n');
  assert.match(config, 'server 127.0.0.1:9001 max_fails=3 fail_timeout=10s;');
  assert.match(config, 'allow 127.0.0.0/8;\n        allow 10.0.0.0/8;\n        deny all;');
  assert.match(config, 'proxy_connect_timeout 5s;');
  assert.match(config, 'proxy_timeout 30s;');
  assert.match(config, 'proxy_pass service_default_alpha.udp;');
  assert.not.match(config, 'proxy_protocol on;');
  const pp = clone(a);
  pp.options.proxyProtocol = true;
  assert.match(renderNginxConfig([versioned(pp)], nginxOptions(dir)).config, 'proxy_protocol on;');
  // Every listen names an address: nothing binds a wildcard.
  for (const line of config.split('\n').filter((l) => l.trim().startsWith('listen '))) {
    assert.match(line, /listen (\d+\.\d+\.\d+\.\d+|\[[0-9a-f:]+\]):\d+/);
  }
});

test('renders http servers: host and path routes, TLS files, redirect, forwarded headers, affinity', () => {
  const result = renderNginxConfig([b], nginxOptions(dir));
  const { config, files } = result;
  assert.is(result.rejected.size, 0);
  assert.match(config, `listen 127.0.10.2:${P.http} default_server;\n`);
  assert.match(config, `return 308 https://$host:${P.https}$request_uri;`);
  assert.match(config, `listen 127.0.10.2:${P.https} ssl http2 default_server;\n`);
  // Upgrade requests (WebSocket) pass through; others keep the upstream keepalive (empty Connection).
  assert.match(config, 'proxy_set_header Upgrade $http_upgrade;\n');
  assert.match(config, 'proxy_set_header Connection $klb_connection_upgrade;\n');
  assert.match(config, `listen 127.0.10.2:${P.https} ssl http2;\n        server_name cafe.example.com;`);
  assert.match(config, 'server_name *.menu.example.com;');
  assert.match(config, 'location = /coffee {');
  assert.match(config, 'location /coffee/ {');
  assert.match(config, 'location = /tea {');
  assert.not.match(config, 'location /tea/ {');
  assert.match(config, 'hash $remote_addr consistent;');
  assert.match(config, 'keepalive 32;');
  assert.match(config, 'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;');
  assert.match(config, 'proxy_set_header X-Forwarded-Proto $scheme;');
  assert.match(config, 'proxy_read_timeout 60s;');
  assert.match(config, 'return 404;');
  assert.is(files.length, 2);
  const key = files.find((f) => f.path.endsWith('.key'));
  const crt = files.find((f) => f.path.endsWith('.crt'));
  assert.ok(key && crt);
  assert.is(key.mode, 0o600);
  assert.is(key.content, pem.privateKey);
  assert.ok(key.path.startsWith(join(dir, 'tls/')));
  assert.match(config, `ssl_certificate ${crt.path};`);
  assert.match(config, `ssl_certificate_key ${key.path};`);
  // The key material itself never appears in nginx.conf.
  assert.not.match(config, 'PRIVATE KEY');
  writeNginx(dir, result, 'b.conf');
  assert.is(statSync(key.path).mode & 0o777, 0o600);
});

withNginx('real nginx -t accepts the rendered config', () => {
  const result = renderNginxConfig([a, b, c], nginxOptions(dir));
  assert.is(result.rejected.size, 0);
  const conf = writeNginx(dir, result);
  assert.is(nginxTest(dir, conf), undefined);
});

test('the output does not depend on input order, and is the same from a fresh renderer', () => {
  const one = renderNginxConfig([a, b, c], nginxOptions(dir));
  const two = renderNginxConfig([c, a, b], nginxOptions(dir));
  const fresh = new NginxRenderer().render([b, c, a], nginxOptions(dir));
  assert.is(one.config, two.config);
  assert.is(one.config, fresh.config);
  assert.equal(one.files, fresh.files);
});

test('a changed load balancer re-renders (the fragment cache is keyed by content)', () => {
  const renderer = new NginxRenderer();
  renderer.render([a, b], nginxOptions(dir));
  const changed = clone(a);
  changed.upstreams[0]?.targets.push({ address: '127.0.0.1', port: 9999, ready: true });
  const next = versioned(changed);
  const cached = renderer.render([next, b], nginxOptions(dir)).config;
  assert.match(cached, 'server 127.0.0.1:9999 ');
  assert.is(cached, new NginxRenderer().render([next, b], nginxOptions(dir)).config);
});

withNginx('upstreams without ready targets: stream closes, http answers 503, nginx -t passes', () => {
  const empty = clone(a);
  for (const u of empty.upstreams) for (const t of u.targets) t.ready = false;
  const emptyL7 = clone(b);
  for (const u of emptyL7.upstreams) u.targets = [];
  const result = renderNginxConfig([versioned(empty), versioned(emptyL7)], nginxOptions(dir));
  assert.is(result.rejected.size, 0);
  assert.match(result.config, 'return "";');
  assert.match(result.config, 'return 503;');
  assert.not.match(result.config, 'upstream service_default_alpha');
  assert.is(nginxTest(dir, writeNginx(dir, result, 'empty.conf')), undefined);
});

test('a VIP:port collision rejects the load balancer whose id sorts later', () => {
  const clash = clone(a);
  clash.id = 'service/zeta/clash';
  const result = renderNginxConfig([versioned(clash), a], nginxOptions(dir));
  assert.equal(result.rendered, ['service/default/alpha']);
  const err = result.rejected.get('service/zeta/clash');
  assert.instance(err, DaemonConfigConflictError);
  assert.match(String(err?.message), `tcp 127.0.10.1 ${P.tcp} is already used by service/default/alpha`);
  // Another port on the same VIP is fine (IPAM shares addresses between services).
  const other = clone(a);
  other.id = 'service/zeta/other-port';
  other.listeners = [{ name: 'tcp-7100', port: 7100, protocol: 'TCP', upstream: 'tcp' }];
  assert.is(renderNginxConfig([versioned(other), a], nginxOptions(dir)).rejected.size, 0);
});

test('a Gateway declares a load balancer too: gateway/<namespace>/<name> ids render', () => {
  const gateway = clone(a);
  gateway.id = 'gateway/default/edge';
  const result = renderNginxConfig([versioned(gateway)], nginxOptions(dir));
  assert.equal(result.rendered, ['gateway/default/edge']);
  assert.match(result.config, 'upstream gateway_default_edge.tcp {');
  const unknown = clone(a);
  unknown.id = 'route/default/edge';
  assert.instance(
    renderNginxConfig([versioned(unknown)], nginxOptions(dir)).rejected.get('route/default/edge'),
    InvalidDaemonConfigError,
  );
});

test('VRRP router ids: one per group, collisions rejected', () => {
  const otherGroup = clone(c);
  otherGroup.options.vrrp = { group: 'blue', vrid: 51 };
  const r1 = renderKeepalivedConfig([a, versioned(otherGroup)], keepalivedOptions(dir, 'eth0'));
  assert.match(
    String(r1.rejected.get('service/other/gamma')?.message),
    'router id 51 already belongs to group "default"',
  );
  const wrongVrid = clone(c);
  wrongVrid.options.vrrp = { group: 'default', vrid: 52 };
  const r2 = renderKeepalivedConfig([a, versioned(wrongVrid)], keepalivedOptions(dir, 'eth0'));
  assert.match(String(r2.rejected.get('service/other/gamma')?.message), 'group "default" has router id 51');
  const blue = clone(c);
  blue.options.vrrp = { group: 'blue', vrid: 52 };
  const r3 = renderKeepalivedConfig([a, versioned(blue)], keepalivedOptions(dir, 'eth0'));
  assert.is(r3.rejected.size, 0);
  assert.equal(
    r3.instances.map((i) => [i.name, i.vrid, i.family, i.addresses]),
    [
      ['klb_blue_6', 52, 'IPv6', ['::1']],
      ['klb_default_4', 51, 'IPv4', ['127.0.10.1']],
    ],
  );
});

test('keepalived.conf: VRRPv3, fast adverts, priority, unicast, nginx tracking, excluded VIPs past 20', () => {
  const many: DaemonServiceConfig[] = [];
  for (let i = 1; i <= 25; i++) {
    const s = clone(a);
    s.id = `service/default/s${i}`;
    s.addresses = [`10.20.0.${i}`];
    many.push(versioned(s));
  }
  const { config, instances } = renderKeepalivedConfig([...many, c], keepalivedOptions(dir, 'eth0'));
  assert.match(config, 'vrrp_version 3');
  assert.match(config, 'advert_int 0.1\n');
  assert.match(config, 'priority 100\n');
  assert.match(config, 'state BACKUP');
  assert.match(config, 'interface eth0');
  assert.match(config, `script "/usr/bin/pgrep -F ${join(dir, 'run', 'nginx.pid')}"`);
  assert.match(config, 'track_script {\n        klb_nginx\n    }');
  assert.match(config, 'unicast_src_ip 10.99.0.1\n    unicast_peer {\n        10.99.0.2\n        10.99.0.3\n    }');
  const excluded = config.slice(config.indexOf('virtual_ipaddress_excluded {'));
  assert.is(excluded.slice(0, excluded.indexOf('}')).match(/10\.20\.0\.\d+\/32/g)?.length, 5);
  assert.match(config, '::1/128');
  const v4 = instances.find((i) => i.family === 'IPv4');
  assert.is(v4?.addresses.length, 25);
  // The IPv6 instance gets no IPv4 unicast peers.
  const v6Block = config.slice(config.indexOf('vrrp_instance klb_default_6'));
  assert.not.match(v6Block, 'unicast_peer');
});

test('keepalived options are validated', () => {
  const base = keepalivedOptions(dir, 'eth0');
  const bad = [
    { ...base, authPassword: 'secret' },
    { ...base, vrrpVersion: 2 as const, advertIntSeconds: 0.5 },
    { ...base, advertIntSeconds: 0.001 },
    { ...base, priority: 255 },
    { ...base, interface: 'eth0; x' },
    { ...base, unicastPeers: ['10.0.0.1\n}'] },
    { ...base, routerId: 'a b' },
    { ...base, trackNginx: { pidFile: 'relative/nginx.pid' } },
    { ...base, vrrpVersion: 2 as const, authPassword: 'toolongpassword' },
  ];
  for (const options of bad) {
    assert.throws(
      () => renderKeepalivedConfig([a], options),
      (err: unknown) => err instanceof InvalidRenderOptionsError,
    );
  }
  assert.throws(
    () => renderNginxConfig([a], { ...nginxOptions(dir), tlsDir: '/tmp/x;y' }),
    (err: unknown) => err instanceof InvalidRenderOptionsError,
  );
});

withKeepalived('real keepalived -t accepts the rendered configs (v3 default, v2 with auth, nopreempt, notify)', () => {
  const iface = checker?.iface ?? 'klb0';
  const variants = [
    keepalivedOptions(dir, iface),
    { ...keepalivedOptions(dir, iface), vrrpVersion: 2 as const, authPassword: 'k1b-pass', nopreempt: true },
    {
      ...keepalivedOptions(dir, iface),
      unicastPeers: [],
      advertIntSeconds: 1,
      trackNginx: false as const,
      notifyScript: '/usr/bin/true',
    },
  ];
  const blue = clone(c);
  blue.options.vrrp = { group: 'blue', vrid: 52 };
  for (const [i, options] of variants.entries()) {
    const { config, rejected } = new KeepalivedRenderer().render([a, b, versioned(blue)], options);
    assert.is(rejected.size, 0);
    const file = join(dir, `keepalived-${i}.conf`);
    writeFileSync(file, config);
    assert.is(checker?.check(file), undefined, config);
  }
});

test('validateDaemonServiceConfig names the field and the problem', () => {
  const bad = clone(b);
  const route = bad.listeners[1]?.routes?.[0];
  assert.ok(route);
  route.path = '/a;b';
  assert.throws(
    () => validateDaemonServiceConfig(bad),
    (err: unknown) =>
      err instanceof InvalidDaemonConfigError &&
      err.field === 'listeners[1].routes[0].path' &&
      err.message.includes('"/a;b" is not an HTTP path') &&
      err.code === 'INVALID_DAEMON_CONFIG' &&
      err.retryable === false,
  );
  const wrongKey = clone(b);
  const other = makeCertificate(join(dir, 'pem'), ['other.example.com']);
  const tls = wrongKey.listeners[1]?.tls?.[0];
  assert.ok(tls);
  tls.privateKey = other.privateKey;
  assert.throws(
    () => validateDaemonServiceConfig(wrongKey),
    (err: unknown) => err instanceof Error && err.message.includes('does not belong to the certificate'),
  );
});

test('TLS listeners: SNI hosts are checked as route hosts are, every upstream must exist, no other fields', () => {
  assert.is(validateDaemonServiceConfig(t), t);
  type Listener = ReturnType<typeof clone>['listeners'][number];
  const cases: [string, (l: Listener) => void, string, string][] = [
    [
      'a newline in a host',
      (l) => l.sniRoutes?.splice(0, 1, { host: 'a.example.com\n}', upstream: 'a' }),
      'sniRoutes[0].host',
      'is not a lower-case DNS host name',
    ],
    [
      'a wildcard inside a host',
      (l) => l.sniRoutes?.splice(1, 1, { host: 'x.*.example.com', upstream: 'b' }),
      'sniRoutes[1].host',
      'is not a lower-case DNS host name',
    ],
    [
      'an unknown upstream',
      (l) => l.sniRoutes?.splice(2, 1, { upstream: 'nowhere' }),
      'sniRoutes[2].upstream',
      'refers to unknown upstream "nowhere"',
    ],
    [
      'an upstream',
      (l) => {
        l.upstream = 'a';
      },
      '',
      'a TLS listener takes no upstream',
    ],
    [
      'HTTP routes',
      (l) => {
        l.routes = [{ pathType: 'Prefix', upstream: 'a' }];
      },
      '',
      'only for HTTP/HTTPS listeners',
    ],
    [
      'certificates',
      (l) => {
        l.tls = [];
      },
      '',
      'only for HTTP/HTTPS listeners',
    ],
  ];
  for (const [what, change, field, message] of cases) {
    const bad = clone(t);
    change(bad.listeners[0] as Listener);
    assert.throws(
      () => validateDaemonServiceConfig(bad),
      (err: unknown) =>
        err instanceof InvalidDaemonConfigError &&
        err.field === `listeners[0]${field ? `.${field}` : ''}` &&
        err.message.includes(message),
      what,
    );
  }
  const tcpWithSni = clone(a);
  (tcpWithSni.listeners[0] as Listener).sniRoutes = [{ upstream: 'tcp' }];
  assert.throws(
    () => validateDaemonServiceConfig(tcpWithSni),
    (err: unknown) => err instanceof InvalidDaemonConfigError && err.field === 'listeners[0].sniRoutes',
  );
  // A TLS listener without routes is valid: it closes every connection.
  const empty = clone(t);
  (empty.listeners[0] as Listener).sniRoutes = [];
  assert.ok(validateDaemonServiceConfig(empty));
});

test('a TLS listener takes its TCP port: TCP or HTTP on it collides, UDP does not', () => {
  const same = clone(t);
  same.listeners.push({ name: 'tcp', port: PT, protocol: 'TCP', upstream: 'a' });
  assert.throws(
    () => validateDaemonServiceConfig(same),
    (err: unknown) => err instanceof InvalidDaemonConfigError && err.message.includes(`tcp/${PT} is used twice`),
  );
  const udp = clone(t);
  udp.listeners.push({ name: 'udp', port: PT, protocol: 'UDP', upstream: 'a' });
  assert.ok(validateDaemonServiceConfig(udp));
  for (const protocol of ['TCP', 'HTTP'] as const) {
    const other = clone(a);
    other.id = 'service/zeta/other';
    other.addresses = [...t.addresses];
    other.listeners = [{ name: 'web', port: PT, protocol, upstream: 'tcp' }];
    const result = renderNginxConfig([t, versioned(other)], nginxOptions(dir));
    assert.equal(result.rendered, ['gateway/edge/passthrough']);
    const err = result.rejected.get('service/zeta/other');
    assert.instance(err, DaemonConfigConflictError);
    assert.match(String(err?.message), `tcp 127.0.10.3 ${PT} is already used by gateway/edge/passthrough`);
  }
});

test('daemonConfigFromSpec carries the SNI routes of a TLS listener, and refuses a hostile one', () => {
  const listener = {
    name: 'tls-443',
    port: 443,
    protocol: 'TLS' as const,
    sniRoutes: [{ host: 'a.example.com', upstream: 'a' }, { host: '*.example.org', upstream: 'a' }, { upstream: 'a' }],
  };
  const spec: LoadBalancerSpec = {
    ref: { id: 'gateway/edge/tls', kind: 'Gateway', namespace: 'edge', name: 'tls' },
    addresses: ['10.9.0.1'],
    requestedAddresses: [],
    ipFamilies: ['IPv4'],
    listeners: [listener],
    upstreams: [
      { name: 'a', targets: [{ kind: 'node', address: '10.1.0.1', port: 30443, ready: true, nodeName: 'n1' }] },
    ],
    options: { algorithm: 'round-robin', proxyProtocol: false, sourceRanges: [], timeouts: {} },
    annotations: {},
  };
  assert.equal(daemonConfigFromSpec(spec, { group: 'default', vrid: 1 }).listeners, [listener]);
  const hostile = { ...spec, listeners: [{ ...spec.listeners[0], sniRoutes: [{ host: 'a;b', upstream: 'a' }] }] };
  assert.throws(
    () => daemonConfigFromSpec(hostile as LoadBalancerSpec, { group: 'default', vrid: 1 }),
    (err: unknown) => err instanceof InvalidDaemonConfigError && err.field === 'listeners[0].sniRoutes[0].host',
  );
});

/** `b` with HTTP settings. */
function withHttp(http: NonNullable<DaemonServiceConfig['options']['http']>): DaemonServiceConfig {
  const copy = clone(b);
  copy.options.http = { ...http };
  return versioned(copy);
}

/** The lines HTTP settings add, and the content version in each fragment header, taken out. */
function withoutHttpSettings(config: string): string {
  return config
    .replace(/\n {8}location @[^\n]+ \{\n(?: {12}[^\n]+\n)+ {8}\}/g, '')
    .replace(/\n {12}error_page 418 = @[^\n]+\n {12}if \(\$http_upgrade\) \{\n {16}return 418;\n {12}\}/g, '')
    .replace(
      /\n {8}(client_max_body_size|large_client_header_buffers|proxy_buffering|proxy_request_buffering) [^\n]+;/g,
      '',
    )
    .replace(/(# [a-z]+\/[a-z0-9./-]+) [0-9a-f]{16}\n/g, '$1 V\n');
}

test('HTTP settings render on every HTTP server of the load balancer, and only there', () => {
  const base = renderNginxConfig([a, b], nginxOptions(dir)).config;
  const http = {
    maxBodyBytes: 16 * 1024 * 1024,
    maxHeaderBytes: 32768,
    connectSeconds: 3,
    readSeconds: 1,
    sendSeconds: 7,
    upgradeSeconds: 3600,
    buffering: false,
  };
  const { config, rejected } = renderNginxConfig([a, withHttp(http)], nginxOptions(dir));
  assert.is(rejected.size, 0);
  const servers = (config.match(/listen 127\.0\.10\.2:/g) ?? []).length;
  const count = (text: string): number => config.split(text).length - 1;
  assert.is(count('        client_max_body_size 16777216;\n'), servers);
  assert.is(count('        large_client_header_buffers 4 32768;\n'), servers);
  assert.is(count('        proxy_buffering off;\n        proxy_request_buffering off;\n'), servers);
  // The HTTP timeouts take the place of the load balancer's connect and idle ones on HTTP servers.
  assert.is(
    count('        proxy_connect_timeout 3s;\n        proxy_read_timeout 1s;\n        proxy_send_timeout 7s;\n'),
    servers,
  );
  assert.not.match(config, 'proxy_read_timeout 60s;');
  // The L4 load balancer keeps its own.
  assert.match(config, 'proxy_connect_timeout 5s;\n        proxy_timeout 30s;');
  // An Upgrade request goes to a named location with the upgrade timeout, to the same upstream.
  assert.match(
    config,
    `        location /coffee/ {
            error_page 418 = @ingress_shop_cafe.coffee;
            if ($http_upgrade) {
                return 418;
            }
            proxy_pass http://ingress_shop_cafe.coffee;
        }`,
  );
  assert.match(
    config,
    `        location @ingress_shop_cafe.coffee {
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
            proxy_pass http://ingress_shop_cafe.coffee;
        }`,
  );
  // Everything else is as without the settings (the timeout lines aside, checked above).
  const normalise = (text: string): string =>
    withoutHttpSettings(text)
      .replace(/ {8}proxy_connect_timeout \d+s;\n/g, '')
      .replace(/proxy_(read|send)_timeout \d+s;\n/g, 'proxy_$1_timeout T;\n');
  assert.is(normalise(config), normalise(base));
  // One setting at a time adds its lines and nothing else; buffering on is written out.
  for (const one of [
    { maxBodyBytes: 0 },
    { maxHeaderBytes: 1024 },
    { buffering: true },
    { buffering: false },
    { upgradeSeconds: 1 },
  ]) {
    const single = renderNginxConfig([a, withHttp(one)], nginxOptions(dir)).config;
    assert.is.not(single.replace(/[0-9a-f]{16}\n/g, ''), base.replace(/[0-9a-f]{16}\n/g, ''), JSON.stringify(one));
    assert.is(withoutHttpSettings(single), withoutHttpSettings(base), JSON.stringify(one));
  }
  assert.match(renderNginxConfig([withHttp({ maxBodyBytes: 0 })], nginxOptions(dir)).config, 'client_max_body_size 0;');
  assert.match(
    renderNginxConfig([withHttp({ buffering: true })], nginxOptions(dir)).config,
    'proxy_buffering on;\n        proxy_request_buffering on;\n',
  );
  // An empty block renders exactly as none.
  const empty = renderNginxConfig([a, withHttp({})], nginxOptions(dir)).config;
  assert.is(empty.replace(/[0-9a-f]{16}\n/g, ''), base.replace(/[0-9a-f]{16}\n/g, ''));
  if (!missingNginx)
    assert.is(
      nginxTest(dir, writeNginx(dir, { ...renderNginxConfig([a, withHttp(http), c], nginxOptions(dir)) }, 'http.conf')),
      undefined,
    );
});

test('HTTP settings are validated: schema, ranges, whole numbers, and the field is named', () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ maxBodyBytes: -1 }, 'options.http.maxBodyBytes'],
    [{ maxBodyBytes: 1.5 }, 'options.http.maxBodyBytes'],
    [{ maxBodyBytes: 1024 ** 4 + 1 }, 'options.http.maxBodyBytes'],
    [{ maxBodyBytes: '10m' }, 'options.http.maxBodyBytes'],
    [{ maxHeaderBytes: 512 }, 'options.http.maxHeaderBytes'],
    [{ readSeconds: 0 }, 'options.http.readSeconds'],
    [{ upgradeSeconds: 604801 }, 'options.http.upgradeSeconds'],
    [{ buffering: 'off' }, 'options.http.buffering'],
    [{ gzip: true }, 'options.http'],
  ];
  for (const [http, field] of cases) {
    const bad = clone(b) as unknown as { options: { http: unknown } };
    bad.options.http = http;
    assert.throws(
      () => validateDaemonServiceConfig(bad),
      (err: unknown) => err instanceof InvalidDaemonConfigError && err.field === field,
      JSON.stringify(http),
    );
  }
});

test('daemonConfigFromSpec carries the HTTP settings (timeouts in whole seconds), and none when there are none', () => {
  const spec: LoadBalancerSpec = {
    ref: { id: 'ingress/shop/cafe', kind: 'Ingress', namespace: 'shop', name: 'cafe' },
    addresses: ['10.9.0.2'],
    requestedAddresses: [],
    ipFamilies: ['IPv4'],
    listeners: [{ name: 'http-80', port: 80, protocol: 'HTTP', upstream: 'web' }],
    upstreams: [
      { name: 'web', targets: [{ kind: 'node', address: '10.1.0.1', port: 30080, ready: true, nodeName: 'n1' }] },
    ],
    options: { algorithm: 'round-robin', proxyProtocol: false, sourceRanges: [], timeouts: { idleSeconds: 30 } },
    annotations: {},
  };
  const plain = daemonConfigFromSpec(spec, { group: 'default', vrid: 1 });
  assert.is('http' in plain.options, false);
  const withSettings = daemonConfigFromSpec(
    {
      ...spec,
      options: {
        ...spec.options,
        http: { maxBodyBytes: 0, readTimeoutSeconds: 1.2, upgradeTimeoutSeconds: 3600, buffering: false },
      },
    },
    { group: 'default', vrid: 1 },
  );
  assert.equal(withSettings.options.http, { maxBodyBytes: 0, readSeconds: 2, upgradeSeconds: 3600, buffering: false });
  assert.is.not(withSettings.version, plain.version);
  assert.is(
    'http' in
      daemonConfigFromSpec({ ...spec, options: { ...spec.options, http: {} } }, { group: 'default', vrid: 1 }).options,
    false,
  );
  assert.throws(
    () =>
      daemonConfigFromSpec(
        { ...spec, options: { ...spec.options, http: { maxHeaderBytes: 10 } } },
        { group: 'default', vrid: 1 },
      ),
    (err: unknown) => err instanceof InvalidDaemonConfigError && err.field === 'options.http.maxHeaderBytes',
  );
});

withNginx(
  'TLS passthrough renders ssl_preread and an SNI map (exact, one-label wildcard, catch-all); nginx -t passes',
  () => {
    const result = renderNginxConfig([a, b, c, t], nginxOptions(dir));
    assert.is(result.rejected.size, 0);
    const { config } = result;
    const stream = config.slice(config.indexOf('stream {'), config.indexOf('http {'));
    assert.match(stream, 'stream {\n    variables_hash_max_size 1048576;\n');
    assert.match(stream, 'map_hash_bucket_size 512;\n');
    assert.match(stream, '    upstream klb_closed {\n        server 127.0.0.1:1 down;\n    }\n');
    const variable = /map \$ssl_preread_server_name (\$klb_sni_[0-9a-f]{16}) \{/.exec(stream)?.[1];
    assert.ok(variable, stream);
    assert.match(
      stream,
      `map $ssl_preread_server_name ${variable} {
        hostnames;
        a.example.com gateway_edge_passthrough.a;
        ~*^[^.]+\\.wild\\.example\\.com$ gateway_edge_passthrough.b;
        default gateway_edge_passthrough.c;
    }
    server {
        listen 127.0.10.3:${PT};
        ssl_preread on;
        proxy_connect_timeout 5s;
        proxy_timeout 30s;
        allow 127.0.0.0/8;
        deny all;
        proxy_pass ${variable};
    }
`,
    );
    // The certificates stay with the targets: nothing for this listener is written or terminated.
    assert.is(result.files.length, 2);
    assert.not.match(stream, 'ssl_certificate');
    assert.is(nginxTest(dir, writeNginx(dir, result, 'tls.conf')), undefined);
    // Without a TLS listener, the stream block is as it always was.
    const plain = renderNginxConfig([a, b, c], nginxOptions(dir)).config;
    assert.match(plain, 'stream {\n    # service/default/alpha ');
    assert.not.match(plain, 'klb_closed');
    assert.not.match(plain, 'hash_bucket_size 256');
  },
);

withNginx(
  'TLS passthrough: map words as hosts, a host twice, no catch-all, no ready target all close or route safely',
  () => {
    const odd = clone(t);
    odd.id = 'gateway/edge/odd';
    odd.addresses = ['127.0.10.4'];
    const listener = odd.listeners[0];
    assert.ok(listener);
    listener.sniRoutes = [
      { host: 'default', upstream: 'a' },
      { host: 'include', upstream: 'a' },
      { host: 'hostnames', upstream: 'b' },
      { host: 'volatile', upstream: 'b' },
      { host: 'a.example.com', upstream: 'a' },
      { host: 'a.example.com', upstream: 'b' },
      { host: '*.wild.example.com', upstream: 'b' },
      { host: '*.wild.example.com', upstream: 'a' },
      { host: 'empty.example.com', upstream: 'empty' },
    ];
    odd.upstreams.push({
      name: 'empty',
      targets: [{ address: '127.0.0.1', port: 9304, ready: false }],
      maxFails: 1,
      failTimeoutSeconds: 5,
    });
    const result = renderNginxConfig([versioned(odd)], nginxOptions(dir));
    assert.is(result.rejected.size, 0);
    const map = result.config.slice(result.config.indexOf('    map $ssl_preread_server_name'));
    assert.match(
      map,
      `        hostnames;
        \\default gateway_edge_odd.a;
        \\include gateway_edge_odd.a;
        \\hostnames gateway_edge_odd.b;
        \\volatile gateway_edge_odd.b;
        a.example.com gateway_edge_odd.a;
        ~*^[^.]+\\.wild\\.example\\.com$ gateway_edge_odd.b;
        empty.example.com klb_closed;
        default klb_closed;
    }
`,
    );
    assert.not.match(result.config, 'upstream gateway_edge_odd.empty');
    assert.is(nginxTest(dir, writeNginx(dir, result, 'tls-odd.conf')), undefined);
    // A catch-all whose upstream has no ready target closes too; only the first catch-all counts.
    const idle = clone(odd);
    (idle.listeners[0] as typeof listener).sniRoutes = [{ upstream: 'empty' }, { upstream: 'a' }];
    const idleResult = renderNginxConfig([versioned(idle)], nginxOptions(dir));
    assert.match(idleResult.config, '        hostnames;\n        default klb_closed;\n    }\n');
    assert.not.match(idleResult.config, 'upstream gateway_edge_odd.a');
    assert.is(nginxTest(dir, writeNginx(dir, idleResult, 'tls-idle.conf')), undefined);
  },
);

test('each TLS listener has its own map variable, however many load balancers there are', () => {
  const many: DaemonServiceConfig[] = [];
  for (let i = 1; i <= 50; i++) {
    const s = clone(t);
    s.id = `gateway/edge/gw${i}`;
    s.addresses = [`10.30.0.${i}`];
    s.listeners.push({ name: 'second', port: 8443, protocol: 'TLS', sniRoutes: [{ upstream: 'c' }] });
    many.push(versioned(s));
  }
  const { config, rejected } = renderNginxConfig(many, nginxOptions(dir));
  assert.is(rejected.size, 0);
  const variables = [...config.matchAll(/map \$ssl_preread_server_name (\$klb_sni_[0-9a-f]{16}) /g)].map((m) => m[1]);
  assert.is(variables.length, 100);
  assert.is(new Set(variables).size, 100);
  assert.is(config.match(/upstream klb_closed \{/g)?.length, 1);
});

test.run();
