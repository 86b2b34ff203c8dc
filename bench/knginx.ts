// npm run bench -- knginx [section ...]
// Figures of @klb/backend-keepalived-nginx (sections run in this order; name some to run only those):
//   render    knginx.render_10k_ms              nginx.conf + keepalived.conf for 10,000 load balancers,
//                                               a fresh renderer (no fragment cache), median of 5 (target < 500)
//             knginx.render_10k_cpu_ms          CPU time of those renders (wall time on an idle core)
//             knginx.render_10k_direct_ms       baseline, same run: liquidjs renders every fragment tag by
//                                               tag (fragments: 'direct') instead of once per shape
//             knginx.render_speedup_vs_direct   render_10k_direct_ms / render_10k_ms
//             knginx.render_1k_ms               the same for 1,000
//             knginx.render_10k_incremental_ms  10,000 again after one load balancer changed, with the
//                                               renderer's fragment cache warm (what a daemon does per change)
//   reload    knginx.validate_reload_1k_ms      with a real nginx serving 1,000 load balancers: render a
//                                               changed config, write it, `nginx -t`, SIGHUP, until the new
//                                               load balancer answers through its VIP; median of 5
//   traffic, failover, throughput: see bench/fixtures/knginx-daemon.ts
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type DaemonServiceConfig,
  daemonConfigVersion,
  KeepalivedRenderer,
  NginxRenderer,
  type NginxRenderResult,
} from '@klb/backend-keepalived-nginx';
import { freePort, ProcessGroup } from '@klb/testing';
import { changeToTraffic, failover, throughput } from './fixtures/knginx-daemon.js';

const only = new Set(process.argv.slice(2));
const wants = (section: string): boolean => only.size === 0 || only.has(section);

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};

function vipOf(i: number, base = 10): string {
  return `${base}.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}

/** A realistic mix: 40% TCP, 10% UDP, 50% HTTP with two host/path routes; 3 targets each. */
function services(n: number, opts: { vipBase?: number; port?: number; local?: boolean } = {}): DaemonServiceConfig[] {
  const out: DaemonServiceConfig[] = [];
  for (let i = 0; i < n; i++) {
    const kind = i % 10;
    const port = opts.port ?? 80;
    const targets = [1, 2, 3].map((t) => ({
      address: opts.local ? '127.0.0.1' : `192.168.${t}.${i & 255}`,
      port: 30000 + (i % 2000) + t,
      ready: true,
    }));
    const listeners =
      kind < 4
        ? [{ name: 'tcp', port, protocol: 'TCP' as const, upstream: 'web' }]
        : kind < 5
          ? [{ name: 'udp', port, protocol: 'UDP' as const, upstream: 'web' }]
          : [
              {
                name: 'http',
                port,
                protocol: 'HTTP' as const,
                upstream: 'web',
                routes: [
                  { host: `svc-${i}.example.com`, path: '/api', pathType: 'Prefix' as const, upstream: 'api' },
                  { host: `svc-${i}.example.com`, path: '/', pathType: 'Prefix' as const, upstream: 'web' },
                ],
              },
            ];
    const c = {
      apiVersion: 'klb.io/v1alpha1' as const,
      kind: 'DaemonServiceConfig' as const,
      id: `service/ns-${i % 100}/svc-${i}`,
      version: '',
      addresses: [vipOf(i, opts.vipBase)],
      listeners,
      upstreams: [
        { name: 'api', targets, maxFails: 3, failTimeoutSeconds: 10 },
        { name: 'web', targets, maxFails: 3, failTimeoutSeconds: 10 },
      ],
      options: {
        algorithm: 'round-robin' as const,
        sessionAffinity: false,
        proxyProtocol: false,
        sourceRanges: [],
        timeouts: { idleSeconds: 60 },
        vrrp: { group: 'default', vrid: 51 },
      },
    };
    out.push({ ...c, version: daemonConfigVersion(c) });
  }
  return out;
}

const nginxOptions = (dir: string) => ({
  tlsDir: join(dir, 'tls'),
  runDir: join(dir, 'run'),
  errorLog: join(dir, 'error.log'),
  workerProcesses: 1,
});
const keepalivedOptions = {
  interface: 'eth0',
  priority: 100,
  routerId: 'bench',
  trackNginx: { pidFile: '/run/klb/nginx.pid' },
};

/** Wall-clock and CPU milliseconds of one cold render (fresh renderers, configs never seen). */
function renderOnce(
  list: readonly DaemonServiceConfig[],
  dir: string,
  fragments: 'compiled' | 'direct' = 'compiled',
): { wall: number; cpu: number } {
  // Fresh objects: the validator and the renderer skip objects they have already seen.
  const fresh = structuredClone(list);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const n = new NginxRenderer({ fragments }).render(fresh, nginxOptions(dir));
  const k = new KeepalivedRenderer().render(fresh, keepalivedOptions);
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  if (n.rejected.size > 0 || k.rejected.size > 0) throw new Error(`rejected: ${[...n.rejected.values()][0]?.message}`);
  return { wall, cpu: (c.user + c.system) / 1000 };
}

function render(): void {
  const dir = '/tmp/klb-bench-render';
  const tenK = services(10_000);
  const oneK = tenK.slice(0, 1000);
  renderOnce(oneK, dir); // warm the JIT
  const ten = [1, 2, 3, 4, 5].map(() => renderOnce(tenK, dir));
  const one = [1, 2, 3, 4, 5].map(() => renderOnce(oneK, dir));
  const direct = [1, 2, 3].map(() => renderOnce(tenK, dir, 'direct'));
  const tenMs = median(ten.map((r) => r.wall));
  const directMs = median(direct.map((r) => r.wall));
  console.log(`bench knginx.render_10k_ms ${tenMs.toFixed(0)} ms`);
  // CPU time of the same renders: what they cost on an otherwise idle core.
  console.log(`bench knginx.render_10k_cpu_ms ${median(ten.map((r) => r.cpu)).toFixed(0)} ms`);
  console.log(`bench knginx.render_1k_ms ${median(one.map((r) => r.wall)).toFixed(1)} ms`);
  console.log(`bench knginx.render_10k_direct_ms ${directMs.toFixed(0)} ms`);
  console.log(`bench knginx.render_speedup_vs_direct ${(directMs / tenMs).toFixed(2)} x`);
  const nginx = new NginxRenderer();
  const keepalived = new KeepalivedRenderer();
  nginx.render(tenK, nginxOptions(dir));
  const times: number[] = [];
  for (let round = 0; round < 5; round++) {
    const changed = [...tenK];
    const one = structuredClone(tenK[round] as DaemonServiceConfig);
    const upstreams = one.upstreams.map((u, i) =>
      i === 0 ? { ...u, targets: u.targets.map((t) => ({ ...t, port: 31000 + round })) } : u,
    );
    const next = { ...one, upstreams };
    changed[round] = { ...next, version: daemonConfigVersion(next) };
    const t0 = performance.now();
    nginx.render(changed, nginxOptions(dir));
    keepalived.render(changed, keepalivedOptions);
    times.push(performance.now() - t0);
  }
  console.log(`bench knginx.render_10k_incremental_ms ${median(times).toFixed(0)} ms`);
}

function answers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(1000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.on('connect', () => socket.write('GET / HTTP/1.0\r\n\r\n'));
    socket.on('data', (d) => {
      socket.destroy();
      resolve(d.toString().startsWith('HTTP/1.1 '));
    });
    socket.on('error', () => resolve(false));
    socket.on('close', () => resolve(false));
  });
}

async function reload(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'klb-bench-nginx-'));
  mkdirSync(join(dir, 'run'), { recursive: true });
  mkdirSync(join(dir, 'tls'), { recursive: true });
  const group = new ProcessGroup(dir);
  try {
    const port = await freePort();
    // VIPs on 127.50.0.0/16; targets are closed ports on 127.0.0.1 (nginx answers 502 itself).
    const base = services(1000, { vipBase: 127, port, local: true }).map((s, i) => ({
      ...s,
      addresses: [`127.50.${i >> 8}.${(i & 255) + 1}`],
    }));
    const conf = join(dir, 'nginx.conf');
    const renderer = new NginxRenderer();
    const write = (r: NginxRenderResult): void => {
      for (const f of r.files) writeFileSync(f.path, f.content, { mode: f.mode });
      writeFileSync(conf, r.config);
    };
    write(renderer.render(base, nginxOptions(dir)));
    group.start('nginx', 'nginx', ['-p', dir, '-c', conf, '-e', 'stderr', '-g', 'daemon off;']);
    const first = base[5] as DaemonServiceConfig;
    for (let i = 0; i < 200 && !(await answers(first.addresses[0] as string, port)); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const times: number[] = [];
    for (let round = 0; round < 5; round++) {
      // A new HTTP load balancer with no ready target: nginx itself answers 503 once it is loaded.
      const added = { ...(base[5] as DaemonServiceConfig) };
      const fresh = {
        ...added,
        id: `service/bench/added-${round}`,
        addresses: [`127.51.0.${round + 1}`],
        upstreams: added.upstreams.map((u) => ({ ...u, targets: [] })),
      };
      const list = [...base, { ...fresh, version: daemonConfigVersion(fresh) }];
      const t0 = performance.now();
      write(renderer.render(list, nginxOptions(dir)));
      const check = spawnSync('nginx', ['-t', '-q', '-e', 'stderr', '-p', dir, '-c', conf], { encoding: 'utf8' });
      if (check.status !== 0) throw new Error(`nginx -t failed: ${check.stderr}`);
      process.kill(group.pid('nginx') as number, 'SIGHUP');
      let ok = false;
      for (let i = 0; i < 2000 && !ok; i++) {
        ok = await answers(fresh.addresses[0] as string, port);
        if (!ok) await new Promise((r) => setTimeout(r, 5));
      }
      if (!ok) throw new Error(`the new load balancer never answered:\n${group.logTail('nginx')}`);
      times.push(performance.now() - t0);
    }
    console.log(`bench knginx.validate_reload_1k_ms ${median(times).toFixed(0)} ms`);
  } finally {
    await group.stopAll();
  }
}

if (wants('render')) render();
if (wants('reload')) await reload();
if (wants('traffic')) await changeToTraffic();
if (wants('failover')) await failover();
if (wants('throughput')) await throughput();
