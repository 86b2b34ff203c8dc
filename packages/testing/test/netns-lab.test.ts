import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { type NetnsLab, requireComponents, startNetnsLab } from '@klb/testing';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('netns lab');
const missing = requireComponents('netns');
const it = missing ? test.skip : test;

const SERVER = `
const http = require('node:http');
const dgram = require('node:dgram');
const net = require('node:net');
const [host, port, name] = process.argv.slice(1);
http.createServer((req, res) => res.end(name + ' ' + req.headers.host)).listen(Number(port), host);
net.createServer((s) => s.on('data', (d) => s.end(name + ':' + d))).listen(Number(port) + 1, host);
const u = dgram.createSocket('udp4');
u.on('message', (m, r) => u.send(name + ':' + m, r.port, r.address));
u.bind(Number(port) + 2, host);
`;

function hostLinks(): string {
  const links = JSON.parse(execFileSync('ip', ['-j', 'addr', 'show']).toString()) as {
    ifname: string;
    addr_info: { local: string }[];
  }[];
  return links.map((l) => `${l.ifname}=${l.addr_info.map((a) => a.local).join(',')}`).join(' ');
}

function namespaces(): string[] {
  return execFileSync('ip', ['netns', 'list'])
    .toString()
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter(Boolean);
}

function hostSysctl(key: string): string {
  return readFileSync(`/proc/sys/${key.replaceAll('.', '/')}`, 'utf8').trim();
}

let lab: NetnsLab | undefined;
let hostBefore = '';
if (!missing) {
  hostBefore = hostLinks();
  lab = await startNetnsLab({ nodes: ['a', 'b', 'client'] });
  test.after(async () => {
    await lab?.destroy();
  });
}
const L = (): NetnsLab => lab as NetnsLab;

async function waitFor<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const value = await check();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`gave up waiting for ${what}`);
}

it('gives each node its own namespace and address on one link, and leaves the host alone', async () => {
  const a = L().node('a');
  const b = L().node('b');
  assert.is(a.address, '192.0.2.1');
  assert.is(b.address, '192.0.2.2');
  assert.is(L().spareAddress(), '192.0.2.4');
  assert.equal(await L().addresses('a'), ['192.0.2.1']);
  for (const name of [a.netns, b.netns, L().node('client').netns]) assert.ok(namespaces().includes(name), name);
  assert.is(hostLinks(), hostBefore, 'no interface or address was added to the host');
  assert.throws(() => L().node('nope'), /no node "nope"/);
});

it('carries HTTP, TCP and UDP between namespaces over the bridge', async () => {
  const a = L().node('a');
  L().start('a', 'server-a', process.execPath, ['-e', SERVER, a.address, '8080', 'a']);
  const client = L().client('client');
  const reply = await waitFor('server in a', async () => {
    const r = await client.http(`http://${a.address}:8080/`, { host: 'example.test' });
    return r.ok ? r : undefined;
  });
  assert.equal(reply, { ok: true, status: 200, body: 'a example.test' });
  assert.equal(await client.tcp(a.address, 8081, 'ping'), { ok: true, body: 'a:ping' });
  assert.equal(await client.udp(a.address, 8082, 'dgram'), { ok: true, body: 'a:dgram' });
  // The server is not reachable from the host: it lives in the lab only.
  const fromHost = await fetch(`http://${a.address}:8080/`, { signal: AbortSignal.timeout(500) }).catch(
    (e: Error) => e,
  );
  assert.instance(fromHost, Error);
  const refused = await client.http(`http://${L().node('b').address}:8080/`, { timeoutMs: 1000 });
  assert.is(refused.ok, false);
  assert.is(refused.error, 'ECONNREFUSED');
  await L().processes.stop('server-a');
});

it('forwards a host loopback server into a namespace without touching either network', async () => {
  const server = createServer((_req, res) => res.end('from the host'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await L().forward('b', { host: '127.0.0.1', port });
  const client = L().client('b');
  assert.equal(await client.http(`http://127.0.0.1:${port}/`), { ok: true, status: 200, body: 'from the host' });
  const other = L().client('client');
  const unreachable = await other.http(`http://127.0.0.1:${port}/`, { timeoutMs: 500 });
  assert.is(unreachable.ok, false, 'only the namespace it was forwarded into reaches it');
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  assert.is(hostLinks(), hostBefore);
});

it('sets net.* sysctls inside one namespace only', async () => {
  const before = hostSysctl('net.ipv4.ip_nonlocal_bind');
  await L().sysctl('a', 'net.ipv4.ip_nonlocal_bind', before === '1' ? '0' : '1');
  const inside = (await L().exec('a', 'cat', ['/proc/sys/net/ipv4/ip_nonlocal_bind'])).stdout.trim();
  assert.is.not(inside, before);
  assert.is(hostSysctl('net.ipv4.ip_nonlocal_bind'), before);
  const inB = (await L().exec('b', 'cat', ['/proc/sys/net/ipv4/ip_nonlocal_bind'])).stdout.trim();
  assert.is(inB, '0');
  let rejected = false;
  await L()
    .sysctl('a', 'kernel.hostname', 'x')
    .catch(() => {
      rejected = true;
    });
  assert.ok(rejected, 'non-net sysctls are refused');
});

it('destroy() ends the processes inside and deletes every namespace', async () => {
  const other = await startNetnsLab({ nodes: ['x', 'y'], subnet: '198.51.100.0/24' });
  const x = other.node('x');
  assert.is(x.address, '198.51.100.1');
  const child = other.start('x', 'sleeper', 'sleep', ['600']);
  const names = [x.netns, other.node('y').netns];
  assert.ok(names.every((n) => namespaces().includes(n)));
  await other.destroy();
  assert.not.ok(
    namespaces().some((n) => n.includes(other.id)),
    'hub and node namespaces are gone',
  );
  assert.ok(child.exitCode !== null || child.signalCode !== null, 'the process inside was stopped');
  assert.not.ok(existsSync(other.dir));
  await other.destroy();
});

it('cleans up after a run that exits without destroying, and after one killed with SIGKILL', async () => {
  const script = `
    import { startNetnsLab } from '@klb/testing';
    const lab = await startNetnsLab({ nodes: ['n'] });
    lab.start('n', 'sleeper', 'sleep', ['600']);
    console.log(lab.id);
    if (process.argv[1] === 'exit') process.exit(0);
    setInterval(() => {}, 1000);
  `;
  const startChild = (mode: string) => {
    const child = spawn(
      process.execPath,
      ['--conditions=klb-source', '--import', 'tsx', '--input-type=module', '-e', script, mode],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const id = new Promise<string>((resolve) => {
      createInterface({ input: child.stdout }).once('line', resolve);
    });
    return { child, id };
  };
  // A normal exit without destroy(): the exit hook deletes the namespaces.
  const exiting = startChild('exit');
  const exitId = await exiting.id;
  await new Promise((r) => exiting.child.once('exit', r));
  assert.not.ok(
    namespaces().some((n) => n.includes(exitId)),
    'exit hook deleted the namespaces',
  );
  // SIGKILL: nothing runs in the child, so its namespaces stay until the next lab starts.
  const killed = startChild('hang');
  const killedId = await killed.id;
  killed.child.kill('SIGKILL');
  await new Promise((r) => killed.child.once('exit', r));
  assert.ok(
    namespaces().some((n) => n.includes(killedId)),
    'left behind by the killed run',
  );
  const next = await startNetnsLab({ nodes: ['z'] });
  assert.not.ok(
    namespaces().some((n) => n.includes(killedId)),
    'swept by the next lab',
  );
  await next.destroy();
});

it('rejects bad options with clear errors', async () => {
  for (const [options, message] of [
    [{ nodes: [] }, /at least one node/],
    [{ nodes: ['A'] }, /node names must match/],
    [{ nodes: ['a', 'a'] }, /duplicate/],
    [{ nodes: ['a'], subnet: '10.0.0.0/8' }, /\/16\.\.\/29/],
    [{ nodes: ['a'], subnet: '300.0.0.0/24' }, /IPv4 CIDR/],
  ] as const) {
    let error: unknown;
    await startNetnsLab(options).catch((e: unknown) => {
      error = e;
    });
    assert.instance(error, RangeError);
    assert.match((error as Error).message, message);
  }
});

test.run();
