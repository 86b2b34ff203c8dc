import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { findEtcd, findKubeApiserver } from './binaries.js';
import { freePort } from './free-port.js';
import { ProcessGroup } from './process-group.js';

/** A user known to the control plane's static token file. */
export interface ControlPlaneUser {
  /** The user name the apiserver authenticates the token as. */
  readonly name: string;
  /** Groups the user belongs to (RBAC subjects of kind Group). */
  readonly groups?: readonly string[];
}

/** Options of {@link startControlPlane}. */
export interface ControlPlaneOptions {
  /** Path of the kube-apiserver binary; default {@link findKubeApiserver} (`KLB_KUBE_APISERVER`, the `klb-testing apiserver` cache, a repository build cache). */
  readonly kubeApiserverPath?: string;
  /** Path of the etcd binary; default from `KLB_ETCD` or `etcd` on PATH. */
  readonly etcdPath?: string;
  /**
   * Users besides the admin, each with a static bearer token and no rights until RBAC grants them.
   * Default: `klb-controller`, `klb-daemon` and `klb-user`.
   */
  readonly users?: readonly ControlPlaneUser[];
  /** Service ClusterIP range handed to the apiserver; default `10.96.0.0/16`. */
  readonly serviceClusterIpRange?: string;
  /**
   * Address the apiserver binds to and advertises; default `127.0.0.1`. Any other address must
   * already be on a local interface; the apiserver then also publishes it as the endpoint of the
   * `kubernetes` Service, so that pods reach it (as in {@link startCluster}).
   */
  readonly bindAddress?: string;
  /** Also authorize kubelets with the Node authorizer (`--authorization-mode=Node,RBAC`); default false. */
  readonly nodeAuthorizer?: boolean;
  /** Receives one line per lifecycle step (start, ready, stop); default: silent. */
  readonly onLog?: (line: string) => void;
  /** How long to wait for etcd and the apiserver to become ready, in milliseconds; default 120000. */
  readonly readyTimeoutMs?: number;
}

/** A running etcd + kube-apiserver pair on 127.0.0.1, started by {@link startControlPlane}. */
export interface ControlPlane {
  /** `https://127.0.0.1:<port>` of the apiserver. */
  readonly server: string;
  /** The apiserver's `/version` `gitVersion`, e.g. `v1.35.4`. */
  readonly version: string;
  /** The admin user's kubeconfig (group `system:masters`). */
  readonly kubeConfig: KubeConfig;
  /** The admin kubeconfig as YAML, for processes started by a test (`KUBECONFIG`). */
  readonly kubeConfigYaml: string;
  /** Directory holding the control plane's files; removed by {@link ControlPlane.stop}. */
  readonly dir: string;
  /** The apiserver's serving certificate bundle (PEM), which also holds the CA that signed it. */
  readonly caFile: string;
  /** A kubeconfig authenticating as one of the configured users (its static token). */
  kubeConfigFor(user: string): KubeConfig;
  /** The same kubeconfig as YAML. */
  kubeConfigYamlFor(user: string): string;
  /** Writes a kubeconfig file for `user` (default: the admin) and returns its path. */
  writeKubeConfig(user?: string): string;
  /** Stops the apiserver (SIGKILL when `hard`), then starts it again on the same port and waits for it. */
  restartApiserver(options?: { readonly hard?: boolean; readonly downMs?: number }): Promise<void>;
  /** Stops the apiserver and etcd (by pid) and removes {@link ControlPlane.dir}. Safe to call twice. */
  stop(): Promise<void>;
}

const ADMIN = 'klb-admin';
const DEFAULT_USERS: readonly ControlPlaneUser[] = [
  { name: 'klb-controller' },
  { name: 'klb-daemon' },
  { name: 'klb-user' },
];

/**
 * Starts a real etcd and kube-apiserver on 127.0.0.1 on free ports, with RBAC authorization and
 * static token users, and waits until the apiserver is ready (RBAC bootstrap roles in place, the
 * `default` namespace present).
 *
 * Both processes are ended by pid in {@link ControlPlane.stop}, and also when the test process
 * exits or is interrupted, and the temporary directory is removed.
 */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const log = options.onLog ?? (() => {});
  const apiserverBin = options.kubeApiserverPath ?? findKubeApiserver();
  const etcdBin = options.etcdPath ?? findEtcd();
  const readyTimeoutMs = options.readyTimeoutMs ?? 120_000;
  const shm = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = await mkdtemp(join(shm, 'klb-control-plane-'));
  const group = new ProcessGroup(dir);

  try {
    const tokens = new Map<string, string>();
    const lines: string[] = [];
    for (const user of [{ name: ADMIN, groups: ['system:masters'] }, ...(options.users ?? DEFAULT_USERS)]) {
      const token = randomBytes(24).toString('hex');
      tokens.set(user.name, token);
      const groups = user.groups?.length ? `,"${user.groups.join(',')}"` : '';
      lines.push(`${token},${user.name},${user.name}${groups}`);
    }
    writeFileSync(join(dir, 'tokens.csv'), `${lines.join('\n')}\n`, { mode: 0o600 });
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(join(dir, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    writeFileSync(join(dir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    mkdirSync(join(dir, 'certs'));

    const etcdClient = await freePort();
    const etcdPeer = await freePort();
    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    log(`control-plane: starting etcd on ${etcdUrl}`);
    group.start('etcd', etcdBin, [
      '--name=klb',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=klb=http://127.0.0.1:${etcdPeer}`,
      '--log-level=warn',
      '--quota-backend-bytes=4294967296',
    ]);
    await waitFor(`etcd at ${etcdUrl}`, readyTimeoutMs, group, async () => {
      const res = await fetch(`${etcdUrl}/health`).catch(() => undefined);
      return res?.ok === true;
    });

    const adminToken = tokens.get(ADMIN);
    const certFile = join(dir, 'certs', 'apiserver.crt');
    const bindAddress = options.bindAddress ?? '127.0.0.1';
    const loopback = bindAddress.startsWith('127.');
    const port = await freePort(bindAddress);
    const server = `https://${bindAddress}:${port}`;
    const apiserverArgs = [
      `--etcd-servers=${etcdUrl}`,
      `--bind-address=${bindAddress}`,
      `--advertise-address=${bindAddress}`,
      `--secure-port=${port}`,
      `--cert-dir=${join(dir, 'certs')}`,
      '--service-account-issuer=https://kubernetes.default.svc',
      `--service-account-key-file=${join(dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
      `--token-auth-file=${join(dir, 'tokens.csv')}`,
      // As kubeadm's clusters: privileged containers (e.g. the KLB daemon's sysctl init container) are allowed.
      '--allow-privileged=true',
      // A kubelet (logs, exec) is reached at its node address, never through a DNS lookup of its name.
      '--kubelet-preferred-address-types=InternalIP',
      `--authorization-mode=${options.nodeAuthorizer ? 'Node,RBAC' : 'RBAC'}`,
      `--service-cluster-ip-range=${options.serviceClusterIpRange ?? '10.96.0.0/16'}`,
      '--service-node-port-range=30000-32767',
      // A loopback address is no valid endpoint: only a routable one is published.
      `--endpoint-reconciler-type=${loopback ? 'none' : 'lease'}`,
      '--profiling=false',
      '--max-requests-inflight=1000',
      '--max-mutating-requests-inflight=500',
      '--v=0',
    ];
    const startApiserver = async (): Promise<void> => {
      log(`control-plane: starting kube-apiserver on ${server}`);
      group.start('kube-apiserver', apiserverBin, apiserverArgs);
      await waitFor(`kube-apiserver at ${server}`, readyTimeoutMs, group, async () => {
        if (!existsSync(certFile)) return false;
        const ca = readFileSync(certFile);
        const res = await getJson(server, '/readyz', adminToken, ca).catch(() => undefined);
        if (res?.status !== 200) return false;
        const ns = await getJson(server, '/api/v1/namespaces/default', adminToken, ca).catch(() => undefined);
        return ns?.status === 200;
      });
    };
    await startApiserver();

    const ca = readFileSync(certFile);
    const caData = ca.toString('base64');
    const version = String((await getJson(server, '/version', adminToken, ca)).body.gitVersion);
    log(`control-plane: kube-apiserver ${version} ready at ${server}`);

    const kubeConfigFor = (user: string): KubeConfig => {
      const token = tokens.get(user);
      if (token === undefined) throw new Error(`control plane has no user "${user}"; declare it in options.users`);
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'klb-test', server, caData, skipTLSVerify: false }],
        users: [{ name: user, token }],
        contexts: [{ name: user, cluster: 'klb-test', user }],
        currentContext: user,
      });
      return kc;
    };
    let stopped = false;
    const plane: ControlPlane = {
      server,
      version,
      dir,
      caFile: certFile,
      kubeConfig: kubeConfigFor(ADMIN),
      kubeConfigYaml: kubeConfigFor(ADMIN).exportConfig(),
      kubeConfigFor,
      kubeConfigYamlFor: (user) => kubeConfigFor(user).exportConfig(),
      writeKubeConfig(user = ADMIN) {
        const file = join(dir, `kubeconfig-${user}.json`);
        writeFileSync(file, kubeConfigFor(user).exportConfig(), { mode: 0o600 });
        return file;
      },
      async restartApiserver({ hard = false, downMs = 0 } = {}) {
        await group.stop('kube-apiserver', hard ? 'SIGKILL' : 'SIGTERM');
        if (downMs > 0) await sleep(downMs);
        await startApiserver();
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        log('control-plane: stopping');
        await group.stopAll();
      },
    };
    return plane;
  } catch (err) {
    await group.stopAll();
    throw err;
  }
}

/** Polls `check` until it is true; fails early when a process of `group` exited, or after `timeoutMs`. */
export async function waitFor(
  what: string,
  timeoutMs: number,
  group: ProcessGroup,
  check: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const exited = group.exited();
    if (exited) throw new Error(`${what}: ${exited}`);
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`${what} not ready after ${timeoutMs} ms\n${group.logTails()}`);
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** GET over HTTPS, trusting the apiserver's own self-signed certificate. */
function getJson(
  server: string,
  path: string,
  token: string | undefined,
  ca: Buffer,
): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${server}${path}`,
      { ca, headers: { authorization: `Bearer ${token}` }, timeout: 2000 },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          data += chunk;
        });
        res.on('end', () => {
          let body: Record<string, unknown> = {};
          try {
            body = JSON.parse(data) as Record<string, unknown>;
          } catch {
            body = { text: data };
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
