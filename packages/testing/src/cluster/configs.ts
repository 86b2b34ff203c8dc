import { join } from 'node:path';

/** Where one node's components keep their files, all under the cluster's directory. */
export interface NodePaths {
  readonly dir: string;
  readonly containerdSocket: string;
}

/** The node's file layout under `dir`. */
export function nodePaths(dir: string): NodePaths {
  return { dir, containerdSocket: join(dir, 'containerd', 'containerd.sock') };
}

/** The CNI network: a bridge with host-local addresses, hairpin on (a pod reaching itself through a Service). */
export function cniConfig(bridge: string, podSubnet: string, ipamDir: string): string {
  return JSON.stringify(
    {
      cniVersion: '0.4.0',
      name: 'klb-cluster',
      plugins: [
        {
          type: 'bridge',
          bridge,
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            ranges: [[{ subnet: podSubnet }]],
            routes: [{ dst: '0.0.0.0/0' }],
            dataDir: ipamDir,
          },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  );
}

/**
 * containerd 1.6 (config version 2) with every directory under the node's, the CRI plugin's CNI
 * config there, the pause image built locally, and `restrict_oom_score_adj` (this machine's
 * runc cannot lower a sandbox's oom_score_adj without CAP_SYS_RESOURCE).
 */
export function containerdConfig(
  paths: NodePaths,
  options: { pauseImage: string; cniConfDir: string; cniBinDir: string; runc: string },
): string {
  const c = join(paths.dir, 'containerd');
  const q = (value: string) => JSON.stringify(value);
  return `version = 2
root = ${q(join(c, 'root'))}
state = ${q(join(c, 'state'))}
oom_score = 0

[grpc]
  address = ${q(paths.containerdSocket)}

[ttrpc]
  address = ${q(`${paths.containerdSocket}.ttrpc`)}

[debug]
  level = "warn"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = ${q(join(c, 'opt'))}

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ${q(options.pauseImage)}
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = false
  BinaryName = ${q(options.runc)}

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = ${q(options.cniBinDir)}
  conf_dir = ${q(options.cniConfDir)}
`;
}

/** The kubelet's configuration file (JSON is YAML). */
export function kubeletConfig(options: {
  nodeIp: string;
  port: number;
  healthzPort: number;
  containerdSocket: string;
  resolvConf: string;
  podLogsDir: string;
}): string {
  return JSON.stringify(
    {
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      kind: 'KubeletConfiguration',
      // This machine's cgroup controllers are v1 (hybrid layout).
      failCgroupV1: false,
      cgroupDriver: 'cgroupfs',
      address: options.nodeIp,
      port: options.port,
      readOnlyPort: 0,
      healthzBindAddress: '127.0.0.1',
      healthzPort: options.healthzPort,
      // The apiserver (logs, exec) reaches the kubelet on the node address only.
      authentication: { anonymous: { enabled: true }, webhook: { enabled: false } },
      authorization: { mode: 'AlwaysAllow' },
      containerRuntimeEndpoint: `unix://${options.containerdSocket}`,
      podLogsDir: options.podLogsDir,
      resolvConf: options.resolvConf,
      failSwapOn: false,
      oomScoreAdj: 0,
      serializeImagePulls: false,
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
      evictionHard: {
        'memory.available': '100Mi',
        'nodefs.available': '1%',
        'nodefs.inodesFree': '1%',
        'imagefs.available': '1%',
      },
      nodeStatusUpdateFrequency: '4s',
      syncFrequency: '10s',
      fileCheckFrequency: '0s',
      staticPodPath: '',
    },
    null,
    2,
  );
}

/** kube-proxy in iptables mode; NodePorts and health check node ports on the node address only. */
export function kubeProxyConfig(options: {
  kubeconfig: string;
  nodeName: string;
  nodeIp: string;
  podSubnet: string;
  healthzPort: number;
  metricsPort: number;
}): string {
  return JSON.stringify(
    {
      apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
      kind: 'KubeProxyConfiguration',
      clientConnection: { kubeconfig: options.kubeconfig },
      hostnameOverride: options.nodeName,
      bindAddress: options.nodeIp,
      healthzBindAddress: `127.0.0.1:${options.healthzPort}`,
      metricsBindAddress: `127.0.0.1:${options.metricsPort}`,
      mode: 'iptables',
      clusterCIDR: options.podSubnet,
      nodePortAddresses: [`${options.nodeIp}/32`],
      oomScoreAdj: 0,
      // Leave the host's conntrack table sizes alone.
      conntrack: { maxPerCore: 0, min: 0 },
      iptables: { syncPeriod: '30s', minSyncPeriod: '0s' },
    },
    null,
    2,
  );
}
