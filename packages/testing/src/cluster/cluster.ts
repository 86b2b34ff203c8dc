import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { ComponentMissingError, findKubeBinary, type KubeBinary, which } from '../binaries.js';
import { type ControlPlane, sleep, startControlPlane, waitFor } from '../control-plane.js';
import { freePort } from '../free-port.js';
import { type NetnsClient, startNetnsClient } from '../netns/client.js';
import { type CommandResult, ip, ipBinary, ipQuietSync } from '../netns/ip.js';
import {
  alive,
  destroyNamespaceSync,
  NETNS_PREFIX,
  registerLab,
  sweepStaleNamespaces,
  unregisterLab,
} from '../netns/reaper.js';
import { ProcessGroup } from '../process-group.js';
import { cniConfig, containerdConfig, kubeletConfig, kubeProxyConfig, nodePaths } from './configs.js';
import { recordSysctls, restoreSysctls, writeSysctl } from './host-sysctls.js';

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  /** docker-archive files imported into the node's containerd (`ctr -n k8s.io images import`); `scripts/build-images.sh` builds them. */
  readonly imageArchives: readonly string[];
  /** The pod sandbox image, one of those in {@link ClusterOptions.imageArchives}. */
  readonly pauseImage: string;
  /** The node's name; default `klb-node-1`. */
  readonly nodeName?: string;
  /**
   * First three octets of the /24 shared by the node and the client namespace: the node is `.1`
   * (on a veth in the host), the client `.2` (the veth's peer in the client namespace); the rest
   * is free for VIPs. Default `10.213.0`. Pick a private range no other network uses.
   */
  readonly subnet?: string;
  /** Pod addresses, on the node's CNI bridge; default `10.214.0.0/24`. */
  readonly podSubnet?: string;
  /** Service ClusterIP range; default `10.215.0.0/16`. */
  readonly serviceClusterIpRange?: string;
  /** Paths of the Kubernetes binaries; default {@link findKubeBinary} for each. */
  readonly binaries?: Partial<Record<KubeBinary, string>>;
  /** Receives one line per lifecycle step; default: silent. */
  readonly onLog?: (line: string) => void;
  /** How long to wait for the node to become Ready, in milliseconds; default 180000. */
  readonly readyTimeoutMs?: number;
}

/** A running single-node cluster started by {@link startCluster}. */
export interface Cluster {
  /** The etcd + kube-apiserver underneath (the apiserver on the node address). */
  readonly controlPlane: ControlPlane;
  /** The admin kubeconfig. */
  readonly kubeConfig: KubeConfig;
  /** The node's name. */
  readonly nodeName: string;
  /** The node's address, on {@link Cluster.interface}. */
  readonly nodeIp: string;
  /** The host end of the node's veth: the interface that carries the node address (and VIPs). */
  readonly interface: string;
  /** The node and client /24, e.g. `10.213.0.0/24`. */
  readonly subnet: string;
  /** The client network namespace (`ip netns exec <name>`). */
  readonly clientNamespace: string;
  /** The client's address in {@link Cluster.clientNamespace}. */
  readonly clientIp: string;
  /** The pod subnet. */
  readonly podSubnet: string;
  /** Directory of the node's files and the components' logs (`<name>.log`); removed by {@link Cluster.stop}. */
  readonly dir: string;
  /** The node's containerd socket (`ctr --address <socket> -n k8s.io ...`). */
  readonly containerdSocket: string;
  /** Pids of the running components, by name. */
  pids(): Record<string, number>;
  /** The last lines of every component's log. */
  logTails(lines?: number): string;
  /** Starts a traffic client inside the client namespace; closed by {@link Cluster.stop} at the latest. */
  client(): NetnsClient;
  /** Runs `kubectl` with the admin kubeconfig; `input` goes to its stdin. Rejects with {@link ClusterError} on a non-zero exit. */
  kubectl(
    args: readonly string[],
    options?: { readonly input?: string; readonly timeoutMs?: number },
  ): Promise<CommandResult>;
  /** Writes the admin kubeconfig to a file and returns its path (for `kubectl --kubeconfig`). */
  writeKubeConfig(): string;
  /**
   * Deletes every pod, stops every component by pid (kubelet, kube-proxy, controller-manager,
   * scheduler, containerd and its shims, apiserver, etcd), removes the node's iptables chains,
   * mounts, pod network namespaces, CNI bridge and cgroups, deletes the client namespace,
   * restores the host sysctls the cluster changed and removes {@link Cluster.dir}. Safe to call twice.
   */
  stop(): Promise<void>;
}

/** Thrown when a cluster could not be started (a component exited or never became ready). */
export class ClusterError extends Error {
  /** Stable error code. */
  readonly code = 'CLUSTER_FAILED';
  /** A cluster that did not come up needs a human to look at its logs. */
  readonly retryable = false;

  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'ClusterError';
  }
}

/** Thrown when another test cluster runs on this machine (one kubelet and one kube-proxy per host). */
export class ClusterBusyError extends Error {
  /** Stable error code. */
  readonly code = 'CLUSTER_BUSY';
  /** Retrying after the other cluster stopped can work. */
  readonly retryable = true;
  /** Pid of the process that holds the cluster lock. */
  readonly holder: number;

  constructor(holder: number) {
    super(`another KLB test cluster runs on this machine (process ${holder}, lock ${LOCK_FILE})`);
    this.name = 'ClusterBusyError';
    this.holder = holder;
  }
}

const LOCK_FILE = '/run/klb-cluster.lock';

/** The host end of the node's veth, which carries the node address (and the VIPs of a load balancer on the node). */
export const CLUSTER_INTERFACE = 'klb-node0';

interface LockContent {
  readonly pid: number;
  readonly dir: string;
  /** The host's sysctls before that cluster started. */
  readonly sysctls?: Record<string, string>;
}

function readLock(): LockContent {
  try {
    const lock = JSON.parse(readFileSync(LOCK_FILE, 'utf8')) as Partial<LockContent> | null;
    return {
      pid: Number(lock?.pid ?? 0),
      dir: String(lock?.dir ?? ''),
      ...(typeof lock?.sysctls === 'object' ? { sysctls: lock.sysctls } : {}),
    };
  } catch {
    return { pid: 0, dir: '' };
  }
}

/**
 * Takes the machine's cluster lock for `dir`. A lock whose process is gone (killed with SIGKILL,
 * so its stop never ran) is taken over after that cluster's mounts, pod network namespaces and
 * directory are removed.
 */
async function takeLock(dir: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(LOCK_FILE, 'wx');
      writeSync(fd, JSON.stringify({ pid: process.pid, dir } satisfies LockContent));
      closeSync(fd);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const stale = readLock();
      if (Number.isInteger(stale.pid) && stale.pid > 0 && alive(stale.pid)) throw new ClusterBusyError(stale.pid);
      if (stale.sysctls) restoreSysctls(new Map(Object.entries(stale.sysctls)));
      if (stale.dir.startsWith(join(tmpdir(), 'klb-cluster-'))) {
        for (const pid of pidsMentioning(stale.dir)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone
          }
        }
        for (const target of mountsUnder(stale.dir)) await exec('umount', ['-l', target]).catch(() => {});
        for (const name of netnsNames()) {
          if (name.startsWith('cni-') && ipQuietSync(['netns', 'pids', name]).trim() === '') destroyNamespaceSync(name);
        }
        rmSync(stale.dir, { recursive: true, force: true });
      }
      rmSync(LOCK_FILE, { force: true });
    }
  }
  throw new ClusterBusyError(readLock().pid);
}

function releaseLock(): void {
  if (existsSync(LOCK_FILE) && readLock().pid === process.pid) rmSync(LOCK_FILE);
}

/** Runs `bin args` with optional stdin; resolves with its output, rejects with {@link ClusterError} on failure. */
function exec(bin: string, args: readonly string[], input?: string, timeoutMs = 120_000): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new ClusterError(`${bin} could not start: ${err.message}`, err));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else
        reject(
          new ClusterError(`${[bin, ...args].join(' ')} failed (${code ?? signal}): ${stderr.trim() || stdout.trim()}`),
        );
    });
    // A command that exits without reading its input is judged by its exit status, not by EPIPE.
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}

function requireFile(component: string, path: string, hint: string): string {
  if (!existsSync(path)) throw new ComponentMissingError(component, hint);
  return path;
}

/** Mount points under `dir`, deepest first. */
function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((target) => target === dir || target.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** Pids of processes whose command line mentions `needle` (the containerd shims of this node). */
function pidsMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** Removes the kubelet's cgroups (`kubepods` in every v1 controller), deepest first; busy ones stay. */
function removeKubeletCgroups(): void {
  const root = '/sys/fs/cgroup';
  if (!existsSync(root)) return;
  const remove = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }))
      if (entry.isDirectory()) remove(join(dir, entry.name));
    try {
      rmdirSync(dir);
    } catch {
      // still in use
    }
  };
  for (const controller of readdirSync(root)) {
    const dir = join(root, controller, 'kubepods');
    if (existsSync(dir)) remove(dir);
  }
}

/** The kubelet's own iptables chains (kube-proxy --cleanup leaves them), in IPv4 and IPv6. */
async function removeKubeletChains(): Promise<void> {
  for (const bin of ['iptables', 'ip6tables']) {
    for (const table of ['filter', 'nat', 'mangle']) {
      for (const hook of ['INPUT', 'OUTPUT', 'FORWARD']) {
        await exec(bin, ['-w', '-t', table, '-D', hook, '-j', 'KUBE-FIREWALL']).catch(() => {});
      }
      for (const chain of ['KUBE-FIREWALL', 'KUBE-KUBELET-CANARY', 'KUBE-IPTABLES-HINT']) {
        await exec(bin, ['-w', '-t', table, '-F', chain]).catch(() => {});
        await exec(bin, ['-w', '-t', table, '-X', chain]).catch(() => {});
      }
    }
  }
}

function netnsNames(): Set<string> {
  return new Set(existsSync('/run/netns') ? readdirSync('/run/netns') : []);
}

/**
 * Starts a real single-node Kubernetes cluster on this machine: etcd and kube-apiserver (from
 * {@link startControlPlane}), kube-controller-manager, kube-scheduler, containerd with runc and the
 * CNI bridge plugin, the kubelet and kube-proxy (iptables mode), each a process ended by pid.
 * Waits until the node is Ready and the `default` ServiceAccount exists.
 *
 * Networking stays inside what the harness creates: the node's address is on the host end of a
 * veth whose peer sits in a client network namespace the harness creates (send test traffic from
 * there with {@link Cluster.client}); pods live on a CNI bridge of the harness; the apiserver,
 * kubelet and kube-proxy listen on the node address or 127.0.0.1; NodePorts answer on the node
 * address only. Host sysctls the components change are recorded and restored by
 * {@link Cluster.stop}. Only one cluster runs on a machine at a time ({@link ClusterBusyError}).
 *
 * Needs root, cgroup v1 or v2 controllers, and: containerd, runc, the CNI plugins
 * (`containernetworking-plugins`), iptables, iproute2, and the Kubernetes binaries that
 * `scripts/build-kube-binaries.sh` builds.
 *
 * @example
 * ```ts
 * const cluster = await startCluster({ imageArchives, pauseImage: 'localhost/klb-pause:1' });
 * try {
 *   await cluster.kubectl(['apply', '-k', 'deploy/keepalived-nginx']);
 *   const client = cluster.client();
 *   console.log(await client.http('http://10.213.0.100/'));
 * } finally {
 *   await cluster.stop();
 * }
 * ```
 */
export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const log = options.onLog ?? (() => {});
  const nodeName = options.nodeName ?? 'klb-node-1';
  const prefix = options.subnet ?? '10.213.0';
  const nodeIp = `${prefix}.1`;
  const clientIp = `${prefix}.2`;
  const podSubnet = options.podSubnet ?? '10.214.0.0/24';
  const readyTimeoutMs = options.readyTimeoutMs ?? 180_000;
  if (process.getuid?.() !== 0)
    throw new ComponentMissingError('root', 'a cluster needs root (cgroups, mounts, iptables)');
  const bin = (name: KubeBinary): string => options.binaries?.[name] ?? findKubeBinary(name);
  const binaries = {
    kubelet: bin('kubelet'),
    kubeProxy: bin('kube-proxy'),
    controllerManager: bin('kube-controller-manager'),
    scheduler: bin('kube-scheduler'),
    kubectl: bin('kubectl'),
    containerd: which('containerd') ?? requireFile('containerd', '/usr/bin/containerd', 'apt-get install containerd'),
    ctr: which('ctr') ?? requireFile('containerd', '/usr/bin/ctr', 'apt-get install containerd'),
    runc: which('runc') ?? requireFile('runc', '/usr/sbin/runc', 'apt-get install runc'),
    cniBinDir: requireFile(
      'containernetworking-plugins',
      '/usr/lib/cni/bridge',
      'apt-get install containernetworking-plugins',
    ).replace(/\/bridge$/, ''),
  };
  if (!which('iptables') && !existsSync('/usr/sbin/iptables'))
    throw new ComponentMissingError('iptables', 'apt-get install iptables');
  for (const archive of options.imageArchives) {
    if (!existsSync(archive))
      throw new ComponentMissingError('images', `${archive} is missing: run scripts/build-images.sh`);
  }

  const dir = await mkdtemp(join(tmpdir(), 'klb-cluster-'));
  try {
    await takeLock(dir);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const sysctls = recordSysctls();
  writeFileSync(
    LOCK_FILE,
    JSON.stringify({ pid: process.pid, dir, sysctls: Object.fromEntries(sysctls) } satisfies LockContent),
  );
  // Last resort when the test process exits without stop(): the processes are killed by their
  // group's exit hook; the host's sysctls are put back here.
  const restoreOnExit = () => {
    if (!stopped) restoreSysctls(sysctls);
  };
  process.on('exit', restoreOnExit);
  const netnsBefore = netnsNames();
  const id = randomBytes(3).toString('hex');
  const paths = nodePaths(dir);
  const group = new ProcessGroup(dir, false);
  // Fixed names (one cluster per machine): manifests can name the node's interface.
  const hostIf = CLUSTER_INTERFACE;
  const peerIf = 'klb-client0';
  const bridge = 'klb-cni0';
  // Left by a cluster whose process was killed (the lock was free, so nothing uses them).
  sweepStaleNamespaces();
  ipQuietSync(['link', 'del', hostIf]);
  ipQuietSync(['link', 'del', bridge]);
  const clientNamespace = `${NETNS_PREFIX}${process.pid}-cluster-client`;
  const labId = `cluster-${id}`;
  const clients: NetnsClient[] = [];
  let plane: ControlPlane | undefined;
  let stopped = false;

  const teardown = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    log('cluster: stopping');
    for (const client of clients) await client.close().catch(() => {});
    await group.stop('kube-controller-manager');
    await group.stop('kube-scheduler');
    if (plane && group.pid('kubelet') !== undefined) {
      // The kubelet takes its pods down itself (containers, sandboxes, their network namespaces).
      const core = plane.kubeConfig.makeApiClient(CoreV1Api);
      try {
        const pods = await core.listPodForAllNamespaces();
        for (const pod of pods.items) {
          await core
            .deleteNamespacedPod({
              name: pod.metadata?.name ?? '',
              namespace: pod.metadata?.namespace ?? '',
              gracePeriodSeconds: 0,
            })
            .catch(() => {});
        }
        const deadline = Date.now() + 30_000;
        while (Date.now() < deadline) {
          const tasks = await exec(binaries.ctr, [
            '--address',
            paths.containerdSocket,
            '-n',
            'k8s.io',
            'tasks',
            'ls',
            '-q',
          ]).catch(() => ({ stdout: '' }));
          if (tasks.stdout.trim() === '') break;
          await sleep(500);
        }
      } catch {
        // the apiserver is gone: the tasks are killed below
      }
    }
    await group.stop('kube-proxy');
    await group.stop('kubelet');
    if (group.pid('containerd') !== undefined) {
      const ctr = ['--address', paths.containerdSocket, '-n', 'k8s.io'];
      const tasks = await exec(binaries.ctr, [...ctr, 'tasks', 'ls', '-q']).catch(() => ({ stdout: '' }));
      for (const task of tasks.stdout.split('\n').filter(Boolean)) {
        await exec(binaries.ctr, [...ctr, 'tasks', 'kill', '-s', 'SIGKILL', task]).catch(() => {});
      }
    }
    await group.stop('containerd');
    for (const pid of pidsMentioning(paths.containerdSocket)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await exec(binaries.kubeProxy, ['--cleanup']).catch((err: Error) =>
      log(`cluster: kube-proxy --cleanup: ${err.message}`),
    );
    await removeKubeletChains();
    for (const target of mountsUnder(dir)) await exec('umount', ['-l', target]).catch(() => {});
    for (const name of netnsNames()) {
      if (!netnsBefore.has(name) && name.startsWith('cni-')) destroyNamespaceSync(name);
    }
    ipQuietSync(['link', 'del', bridge]);
    removeKubeletCgroups();
    await plane?.stop();
    destroyNamespaceSync(clientNamespace);
    unregisterLab(labId);
    for (const line of restoreSysctls(sysctls)) log(`cluster: restored ${line}`);
    process.off('exit', restoreOnExit);
    await group.stopAll();
    rmSync(dir, { recursive: true, force: true });
    releaseLock();
  };

  try {
    // The node's network: a veth whose peer is the client namespace's only interface.
    registerLab(labId, [clientNamespace]);
    await ip(['netns', 'add', clientNamespace]);
    await ip(['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', peerIf]);
    await ip(['link', 'set', peerIf, 'netns', clientNamespace]);
    await ip(['addr', 'add', `${nodeIp}/24`, 'dev', hostIf]);
    await ip(['link', 'set', hostIf, 'up']);
    await ip(['-n', clientNamespace, 'addr', 'add', `${clientIp}/24`, 'dev', peerIf]);
    await ip(['-n', clientNamespace, 'link', 'set', peerIf, 'up']);
    await ip(['-n', clientNamespace, 'link', 'set', 'lo', 'up']);
    // The pods' bridge, made here with a fixed MAC address: one the kernel picks follows the
    // lowest MAC of its ports and changes as pods come and go. The CNI plugin adopts it.
    await ip(['link', 'add', bridge, 'type', 'bridge']);
    await ip(['link', 'set', bridge, 'address', `02:6b:6c:62:${id.slice(0, 2)}:${id.slice(2, 4)}`]);
    await ip(['link', 'set', bridge, 'up']);
    // Service traffic between pods on the bridge passes iptables (kube-proxy's rules).
    writeSysctl('net.bridge.bridge-nf-call-iptables', '1');
    log(`cluster: node address ${nodeIp} on ${hostIf}, client ${clientIp} in ${clientNamespace}`);

    const users = {
      node: `system:node:${nodeName}`,
      proxy: 'system:kube-proxy',
      controllerManager: 'system:kube-controller-manager',
      scheduler: 'system:kube-scheduler',
    };
    plane = await startControlPlane({
      bindAddress: nodeIp,
      nodeAuthorizer: true,
      serviceClusterIpRange: options.serviceClusterIpRange ?? '10.215.0.0/16',
      users: [
        { name: users.node, groups: ['system:nodes'] },
        { name: users.proxy },
        { name: users.controllerManager },
        { name: users.scheduler },
        { name: 'klb-user' },
      ],
      onLog: log,
    });
    const cp = plane;

    for (const sub of ['cni/net.d', 'cni/ipam', 'containerd', 'kubelet', 'pod-logs'])
      mkdirSync(join(dir, sub), { recursive: true });
    writeFileSync(join(dir, 'cni/net.d/10-klb.conflist'), cniConfig(bridge, podSubnet, join(dir, 'cni/ipam')));
    writeFileSync(
      join(dir, 'containerd/config.toml'),
      containerdConfig(paths, {
        pauseImage: options.pauseImage,
        cniConfDir: join(dir, 'cni/net.d'),
        cniBinDir: binaries.cniBinDir,
        runc: binaries.runc,
      }),
    );
    log('cluster: starting containerd');
    group.start('containerd', binaries.containerd, ['--config', join(dir, 'containerd/config.toml')]);
    const ctr = ['--address', paths.containerdSocket, '-n', 'k8s.io'];
    await waitFor('containerd', 60_000, group, async () => {
      if (!existsSync(paths.containerdSocket)) return false;
      return exec(binaries.ctr, [...ctr, 'version']).then(
        () => true,
        () => false,
      );
    });
    for (const archive of options.imageArchives) {
      log(`cluster: importing ${archive}`);
      await exec(binaries.ctr, [...ctr, 'images', 'import', archive], undefined, 300_000);
    }

    const secure = async (name: string, user: string, args: string[]): Promise<void> => {
      const kubeconfig = cp.writeKubeConfig(user);
      const port = await freePort();
      log(`cluster: starting ${name}`);
      group.start(name, binaries[name === 'kube-scheduler' ? 'scheduler' : 'controllerManager'], [
        `--kubeconfig=${kubeconfig}`,
        `--authentication-kubeconfig=${kubeconfig}`,
        `--authorization-kubeconfig=${kubeconfig}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${port}`,
        `--cert-dir=${join(dir, name)}`,
        '--leader-elect=false',
        ...args,
      ]);
    };
    await secure('kube-controller-manager', users.controllerManager, [
      '--use-service-account-credentials=true',
      `--service-cluster-ip-range=${options.serviceClusterIpRange ?? '10.215.0.0/16'}`,
      '--allocate-node-cidrs=false',
      '--controllers=*,-bootstrapsigner,-tokencleaner,-nodeipam,-service-lb-controller,-cloud-node-lifecycle-controller',
    ]);
    await secure('kube-scheduler', users.scheduler, []);

    writeFileSync(join(dir, 'resolv.conf'), '# the KLB test cluster has no DNS\noptions ndots:1\n');
    writeFileSync(
      join(dir, 'kubelet/config.yaml'),
      kubeletConfig({
        nodeIp,
        port: await freePort(nodeIp),
        healthzPort: await freePort(),
        containerdSocket: paths.containerdSocket,
        resolvConf: join(dir, 'resolv.conf'),
        podLogsDir: join(dir, 'pod-logs'),
      }),
    );
    log('cluster: starting kubelet');
    group.start('kubelet', binaries.kubelet, [
      `--config=${join(dir, 'kubelet/config.yaml')}`,
      `--kubeconfig=${cp.writeKubeConfig(users.node)}`,
      `--root-dir=${join(dir, 'kubelet')}`,
      `--cert-dir=${join(dir, 'kubelet/pki')}`,
      `--hostname-override=${nodeName}`,
      `--node-ip=${nodeIp}`,
      '--v=1',
    ]);
    writeFileSync(
      join(dir, 'kube-proxy.yaml'),
      kubeProxyConfig({
        kubeconfig: cp.writeKubeConfig(users.proxy),
        nodeName,
        nodeIp,
        podSubnet,
        healthzPort: await freePort(),
        metricsPort: await freePort(),
      }),
    );
    log('cluster: starting kube-proxy');
    group.start('kube-proxy', binaries.kubeProxy, [`--config=${join(dir, 'kube-proxy.yaml')}`]);

    const core = cp.kubeConfig.makeApiClient(CoreV1Api);
    await waitFor(`node ${nodeName} Ready`, readyTimeoutMs, group, async () => {
      const node = await core.readNode({ name: nodeName }).catch(() => undefined);
      const ready = node?.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
      if (!ready) return false;
      const sa = await core
        .readNamespacedServiceAccount({ name: 'default', namespace: 'default' })
        .catch(() => undefined);
      return sa !== undefined;
    });
    log(`cluster: node ${nodeName} Ready`);

    return {
      controlPlane: cp,
      kubeConfig: cp.kubeConfig,
      nodeName,
      nodeIp,
      interface: hostIf,
      subnet: `${prefix}.0/24`,
      clientNamespace,
      clientIp,
      podSubnet,
      dir,
      containerdSocket: paths.containerdSocket,
      pids() {
        const pids: Record<string, number> = {};
        for (const name of ['containerd', 'kube-controller-manager', 'kube-scheduler', 'kubelet', 'kube-proxy']) {
          const pid = group.pid(name);
          if (pid !== undefined) pids[name] = pid;
        }
        return pids;
      },
      logTails: (lines = 30) => group.logTails(lines),
      client() {
        const client = startNetnsClient([ipBinary(), 'netns', 'exec', clientNamespace]);
        clients.push(client);
        return client;
      },
      kubectl(args, { input, timeoutMs } = {}) {
        return exec(binaries.kubectl, [`--kubeconfig=${cp.writeKubeConfig()}`, ...args], input, timeoutMs);
      },
      writeKubeConfig: () => cp.writeKubeConfig(),
      stop: teardown,
    };
  } catch (err) {
    const tails = group.logTails(40);
    await teardown().catch(() => {});
    if (err instanceof ComponentMissingError) throw err;
    throw new ClusterError(`the cluster did not start: ${(err as Error).message}\n${tails}`, err);
  }
}
