// A corpus of hostile values (directive injection, quoting, control characters, unicode, sizes,
// out-of-range numbers, wrong types) placed in every field of a load balancer's daemon config
// (L4, L7 with and without HTTP settings, and TLS passthrough, with SNI hosts of every shape
// nginx's map could misread).
// Each must be rejected with a clear, typed error naming the field; the other load balancers'
// nginx.conf, TLS files and keepalived.conf must be byte-for-byte what they are without it; and
// real `nginx -t` / `keepalived -t` must accept the result.
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DaemonConfigConflictError,
  type DaemonServiceConfig,
  InvalidDaemonConfigError,
  type NginxRenderResult,
  renderKeepalivedConfig,
  renderNginxConfig,
} from '@klb/backend-keepalived-nginx';
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
  tlsService,
  versioned,
  writeNginx,
} from './renderer-fixtures.js';

const test = suite('hostile input');
const missingNginx = requireComponents('nginx');
const missingKeepalived = requireComponents('keepalived', 'netns');

const dir = await mkdtemp(join(tmpdir(), 'klb-hostile-'));
const pem = makeCertificate(join(dir, 'pem'), ['cafe.example.com']);
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
  tls: await freePort(),
};
const P6 = { tcp: await freePort('::1'), udp: await freePort('::1') };
// A TLS passthrough load balancer is among the others, so its map and nginx's shared stream
// settings must come out unchanged too.
const passthrough = tlsService('gateway/default/passthrough', '127.0.20.3', P.tls, { a: [9301], b: [9302] });
const first = l4Service('service/default/alpha', '127.0.20.1', P, { tcp: [9001], udp: [9002] });
const l7 = l7Service('service/default/bravo', '127.0.20.2', P, { coffee: [9101], tea: [9102] }, pem);
const l4 = l4Service('service/default/bravo', '127.0.20.2', P, { tcp: [9003], udp: [9004] });
const tls = tlsService('service/default/bravo', '127.0.20.2', P.tls, { a: [9303], b: [9304], c: [9305] });
const last = l4Service('service/zulu/zeta', '::1', P6, { tcp: [9201], udp: [9202] });
// The L7 load balancer with every HTTP setting, so that each can be replaced.
const l7Http = (() => {
  const copy = clone(l7);
  copy.options.http = {
    maxBodyBytes: 16777216,
    maxHeaderBytes: 16384,
    connectSeconds: 3,
    readSeconds: 30,
    sendSeconds: 30,
    upgradeSeconds: 3600,
    buffering: false,
  };
  return versioned(copy);
})();

const strings: unknown[] = [
  'x;',
  'a; deny all',
  'a;\n}\nserver { listen 0.0.0.0:1; }',
  '{',
  '}',
  'a{b}',
  '"',
  "'",
  'a"b',
  "a'b",
  '\\',
  'a\\nb',
  'a\nb',
  '\n',
  '\r\n',
  'ab\u0000',
  '$host',
  '\u0024{x}', // ${x}
  '$',
  '#',
  'a#b',
  '# comment',
  'ünïcödé',
  '\u202egnp.exe',
  'ﬁle',
  '例え.jp',
  '😀',
  'а', // Cyrillic a
  '',
  ' ',
  '\t',
  'x'.repeat(100_000),
  'a'.repeat(64),
  'ALPHA',
  '../../etc/passwd',
  '127.0.0.1;',
  ' 127.0.0.1',
  '127.0.0.1 ',
  '0x7f.1',
  '127.000.0.1',
  '127.0.0.1/33',
  '::1%eth0',
  '[::1]',
  '/a b',
  '/a;b',
  '/a{b',
  '/$uri',
  '/#x',
  '*.',
  '-lead',
  'trail-',
  'with/slash',
];
const numbers: unknown[] = [
  -1,
  -65536,
  -(2 ** 31),
  1e308,
  -1e308,
  2 ** 53 + 2,
  1.5,
  0.001,
  NaN,
  Infinity,
  -Infinity,
  4294967296,
  99999999,
];
const others: unknown[] = [null, true, false, [], {}, ['a'], { a: 1 }, '80'];

/** Values for the TLS passthrough fields: host-shaped injections, map words, nginx's own wildcard forms. */
const sniStrings: unknown[] = [
  'a.example.com;',
  'a.example.com\ndefault x;',
  'a.example.com }',
  'a.example.com {',
  'a.example.com$',
  '$ssl_preread_server_name',
  '"a.example.com"',
  "a.example.com'",
  '*.example.com;',
  '*.example.com\n',
  '*.{a}.com',
  '\\default',
  'x.example.com include /etc/passwd',
  '~^.*$',
  '~*x',
  '*',
  '*example.com',
  '*.*.example.com',
  'a.*.example.com',
  '.example.com',
  'example.*',
  'a..b',
  'A.EXAMPLE.COM',
  'klb_closed',
  'nowhere',
  'default',
  'include',
  'hostnames',
  '*.example.com',
];

type Path = readonly (string | number)[];
/** Every field of the L7 config, and the L4-only fields of the L4 config. */
const l7Fields: Path[] = [
  ['apiVersion'],
  ['kind'],
  ['id'],
  ['version'],
  ['addresses', 0],
  ['listeners', 0, 'name'],
  ['listeners', 0, 'port'],
  ['listeners', 0, 'redirectToHttpsPort'],
  ['listeners', 1, 'name'],
  ['listeners', 1, 'port'],
  ['listeners', 1, 'protocol'],
  ['listeners', 1, 'routes', 0, 'host'],
  ['listeners', 1, 'routes', 0, 'path'],
  ['listeners', 1, 'routes', 0, 'pathType'],
  ['listeners', 1, 'routes', 0, 'upstream'],
  ['listeners', 1, 'tls', 0, 'name'],
  ['listeners', 1, 'tls', 0, 'hosts', 0],
  ['listeners', 1, 'tls', 0, 'certificate'],
  ['listeners', 1, 'tls', 0, 'privateKey'],
  ['listeners', 1, 'tls', 0, 'secret', 'namespace'],
  ['listeners', 1, 'tls', 0, 'secret', 'name'],
  ['listeners', 2, 'upstream'],
  ['listeners', 2, 'routes', 3, 'path'],
  ['upstreams', 0, 'name'],
  ['upstreams', 0, 'targets', 0, 'address'],
  ['upstreams', 0, 'targets', 0, 'port'],
  ['upstreams', 0, 'targets', 0, 'ready'],
  ['upstreams', 0, 'maxFails'],
  ['upstreams', 0, 'failTimeoutSeconds'],
  ['options', 'algorithm'],
  ['options', 'sessionAffinity'],
  ['options', 'proxyProtocol'],
  ['options', 'timeouts', 'idleSeconds'],
  ['options', 'vrrp', 'group'],
  ['options', 'vrrp', 'vrid'],
];
const l4Fields: Path[] = [
  ['listeners', 0, 'name'],
  ['listeners', 0, 'upstream'],
  ['listeners', 1, 'protocol'],
  ['listeners', 1, 'port'],
  ['upstreams', 1, 'targets', 0, 'address'],
  ['upstreams', 1, 'targets', 0, 'port'],
  ['options', 'sourceRanges', 0],
  ['options', 'timeouts', 'connectSeconds'],
  ['options', 'timeouts', 'idleSeconds'],
];

const httpFields: Path[] = [
  ['options', 'http', 'maxBodyBytes'],
  ['options', 'http', 'maxHeaderBytes'],
  ['options', 'http', 'connectSeconds'],
  ['options', 'http', 'readSeconds'],
  ['options', 'http', 'sendSeconds'],
  ['options', 'http', 'upgradeSeconds'],
  ['options', 'http', 'buffering'],
  ['options', 'http', 'gzip'],
  ['options', 'http'],
];

const tlsFields: Path[] = [
  ['listeners', 0, 'name'],
  ['listeners', 0, 'port'],
  ['listeners', 0, 'upstream'],
  ['listeners', 0, 'sniRoutes', 0, 'host'],
  ['listeners', 0, 'sniRoutes', 1, 'host'],
  ['listeners', 0, 'sniRoutes', 2, 'host'],
  ['listeners', 0, 'sniRoutes', 0, 'upstream'],
  ['listeners', 0, 'sniRoutes', 2, 'upstream'],
  ['listeners', 0, 'sniRoutes', 3],
  ['upstreams', 2, 'name'],
  ['options', 'proxyProtocol'],
  ['options', 'sourceRanges', 0],
  ['options', 'timeouts', 'connectSeconds'],
];

function mutate(config: DaemonServiceConfig, path: Path, value: unknown): unknown {
  const copy = clone(config) as unknown as Record<string | number, unknown>;
  let node = copy;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  node[path[path.length - 1] as string | number] = value;
  return copy;
}

function fieldName(path: Path): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

const isHarmless = (value: unknown, path: Path = []): boolean =>
  typeof value === 'boolean' ||
  (typeof value === 'string' && /^(\*\.)?[a-z0-9][a-z0-9.-]*$/.test(value)) ||
  // Any whole number of bytes is a body size (up to 1 TiB).
  (path[path.length - 1] === 'maxBodyBytes' && Number.isSafeInteger(value) && (value as number) >= 0) ||
  // An HTTP block of one unknown key stays an object of settings: only `{}` may pass (as none).
  (path[path.length - 1] === 'http' && typeof value === 'object' && value !== null && Object.keys(value).length === 0);

const hash = (s: string): string => createHash('sha256').update(s).digest('hex');

test('every hostile value in every field is rejected, and nothing else changes', () => {
  const nOptions = nginxOptions(dir);
  const kOptions = keepalivedOptions(dir, checker?.iface ?? 'eth0');
  const baseline = renderNginxConfig([first, last, passthrough], nOptions);
  const baselineK = renderKeepalivedConfig([first, last, passthrough], kOptions);
  assert.equal(baseline.rendered, ['gateway/default/passthrough', 'service/default/alpha', 'service/zulu/zeta']);
  assert.match(baseline.config, 'ssl_preread on;');
  const distinct = new Map<string, string>([[hash(baseline.config), baseline.config]]);
  const distinctK = new Set<string>([hash(baselineK.config)]);
  let cases = 0;
  const accepted = new Map<string, NginxRenderResult>();
  const corpus = [...strings, ...numbers, ...others];
  for (const [service, fields, values] of [
    [l7, l7Fields, corpus],
    [l4, l4Fields, corpus],
    [tls, tlsFields, [...corpus, ...sniStrings]],
    [l7Http, httpFields, corpus],
  ] as const) {
    for (const path of fields) {
      for (const value of values) {
        const hostile = mutate(service, path, value);
        const label = `${service.listeners[0]?.protocol} ${fieldName(path)} = ${JSON.stringify(value)?.slice(0, 60)}`;
        const result = renderNginxConfig([first, hostile as DaemonServiceConfig, last, passthrough], nOptions);
        const k = renderKeepalivedConfig([first, hostile as DaemonServiceConfig, last, passthrough], kOptions);
        if (result.rejected.size !== 1) {
          // A few corpus values are legitimate in a few fields (`false` for a boolean, `80` as a
          // name, a 64-character version): they must render whole, and pass nginx -t below.
          assert.ok(isHarmless(value, path), `${label}: not rejected`);
          assert.is(result.rejected.size, 0, label);
          accepted.set(hash(result.config), result);
          continue;
        }
        cases++;
        const [key, err] = [...result.rejected][0] as [string, Error];
        assert.ok(
          err instanceof InvalidDaemonConfigError || err instanceof DaemonConfigConflictError,
          `${label}: ${err.constructor.name}`,
        );
        assert.is((err as InvalidDaemonConfigError).code !== undefined, true);
        // A harmless value can be rejected for a consequence (a renamed upstream breaks its
        // references); a hostile one must be caught at its own field.
        if (err instanceof InvalidDaemonConfigError && !isHarmless(value, path)) {
          const want = fieldName(path);
          assert.ok(
            want.startsWith(err.field) && err.field !== '' ? true : err.field.startsWith(want),
            `${label}: error names ${err.field}, not ${want}: ${err.message}`,
          );
        }
        assert.ok(err.message.length > 0 && err.message.length < 400, `${label}: message length ${err.message.length}`);
        assert.not.match(err.message, '\n', `${label}: raw newline in message`);
        assert.not.match(err.message, 'PRIVATE KEY', `${label}: key material in message`);
        if (path[0] !== 'id') assert.is(key, 'service/default/bravo', label);
        assert.is(result.config, baseline.config, `${label}: nginx.conf changed`);
        assert.equal(result.files, baseline.files, `${label}: files changed`);
        assert.equal(result.rendered, baseline.rendered, label);
        assert.is(k.config, baselineK.config, `${label}: keepalived.conf changed`);
        assert.is(k.rejected.size, 1, `${label}: keepalived renderer did not reject`);
        distinct.set(hash(result.config), result.config);
        distinctK.add(hash(k.config));
      }
    }
  }
  console.log(`hostile input: ${cases} cases rejected, ${accepted.size} harmless variants accepted`);
  assert.ok(cases > 2000, `only ${cases} hostile cases`);
  assert.is(distinct.size, 1);
  assert.is(distinctK.size, 1);
  if (!missingNginx) {
    for (const config of distinct.values()) {
      assert.is(nginxTest(dir, writeNginx(dir, { ...baseline, config })), undefined);
    }
    for (const result of accepted.values()) {
      assert.is(nginxTest(dir, writeNginx(dir, result, 'accepted.conf')), undefined, result.config);
    }
  }
  if (checker) {
    const file = join(dir, 'keepalived.conf');
    writeFileSync(file, baselineK.config);
    assert.is(checker.check(file), undefined);
  }
});

test('the good version of the hostile service renders and passes nginx -t (the corpus tests real rejections)', () => {
  const result = renderNginxConfig([first, l7, last], nginxOptions(dir));
  assert.is(result.rejected.size, 0);
  assert.equal(result.rendered, ['service/default/alpha', 'service/default/bravo', 'service/zulu/zeta']);
  if (!missingNginx) assert.is(nginxTest(dir, writeNginx(dir, result, 'good.conf')), undefined);
  const l4Result = renderNginxConfig([first, l4, last], nginxOptions(dir));
  assert.is(l4Result.rejected.size, 0);
  const httpResult = renderNginxConfig([first, l7Http, last], nginxOptions(dir));
  assert.is(httpResult.rejected.size, 0);
  assert.match(httpResult.config, 'client_max_body_size 16777216;');
  if (!missingNginx) assert.is(nginxTest(dir, writeNginx(dir, httpResult, 'good-http.conf')), undefined);
  const tlsResult = renderNginxConfig([first, tls, last, passthrough], nginxOptions(dir));
  assert.is(tlsResult.rejected.size, 0);
  if (!missingNginx) assert.is(nginxTest(dir, writeNginx(dir, tlsResult, 'good-tls.conf')), undefined);
});

test.run();
