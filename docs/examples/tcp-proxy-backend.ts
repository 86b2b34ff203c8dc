import { type AddressInfo, createConnection, createServer, type Server, type Socket } from 'node:net';
import {
  addressIngress,
  type BackendCapabilities,
  type BackendContext,
  type LoadBalancerBackend,
  type LoadBalancerRef,
  type LoadBalancerSpec,
  type LoadBalancerStatus,
  type Target,
  TerminalError,
} from '@klb/core';

interface Proxy {
  server: Server;
  targets: Target[];
  next: number;
  sockets: Set<Socket>;
}

/** A complete KLB backend: an in-process TCP proxy per listener, round-robin over ready targets. */
export class TcpProxyBackend implements LoadBalancerBackend {
  readonly name = 'tcp-proxy';
  readonly capabilities: BackendCapabilities = {
    protocols: ['TCP'],
    l7: false,
    tls: false,
    allocatesAddresses: false,
    targetKinds: ['node', 'pod'],
    ipFamilies: ['IPv4', 'IPv6'],
    sourceRanges: false,
    proxyProtocol: false,
  };
  /** Proxies by load balancer id, then by `address:port`. */
  readonly #lbs = new Map<string, { ref: LoadBalancerRef; proxies: Map<string, Proxy> }>();

  async ensure(spec: LoadBalancerSpec, ctx: BackendContext): Promise<LoadBalancerStatus> {
    if (spec.options.proxyProtocol || spec.options.sourceRanges.length > 0) {
      throw new TerminalError('PROXY protocol and source ranges are not supported', { reason: 'Unsupported' });
    }
    const wanted = new Map<string, Target[]>();
    for (const l of spec.listeners) {
      if (l.protocol !== 'TCP' || l.routes?.length) {
        throw new TerminalError(`only plain TCP is supported, not ${l.protocol} routes`, { reason: 'Unsupported' });
      }
      const targets = spec.upstreams.find((u) => u.name === l.upstream)?.targets.filter((t) => t.ready) ?? [];
      for (const address of spec.addresses) {
        const key = `${address}:${l.port}`;
        if (wanted.has(key)) throw new TerminalError(`two listeners on ${key}`, { reason: 'PortConflict' });
        wanted.set(key, targets);
      }
    }
    const lb = this.#lbs.get(spec.ref.id) ?? { ref: spec.ref, proxies: new Map<string, Proxy>() };
    this.#lbs.set(spec.ref.id, lb);
    for (const [key, proxy] of lb.proxies) {
      if (wanted.has(key)) continue;
      await close(proxy);
      lb.proxies.delete(key);
    }
    for (const [key, targets] of wanted) {
      const existing = lb.proxies.get(key);
      if (existing) existing.targets = targets;
      else lb.proxies.set(key, await this.#listen(key, targets));
    }
    ctx.log.info({ listeners: wanted.size }, 'tcp proxies ensured');
    return { ingress: addressIngress(spec.addresses, spec.listeners) };
  }

  async remove(ref: LoadBalancerRef): Promise<void> {
    const lb = this.#lbs.get(ref.id);
    for (const proxy of lb?.proxies.values() ?? []) await close(proxy);
    this.#lbs.delete(ref.id);
  }

  async list(): Promise<LoadBalancerRef[]> {
    return [...this.#lbs.values()].map((lb) => lb.ref);
  }

  /** What is listening now, read from the proxies' sockets: for the conformance suite's `observe`. */
  realised(): Array<{
    id: string;
    listeners: Array<{ address: string; port: number; protocol: 'TCP'; targets: string[] }>;
  }> {
    return [...this.#lbs].map(([id, lb]) => ({
      id,
      listeners: [...lb.proxies.values()]
        .filter((p) => p.server.listening)
        .map((p) => {
          const { address, port } = p.server.address() as AddressInfo;
          return { address, port, protocol: 'TCP', targets: p.targets.map((t) => `${t.address}:${t.port}`) };
        }),
    }));
  }

  async close(): Promise<void> {
    for (const lb of [...this.#lbs.values()]) await this.remove(lb.ref);
  }

  async #listen(key: string, targets: Target[]): Promise<Proxy> {
    const proxy: Proxy = { server: createServer(), targets, next: 0, sockets: new Set() };
    proxy.server.on('connection', (client) => {
      const target = proxy.targets[proxy.next++ % Math.max(1, proxy.targets.length)];
      if (!target) return client.destroy();
      const upstream = createConnection({ host: target.address, port: target.port });
      for (const s of [client, upstream]) proxy.sockets.add(s).add(s.on('close', () => proxy.sockets.delete(s)));
      client.pipe(upstream).pipe(client);
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
    const at = key.lastIndexOf(':');
    await new Promise<void>((resolve, reject) => {
      proxy.server.once('error', (err) =>
        reject(new TerminalError(`cannot listen on ${key}: ${err.message}`, { cause: err })),
      );
      proxy.server.listen(Number(key.slice(at + 1)), key.slice(0, at), () => resolve());
    });
    return proxy;
  }
}

function close(proxy: Proxy): Promise<void> {
  for (const socket of proxy.sockets) socket.destroy();
  return new Promise((resolve) => proxy.server.close(() => resolve()));
}
