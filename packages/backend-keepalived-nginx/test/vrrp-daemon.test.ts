// End to end on real networks: two reference daemons (examples/reference-daemon, real processes)
// in two network namespaces, each supervising its own nginx and keepalived, fed by a real
// kube-apiserver (forwarded into the namespaces), and a client in a third namespace. The daemons
// set the non-local bind sysctl in their namespace, report VRRP state per node, and a daemon that
// is stopped gives its VIP up (and removes it) so the other node answers.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type DaemonNodeReport,
  type DaemonServiceConfig,
  daemonConfigSecret,
  daemonReportObjectName,
  parseDaemonNodeReport,
} from '@klb/backend-keepalived-nginx';
import {
  type ControlPlane,
  type NetnsClient,
  type NetnsLab,
  requireComponents,
  startControlPlane,
  startNetnsLab,
} from '@klb/testing';
import { CoreV1Api, type V1Secret } from '@kubernetes/client-node';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { backendScript, grantDaemonRole, httpService, waitFor } from './daemon-fixtures.js';

const test = suite('vrrp daemons');
const missing = requireComponents('kube-apiserver', 'etcd', 'netns', 'nginx', 'keepalived');
const it = missing ? test.skip : test;

const NS = 'klb-system';
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MAIN = join(ROOT, 'examples/reference-daemon/src/main.ts');
let plane: ControlPlane | undefined;
let lab: NetnsLab | undefined;
let client: NetnsClient | undefined;
let vip = '';
const P = (): ControlPlane => plane as ControlPlane;
const L = (): NetnsLab => lab as NetnsLab;
const C = (): NetnsClient => client as NetnsClient;
const core = (): CoreV1Api => P().kubeConfig.makeApiClient(CoreV1Api);

function startDaemon(node: string, priority: number): void {
  L().start(node, `daemon-${node}`, process.execPath, ['--conditions=klb-source', '--import', 'tsx', MAIN], {
    cwd: ROOT,
    env: {
      POD_NAMESPACE: NS,
      POD_NAME: `klb-daemon-${node}`,
      NODE_NAME: `node-${node}`,
      KUBECONFIG: P().writeKubeConfig('klb-daemon'),
      KLB_STATE_DIR: join(L().dir, `state-${node}`),
      KLB_INTERFACE: 'eth0',
      KLB_PRIORITY: String(priority),
      KLB_MIN_RELOAD_INTERVAL_MS: '100',
      KEEPALIVED_OPTS: '--log-detail',
    },
  });
}

if (!missing) {
  plane = await startControlPlane();
  lab = await startNetnsLab({ nodes: ['a', 'b', 'client'] });
  test.after(async () => {
    await lab?.destroy();
    await plane?.stop();
  });
  vip = lab.spareAddress(0);
  await core().createNamespace({ body: { metadata: { name: NS } } });
  await grantDaemonRole(plane.kubeConfig, NS);
  const port = Number(new URL(plane.server).port);
  for (const [node, priority] of [
    ['a', 150],
    ['b', 100],
  ] as const) {
    await lab.forward(node, { host: '127.0.0.1', port });
    lab.start(node, `backend-${node}`, process.execPath, ['-e', backendScript(), '127.0.0.1', '9000', node]);
    startDaemon(node, priority);
  }
  client = lab.client('client');
}

async function report(node: string): Promise<DaemonNodeReport | undefined> {
  const cm = await core()
    .readNamespacedConfigMap({ name: daemonReportObjectName(`node-${node}`), namespace: NS })
    .catch(() => undefined);
  return cm?.data?.['report.json'] ? parseDaemonNodeReport(cm.data['report.json']) : undefined;
}

async function answeredBy(): Promise<string | undefined> {
  const reply = await C().http(`http://${vip}/`, { timeoutMs: 300 });
  return reply.ok && reply.status === 200 ? reply.body : undefined;
}

async function holders(): Promise<string[]> {
  const result: string[] = [];
  for (const node of ['a', 'b']) if ((await L().addresses(node)).includes(vip)) result.push(node);
  return result;
}

it('a published config is served through the VIP by the higher-priority node; both report it', async () => {
  const service: DaemonServiceConfig = httpService({
    id: 'service/default/web',
    addresses: [vip],
    port: 80,
    targets: [{ address: '127.0.0.1', port: 9000 }],
  });
  await core().createNamespacedSecret({ namespace: NS, body: daemonConfigSecret(NS, service) as V1Secret });
  await waitFor(
    'a to answer through the VIP',
    async () => ((await answeredBy()) === 'a' ? true : undefined),
    600,
  ).catch((e) => {
    console.log(L().processes.exited(), L().processes.logTail('daemon-a', 30));
    throw e;
  });
  assert.equal(await holders(), ['a']);
  for (const [node, state] of [
    ['a', 'MASTER'],
    ['b', 'BACKUP'],
  ] as const) {
    const r = await waitFor(`node ${node} to report ${state}`, async () => {
      const current = await report(node);
      return current?.vrrp[0]?.state === state ? current : undefined;
    });
    assert.is(r.applied['service/default/web'], service.version);
    assert.equal(r.vrrp[0]?.addresses, [vip]);
    assert.is(r.vrrp[0]?.instance, 'klb_default_4');
  }
  // The daemon turned non-local binds on in its own namespace (nginx on b listens on the VIP it does not hold).
  const sysctl = await L().exec('b', 'cat', ['/proc/sys/net/ipv4/ip_nonlocal_bind']);
  assert.is(sysctl.stdout.trim(), '1');
  const v6 = await L().exec('b', 'cat', ['/proc/sys/net/ipv6/ip_nonlocal_bind']);
  assert.is(v6.stdout.trim(), '1');
  const inClient = await L().exec('client', 'cat', ['/proc/sys/net/ipv4/ip_nonlocal_bind']);
  assert.is(inClient.stdout.trim(), '0', 'only the daemons’ namespaces were changed');
});

it('a stopped daemon gives its VIP up and removes it; the other node answers and reports MASTER', async () => {
  await L().processes.stop('daemon-a', 'SIGTERM');
  await waitFor('b to answer through the VIP', async () => ((await answeredBy()) === 'b' ? true : undefined));
  await waitFor('a to hold nothing', async () => ((await holders()).join() === 'b' ? true : undefined));
  const a = await report('a');
  assert.is(a?.vrrp[0]?.state, 'STOP', 'the last report of the stopped daemon');
  await waitFor('b to report MASTER', async () =>
    (await report('b'))?.vrrp[0]?.state === 'MASTER' ? true : undefined,
  );
});

it('the restarted daemon takes the VIP back (higher priority) with one transition', async () => {
  startDaemon('a', 150);
  await waitFor('a to answer again', async () => ((await answeredBy()) === 'a' ? true : undefined), 600);
  assert.equal(await holders(), ['a']);
  await waitFor('a to report MASTER', async () =>
    (await report('a'))?.vrrp[0]?.state === 'MASTER' ? true : undefined,
  );
  await waitFor('b to report BACKUP', async () =>
    (await report('b'))?.vrrp[0]?.state === 'BACKUP' ? true : undefined,
  );
});

test.run();
