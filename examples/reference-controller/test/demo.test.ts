// The demo (scripts/demo.ts) is the end-to-end proof: a Service type=LoadBalancer and the original
// ConfigMaps → reference controller → daemon config → reference daemon → nginx → HTTP and TCP
// through the VIPs. Run with --once it must succeed; run without, Ctrl-C must clean up everything.
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { requireComponents } from '@klb/testing';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('demo');
const missing =
  requireComponents('kube-apiserver', 'etcd', 'nginx') ??
  (process.getuid?.() === 0 ? undefined : 'skip: the demo needs root (nginx on port 80 of its VIPs)');
const it = missing ? test.skip : test;
const root = join(import.meta.dirname, '../../..');

function startDemo(args: string[]): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--conditions=klb-source', '--import', 'tsx', 'scripts/demo.ts', ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  test.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return { child, output: () => out, exited };
}

/** Whether something accepts TCP connections at the URL's host and port. */
function listening(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = createConnection({ host: hostname, port: Number(port) });
    socket.on('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

/** Processes whose command line mentions `needle` (the demo's temporary directory). */
function processesWith(needle: string): string[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)
    .flatMap((p) => {
      try {
        const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ');
        return cmd.includes(needle) ? [`${p} ${cmd}`] : [];
      } catch {
        return [];
      }
    });
}

it('--once: the coffee app answers through the VIPs of its original ConfigMap, its Service and its Ingress; exit 0', async () => {
  const demo = startDemo(['--once']);
  const code = await demo.exited;
  const out = demo.output();
  assert.is(code, 0, out);
  const ips =
    /bind IPs: coffee-configmap (127\.0\.100\.\d+) \(data\.status SUCCESS\), mysql-configmap (127\.0\.100\.\d+), coffee-lb (127\.0\.100\.\d+)/.exec(
      out,
    );
  assert.ok(ips, out);
  const [, viaConfigMap, viaTcp, viaService] = ips as unknown as [string, string, string, string];
  assert.match(out, `GET http://${viaConfigMap}/ (coffee-configmap) → coffee: server coffee-1`);
  assert.match(out, `GET http://${viaService}/ (coffee-lb) → coffee: server coffee-1`);
  assert.match(out, `TCP ${viaTcp}:3306 (mysql-configmap) → mysql-svc`);
  const viaIngress = /Ingress coffee: (127\.0\.100\.\d+)/.exec(out)?.[1];
  assert.ok(viaIngress, out);
  assert.match(out, `GET http://${viaIngress}/coffee/menu, Host: cafe.example.com (Ingress coffee) → coffee: server`);
  assert.match(out, `GET http://${viaIngress}/tea, Host: cafe.example.com → HTTP 404`);
  assert.is(new Set([viaConfigMap, viaTcp, viaService, viaIngress]).size, 4, 'one VIP per load balancer');
  assert.match(out, 'echo: ping');
  assert.match(out, 'demo: clean');
});

it('Ctrl-C while running stops the controller, the daemon, nginx and the control plane', async () => {
  const demo = startDemo([]);
  const deadline = Date.now() + 300_000;
  while (!demo.output().includes('press Ctrl-C') && demo.child.exitCode === null && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.ok(demo.output().includes('press Ctrl-C'), demo.output());
  // Everything the demo started runs under its temporary directory (state dir, kubeconfig).
  assert.ok(processesWith('klb-demo-').length > 0, 'the daemon and controller run under the demo directory');
  const nginx = processesWith('nginx: master').filter((p) => p.includes('klb-demo-'));
  assert.ok(nginx.length > 0, 'nginx serves the VIPs');
  assert.is(await listening(String(/ready at (https:\S+)/.exec(demo.output())?.[1])), true);
  const apiserver = /kube-apiserver \S+ ready at (https:\/\/127\.0\.0\.1:\d+)/.exec(demo.output())?.[1];
  assert.ok(apiserver, demo.output());
  demo.child.kill('SIGINT');
  const code = await demo.exited;
  assert.is(code, 130, demo.output());
  assert.match(demo.output(), 'demo: clean');
  assert.equal(processesWith('klb-demo-'), [], 'nothing the demo started is left');
  assert.is(await listening(apiserver), false, 'the control plane is stopped');
});

test.run();
