// Real traffic through a real nginx running the rendered config: TCP, UDP, HTTP (host + path),
// HTTPS (a self-signed certificate as from a Secret), redirects, TLS passthrough by SNI, source
// ranges and the PROXY protocol, HTTP settings (body and header size, timeouts, buffering, upgraded
// connections), to real backend servers on 127.0.0.1; then services are added, changed and
// removed (with reloads) while traffic flows, and a hostile service is rejected without taking the
// others down.
import { X509Certificate } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { chmodSync, mkdirSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { type DaemonServiceConfig, NginxRenderer } from '@klb/backend-keepalived-nginx';
import { freePort, ProcessGroup, requireComponents } from '@klb/testing';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  clone,
  l4Service,
  l7Service,
  makeCertificate,
  nginxOptions,
  nginxTest,
  tlsService,
  upload,
  versioned,
  writeNginx,
} from './renderer-fixtures.js';

const test = suite('nginx traffic');
const missing = requireComponents('nginx');
const it = missing ? test.skip : test;

const dir = await mkdtemp(join(tmpdir(), 'klb-traffic-'));
// nginx's workers (nobody, when the test runs as root) must reach their temporary files in `run/`.
chmodSync(dir, 0o711);
const group = new ProcessGroup(dir);
const closers: (() => Promise<void>)[] = [];
/** Ends the request loop of the traffic test; also run by after() when that test failed mid-way. */
let stopTraffic: (() => Promise<void>) | undefined;
test.after(async () => {
  await stopTraffic?.();
  await group.stopAll();
  for (const close of closers) await close();
});

/** Received by an HTTP backend, echoed back as JSON. */
interface Echo {
  backend: string;
  host: string;
  url: string;
  version: string;
  headers: http.IncomingHttpHeaders;
}

async function httpBackend(name: string): Promise<number> {
  const port = await freePort();
  const server = http.createServer((req, res) => {
    const body: Echo = {
      backend: name,
      host: String(req.headers.host),
      url: String(req.url),
      version: req.httpVersion,
      headers: req.headers,
    };
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(body));
  });
  // An Upgrade (as a WebSocket handshake asks): switch protocols, then echo every byte with the name.
  const upgraded = new Set<import('node:stream').Duplex>();
  server.on('upgrade', (req, socket) => {
    upgraded.add(socket);
    socket.on('close', () => upgraded.delete(socket));
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${req.headers.upgrade}\r\nConnection: Upgrade\r\n\r\n`);
    socket.on('data', (chunk: Buffer) => socket.write(`${name}:${chunk.toString()}`));
    socket.on('error', () => {});
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  closers.push(async () => {
    server.closeAllConnections();
    for (const socket of upgraded) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return port;
}

/** A TCP backend that answers the first line it gets with `<name> <line>` (the PROXY header, if any, included). */
async function tcpBackend(name: string): Promise<number> {
  const port = await freePort();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buffer = '';
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1');
      const lines = buffer.split('\n').length - 1;
      if (lines < (buffer.startsWith('PROXY ') ? 2 : 1)) return;
      socket.end(`${name} ${buffer.trimEnd().replaceAll('\r\n', ' | ')}\n`);
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  closers.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return port;
}

async function udpBackend(name: string): Promise<number> {
  const port = await freePort();
  const socket = createSocket('udp4');
  socket.on('message', (msg, rinfo) => socket.send(`${name} ${msg.toString()}`, rinfo.port, rinfo.address));
  await new Promise<void>((resolve) => socket.bind(port, '127.0.0.1', resolve));
  closers.push(async () => {
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  });
  return port;
}

function tcpAsk(host: string, port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let answer = '';
    socket.setTimeout(5000, () => socket.destroy(new Error('timeout')));
    socket.on('connect', () => socket.write(`${line}\n`));
    socket.on('data', (chunk) => {
      answer += chunk.toString();
    });
    socket.on('end', () => resolve(answer.trim()));
    socket.on('close', () => resolve(answer.trim()));
    socket.on('error', reject);
  });
}

/** A TLS target: it terminates TLS with its own certificate, so a client can tell which one it reached. */
interface TlsBackend {
  readonly port: number;
  /** SHA-256 fingerprint of its certificate, as `getPeerCertificate().fingerprint256` shows it. */
  readonly fingerprint: string;
}

/**
 * A TLS server with a self-signed certificate for `hosts` that answers `<name> <SNI it got, or ->`
 * and closes. With `proxy` it first reads a PROXY protocol line, which it appends to the answer,
 * and then speaks TLS on the same connection.
 */
async function tlsBackend(name: string, hosts: readonly string[], proxy = false): Promise<TlsBackend> {
  const pem = makeCertificate(join(dir, `pem-${name}`), hosts);
  const port = await freePort();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((raw) => {
    sockets.add(raw);
    raw.on('close', () => sockets.delete(raw));
    raw.on('error', () => {});
    const speakTls = (header: string): void => {
      const secure = new tls.TLSSocket(raw, { isServer: true, cert: pem.certificate, key: pem.privateKey });
      secure.on('error', () => {});
      secure.on('secure', () => {
        const sni = typeof secure.servername === 'string' ? secure.servername : '-';
        secure.end(`${name} ${sni}${header ? ` | ${header}` : ''}\n`);
      });
    };
    if (!proxy) {
      speakTls('');
      return;
    }
    let buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffer = Buffer.concat([buffer, chunk]);
      const end = buffer.indexOf('\r\n');
      if (end < 0) return;
      raw.off('data', onData);
      raw.pause();
      raw.unshift(buffer.subarray(end + 2));
      speakTls(buffer.subarray(0, end).toString('latin1'));
    };
    raw.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  closers.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port, fingerprint: new X509Certificate(pem.certificate).fingerprint256 };
}

/**
 * A TLS client: the certificate it was shown and what it read, or `closed` when the connection
 * ended before a TLS session was up. Without `servername` it sends no SNI (the host is an address).
 */
function tlsAsk(
  host: string,
  port: number,
  servername?: string,
): Promise<{ fingerprint: string; answer: string } | 'closed'> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port, rejectUnauthorized: false, ...(servername ? { servername } : {}) });
    let fingerprint = '';
    let answer = '';
    socket.setTimeout(5000, () => socket.destroy(new Error('timeout')));
    socket.on('secureConnect', () => {
      fingerprint = socket.getPeerCertificate().fingerprint256;
    });
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString();
    });
    socket.on('close', () => resolve(fingerprint ? { fingerprint, answer: answer.trim() } : 'closed'));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // nginx closing (or resetting) the connection during the handshake is the answer `closed`.
      if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') reject(err);
    });
  });
}

function udpAsk(host: string, port: number, msg: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error('udp timeout'));
    }, 3000);
    socket.on('message', (answer) => {
      clearTimeout(timer);
      socket.close();
      resolve(answer.toString());
    });
    socket.send(msg, port, host);
  });
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function get(
  url: string,
  options: { host?: string; ca?: string; servername?: string; agent?: http.Agent } = {},
): Promise<Reply> {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        headers: options.host ? { host: options.host } : {},
        timeout: 5000,
        ...(options.agent ? { agent: options.agent } : { agent: false }),
        ...(options.ca ? { ca: options.ca, servername: options.servername } : {}),
      },
      (res) => {
        let body = '';
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function eventually<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, tries = 100): Promise<T> {
  let last: unknown;
  for (let i = 0; i < tries; i++) {
    try {
      const v = await fn();
      if (ok(v)) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: never happened; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
}

const pem = makeCertificate(join(dir, 'pem'), ['cafe.example.com', '*.menu.example.com']);
const renderer = new NginxRenderer();
const options = nginxOptions(dir);
mkdirSync(join(dir, 'run'), { recursive: true });
const conf = join(dir, 'nginx.conf');

/** Renders, writes, checks with nginx -t and (re)loads: what the daemon does, done by hand here. */
async function apply(services: readonly unknown[]): Promise<ReturnType<NginxRenderer['render']>> {
  const result = renderer.render(services, options);
  writeNginx(dir, result);
  const problem = nginxTest(dir, conf);
  assert.is(problem, undefined, problem);
  const pid = group.pid('nginx');
  if (pid === undefined) {
    group.start('nginx', 'nginx', ['-p', dir, '-c', conf, '-e', 'stderr', '-g', 'daemon off;']);
  } else {
    process.kill(pid, 'SIGHUP');
  }
  return result;
}

let vipN = 0;
const vip = (): string => `127.0.31.${++vipN}`;

let l4: DaemonServiceConfig;
let l7: DaemonServiceConfig;
let ports: { tcp: number; udp: number; http: number; https: number; plain: number };
if (!missing) {
  const [t1, t2, u1, coffee, tea1, tea2] = await Promise.all([
    tcpBackend('t1'),
    tcpBackend('t2'),
    udpBackend('u1'),
    httpBackend('coffee'),
    httpBackend('tea1'),
    httpBackend('tea2'),
  ]);
  ports = {
    tcp: await freePort(),
    udp: await freePort(),
    http: await freePort(),
    https: await freePort(),
    plain: await freePort(),
  };
  const a = clone(l4Service('service/default/l4', vip(), ports, { tcp: [t1, t2], udp: [u1] }));
  a.options.sourceRanges = ['127.0.0.0/8'];
  l4 = versioned(a);
  l7 = l7Service('ingress/default/cafe', vip(), ports, { coffee: [coffee], tea: [tea1, tea2] }, pem);
  await apply([l4, l7]);
}

it('TCP and UDP through the VIP reach the backends', async () => {
  const address = l4.addresses[0] as string;
  const answer = await eventually(
    'tcp answer',
    () => tcpAsk(address, ports.tcp, 'hello'),
    (a) => /^t[12] hello$/.test(a),
  );
  assert.match(answer, /^t[12] hello$/);
  const seen = new Set<string>();
  for (let i = 0; i < 10; i++) seen.add((await tcpAsk(address, ports.tcp, 'x')).split(' ')[0] as string);
  assert.equal([...seen].sort(), ['t1', 't2']);
  assert.is(await udpAsk(address, ports.udp, 'ping'), 'u1 ping');
});

it('HTTP routes by host and path, with X-Forwarded-* headers', async () => {
  const base = `http://${l7.addresses[0]}:${ports.plain}`;
  const coffee = await eventually(
    'coffee',
    () => get(`${base}/coffee/beans?x=1`, { host: 'cafe.example.com' }),
    (r) => r.status === 200,
  );
  const echo = JSON.parse(coffee.body) as Echo;
  assert.is(echo.backend, 'coffee');
  assert.is(echo.url, '/coffee/beans?x=1');
  assert.is(echo.host, 'cafe.example.com');
  assert.is(echo.headers['x-forwarded-for'], '127.0.0.1');
  assert.is(echo.headers['x-forwarded-proto'], 'http');
  assert.is(echo.headers['x-forwarded-host'], 'cafe.example.com');
  assert.is(echo.headers['x-real-ip'], '127.0.0.1');
  const backendOf = async (path: string, host: string): Promise<string> => {
    const r = await get(`${base}${path}`, { host });
    return r.status === 200 ? (JSON.parse(r.body) as Echo).backend : String(r.status);
  };
  assert.is(await backendOf('/coffee', 'cafe.example.com'), 'coffee');
  assert.match(await backendOf('/tea', 'cafe.example.com'), /^tea[12]$/);
  // Exact: /tea/leaf is not /tea; the host has no default route, but the listener's default upstream is tea.
  assert.match(await backendOf('/tea/leaf', 'cafe.example.com'), /^tea[12]$/);
  // Prefix is per path element: /coffeehouse is not under /coffee.
  assert.match(await backendOf('/coffeehouse', 'cafe.example.com'), /^tea[12]$/);
  assert.match(await backendOf('/anything', 'x.menu.example.com'), /^tea[12]$/);
  assert.is(await backendOf('/coffee/x', 'unknown.example.org'), 'coffee');
  assert.match(await backendOf('/', 'unknown.example.org'), /^tea[12]$/);
});

it('HTTPS terminates TLS with the Secret certificate; HTTP redirects to it; no route is a 404', async () => {
  const address = l7.addresses[0] as string;
  const r = await eventually(
    'https',
    () =>
      get(`https://${address}:${ports.https}/coffee`, {
        host: 'cafe.example.com',
        ca: pem.certificate,
        servername: 'cafe.example.com',
      }),
    (x) => x.status === 200,
  );
  const echo = JSON.parse(r.body) as Echo;
  assert.is(echo.backend, 'coffee');
  assert.is(echo.headers['x-forwarded-proto'], 'https');
  assert.is(echo.headers['x-forwarded-port'], String(ports.https));
  const notFound = await get(`https://${address}:${ports.https}/nothing`, {
    host: 'cafe.example.com',
    ca: pem.certificate,
    servername: 'cafe.example.com',
  });
  assert.is(notFound.status, 404);
  // A client that does not trust the certificate fails (TLS is real).
  await get(`https://${address}:${ports.https}/coffee`).then(
    () => assert.unreachable('untrusted certificate accepted'),
    (err: Error) => assert.match(err.message, /self[- ]signed|certificate/i),
  );
  const redirect = await get(`http://${address}:${ports.http}/coffee?a=b`, { host: 'cafe.example.com' });
  assert.is(redirect.status, 308);
  assert.is(redirect.headers.location, `https://cafe.example.com:${ports.https}/coffee?a=b`);
});

it('a WebSocket upgrade passes through nginx and carries bytes both ways', async () => {
  const address = l7.addresses[0] as string;
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const req = http.request({
      host: address,
      port: ports.plain,
      path: '/coffee/socket',
      agent: false,
      timeout: 5000,
      headers: {
        host: 'cafe.example.com',
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
      },
    });
    req.on('upgrade', (res, sock) => {
      assert.is(res.statusCode, 101);
      resolve(sock);
    });
    req.on('response', (res) => reject(new Error(`no upgrade: HTTP ${res.statusCode}`)));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
  const echoed = await new Promise<string>((resolve) => {
    socket.once('data', (chunk: Buffer) => resolve(chunk.toString()));
    socket.write('hello');
  });
  socket.destroy();
  assert.is(echoed, 'coffee:hello');
});

it('HTTPS speaks HTTP/2 to clients (ALPN h2) and HTTP/1.1 to the backend', async () => {
  const address = l7.addresses[0] as string;
  const session = http2.connect(`https://${address}:${ports.https}`, {
    ca: pem.certificate,
    servername: 'cafe.example.com',
  });
  try {
    const reply = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = session.request({ ':path': '/coffee/h2', ':authority': 'cafe.example.com' });
      let status = 0;
      let body = '';
      req.on('response', (headers) => {
        status = Number(headers[':status']);
      });
      req.setEncoding('utf8');
      req.on('data', (c: string) => {
        body += c;
      });
      req.on('end', () => resolve({ status, body }));
      req.on('error', reject);
      req.end();
    });
    assert.is(session.alpnProtocol, 'h2');
    assert.is(reply.status, 200);
    const echo = JSON.parse(reply.body) as Echo;
    assert.is(echo.backend, 'coffee');
    assert.is(echo.version, '1.1');
    assert.is(echo.headers['x-forwarded-proto'], 'https');
  } finally {
    session.close();
  }
});

it('source ranges deny other clients; the PROXY protocol header reaches the target', async () => {
  const [t3] = [await tcpBackend('t3')];
  const port = await freePort();
  const denied = clone(
    l4Service('service/default/denied', vip(), { tcp: port, udp: await freePort() }, { tcp: [t3], udp: [t3] }),
  );
  denied.options.sourceRanges = ['10.0.0.0/8'];
  const proxied = clone(
    l4Service('service/default/proxied', vip(), { tcp: port, udp: await freePort() }, { tcp: [t3], udp: [t3] }),
  );
  proxied.options.proxyProtocol = true;
  proxied.options.sourceRanges = [];
  await apply([l4, l7, versioned(denied), versioned(proxied)]);
  const proxiedVip = proxied.addresses[0] as string;
  const answer = await eventually(
    'proxied',
    () => tcpAsk(proxiedVip, port, 'hi'),
    (a) => a.startsWith('t3 '),
  );
  assert.match(
    answer,
    new RegExp(`^t3 PROXY TCP4 127\\.0\\.0\\.1 ${proxiedVip.replaceAll('.', '\\.')} \\d+ ${port} \\| hi$`),
  );
  // nginx closes a denied connection unanswered; a reset (the client's line arrived first) is the same answer.
  const deniedAnswer = await tcpAsk(denied.addresses[0] as string, port, 'hi').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ECONNRESET') return '';
    throw err;
  });
  assert.is(deniedAnswer, '');
  await apply([l4, l7]);
});

it('TLS passthrough routes by SNI to targets that terminate TLS themselves; other names are closed', async () => {
  const [a, b, c] = await Promise.all([
    tlsBackend('A', ['a.example.com']),
    tlsBackend('B', ['*.wild.example.com']),
    tlsBackend('C', ['catch-all.example.org']),
  ]);
  const port = await freePort();
  const open = tlsService('gateway/default/passthrough', vip(), port, { a: [a.port], b: [b.port], c: [c.port] });
  const strict = tlsService('gateway/default/strict', vip(), port, { a: [a.port], b: [b.port] });
  await apply([l4, l7, open, strict]);
  const [openVip, strictVip] = [open.addresses[0] as string, strict.addresses[0] as string];
  // The client sees A's own certificate: nginx passed the TLS session through, it did not terminate it.
  assert.equal(
    await eventually(
      'passthrough',
      () => tlsAsk(openVip, port, 'a.example.com'),
      (r) => r !== 'closed',
    ),
    { fingerprint: a.fingerprint, answer: 'A a.example.com' },
  );
  const reached = async (address: string, servername?: string): Promise<string> => {
    const r = await tlsAsk(address, port, servername);
    if (r === 'closed') return 'closed';
    const backend = [a, b, c].findIndex((x) => x.fingerprint === r.fingerprint);
    // The certificate and the answer come from the same target.
    assert.is(r.answer.split(' ')[0], 'ABC'[backend], r.answer);
    return r.answer;
  };
  assert.is(await reached(openVip, 'A.Example.COM'), 'A A.Example.COM');
  assert.is(await reached(openVip, 'x.wild.example.com'), 'B x.wild.example.com');
  assert.is(await reached(openVip, 'x-1.wild.example.com'), 'B x-1.wild.example.com');
  // A wildcard is one label: deeper names and the bare suffix are someone else's.
  assert.is(await reached(openVip, 'x.y.wild.example.com'), 'C x.y.wild.example.com');
  assert.is(await reached(openVip, 'wild.example.com'), 'C wild.example.com');
  assert.is(await reached(openVip, 'other.example.net'), 'C other.example.net');
  assert.is(await reached(openVip), 'C -');
  // Without a catch-all, a name no route has, or no name at all, gets its connection closed.
  assert.is(await reached(strictVip, 'a.example.com'), 'A a.example.com');
  assert.is(await reached(strictVip, 'x.wild.example.com'), 'B x.wild.example.com');
  assert.is(await reached(strictVip, 'x.y.wild.example.com'), 'closed');
  assert.is(await reached(strictVip, 'other.example.net'), 'closed');
  assert.is(await reached(strictVip), 'closed');
  await apply([l4, l7]);
});

it('TLS passthrough denies clients outside the source ranges and sends the PROXY header before the TLS session', async () => {
  const target = await tlsBackend('P', ['a.example.com'], true);
  const port = await freePort();
  const proxied = clone(tlsService('gateway/default/proxied', vip(), port, { a: [target.port], b: [target.port] }));
  proxied.options.proxyProtocol = true;
  const denied = clone(tlsService('gateway/default/denied', vip(), port, { a: [target.port], b: [target.port] }));
  denied.options.sourceRanges = ['10.0.0.0/8'];
  denied.options.proxyProtocol = true;
  await apply([l4, l7, versioned(proxied), versioned(denied)]);
  const proxiedVip = proxied.addresses[0] as string;
  const answer = await eventually(
    'proxied passthrough',
    () => tlsAsk(proxiedVip, port, 'a.example.com'),
    (r) => r !== 'closed',
  );
  assert.ok(answer !== 'closed');
  assert.is(answer.fingerprint, target.fingerprint);
  assert.match(
    answer.answer,
    new RegExp(
      `^P a\\.example\\.com \\| PROXY TCP4 127\\.0\\.0\\.1 ${proxiedVip.replaceAll('.', '\\.')} \\d+ ${port}$`,
    ),
  );
  assert.is(await tlsAsk(denied.addresses[0] as string, port, 'a.example.com'), 'closed');
  await apply([l4, l7]);
});

/** What the HTTP settings application has seen, for the tests to read. */
interface SettingsApp {
  readonly port: number;
  /** Ends the `/stream` response now (it otherwise ends 2 s after its first chunk). */
  release(): void;
  /** Whether the last `/stream` response has ended. */
  streamEnded: boolean;
  /** Whether the last `/upload` request has reached the application (its headers). */
  uploadSeen: boolean;
  /** Bytes of the last `/big` response written so far, and whether it has all been written. */
  big: { written: number; done: boolean };
}

/** Size of the `/big` response: more than every socket buffer between nginx and both ends. */
const BIG = 48 * 1024 * 1024;

/**
 * An application for the HTTP settings: `POST /upload` answers the number of body bytes it read;
 * `GET /slow` answers after 3 s; `GET /stream` sends its first chunk at once and the rest on
 * `release()` (or after 2 s); `GET /big` writes {@link BIG} bytes as fast as it may; an Upgrade
 * echoes every byte.
 */
async function settingsBackend(): Promise<SettingsApp> {
  const port = await freePort();
  let release = (): void => {};
  const app: SettingsApp = {
    port,
    release: () => release(),
    streamEnded: false,
    uploadSeen: false,
    big: { written: 0, done: false },
  };
  const server = http.createServer((req, res) => {
    if (req.url === '/upload') {
      app.uploadSeen = true;
      let bytes = 0;
      req.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      req.on('end', () => res.end(JSON.stringify({ bytes })));
      return;
    }
    if (req.url === '/slow') {
      const timer = setTimeout(() => res.end('slow'), 3000);
      res.on('close', () => clearTimeout(timer));
      return;
    }
    if (req.url === '/stream') {
      app.streamEnded = false;
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first\n');
      const done = (): void => {
        clearTimeout(timer);
        release = () => {};
        if (res.writableEnded) return;
        res.end('rest\n', () => {
          app.streamEnded = true;
        });
      };
      const timer = setTimeout(done, 2000);
      release = done;
      return;
    }
    if (req.url === '/big') {
      const big = { written: 0, done: false };
      app.big = big;
      const chunk = Buffer.alloc(1024 * 1024, 'b');
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BIG });
      const pump = (): void => {
        while (big.written < BIG) {
          big.written += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end(() => {
          big.done = true;
        });
      };
      pump();
      return;
    }
    res.end('ok');
  });
  const upgraded = new Set<import('node:stream').Duplex>();
  server.on('upgrade', (_req, socket) => {
    upgraded.add(socket);
    socket.on('close', () => upgraded.delete(socket));
    socket.on('error', () => {});
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    socket.on('data', (chunk: Buffer) => socket.write(`echo:${chunk.toString()}`));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  closers.push(async () => {
    server.closeAllConnections();
    for (const socket of upgraded) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return app;
}

/** One HTTP listener on `port` of `address` proxying to `target`, with HTTP settings when given. */
function settingsService(
  id: string,
  address: string,
  port: number,
  target: number,
  settings?: NonNullable<DaemonServiceConfig['options']['http']>,
): DaemonServiceConfig {
  return versioned({
    apiVersion: 'klb.io/v1alpha1',
    kind: 'DaemonServiceConfig',
    id,
    addresses: [address],
    listeners: [{ name: 'web', port, protocol: 'HTTP', upstream: 'app' }],
    upstreams: [
      {
        name: 'app',
        targets: [{ address: '127.0.0.1', port: target, ready: true }],
        maxFails: 1,
        failTimeoutSeconds: 5,
      },
    ],
    options: {
      algorithm: 'round-robin',
      sessionAffinity: false,
      proxyProtocol: false,
      sourceRanges: [],
      timeouts: {},
      ...(settings ? { http: settings } : {}),
      vrrp: { group: 'default', vrid: 51 },
    },
  });
}

let settingsApp: Awaited<ReturnType<typeof settingsBackend>>;
let settingsPort: number;
const settingsVips: Record<string, string> = {};

it('HTTP settings: request body size (413 by default past 1 MiB, more when set) and header size', async () => {
  settingsApp = await settingsBackend();
  settingsPort = await freePort();
  for (const name of ['plain', 'large', 'slow', 'stream', 'upgrade']) settingsVips[name] = vip();
  const svc = (name: string, settings?: NonNullable<DaemonServiceConfig['options']['http']>) =>
    settingsService(`ingress/settings/${name}`, settingsVips[name] as string, settingsPort, settingsApp.port, settings);
  await apply([
    l4,
    l7,
    svc('plain'),
    svc('large', { maxBodyBytes: 16 * 1024 * 1024, maxHeaderBytes: 16 * 1024 }),
    svc('slow', { readSeconds: 1 }),
    svc('stream', { buffering: false }),
    svc('upgrade', { readSeconds: 1, sendSeconds: 1, upgradeSeconds: 30 }),
  ]);
  const plain = settingsVips.plain as string;
  const large = settingsVips.large as string;
  await eventually(
    'served',
    () => get(`http://${large}:${settingsPort}/`),
    (r) => r.status === 200,
  );
  // nginx's default limit is 1 MiB: 2 MiB is refused, 512 KiB taken.
  assert.is((await upload({ address: plain, port: settingsPort, bytes: 2 * 1024 * 1024 })).status, 413);
  assert.equal(await upload({ address: plain, port: settingsPort, bytes: 512 * 1024 }), {
    status: 200,
    body: JSON.stringify({ bytes: 524288 }),
  });
  // klb.io/proxy-body-size: 16m lets 10 MiB through to the application, whole.
  assert.equal(await upload({ address: large, port: settingsPort, bytes: 10 * 1024 * 1024 }), {
    status: 200,
    body: JSON.stringify({ bytes: 10 * 1024 * 1024 }),
  });
  assert.is((await upload({ address: large, port: settingsPort, bytes: 17 * 1024 * 1024 })).status, 413);
  // A 12 KiB header field is past nginx's 8 KiB default, within klb.io/client-max-header-size: 16k.
  const cookie = { cookie: `c=${'x'.repeat(12 * 1024)}` };
  const withHeader = (address: string) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request(
        { host: address, port: settingsPort, path: '/', agent: false, headers: cookie },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
  assert.is(await withHeader(plain), 400);
  assert.is(await withHeader(large), 200);
});

it('HTTP settings: a read timeout of 1 s answers 504 for a backend that takes 3 s, which is served without it', async () => {
  const slow = await get(`http://${settingsVips.slow}:${settingsPort}/slow`);
  assert.is(slow.status, 504);
  const served = await get(`http://${settingsVips.plain}:${settingsPort}/slow`);
  assert.equal([served.status, served.body], [200, 'slow']);
});

/** GETs /stream; answers whether the backend had ended its response when the first byte arrived. */
function firstChunk(address: string): Promise<{ endedFirst: boolean; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: address, port: settingsPort, path: '/stream', agent: false }, (res) => {
      let body = '';
      let endedFirst: boolean | undefined;
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        if (endedFirst === undefined) {
          endedFirst = settingsApp.streamEnded;
          settingsApp.release();
        }
        body += c;
      });
      res.on('end', () => resolve({ endedFirst: endedFirst ?? true, body }));
    });
    req.on('error', reject);
  });
}

/**
 * POSTs a chunked body in two parts, the second once the application has the request (or after
 * 1.5 s); answers whether it had the request before the body was complete, and what it read.
 */
function twoPartUpload(address: string): Promise<{ seenFirst: boolean; body: string }> {
  settingsApp.uploadSeen = false;
  return new Promise((resolve, reject) => {
    let seenFirst = false;
    const req = http.request(
      { host: address, port: settingsPort, method: 'POST', path: '/upload', agent: false },
      (res) => {
        let body = '';
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => resolve({ seenFirst, body }));
      },
    );
    req.on('error', reject);
    req.write('a'.repeat(1000));
    const started = Date.now();
    const poll = setInterval(() => {
      if (!settingsApp.uploadSeen && Date.now() - started < 1500) return;
      clearInterval(poll);
      seenFirst = settingsApp.uploadSeen;
      req.end('b'.repeat(1000));
    }, 20);
  });
}

/**
 * GETs /big and reads nothing until the application has written all of it, or has written nothing
 * more for two seconds; then reads it all. Answers whether the application finished while the
 * client read nothing, and the bytes the client got.
 */
function slowClient(address: string): Promise<{ doneUnread: boolean; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: address, port: settingsPort, path: '/big', agent: false }, (res) => {
      res.pause();
      let last = -1;
      let still = 0;
      const poll = setInterval(() => {
        const { written, done } = settingsApp.big;
        still = written === last ? still + 1 : 0;
        last = written;
        if (!done && still < 20) return;
        clearInterval(poll);
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
        });
        res.on('end', () => resolve({ doneUnread: done, bytes }));
        res.resume();
      }, 100);
    });
    req.on('error', reject);
  });
}

it('HTTP settings: buffering off streams both ways; nginx buffers requests and reads ahead of slow clients otherwise', async () => {
  const stream = settingsVips.stream as string;
  const plain = settingsVips.plain as string;
  // A chunked response's first chunk reaches the client before the backend has finished it.
  assert.equal(await firstChunk(stream), { endedFirst: false, body: 'first\nrest\n' });
  // The request reaches the backend while the client is still sending its body.
  assert.equal(await twoPartUpload(stream), { seenFirst: true, body: JSON.stringify({ bytes: 2000 }) });
  // A client that reads nothing holds the backend back: it cannot write the whole response.
  assert.equal(await slowClient(stream), { doneUnread: false, bytes: BIG });
  // With nginx's buffering, the backend gets the request only once nginx has the whole body,
  assert.equal(await twoPartUpload(plain), { seenFirst: false, body: JSON.stringify({ bytes: 2000 }) });
  // and writes its whole response while the client reads nothing (nginx keeps it in a temporary file).
  assert.equal(await slowClient(plain), { doneUnread: true, bytes: BIG });
});

/** Opens an upgraded connection to the settings backend through `address`. */
function upgrade(address: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: address,
      port: settingsPort,
      path: '/socket',
      agent: false,
      headers: { connection: 'Upgrade', upgrade: 'websocket' },
    });
    req.on('upgrade', (_res, socket) => resolve(socket));
    req.on('response', (res) => reject(new Error(`no upgrade: HTTP ${res.statusCode}`)));
    req.on('error', reject);
    req.end();
  });
}

/** Waits `ms` with the connection idle, then sends `ping`: the echo, or `closed` when nginx ended it. */
function afterIdle(socket: net.Socket, ms: number): Promise<string> {
  return new Promise((resolve) => {
    socket.on('error', () => {});
    socket.once('close', () => resolve('closed'));
    setTimeout(() => {
      if (socket.destroyed) return;
      socket.once('data', (chunk: Buffer) => resolve(chunk.toString()));
      socket.write('ping');
    }, ms);
  });
}

it('HTTP settings: an upgraded connection has the upgrade timeout, not the 1 s read and send timeouts', async () => {
  const kept = await upgrade(settingsVips.upgrade as string);
  assert.is(await afterIdle(kept, 2500), 'echo:ping');
  kept.destroy();
  // Without an upgrade timeout, the upgraded connection has the read timeout of plain requests.
  await apply([
    l4,
    l7,
    settingsService('ingress/settings/upgrade', settingsVips.upgrade as string, settingsPort, settingsApp.port, {
      readSeconds: 1,
      sendSeconds: 1,
    }),
  ]);
  const cut = await eventually(
    'the new config',
    async () => {
      const socket = await upgrade(settingsVips.upgrade as string);
      return afterIdle(socket, 2500);
    },
    (answer) => answer === 'closed',
    10,
  );
  assert.is(cut, 'closed');
  await apply([l4, l7]);
});

it('adds, changes and removes services while traffic flows; a hostile service takes nothing down', async () => {
  const base = `http://${l7.addresses[0]}:${ports.plain}`;
  let running = true;
  let ok = 0;
  const failures: string[] = [];
  const load = (async () => {
    while (running) {
      try {
        const r = await get(`${base}/coffee`, { host: 'cafe.example.com' });
        if (r.status === 200) ok++;
        else failures.push(`status ${r.status}`);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  })();
  stopTraffic = async () => {
    running = false;
    await load;
  };
  const [n1, n2] = [await httpBackend('new1'), await httpBackend('new2')];
  const added = clone(
    l4Service(
      'service/default/added',
      vip(),
      { tcp: await freePort(), udp: await freePort() },
      { tcp: [n1], udp: [n1] },
    ),
  );
  added.listeners = [{ name: 'web', port: ports.plain, protocol: 'HTTP', upstream: 'tcp' }];
  added.upstreams = [
    { name: 'tcp', targets: [{ address: '127.0.0.1', port: n1, ready: true }], maxFails: 1, failTimeoutSeconds: 5 },
  ];
  const addedUrl = `http://${added.addresses[0]}:${ports.plain}/`;
  // Add.
  await apply([l4, l7, versioned(added)]);
  await eventually(
    'added',
    () => get(addedUrl),
    (r) => r.status === 200 && (JSON.parse(r.body) as Echo).backend === 'new1',
  );
  // Change: move the target.
  const changed = clone(versioned(added));
  (changed.upstreams[0] as { targets: unknown[] }).targets = [{ address: '127.0.0.1', port: n2, ready: true }];
  await apply([l4, l7, versioned(changed)]);
  await eventually(
    'changed',
    () => get(addedUrl),
    (r) => r.status === 200 && (JSON.parse(r.body) as Echo).backend === 'new2',
  );
  // A hostile service is rejected; everything else is served as before.
  const hostile = clone(versioned(changed));
  hostile.id = 'service/default/hostile';
  hostile.addresses = [vip()];
  (hostile.listeners[0] as { name: string }).name = 'web;\n}\nserver { listen 127.0.0.1:1; }';
  const result = await apply([l4, l7, versioned(changed), hostile]);
  assert.equal([...result.rejected.keys()], ['service/default/hostile']);
  assert.is((await get(addedUrl)).status, 200);
  // Remove.
  await apply([l4, l7]);
  await eventually(
    'removed',
    () =>
      get(addedUrl).then(
        () => 'answered',
        (err: Error) => err.message,
      ),
    (m) => /ECONNREFUSED/.test(m),
  );
  await stopTraffic();
  assert.ok(ok > 10, `only ${ok} requests`);
  assert.equal(failures, [], `requests failed during reloads: ${failures.slice(0, 5).join('; ')}`);
  assert.is(group.exited(), undefined);
});

test.run();
