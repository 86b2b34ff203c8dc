import { existsSync } from 'node:fs';
import {
  ComponentMissingError,
  findEtcd,
  findKubeApiserver,
  findKubeBinary,
  type KubeBinary,
  which,
} from './binaries.js';

/** A real component that test suites can require. */
export type Component =
  | 'kube-apiserver'
  | 'etcd'
  | 'nginx'
  | 'keepalived'
  | 'netns'
  | 'keystone'
  | 'octavia'
  | 'neutron'
  | 'openssl'
  | 'cluster';

function problemOf(find: () => string): string | undefined {
  try {
    find();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

const checks: Record<Component, () => string | undefined> = {
  'kube-apiserver': () => problemOf(findKubeApiserver),
  etcd: () => problemOf(findEtcd),
  nginx: () => {
    if (!which('nginx') && !existsSync('/usr/sbin/nginx')) return 'nginx is not installed: apt-get install nginx-light';
    if (!existsSync('/usr/lib/nginx/modules/ngx_stream_module.so')) {
      return 'the nginx stream module is not installed: apt-get install libnginx-mod-stream';
    }
    return undefined;
  },
  keepalived: () =>
    which('keepalived') || existsSync('/usr/sbin/keepalived')
      ? undefined
      : 'keepalived is not installed: apt-get install keepalived',
  keystone: () =>
    which('keystone-manage') && which('keystone-wsgi-public')
      ? undefined
      : 'keystone is not installed: apt-get install --no-install-recommends keystone',
  octavia: () => {
    if (!which('octavia-api'))
      return 'octavia-api is not installed: apt-get install --no-install-recommends octavia-api';
    if (!existsSync('/usr/lib/python3/dist-packages/oslotest'))
      return 'oslotest (for the Octavia schema) is not installed: apt-get install python3-oslotest';
    return undefined;
  },
  neutron: () =>
    which('neutron-server')
      ? undefined
      : 'neutron-server is not installed: apt-get install --no-install-recommends neutron-server',
  openssl: () =>
    which('openssl')
      ? undefined
      : 'openssl is not installed (the F5 emulator makes its certificate with it): apt-get install openssl',
  cluster: () => {
    const kube: KubeBinary[] = ['kubelet', 'kube-proxy', 'kube-controller-manager', 'kube-scheduler', 'kubectl'];
    for (const name of kube) {
      const problem = problemOf(() => findKubeBinary(name));
      if (problem) return problem;
    }
    if (!which('containerd')) return 'containerd is not installed: apt-get install containerd';
    if (!which('runc')) return 'runc is not installed: apt-get install runc';
    if (!existsSync('/usr/lib/cni/bridge'))
      return 'the CNI plugins are not installed: apt-get install containernetworking-plugins';
    if (!which('iptables')) return 'iptables is not installed: apt-get install iptables';
    if (process.getuid?.() !== 0) return 'a cluster needs root (cgroups, mounts, iptables)';
    return undefined;
  },
  netns: () => {
    if (!which('ip') && !existsSync('/usr/sbin/ip') && !existsSync('/sbin/ip'))
      return 'iproute2 is not installed: apt-get install iproute2';
    if (process.getuid?.() !== 0) return 'network namespaces need root (CAP_NET_ADMIN)';
    return undefined;
  },
};

/**
 * Checks that real components are present. Returns undefined when all are, else one line that
 * says what is missing and how to install it. With `CI=true` a missing component is an error,
 * not a skip: it throws {@link ComponentMissingError}, whose message is that same line without
 * the `skip: ` prefix.
 *
 * @example
 * ```ts
 * const missing = requireComponents('kube-apiserver', 'etcd');
 * const it = missing ? test.skip : test;
 * ```
 */
export function requireComponents(...components: Component[]): string | undefined {
  for (const component of components) {
    const problem = checks[component]();
    if (problem === undefined) continue;
    if (process.env.CI === 'true') throw new ComponentMissingError(component, problem);
    const line = `skip: ${problem}`;
    process.stdout.write(`${line}\n`);
    return line;
  }
  return undefined;
}
