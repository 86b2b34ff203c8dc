// Shared fixtures of the renderer tests: realistic daemon configs, a self-signed certificate made
// with openssl (as a kubernetes.io/tls Secret would hold), and real `nginx -t` / `keepalived -t`.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import {
  type DaemonServiceConfig,
  daemonConfigVersion,
  type KeepalivedRenderOptions,
  type NginxRenderOptions,
  type NginxRenderResult,
} from '@klb/backend-keepalived-nginx';

/** A PEM certificate and key for `hosts` (the first is the CN), made by openssl. */
export interface Pem {
  certificate: string;
  privateKey: string;
}

export function makeCertificate(dir: string, hosts: readonly string[]): Pem {
  mkdirSync(dir, { recursive: true });
  const name = hosts[0] ?? 'default';
  const key = join(dir, `${name}.key`);
  const crt = join(dir, `${name}.crt`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      crt,
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      `subjectAltName=${hosts.map((h) => `DNS:${h}`).join(',')}`,
    ],
    { stdio: 'ignore' },
  );
  return { certificate: readFileSync(crt, 'utf8'), privateKey: readFileSync(key, 'utf8') };
}

type Mutable<T> = T extends readonly (infer U)[]
  ? Mutable<U>[]
  : T extends object
    ? { -readonly [K in keyof T]: Mutable<T[K]> }
    : T;

/** Sets the content version of a config built by hand. */
export function versioned(config: Omit<DaemonServiceConfig, 'version'> & { version?: string }): DaemonServiceConfig {
  const c = { ...config, version: 'x' } as DaemonServiceConfig;
  return { ...c, version: daemonConfigVersion(c) };
}

/** A deep, mutable copy. */
export function clone(config: DaemonServiceConfig): Mutable<DaemonServiceConfig> {
  return structuredClone(config) as Mutable<DaemonServiceConfig>;
}

/** An L4 load balancer: TCP and UDP listeners, proxy protocol, source ranges, timeouts. */
export function l4Service(
  id: string,
  vip: string,
  ports: { tcp: number; udp: number },
  targets: {
    tcp: readonly number[];
    udp: readonly number[];
  },
): DaemonServiceConfig {
  return versioned({
    apiVersion: 'klb.io/v1alpha1',
    kind: 'DaemonServiceConfig',
    id,
    addresses: [vip],
    listeners: [
      { name: `tcp-${ports.tcp}`, port: ports.tcp, protocol: 'TCP', upstream: 'tcp' },
      { name: `udp-${ports.udp}`, port: ports.udp, protocol: 'UDP', upstream: 'udp' },
    ],
    upstreams: [
      {
        name: 'tcp',
        targets: targets.tcp.map((port) => ({ address: '127.0.0.1', port, ready: true })),
        maxFails: 3,
        failTimeoutSeconds: 10,
      },
      {
        name: 'udp',
        targets: targets.udp.map((port) => ({ address: '127.0.0.1', port, ready: true })),
        maxFails: 1,
        failTimeoutSeconds: 5,
      },
    ],
    options: {
      algorithm: 'least-connections',
      sessionAffinity: false,
      proxyProtocol: false,
      sourceRanges: ['127.0.0.0/8', '10.0.0.0/8'],
      timeouts: { connectSeconds: 5, idleSeconds: 30 },
      vrrp: { group: 'default', vrid: 51 },
    },
  });
}

/** An L7 load balancer: HTTP redirecting to HTTPS, HTTPS with host and path routes, and a plain HTTP port. */
export function l7Service(
  id: string,
  vip: string,
  ports: { http: number; https: number; plain: number },
  upstreams: { coffee: readonly number[]; tea: readonly number[] },
  pem: Pem,
): DaemonServiceConfig {
  const routes = [
    { host: 'cafe.example.com', path: '/coffee', pathType: 'Prefix', upstream: 'coffee' },
    { host: 'cafe.example.com', path: '/tea', pathType: 'Exact', upstream: 'tea' },
    { host: '*.menu.example.com', path: '/', pathType: 'Prefix', upstream: 'tea' },
    { path: '/coffee', pathType: 'Prefix', upstream: 'coffee' },
  ] as const;
  return versioned({
    apiVersion: 'klb.io/v1alpha1',
    kind: 'DaemonServiceConfig',
    id,
    addresses: [vip],
    listeners: [
      { name: 'http', port: ports.http, protocol: 'HTTP', redirectToHttpsPort: ports.https },
      {
        name: 'https',
        port: ports.https,
        protocol: 'HTTPS',
        routes,
        tls: [
          {
            name: 'cafe',
            secret: { namespace: 'default', name: 'cafe-tls' },
            hosts: ['cafe.example.com'],
            certificate: pem.certificate,
            privateKey: pem.privateKey,
          },
        ],
      },
      { name: 'plain', port: ports.plain, protocol: 'HTTP', routes: routes.map((r) => ({ ...r })), upstream: 'tea' },
    ],
    upstreams: [
      {
        name: 'coffee',
        targets: upstreams.coffee.map((port) => ({ address: '127.0.0.1', port, ready: true })),
        maxFails: 2,
        failTimeoutSeconds: 10,
      },
      {
        name: 'tea',
        targets: upstreams.tea.map((port) => ({ address: '127.0.0.1', port, ready: true })),
        maxFails: 2,
        failTimeoutSeconds: 10,
      },
    ],
    options: {
      algorithm: 'round-robin',
      sessionAffinity: true,
      proxyProtocol: false,
      sourceRanges: [],
      timeouts: { idleSeconds: 60 },
      vrrp: { group: 'default', vrid: 51 },
    },
  });
}

/**
 * A TLS passthrough load balancer (as a Gateway with a Passthrough listener and TLSRoutes
 * declares it): one TLS listener whose SNI routes send `a.example.com` to `a`,
 * `*.wild.example.com` to `b` and, when `c` has targets, every other name to `c`.
 */
export function tlsService(
  id: string,
  vip: string,
  port: number,
  targets: { a: readonly number[]; b: readonly number[]; c?: readonly number[] },
): DaemonServiceConfig {
  const upstream = (name: string, ports: readonly number[]) => ({
    name,
    targets: ports.map((p) => ({ address: '127.0.0.1', port: p, ready: true })),
    maxFails: 1,
    failTimeoutSeconds: 5,
  });
  return versioned({
    apiVersion: 'klb.io/v1alpha1',
    kind: 'DaemonServiceConfig',
    id,
    addresses: [vip],
    listeners: [
      {
        name: `tls-${port}`,
        port,
        protocol: 'TLS',
        sniRoutes: [
          { host: 'a.example.com', upstream: 'a' },
          { host: '*.wild.example.com', upstream: 'b' },
          ...(targets.c ? [{ upstream: 'c' }] : []),
        ],
      },
    ],
    upstreams: [upstream('a', targets.a), upstream('b', targets.b), ...(targets.c ? [upstream('c', targets.c)] : [])],
    options: {
      algorithm: 'round-robin',
      sessionAffinity: false,
      proxyProtocol: false,
      sourceRanges: ['127.0.0.0/8'],
      timeouts: { connectSeconds: 5, idleSeconds: 30 },
      vrrp: { group: 'default', vrid: 51 },
    },
  });
}

/** Node options for a renderer test rooted at `dir`. */
export function nginxOptions(dir: string): NginxRenderOptions {
  return { tlsDir: join(dir, 'tls'), runDir: join(dir, 'run'), errorLog: join(dir, 'error.log'), workerProcesses: 1 };
}

export function keepalivedOptions(dir: string, iface: string): KeepalivedRenderOptions {
  return {
    interface: iface,
    priority: 100,
    routerId: 'node-a',
    unicastPeers: ['10.99.0.2', '10.99.0.3'],
    unicastSourceAddress: '10.99.0.1',
    trackNginx: { pidFile: join(dir, 'run', 'nginx.pid') },
  };
}

/** Writes the config and its files under `dir` (keys 0600), as the daemon would. */
export function writeNginx(dir: string, result: NginxRenderResult, file = 'nginx.conf'): string {
  for (const sub of ['tls', 'run']) mkdirSync(join(dir, sub), { recursive: true });
  for (const f of result.files) writeFileSync(f.path, f.content, { mode: f.mode });
  const path = join(dir, file);
  writeFileSync(path, result.config);
  return path;
}

/** Runs the real `nginx -t`; returns undefined when the config is valid, else nginx's output. */
export function nginxTest(dir: string, conf: string): string | undefined {
  const res = spawnSync('nginx', ['-t', '-q', '-e', 'stderr', '-p', dir, '-c', conf], { encoding: 'utf8' });
  return res.status === 0 ? undefined : `${res.stdout}${res.stderr}`;
}

/**
 * A network namespace with one veth interface, so `keepalived -t` can check an interface that
 * exists (it refuses loopback). Created and removed by the test.
 */
export class KeepalivedChecker {
  readonly netns = `klbkt${process.pid}`;
  readonly iface = 'klb0';

  constructor() {
    execFileSync('ip', ['netns', 'add', this.netns]);
    execFileSync('ip', ['-n', this.netns, 'link', 'add', this.iface, 'type', 'veth', 'peer', 'name', 'klb1']);
    execFileSync('ip', ['-n', this.netns, 'link', 'set', this.iface, 'up']);
  }

  /** Runs the real `keepalived -t`; undefined when valid, else its output. */
  check(file: string): string | undefined {
    const res = spawnSync('ip', ['netns', 'exec', this.netns, 'keepalived', '-t', '-l', '-D', '-f', file], {
      encoding: 'utf8',
    });
    return res.status === 0 ? undefined : `exit ${res.status}: ${res.stdout}${res.stderr}`;
  }

  close(): void {
    spawnSync('ip', ['netns', 'del', this.netns]);
  }
}

/** What {@link upload} sends. */
export interface Upload {
  /** Where to connect. */
  readonly address: string;
  /** The port. */
  readonly port: number;
  /** The `Host` header, when not the address. */
  readonly host?: string;
  /** How many body bytes to send (`POST /upload`, with a `content-length`). */
  readonly bytes: number;
}

/**
 * POSTs `bytes` bytes to `/upload`, as fast as the connection takes them; answers the status,
 * and the body of a 200. nginx answers 413 as soon as it has read the headers and closes: a write
 * error after its answer is expected.
 */
export function upload(u: Upload): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: u.address,
        port: u.port,
        method: 'POST',
        path: '/upload',
        agent: false,
        timeout: 20_000,
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': u.bytes,
          ...(u.host ? { host: u.host } : {}),
        },
      },
      (res) => {
        let body = '';
        res.on('data', (c) => {
          body += c;
        });
        const done = () => resolve({ status: res.statusCode ?? 0, body: res.statusCode === 200 ? body : '' });
        res.on('end', done);
        res.on('error', done);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err);
    });
    const chunk = Buffer.alloc(64 * 1024, 'x');
    let sent = 0;
    const pump = (): void => {
      while (sent < u.bytes) {
        const n = Math.min(chunk.length, u.bytes - sent);
        sent += n;
        if (!req.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}
