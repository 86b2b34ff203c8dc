// The "Write a backend" guide's example, compiled and tested: the conformance suite, then real
// TCP traffic through its proxies on loopback addresses.
import { connect, createServer, type Server } from 'node:net';
import { type LoadBalancerSpec, silentLogger } from '@klb/core';
import { freePort, runBackendConformance } from '@klb/testing';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { TcpProxyBackend } from '../tcp-proxy-backend.js';

let backend: TcpProxyBackend | undefined;
runBackendConformance(
  async () => {
    backend = new TcpProxyBackend();
    const self = backend;
    return { backend, observe: async () => self.realised(), cleanup: () => self.close() };
  },
  { name: 'conformance: tcp-proxy example', address: (n) => `127.0.60.${n % 250}` },
);

const test = suite('tcp-proxy example carries traffic');
const ctx = { signal: new AbortController().signal, log: silentLogger };

async function echoServer(tag: string): Promise<{ server: Server; port: number }> {
  const port = await freePort();
  const server = createServer((s) => s.on('data', (d) => s.end(`${tag}:${d}`)));
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  return { server, port };
}

function ask(host: string, port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port }, () => s.write(text));
    let out = '';
    s.on('data', (d) => (out += d));
    s.on('end', () => resolve(out));
    s.on('error', reject);
  });
}

test('round-robins connections over the ready targets and follows target changes', async () => {
  const a = await echoServer('a');
  const b = await echoServer('b');
  const lb = new TcpProxyBackend();
  const vipPort = await freePort('127.0.61.1');
  const spec = (targets: Array<{ port: number; ready: boolean }>): LoadBalancerSpec => ({
    ref: { id: 'service/demo/echo', kind: 'Service', namespace: 'demo', name: 'echo' },
    addresses: ['127.0.61.1'],
    requestedAddresses: [],
    ipFamilies: ['IPv4'],
    listeners: [{ name: 'tcp', port: vipPort, protocol: 'TCP', upstream: 'echo' }],
    upstreams: [{ name: 'echo', targets: targets.map((t) => ({ kind: 'pod', address: '127.0.0.1', ...t })) }],
    options: { algorithm: 'round-robin', proxyProtocol: false, sourceRanges: [], timeouts: {} },
    annotations: {},
  });
  try {
    await lb.ensure(
      spec([
        { port: a.port, ready: true },
        { port: b.port, ready: true },
      ]),
      ctx,
    );
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await ask('127.0.61.1', vipPort, 'hi'));
    assert.equal(answers.sort(), ['a:hi', 'a:hi', 'b:hi', 'b:hi']);
    await lb.ensure(
      spec([
        { port: a.port, ready: false },
        { port: b.port, ready: true },
      ]),
      ctx,
    );
    assert.is(await ask('127.0.61.1', vipPort, 'x'), 'b:x');
    assert.is(await ask('127.0.61.1', vipPort, 'y'), 'b:y');
    await lb.remove(spec([]).ref);
    const gone = await ask('127.0.61.1', vipPort, 'z').then(
      () => 'answered',
      (err: NodeJS.ErrnoException) => err.code,
    );
    assert.is(gone, 'ECONNREFUSED', 'removed: nothing listens any more');
  } finally {
    await lb.close();
    a.server.close();
    b.server.close();
  }
});

test.run();
