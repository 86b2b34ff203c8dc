// Command line and environment of the reference daemon: one table of options, from which both
// parsing and --help are derived. Flags win over environment variables.
import { parseArgs } from 'node:util';

interface Spec {
  readonly type: 'string' | 'boolean';
  readonly env?: string;
  readonly default?: string;
  readonly help: string;
}

const SPECS = {
  kubeconfig: { type: 'string', env: 'KUBECONFIG', help: 'kubeconfig file; default: in-cluster service account' },
  namespace: {
    type: 'string',
    env: 'POD_NAMESPACE',
    help: 'namespace of the daemon config objects and of this node report (required)',
  },
  'node-name': {
    type: 'string',
    env: 'NODE_NAME',
    help: 'this node name (report klb-daemon-<node>); default: POD_NAME',
  },
  'pod-name': { type: 'string', env: 'POD_NAME', help: 'original interface: identity when NODE_NAME is not set' },
  'state-dir': {
    type: 'string',
    env: 'KLB_STATE_DIR',
    default: '/run/klb',
    help: 'configs, pid files, TLS files',
  },
  interface: { type: 'string', env: 'KLB_INTERFACE', default: 'eth0', help: 'interface for VRRP and the VIPs' },
  priority: { type: 'string', env: 'KLB_PRIORITY', default: '100', help: 'VRRP priority of this node, 1-254' },
  'virtual-router-id': {
    type: 'string',
    env: 'VIRTUAL_ROUTER_ID',
    help: 'original interface: VRRP router id (1-255) of the "default" group on this node, instead of the published one',
  },
  'keepalived-opts': {
    type: 'string',
    env: 'KEEPALIVED_OPTS',
    help: 'original interface: extra keepalived arguments, space separated (e.g. "--vrrp --log-detail")',
  },
  'advert-int': { type: 'string', env: 'KLB_ADVERT_INT', default: '0.1', help: 'seconds between VRRP adverts' },
  'unicast-peers': { type: 'string', env: 'KLB_UNICAST_PEERS', help: 'comma-separated peer addresses (no multicast)' },
  nopreempt: { type: 'boolean', env: 'KLB_NOPREEMPT', help: 'do not take VIPs back after recovering' },
  'no-keepalived': {
    type: 'boolean',
    env: 'KLB_NO_KEEPALIVED',
    help: 'run nginx only (VIPs routed to the node otherwise)',
  },
  'no-compat-configmap': {
    type: 'boolean',
    env: 'KLB_NO_COMPAT_CONFIGMAP',
    help: 'ignore the original daemon-configmap',
  },
  'health-port': {
    type: 'string',
    env: 'KLB_HEALTH_PORT',
    default: '10254',
    help: '/healthz, /readyz, /metrics port (0: off)',
  },
  'min-reload-interval-ms': {
    type: 'string',
    env: 'KLB_MIN_RELOAD_INTERVAL_MS',
    default: '1000',
    help: 'reload rate limit',
  },
  'log-level': { type: 'string', env: 'KLB_LOG_LEVEL', default: 'info', help: 'debug | info | warn | error' },
  help: { type: 'boolean', help: 'print this help and exit' },
} as const satisfies Record<string, Spec>;

/** A bad flag or environment value: the daemon says what is wrong and exits with status 2. */
export class ConfigError extends Error {}

/** The daemon's settings. */
export interface Config {
  help: boolean;
  kubeconfig: string | undefined;
  namespace: string;
  nodeName: string;
  stateDir: string;
  interface: string;
  priority: number;
  virtualRouterId: number | undefined;
  keepalivedArgs: string[];
  advertInt: number;
  unicastPeers: string[];
  nopreempt: boolean;
  keepalived: boolean;
  compatConfigMap: boolean;
  healthPort: number;
  minReloadIntervalMs: number;
  logLevel: string;
}

/** The --help text. */
export function helpText(): string {
  const lines = Object.entries(SPECS).map(([name, spec]: [string, Spec]) => {
    const env = spec.env ? ` [$${spec.env}]` : '';
    const def = spec.default ? ` (default ${spec.default})` : '';
    return `  --${name}${spec.type === 'string' ? '=VALUE' : ''}${env}\n      ${spec.help}${def}`;
  });
  return `usage: klb-daemon [options]\n\nThe KLB keepalived-nginx node daemon.\n\n${lines.join('\n')}\n`;
}

function int(name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max)
    throw new ConfigError(`--${name}: "${text}" is not a whole number in ${min}-${max}`);
  return n;
}

/** Parses flags (`argv`) over environment variables (`env`). Throws {@link ConfigError}. */
export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Config {
  let values: Record<string, string | boolean | undefined>;
  try {
    const options = Object.fromEntries(Object.entries(SPECS).map(([k, s]) => [k, { type: s.type }]));
    values = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const get = (name: keyof typeof SPECS): string | undefined => {
    const spec: Spec = SPECS[name];
    const flag = values[name];
    if (typeof flag === 'string') return flag;
    if (flag === true) return 'true';
    const fromEnv = spec.env ? env[spec.env] : undefined;
    return fromEnv !== undefined && fromEnv !== '' ? fromEnv : spec.default;
  };
  const bool = (name: keyof typeof SPECS): boolean => {
    const v = get(name);
    if (v === undefined || v === 'false' || v === '0') return false;
    if (v === 'true' || v === '1') return true;
    throw new ConfigError(`--${name}: "${v}" is not true or false`);
  };
  const help = bool('help');
  const namespace = get('namespace');
  const nodeName = get('node-name') ?? get('pod-name');
  if (!help && !namespace) throw new ConfigError('--namespace (or POD_NAMESPACE) is required');
  if (!help && !nodeName) throw new ConfigError('--node-name (or NODE_NAME or POD_NAME) is required');
  const advertInt = Number(get('advert-int'));
  if (!Number.isFinite(advertInt) || advertInt <= 0 || advertInt > 255) {
    throw new ConfigError(`--advert-int: "${get('advert-int')}" is not a number of seconds in (0, 255]`);
  }
  const vrid = get('virtual-router-id');
  const keepalivedArgs = (get('keepalived-opts') ?? '').split(/\s+/).filter(Boolean);
  const managed = keepalivedArgs.find((a) => /^(-[fprn]|--use-file|--pid|--vrrp_pid|--dont-fork)(=|$)/.test(a));
  if (managed) throw new ConfigError(`KEEPALIVED_OPTS: ${managed} is set by the daemon itself`);
  return {
    help,
    kubeconfig: get('kubeconfig'),
    namespace: namespace ?? '',
    nodeName: nodeName ?? '',
    stateDir: get('state-dir') as string,
    interface: get('interface') as string,
    priority: int('priority', get('priority') as string, 1, 254),
    virtualRouterId: vrid === undefined ? undefined : int('virtual-router-id', vrid, 1, 255),
    keepalivedArgs,
    advertInt,
    unicastPeers: (get('unicast-peers') ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean),
    nopreempt: bool('nopreempt'),
    keepalived: !bool('no-keepalived'),
    compatConfigMap: !bool('no-compat-configmap'),
    healthPort: int('health-port', get('health-port') as string, 0, 65535),
    minReloadIntervalMs: int('min-reload-interval-ms', get('min-reload-interval-ms') as string, 0, 600_000),
    logLevel: get('log-level') as string,
  };
}
