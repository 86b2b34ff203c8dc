// The reference controller's command line: --help documents every option, bad configuration is
// one clear line on stderr and exit status 2, before anything connects anywhere.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('reference controller command line');
const main = join(import.meta.dirname, '../src/main.ts');
const dir = mkdtempSync(join(tmpdir(), 'klb-rc-cli-'));
// A kubeconfig that loads but points nowhere: configuration errors must come before any connection.
const kc = new KubeConfig();
kc.loadFromOptions({
  clusters: [{ name: 'c', server: 'https://127.0.0.1:1', skipTLSVerify: false }],
  users: [{ name: 'u', token: 'x' }],
  contexts: [{ name: 'c', cluster: 'c', user: 'u' }],
  currentContext: 'c',
});
const kubeconfig = join(dir, 'kubeconfig');
writeFileSync(kubeconfig, kc.exportConfig());
test.after(() => rmSync(dir, { recursive: true, force: true }));

const CLEAN_ENV = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !/^(KLB_|F5_|OS_|VIP_|POD_|KUBECONFIG$|LOG_LEVEL$)/.test(k)),
);

function run(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--conditions=klb-source', '--import', 'tsx', main, ...args], {
    env: { ...CLEAN_ENV, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('--help lists every option with its environment variable and exits 0', () => {
  const r = run(['--help']);
  assert.is(r.status, 0, r.stderr);
  for (const needle of [
    '--backend',
    'loadbalancer-daemon',
    'openstack-lbaasv2',
    'VIP_ALLOCATION_START',
    'VIP_ALLOCATION_END',
    'F5_HOST',
    'F5_USER',
    'F5_PASSWORD',
    'OS_AUTH_URL',
    'OS_TENANT_NAME',
    '--pools-file',
    '--pools-configmap',
    '--disable-leader-election',
    '--lease-duration-seconds',
    '--port',
    '--log-level',
  ]) {
    assert.ok(r.stdout.includes(needle), `help mentions ${needle}`);
  }
});

const BAD: Array<{ name: string; args: string[]; env?: Record<string, string>; says: RegExp }> = [
  { name: 'unknown backend', args: ['--backend=haproxy'], says: /--backend must be one of .*"haproxy"/ },
  { name: 'unknown flag', args: ['--bogus'], says: /Unknown option '--bogus'/ },
  { name: 'bad port', args: ['--port=70000'], says: /--port must be an integer from 0 to 65535/ },
  { name: 'bad log level', args: ['--log-level=loud'], says: /--log-level must be one of/ },
  { name: 'bad namespace', args: ['--namespace=Not_A_Name'], says: /--namespace must be a Kubernetes namespace name/ },
  {
    name: 'inverted original VIP range',
    args: [`--kubeconfig=${kubeconfig}`],
    env: { VIP_ALLOCATION_START: '10.0.0.9', VIP_ALLOCATION_END: '10.0.0.1' },
    says: /address pools: VIP_ALLOCATION_START\/VIP_ALLOCATION_END: .*inverted/,
  },
  {
    name: 'half of the original VIP range',
    args: [`--kubeconfig=${kubeconfig}`],
    env: { VIP_ALLOCATION_START: '10.0.0.1' },
    says: /VIP_ALLOCATION_START and VIP_ALLOCATION_END must both be set/,
  },
  {
    name: 'no pools for keepalived-nginx',
    args: [`--kubeconfig=${kubeconfig}`, '--backend=loadbalancer-daemon'],
    says: /keepalived-nginx backend needs address pools/,
  },
  {
    name: 'unreadable pools file',
    args: [`--kubeconfig=${kubeconfig}`, `--pools-file=${join(dir, 'missing.yaml')}`],
    says: /cannot read pool configuration/,
  },
  {
    name: 'f5 without credentials',
    args: [`--kubeconfig=${kubeconfig}`, '--backend=f5'],
    env: { F5_HOST: 'bigip.example:443', F5_PASSWORD: 's3cret-value' },
    says: /F5 user missing from the environment/,
  },
  {
    name: 'openstack-lbaasv2 without OS_AUTH_URL',
    args: [`--kubeconfig=${kubeconfig}`, '--backend=openstack-lbaasv2'],
    says: /octavia backend: OS_AUTH_URL is not set/,
  },
  {
    name: 'lease timings out of order',
    args: ['--lease-duration-seconds=5', '--renew-deadline-seconds=10'],
    says: /--retry-period-seconds < --renew-deadline-seconds < --lease-duration-seconds must hold/,
  },
  { name: 'bad boolean env', args: ['--help'], env: { KLB_DISABLE_INGRESS: 'maybe' }, says: /KLB_DISABLE_INGRESS/ },
];

for (const bad of BAD) {
  test(`bad configuration: ${bad.name} → one line on stderr, exit 2`, () => {
    const r = run(bad.args, bad.env);
    assert.is(r.status, 2, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stderr, bad.says);
    assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(r.stderr.startsWith('reference-controller: '));
    assert.not.match(r.stderr, /s3cret-value/, 'no secret in the message');
  });
}

test('a pools file with a bad entry names it', () => {
  const file = join(dir, 'pools.yaml');
  writeFileSync(file, 'pools:\n  - name: web\n    addresses: [10.0.0.300/24]\n');
  const r = run([`--kubeconfig=${kubeconfig}`, `--pools-file=${file}`]);
  assert.is(r.status, 2, r.stderr);
  assert.match(r.stderr, /address pools: .*pools\[0\] \(web\)/);
});

test.run();
