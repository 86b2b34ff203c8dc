// VRRP failover with real keepalived and nginx in two network namespaces joined by a bridge, and a
// client in a third: configs come from the package's renderers. The client reaches the VIP; kill
// -9 of the master's keepalived moves the VIP and the client is answered again; the old master
// comes back with exactly one transition; a node whose nginx dies gives up its VIPs.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderKeepalivedConfig, renderNginxConfig } from '@klb/backend-keepalived-nginx';
import { type NetnsClient, type NetnsLab, requireComponents, startNetnsLab } from '@klb/testing';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { backendScript, httpService, waitFor } from './daemon-fixtures.js';

const test = suite('vrrp failover');
const missing = requireComponents('netns', 'nginx', 'keepalived');
const it = missing ? test.skip : test;

let lab: NetnsLab | undefined;
let client: NetnsClient | undefined;
let vip = '';
const BACKEND_PORT = 9000;
const L = (): NetnsLab => lab as NetnsLab;
const C = (): NetnsClient => client as NetnsClient;

if (!missing) {
  lab = await startNetnsLab({ nodes: ['a', 'b', 'client'] });
  test.after(async () => {
    await lab?.destroy();
  });
  vip = lab.spareAddress(0);
  const service = httpService({
    id: 'service/default/web',
    addresses: [vip],
    port: 80,
    targets: [{ address: '127.0.0.1', port: BACKEND_PORT }],
  });
  for (const [node, priority] of [
    ['a', 200],
    ['b', 100],
  ] as const) {
    const dir = join(lab.dir, node);
    const runDir = join(dir, 'run');
    mkdirSync(runDir, { recursive: true });
    const nginx = renderNginxConfig([service], {
      tlsDir: join(dir, 'tls'),
      runDir,
      errorLog: join(dir, 'nginx-error.log'),
      workerProcesses: 1,
    });
    assert.equal(nginx.rendered, ['service/default/web']);
    writeFileSync(join(dir, 'nginx.conf'), nginx.config);
    const keepalived = renderKeepalivedConfig([service], {
      interface: 'eth0',
      priority,
      routerId: node,
      trackNginx: { pidFile: join(runDir, 'nginx.pid') },
    });
    assert.equal(keepalived.rendered, ['service/default/web']);
    writeFileSync(join(dir, 'keepalived.conf'), keepalived.config);
    // nginx binds the VIP on the backup too, before it holds the address.
    await lab.sysctl(node, 'net.ipv4.ip_nonlocal_bind', '1');
    lab.start(node, `monitor-${node}`, 'ip', ['monitor', 'address']);
    lab.start(node, `backend-${node}`, process.execPath, ['-e', backendScript(), '127.0.0.1', `${BACKEND_PORT}`, node]);
    startNginx(node);
    await startKeepalived(node);
  }
  client = lab.client('client');
}

function startNginx(node: string): void {
  const dir = join(L().dir, node);
  L().start(node, `nginx-${node}`, 'nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;']);
}

async function startKeepalived(node: string): Promise<void> {
  const dir = join(L().dir, node);
  // keepalived refuses to start while the pid files of a previous run name a live process: wait
  // until the VRRP child of a killed instance has gone (it ends with its parent), then clear them.
  for (const file of ['keepalived.pid', 'vrrp.pid']) {
    const path = join(dir, 'run', file);
    if (!existsSync(path)) continue;
    const pid = Number(readFileSync(path, 'utf8').trim());
    await waitFor(`pid ${pid} from ${file} to end`, async () => (running(pid) ? undefined : true));
    rmSync(path, { force: true });
  }
  L().start(node, `keepalived-${node}`, 'keepalived', [
    '-f',
    join(dir, 'keepalived.conf'),
    '-p',
    join(dir, 'run', 'keepalived.pid'),
    '-r',
    join(dir, 'run', 'vrrp.pid'),
    '-n',
    '-l',
    '-D',
  ]);
}

/** Which node answers through the VIP (undefined while nobody does). */
async function answeredBy(): Promise<string | undefined> {
  const reply = await C().http(`http://${vip}/`, { timeoutMs: 300 });
  return reply.ok && reply.status === 200 ? reply.body : undefined;
}

async function holders(): Promise<string[]> {
  const result: string[] = [];
  for (const node of ['a', 'b']) if ((await L().addresses(node)).includes(vip)) result.push(node);
  return result;
}

/** The VIP's additions (`+`) and removals (`-`) seen by `ip monitor` in `node` so far. */
function vipEvents(node: string): string[] {
  const log = readFileSync(L().processes.logFile(`monitor-${node}`), 'utf8');
  return log
    .split('\n')
    .filter((line) => line.includes(` ${vip}/`))
    .map((line) => (line.startsWith('Deleted') ? '-' : '+'));
}

/** True while `pid` is a process that has not ended (zombies count as ended). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Children of `pid` (nginx workers of a master). */
function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

it('the client reaches the VIP, held by the higher-priority node', async () => {
  assert.is(await waitFor('an answer through the VIP', async () => (await answeredBy()) === 'a' || undefined), true);
  assert.equal(await holders(), ['a']);
});

it('kill -9 of the master keepalived moves the VIP and the client is answered again', async () => {
  const pid = L().processes.pid('keepalived-a');
  assert.ok(pid);
  process.kill(pid, 'SIGKILL');
  await waitFor('b to answer through the VIP', async () => ((await answeredBy()) === 'b' ? true : undefined));
  assert.ok((await holders()).includes('b'));
  // keepalived's VRRP child goes down with its parent and drops the address on the way out.
  await waitFor('a to drop the VIP', async () => ((await holders()).includes('a') ? undefined : true));
});

it('the old master comes back with exactly one transition, no flapping', async () => {
  const aBefore = vipEvents('a').length;
  const bBefore = vipEvents('b').length;
  await startKeepalived('a');
  await waitFor('a to answer again', async () => ((await answeredBy()) === 'a' ? true : undefined));
  assert.equal(await holders(), ['a']);
  // Let several advert intervals pass and confirm that the placement is stable.
  for (let i = 0; i < 20; i++) {
    assert.is(await answeredBy(), 'a');
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(vipEvents('a').slice(aBefore), ['+'], 'a took the VIP once');
  assert.equal(vipEvents('b').slice(bBefore), ['-'], 'b gave it up once');
});

it('a node whose nginx dies gives up its VIPs, and takes them back when nginx is back', async () => {
  const master = L().processes.pid('nginx-a');
  assert.ok(master);
  const workers = childrenOf(master);
  process.kill(master, 'SIGKILL');
  for (const worker of workers) process.kill(worker, 'SIGKILL');
  await waitFor('b to answer after nginx on a died', async () => ((await answeredBy()) === 'b' ? true : undefined));
  await waitFor('a to give up the VIP', async () => ((await holders()).join() === 'b' ? true : undefined));
  startNginx('a');
  await waitFor('a to answer once its nginx is back', async () => ((await answeredBy()) === 'a' ? true : undefined));
  assert.equal(await holders(), ['a']);
});

test.run();
