// The reference daemon's command line: --help documents every option, bad configuration is a
// clear message and exit status 2, before anything is started.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('reference daemon main');
const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'klb-reference-daemon-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

// A syntactically valid kubeconfig; nothing listens there (the daemon must fail before using it).
const kubeconfig = join(dir, 'kubeconfig.yaml');
writeFileSync(
  kubeconfig,
  `apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: "https://127.0.0.1:1" } }]
users: [{ name: u, user: { token: t } }]
contexts: [{ name: x, context: { cluster: c, user: u } }]
current-context: x
`,
);

function run(args: string[], env: Record<string, string> = {}): { status: number | null; out: string; err: string } {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !/^(POD_|NODE_NAME|KLB_|KUBECONFIG|VIRTUAL_ROUTER_ID|KEEPALIVED_OPTS)/.test(k),
    ),
  );
  const res = spawnSync(process.execPath, ['--conditions=klb-source', '--import', 'tsx', main, ...args], {
    env: { ...clean, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: res.status, out: res.stdout, err: res.stderr };
}

test('--help lists every option with its environment variable, exit 0', () => {
  const { status, out } = run(['--help']);
  assert.is(status, 0);
  for (const env of ['POD_NAMESPACE', 'POD_NAME', 'VIRTUAL_ROUTER_ID', 'KEEPALIVED_OPTS', 'KUBECONFIG', 'NODE_NAME']) {
    assert.match(out, `[$${env}]`);
  }
  for (const flag of [
    '--interface',
    '--priority',
    '--state-dir',
    '--health-port',
    '--no-keepalived',
    '--unicast-peers',
  ]) {
    assert.match(out, flag);
  }
});

test('bad configuration: a clear message and exit status 2', () => {
  const base = { POD_NAMESPACE: 'klb-system', POD_NAME: 'klb-daemon-x', KUBECONFIG: kubeconfig, KLB_STATE_DIR: dir };
  const cases: [string[], Record<string, string>, RegExp][] = [
    [[], { POD_NAME: 'p' }, /--namespace \(or POD_NAMESPACE\) is required/],
    [[], { POD_NAMESPACE: 'n' }, /--node-name \(or NODE_NAME or POD_NAME\) is required/],
    [['--bogus'], base, /Unknown option '--bogus'/],
    [[], { ...base, VIRTUAL_ROUTER_ID: '256' }, /--virtual-router-id: "256" is not a whole number in 1-255/],
    [[], { ...base, KLB_PRIORITY: 'high' }, /--priority: "high"/],
    [[], { ...base, KEEPALIVED_OPTS: '--log-detail -p /tmp/x' }, /KEEPALIVED_OPTS: -p is set by the daemon itself/],
    [[], { ...base, KUBECONFIG: join(dir, 'missing') }, /kubeconfig: ENOENT/],
    [['--interface', 'eth0;reboot'], base, /invalid keepalived render options: interface/],
    [['--advert-int', '0'], base, /--advert-int/],
  ];
  for (const [args, env, message] of cases) {
    const { status, err } = run(args, env);
    assert.is(status, 2, `${JSON.stringify(args)} ${JSON.stringify(env)}: ${err}`);
    assert.match(err, message);
    assert.match(err, /--help/);
  }
});

test.run();
