// Command line and environment of the reference controller: one table of options, from which
// both parsing and --help are derived. Flags win over environment variables.
import { parseArgs } from 'node:util';

/** The backends, with the original system's names as aliases. */
const BACKENDS: Record<string, Backend> = {
  'keepalived-nginx': 'keepalived-nginx',
  'loadbalancer-daemon': 'keepalived-nginx',
  f5: 'f5',
  octavia: 'octavia',
  'openstack-lbaasv2': 'octavia',
};
export type Backend = 'keepalived-nginx' | 'f5' | 'octavia';

interface Spec {
  readonly type: 'string' | 'boolean';
  readonly env?: string;
  readonly default?: string;
  readonly help: string;
}

const SPECS = {
  backend: {
    type: 'string',
    env: 'KLB_BACKEND',
    default: 'keepalived-nginx',
    help: 'keepalived-nginx | f5 | octavia (original names loadbalancer-daemon and openstack-lbaasv2 accepted)',
  },
  kubeconfig: { type: 'string', env: 'KUBECONFIG', help: 'kubeconfig file; default: in-cluster service account' },
  namespace: {
    type: 'string',
    env: 'POD_NAMESPACE',
    default: 'klb-system',
    help: 'namespace of the leader Lease, the AddressClaims and the daemon configs',
  },
  'pod-name': { type: 'string', env: 'POD_NAME', help: 'leader election identity; default: host name + random suffix' },
  'pools-file': { type: 'string', env: 'KLB_POOLS_FILE', help: 'address pool configuration file (YAML or JSON)' },
  'pools-configmap': {
    type: 'string',
    env: 'KLB_POOLS_CONFIGMAP',
    help: 'ConfigMap in --namespace whose data["pools.yaml"] holds the pools (read at start)',
  },
  'vip-allocation-start': {
    type: 'string',
    env: 'VIP_ALLOCATION_START',
    help: 'original interface: first VIP of the single pool "default"',
  },
  'vip-allocation-end': {
    type: 'string',
    env: 'VIP_ALLOCATION_END',
    help: 'original interface: last VIP (inclusive) of the pool "default"',
  },
  'load-balancer-class': {
    type: 'string',
    env: 'KLB_LOAD_BALANCER_CLASS',
    default: 'klb.io/load-balancer',
    help: 'spec.loadBalancerClass of the Services this controller owns',
  },
  'handle-unclassed': {
    type: 'boolean',
    env: 'KLB_HANDLE_UNCLASSED',
    help: 'also own type=LoadBalancer Services without a loadBalancerClass',
  },
  'ingress-class': {
    type: 'string',
    env: 'KLB_INGRESS_CLASS',
    default: 'klb',
    help: 'spec.ingressClassName of the Ingresses this controller owns (backends with L7 only)',
  },
  'disable-configmaps': {
    type: 'boolean',
    env: 'KLB_DISABLE_CONFIGMAPS',
    help: 'ignore the original app=loadbalancer ConfigMaps',
  },
  'disable-ingress': { type: 'boolean', env: 'KLB_DISABLE_INGRESS', help: 'ignore Ingresses' },
  'gateway-controller-name': {
    type: 'string',
    env: 'KLB_GATEWAY_CONTROLLER_NAME',
    default: 'klb.io/gateway-controller',
    help: 'spec.controllerName of the GatewayClasses whose Gateways this controller serves',
  },
  'disable-gateways': {
    type: 'boolean',
    env: 'KLB_DISABLE_GATEWAYS',
    help: 'ignore the Gateway API (Gateways and Routes)',
  },
  'disable-leader-election': {
    type: 'boolean',
    env: 'KLB_DISABLE_LEADER_ELECTION',
    help: 'act without a Lease (run exactly one replica)',
  },
  'lease-name': { type: 'string', env: 'KLB_LEASE_NAME', default: 'klb-controller', help: 'name of the leader Lease' },
  'lease-duration-seconds': {
    type: 'string',
    env: 'KLB_LEASE_DURATION_SECONDS',
    default: '15',
    help: 'how long a lease is valid without renewal: the worst-case takeover time after a leader dies',
  },
  'renew-deadline-seconds': {
    type: 'string',
    env: 'KLB_RENEW_DEADLINE_SECONDS',
    default: '10',
    help: 'a leader that could not renew for this long stops working (less than the lease duration)',
  },
  'retry-period-seconds': {
    type: 'string',
    env: 'KLB_RETRY_PERIOD_SECONDS',
    default: '2',
    help: 'interval of renewals and of acquisition attempts',
  },
  port: {
    type: 'string',
    env: 'KLB_PORT',
    default: '8080',
    help: 'port of /metrics, /healthz and /readyz (0: any free port)',
  },
  host: { type: 'string', env: 'KLB_HOST', default: '0.0.0.0', help: 'address the metrics/health port binds' },
  workers: { type: 'string', env: 'KLB_WORKERS', default: '4', help: 'concurrent reconciles' },
  'resync-seconds': {
    type: 'string',
    env: 'KLB_RESYNC_SECONDS',
    default: '600',
    help: 'full resync period (drift repair); 0 disables it',
  },
  'log-level': { type: 'string', env: 'LOG_LEVEL', default: 'info', help: 'debug | info | warn | error' },
  'daemon-config-mode': {
    type: 'string',
    env: 'KLB_DAEMON_CONFIG_MODE',
    default: 'per-load-balancer',
    help: 'keepalived-nginx: per-load-balancer (a Secret each) | daemon-configmap (the original single ConfigMap)',
  },
  'vrrp-group': {
    type: 'string',
    env: 'KLB_VRRP_GROUP',
    default: 'default',
    help: 'keepalived-nginx: VRRP group of load balancers without the klb.io/vrrp-group annotation',
  },
  'f5-partition': { type: 'string', env: 'F5_PARTITION', default: 'klb', help: 'f5: partition of KLB objects' },
  'f5-controller-id': {
    type: 'string',
    env: 'F5_CONTROLLER_ID',
    default: 'klb',
    help: 'f5: ownership marker; controllers sharing a partition need different ids',
  },
  'os-cluster-name': {
    type: 'string',
    env: 'OS_CLUSTER_NAME',
    default: 'kubernetes',
    help: 'octavia: cluster name in load balancer names and tags',
  },
  'os-naming': {
    type: 'string',
    env: 'OS_LB_NAMING',
    default: 'klb',
    help: 'octavia: klb | cloud-provider (adopt load balancers named as the OpenStack cloud provider names them)',
  },
  help: { type: 'boolean', help: 'print this help and exit' },
} as const satisfies Record<string, Spec>;

type Name = keyof typeof SPECS;

/** Help text: every option, its environment variable and default. */
export function helpText(): string {
  const rows = Object.entries(SPECS).map(([name, raw]) => {
    const spec: Spec = raw;
    const flag = spec.type === 'string' ? `--${name}=VALUE` : `--${name}`;
    const extra = [spec.env && `env ${spec.env}`, spec.default !== undefined && `default ${spec.default}`]
      .filter(Boolean)
      .join(', ');
    return `  ${flag.padEnd(32)} ${spec.help}${extra ? ` (${extra})` : ''}`;
  });
  return [
    'Usage: reference-controller [options]',
    '',
    'KLB reference controller: Services type=LoadBalancer, the original app=loadbalancer ConfigMaps,',
    'Ingresses and Gateway API Gateways with their Routes, realised by one backend, with VIPs from',
    '@klb/ipam (AddressClaims in --namespace).',
    '',
    'Options (a flag wins over its environment variable):',
    ...rows,
    '',
    'f5 reads F5_HOST, F5_USER, F5_PASSWORD, F5_CA_FILE, F5_INSECURE_SKIP_VERIFY.',
    'octavia reads OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME/OS_TENANT_NAME, OS_REGION_NAME,',
    'OS_SUBNET_ID, OS_USER_DOMAIN_NAME, OS_PROJECT_DOMAIN_NAME, OS_CACERT, OS_INSECURE (or application credentials).',
    'Pools: --pools-file, else --pools-configmap, else VIP_ALLOCATION_START/END (octavia allocates its own VIPs).',
    '',
  ].join('\n');
}

/** A configuration error: printed as one line, exit status 2. */
export class ConfigError extends Error {}

/** The validated configuration. */
export interface Config {
  readonly help: boolean;
  readonly backend: Backend;
  readonly kubeconfig: string | undefined;
  readonly namespace: string;
  readonly podName: string | undefined;
  readonly poolsFile: string | undefined;
  readonly poolsConfigMap: string | undefined;
  readonly vipRange: { readonly start: string | undefined; readonly end: string | undefined };
  readonly loadBalancerClass: string;
  readonly handleUnclassed: boolean;
  readonly ingressClass: string;
  readonly configMaps: boolean;
  readonly ingress: boolean;
  readonly gatewayControllerName: string;
  readonly gateways: boolean;
  readonly leaderElection: boolean;
  readonly leaseName: string;
  readonly lease: { readonly durationMs: number; readonly renewDeadlineMs: number; readonly retryPeriodMs: number };
  readonly port: number;
  readonly host: string;
  readonly workers: number;
  readonly resyncSeconds: number;
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error';
  readonly daemonConfigMode: 'per-load-balancer' | 'daemon-configmap';
  readonly vrrpGroup: string;
  readonly f5Partition: string;
  readonly f5ControllerId: string;
  readonly osClusterName: string;
  readonly osNaming: 'klb' | 'cloud-provider';
}

function integer(name: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new ConfigError(`--${name} must be an integer from ${min} to ${max}, got "${value}"`);
  }
  return Number(value);
}

/** A GatewayClass controllerName: a domain-prefixed path, as the Gateway API validates it. */
function controllerName(value: string): string {
  if (
    !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9/\-._~%!$&'()*+,;=:]+$/.test(value) ||
    value.length > 253
  ) {
    throw new ConfigError(
      `--gateway-controller-name must be a domain-prefixed path such as klb.io/gateway-controller, got "${value}"`,
    );
  }
  return value;
}

function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new ConfigError(`--${name} must be one of ${allowed.join(', ')}, got "${value}"`);
  }
  return value as T;
}

/** Parses flags and environment; throws {@link ConfigError} on anything invalid. */
export function parseConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Config {
  let values: Record<string, string | boolean | undefined>;
  try {
    const options = Object.fromEntries(Object.entries(SPECS).map(([name, spec]) => [name, { type: spec.type }]));
    values = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new ConfigError(`${(err as Error).message} (see --help)`);
  }
  const str = (name: Name): string | undefined => {
    const spec: Spec = SPECS[name];
    const flag = values[name];
    if (typeof flag === 'string') return flag.trim();
    const fromEnv = spec.env ? env[spec.env]?.trim() : undefined;
    return fromEnv ? fromEnv : spec.default;
  };
  const bool = (name: Name): boolean => {
    const spec: Spec = SPECS[name];
    if (values[name] === true) return true;
    const raw = spec.env ? env[spec.env]?.trim().toLowerCase() : undefined;
    if (raw === undefined || raw === '' || ['0', 'false', 'no'].includes(raw)) return false;
    if (['1', 'true', 'yes'].includes(raw)) return true;
    throw new ConfigError(`${spec.env} must be true or false, got "${raw}"`);
  };
  const backendName = str('backend') ?? '';
  const backend = BACKENDS[backendName];
  if (!backend) {
    throw new ConfigError(`--backend must be one of ${Object.keys(BACKENDS).join(', ')}, got "${backendName}"`);
  }
  const namespace = str('namespace') ?? '';
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(namespace)) {
    throw new ConfigError(`--namespace must be a Kubernetes namespace name, got "${namespace}"`);
  }
  const lease = {
    durationMs: integer('lease-duration-seconds', str('lease-duration-seconds') ?? '', 2, 3600) * 1000,
    renewDeadlineMs: integer('renew-deadline-seconds', str('renew-deadline-seconds') ?? '', 1, 3600) * 1000,
    retryPeriodMs: integer('retry-period-seconds', str('retry-period-seconds') ?? '', 1, 3600) * 1000,
  };
  if (!(lease.retryPeriodMs < lease.renewDeadlineMs && lease.renewDeadlineMs < lease.durationMs)) {
    throw new ConfigError(
      '--retry-period-seconds < --renew-deadline-seconds < --lease-duration-seconds must hold, ' +
        `got ${lease.retryPeriodMs / 1000} < ${lease.renewDeadlineMs / 1000} < ${lease.durationMs / 1000}`,
    );
  }
  return {
    help: values.help === true,
    backend,
    kubeconfig: str('kubeconfig') || undefined,
    namespace,
    podName: str('pod-name') || undefined,
    poolsFile: str('pools-file') || undefined,
    poolsConfigMap: str('pools-configmap') || undefined,
    vipRange: { start: str('vip-allocation-start'), end: str('vip-allocation-end') },
    loadBalancerClass: str('load-balancer-class') ?? '',
    handleUnclassed: bool('handle-unclassed'),
    ingressClass: str('ingress-class') ?? '',
    configMaps: !bool('disable-configmaps'),
    ingress: !bool('disable-ingress'),
    gatewayControllerName: controllerName(str('gateway-controller-name') ?? ''),
    gateways: !bool('disable-gateways'),
    leaderElection: !bool('disable-leader-election'),
    leaseName: str('lease-name') ?? '',
    lease,
    port: integer('port', str('port') ?? '', 0, 65535),
    host: str('host') ?? '',
    workers: integer('workers', str('workers') ?? '', 1, 256),
    resyncSeconds: integer('resync-seconds', str('resync-seconds') ?? '', 0, 86400),
    logLevel: oneOf('log-level', str('log-level') ?? '', ['debug', 'info', 'warn', 'error']),
    daemonConfigMode: oneOf('daemon-config-mode', str('daemon-config-mode') ?? '', [
      'per-load-balancer',
      'daemon-configmap',
    ]),
    vrrpGroup: str('vrrp-group') ?? '',
    f5Partition: str('f5-partition') ?? '',
    f5ControllerId: str('f5-controller-id') ?? '',
    osClusterName: str('os-cluster-name') ?? '',
    osNaming: oneOf('os-naming', str('os-naming') ?? '', ['klb', 'cloud-provider']),
  };
}
