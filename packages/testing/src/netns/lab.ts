import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcessGroup, type StartProcessOptions } from '../process-group.js';
import { type NetnsClient, startNetnsClient } from './client.js';
import { FORWARD_AGENT, startHostForward, waitForReady } from './forward.js';
import { type CommandResult, ip, ipBinary, run } from './ip.js';
import { destroyNamespaceSync, NETNS_PREFIX, registerLab, sweepStaleNamespaces, unregisterLab } from './reaper.js';

/** Options of {@link startNetnsLab}. */
export interface NetnsLabOptions {
  /** Names of the nodes (one network namespace each), `[a-z0-9]{1,12}`, e.g. `['a', 'b', 'client']`. */
  readonly nodes: readonly string[];
  /**
   * IPv4 subnet of the lab's link, `a.b.c.d/len` with len 16..29; default `192.0.2.0/24`
   * (TEST-NET-1). It exists only inside the lab's namespaces: labs never share a link, so
   * concurrent labs may use the same subnet.
   */
  readonly subnet?: string;
}

/** One node of a lab: a network namespace with one interface on the lab's bridge. */
export interface NetnsNode {
  /** The node's name, as given in {@link NetnsLabOptions.nodes}. */
  readonly name: string;
  /** The network namespace's name (for `ip netns exec`). */
  readonly netns: string;
  /** The interface on the lab's link inside the namespace (always `eth0`). */
  readonly iface: string;
  /** The node's IPv4 address on the link. */
  readonly address: string;
  /** Prefix length of the link's subnet. */
  readonly prefixLength: number;
}

/**
 * A set of network namespaces joined by a bridge, created by {@link startNetnsLab}. The bridge
 * lives in a namespace of its own, so nothing is added to the host's network; every namespace,
 * and every process inside one, goes away on {@link NetnsLab.destroy}, on process exit or
 * interruption, and (for runs killed with SIGKILL) when the next lab starts.
 */
export interface NetnsLab {
  /** Unique id of this lab, part of every namespace name. */
  readonly id: string;
  /** Directory for the lab's files and process logs; removed on destroy. */
  readonly dir: string;
  /** The link's subnet, e.g. `192.0.2.0/24`. */
  readonly subnet: string;
  /** The nodes, by name. */
  readonly nodes: ReadonlyMap<string, NetnsNode>;
  /** Processes started with {@link NetnsLab.start} (their logs are in {@link NetnsLab.dir}). */
  readonly processes: ProcessGroup;
  /** The node called `name`; throws for an unknown name. */
  node(name: string): NetnsNode;
  /** An address on the link that belongs to no node (`index` 0 is the first), for VIPs. */
  spareAddress(index?: number): string;
  /** The command line that runs `bin args` inside `node`'s namespace. */
  wrap(
    node: string,
    bin: string,
    args?: readonly string[],
  ): {
    /** The `ip` binary. */
    bin: string;
    /** `netns exec <namespace> <bin> <args...>`. */
    args: string[];
  };
  /** Runs `bin args` inside `node`'s namespace and returns its output; rejects when it exits non-zero. */
  exec(node: string, bin: string, args?: readonly string[], timeoutMs?: number): Promise<CommandResult>;
  /** Starts a long-running `bin args` inside `node`'s namespace as process `name` of {@link NetnsLab.processes}. */
  start(node: string, name: string, bin: string, args: readonly string[], options?: StartProcessOptions): ChildProcess;
  /** The IPv4 and IPv6 addresses currently configured on `node`'s interfaces (loopback's own excluded). */
  addresses(node: string): Promise<string[]>;
  /** Starts a client process inside `node` to send HTTP/TCP/UDP requests from there. */
  client(node: string): NetnsClient;
  /**
   * Makes `target` (a server on the host's 127.0.0.0/8, e.g. the apiserver) reachable from inside
   * `node` as `127.0.0.1:port` (default: the target's port, so URLs and certificates stay valid),
   * through a Unix socket: nothing is added to either network.
   */
  forward(
    node: string,
    target: {
      /** Host-side address (127.0.0.0/8). */
      readonly host: string;
      /** Host-side port. */
      readonly port: number;
    },
    port?: number,
  ): Promise<void>;
  /** Sets `net.*` sysctl `key` (e.g. `net.ipv4.ip_nonlocal_bind`) inside `node`'s namespace only. */
  sysctl(node: string, key: string, value: string): Promise<void>;
  /** Stops every process, deletes every namespace and removes {@link NetnsLab.dir}. Safe to call twice. */
  destroy(): Promise<void>;
}

let labCount = 0;

function parseSubnet(subnet: string): { base: number; prefixLength: number } {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(subnet);
  const octets = match?.slice(1, 5).map(Number) ?? [];
  const prefixLength = Number(match?.[5]);
  if (!match || octets.some((o) => o > 255) || prefixLength < 16 || prefixLength > 29) {
    throw new RangeError(`netns lab subnet must be an IPv4 CIDR with a /16../29 prefix, got "${subnet}"`);
  }
  const [a = 0, b = 0, c = 0, d = 0] = octets;
  const mask = prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
  return { base: ((((a << 24) | (b << 16) | (c << 8) | d) >>> 0) & mask) >>> 0, prefixLength };
}

function formatIp(n: number): string {
  return [24, 16, 8, 0].map((shift) => (n >>> shift) & 255).join('.');
}

/**
 * Creates a lab: a hub namespace holding a bridge, and one namespace per node joined to it by a
 * veth pair, with loopback up and the node's address on `eth0`. Needs root (CAP_NET_ADMIN) and
 * iproute2; guard suites with `requireComponents('netns')`.
 *
 * @example
 * ```ts
 * const lab = await startNetnsLab({ nodes: ['a', 'b', 'client'] });
 * lab.start('a', 'server', 'nginx', ['-p', dir, '-c', conf, '-g', 'daemon off;']);
 * const client = lab.client('client');
 * await client.http(`http://${lab.node('a').address}/`);
 * await lab.destroy();
 * ```
 */
export async function startNetnsLab(options: NetnsLabOptions): Promise<NetnsLab> {
  const subnet = options.subnet ?? '192.0.2.0/24';
  const { base, prefixLength } = parseSubnet(subnet);
  const size = 2 ** (32 - prefixLength);
  if (options.nodes.length === 0) throw new RangeError('a netns lab needs at least one node');
  if (options.nodes.length > size - 3)
    throw new RangeError(`subnet ${subnet} is too small for ${options.nodes.length} nodes`);
  const seen = new Set<string>();
  for (const name of options.nodes) {
    if (!/^[a-z0-9]{1,12}$/.test(name))
      throw new RangeError(`netns lab node names must match [a-z0-9]{1,12}, got "${name}"`);
    if (seen.has(name)) throw new RangeError(`duplicate netns lab node "${name}"`);
    seen.add(name);
  }
  sweepStaleNamespaces();

  const id = `${process.pid}-${++labCount}${randomBytes(2).toString('hex')}`;
  const hub = `${NETNS_PREFIX}${id}-hub`;
  const nodes = new Map<string, NetnsNode>();
  options.nodes.forEach((name, i) => {
    nodes.set(name, {
      name,
      netns: `${NETNS_PREFIX}${id}-${name}`,
      iface: 'eth0',
      address: formatIp(base + 1 + i),
      prefixLength,
    });
  });
  const namespaces = [hub, ...[...nodes.values()].map((n) => n.netns)];
  registerLab(id, namespaces);
  const shm = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = await mkdtemp(join(shm, `klb-netns-${id}-`));
  const processes = new ProcessGroup(dir);
  const clients = new Set<NetnsClient>();
  const forwards: (() => Promise<void>)[] = [];

  let destroyed = false;
  const destroy = async (): Promise<void> => {
    if (destroyed) return;
    destroyed = true;
    for (const client of clients) await client.close();
    await processes.stopAll();
    for (const close of forwards) await close();
    for (const ns of [...namespaces].reverse()) destroyNamespaceSync(ns);
    unregisterLab(id);
  };

  try {
    await ip(['netns', 'add', hub]);
    await ip(['-n', hub, 'link', 'set', 'lo', 'up']);
    await ip(['-n', hub, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'mcast_snooping', '0']);
    await ip(['-n', hub, 'link', 'set', 'br0', 'up']);
    let index = 0;
    for (const node of nodes.values()) {
      const port = `p${index++}`;
      await ip(['netns', 'add', node.netns]);
      await ip(['-n', hub, 'link', 'add', port, 'type', 'veth', 'peer', 'name', node.iface, 'netns', node.netns]);
      await ip(['-n', hub, 'link', 'set', port, 'master', 'br0']);
      await ip(['-n', hub, 'link', 'set', port, 'up']);
      await ip(['-n', node.netns, 'link', 'set', 'lo', 'up']);
      await ip(['-n', node.netns, 'addr', 'add', `${node.address}/${prefixLength}`, 'dev', node.iface]);
      await ip(['-n', node.netns, 'link', 'set', node.iface, 'up']);
    }
  } catch (err) {
    await destroy();
    throw err;
  }

  const nodeOf = (name: string): NetnsNode => {
    const node = nodes.get(name);
    if (!node) throw new RangeError(`netns lab has no node "${name}" (nodes: ${[...nodes.keys()].join(', ')})`);
    return node;
  };
  const wrap = (node: string, bin: string, args: readonly string[] = []) => ({
    bin: ipBinary(),
    args: ['netns', 'exec', nodeOf(node).netns, bin, ...args],
  });

  return {
    id,
    dir,
    subnet,
    nodes,
    processes,
    node: nodeOf,
    spareAddress(index = 0) {
      const host = nodes.size + 1 + index;
      if (index < 0 || host >= size - 1) throw new RangeError(`no spare address ${index} in ${subnet}`);
      return formatIp(base + host);
    },
    wrap,
    exec(node, bin, args = [], timeoutMs = 30_000) {
      const cmd = wrap(node, bin, args);
      return run(cmd.bin, cmd.args, timeoutMs);
    },
    start(node, name, bin, args, startOptions = {}) {
      const cmd = wrap(node, bin, args);
      return processes.start(name, cmd.bin, cmd.args, startOptions);
    },
    async addresses(node) {
      const { stdout } = await ip(['-n', nodeOf(node).netns, '-j', 'addr', 'show']);
      const links = JSON.parse(stdout) as { ifname: string; addr_info?: { local: string; scope?: string }[] }[];
      return links.flatMap((link) =>
        (link.addr_info ?? [])
          .filter((a) => !(link.ifname === 'lo' && (a.local === '127.0.0.1' || a.local === '::1')))
          .filter((a) => a.scope !== 'link')
          .map((a) => a.local),
      );
    },
    client(node) {
      const cmd = wrap(node, 'true');
      const client = startNetnsClient([cmd.bin, ...cmd.args.slice(0, -1)]);
      clients.add(client);
      return client;
    },
    async forward(node, target, port = target.port) {
      if (!/^127\./.test(target.host))
        throw new RangeError(`forward targets must be on 127.0.0.0/8, got ${target.host}`);
      const name = `forward-${node}-${port}`;
      const socketPath = join(dir, `${name}.sock`);
      forwards.push(await startHostForward(socketPath, target));
      const cmd = wrap(node, process.execPath, ['-e', FORWARD_AGENT, String(port), socketPath]);
      processes.start(name, cmd.bin, cmd.args);
      await waitForReady(processes.logFile(name));
    },
    async sysctl(node, key, value) {
      if (!/^net\.[a-z0-9_.-]+$/.test(key)) throw new RangeError(`only net.* sysctls are per namespace, got "${key}"`);
      await run(wrap(node, 'sysctl').bin, [...wrap(node, 'sysctl').args, '-q', '-w', `${key}=${value}`]);
    },
    destroy,
  };
}
