import { existsSync } from 'node:fs';
import { type ControlPlane, requireComponents, startControlPlane } from '@klb/testing';
import {
  ApiException,
  CoreV1Api,
  type KubeConfig,
  RbacAuthorizationV1Api,
  type V1ConfigMap,
  Watch,
} from '@kubernetes/client-node';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('control plane');
const missing = requireComponents('kube-apiserver', 'etcd');
const it = missing ? test.skip : test;

let plane: ControlPlane | undefined;
let nsCount = 0;
if (!missing) {
  plane = await startControlPlane();
  console.log(`kube-apiserver version: ${plane.version} (${plane.server})`);
  test.after(async () => {
    await plane?.stop();
  });
}
const cp = (): ControlPlane => plane as ControlPlane;
const core = (kc: KubeConfig = cp().kubeConfig): CoreV1Api => kc.makeApiClient(CoreV1Api);

async function namespace(): Promise<string> {
  const name = `cp-test-${process.pid}-${++nsCount}`;
  await core().createNamespace({ body: { metadata: { name } } });
  return name;
}

function configMap(name: string, data: Record<string, string> = {}): V1ConfigMap {
  return { metadata: { name }, data };
}

async function statusOf(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
    return 200;
  } catch (err) {
    if (err instanceof ApiException) return err.code;
    throw err;
  }
}

it('reports a real apiserver version', async () => {
  assert.match(cp().version, /^v1\.\d+\.\d+/);
  const res = await fetch(`${cp().server}/version`).catch((err: Error) => err);
  // The serving certificate is self-signed: a client that does not trust it must fail.
  assert.instance(res, Error);
});

it('creates, lists and watches ConfigMaps', async () => {
  const ns = await namespace();
  const api = core();
  const seen: string[] = [];
  const list = await api.listNamespacedConfigMap({ namespace: ns });
  const watch = new Watch(cp().kubeConfig);
  const gotAll = new Promise<void>((resolve, reject) => {
    void watch
      .watch(
        `/api/v1/namespaces/${ns}/configmaps`,
        { resourceVersion: list.metadata?.resourceVersion },
        (phase, obj: V1ConfigMap) => {
          if (phase === 'ADDED' && obj.metadata?.name?.startsWith('w-')) seen.push(obj.metadata.name);
          if (seen.length === 3) resolve();
        },
        (err) => (err ? reject(err) : undefined),
      )
      .then((ctl) => gotAll.finally(() => ctl.abort()));
  });
  for (const name of ['w-1', 'w-2', 'w-3']) {
    await api.createNamespacedConfigMap({ namespace: ns, body: configMap(name, { k: name }) });
  }
  await gotAll;
  assert.equal(seen, ['w-1', 'w-2', 'w-3']);
  const listed = await api.listNamespacedConfigMap({ namespace: ns });
  assert.equal(
    listed.items.map((cm) => cm.metadata?.name).filter((n) => n?.startsWith('w-')),
    ['w-1', 'w-2', 'w-3'],
  );
});

it('rejects an update with a stale resourceVersion with 409', async () => {
  const ns = await namespace();
  const api = core();
  const created = await api.createNamespacedConfigMap({ namespace: ns, body: configMap('stale', { v: '1' }) });
  const fresh = { ...created, data: { v: '2' } };
  await api.replaceNamespacedConfigMap({ name: 'stale', namespace: ns, body: fresh });
  const stale = { ...created, data: { v: '3' } };
  assert.is(await statusOf(api.replaceNamespacedConfigMap({ name: 'stale', namespace: ns, body: stale })), 409);
  const now = await api.readNamespacedConfigMap({ name: 'stale', namespace: ns });
  assert.equal(now.data, { v: '2' });
});

it('resumes a watch from a resourceVersion after the connection drops', async () => {
  const ns = await namespace();
  const api = core();
  const first = await api.createNamespacedConfigMap({ namespace: ns, body: configMap('r-0') });
  let lastVersion = first.metadata?.resourceVersion as string;
  const watch = new Watch(cp().kubeConfig);
  const events: string[] = [];
  const watchUntil = (count: number, from: string) =>
    new Promise<AbortController>((resolve, reject) => {
      let ctl: AbortController | undefined;
      const maybeDone = () => {
        if (events.length >= count && ctl) resolve(ctl);
      };
      void watch
        .watch(
          `/api/v1/namespaces/${ns}/configmaps`,
          { resourceVersion: from },
          (phase, obj: V1ConfigMap) => {
            events.push(`${phase} ${obj.metadata?.name}`);
            lastVersion = obj.metadata?.resourceVersion as string;
            maybeDone();
          },
          (err) => (err && err.name !== 'AbortError' ? reject(err) : undefined),
        )
        .then((c) => {
          ctl = c;
          maybeDone();
        }, reject);
    });
  const ctl = await Promise.all([
    watchUntil(1, lastVersion),
    api.createNamespacedConfigMap({ namespace: ns, body: configMap('r-1') }),
  ]).then(([c]) => c);
  ctl.abort(); // the connection drops
  // Changes made while nobody watches...
  await api.createNamespacedConfigMap({ namespace: ns, body: configMap('r-2') });
  await api.deleteNamespacedConfigMap({ name: 'r-0', namespace: ns });
  // ...arrive, in order and exactly once, when the watch resumes from the last version seen.
  const again = await watchUntil(3, lastVersion);
  again.abort();
  assert.equal(events, ['ADDED r-1', 'ADDED r-2', 'DELETED r-0']);
});

it('enforces RBAC for a token user: 403, then 200 after a RoleBinding', async () => {
  const ns = await namespace();
  const asUser = core(cp().kubeConfigFor('klb-user'));
  assert.is(await statusOf(asUser.listNamespacedConfigMap({ namespace: ns })), 403);
  const rbac = cp().kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  await rbac.createNamespacedRole({
    namespace: ns,
    body: {
      metadata: { name: 'read-configmaps' },
      rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'] }],
    },
  });
  await rbac.createNamespacedRoleBinding({
    namespace: ns,
    body: {
      metadata: { name: 'klb-user-reads' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'read-configmaps' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'klb-user' }],
    },
  });
  let status = 0;
  for (let attempt = 0; attempt < 50 && status !== 200; attempt++) {
    status = await statusOf(asUser.listNamespacedConfigMap({ namespace: ns }));
    if (status !== 200) await new Promise((r) => setTimeout(r, 100));
  }
  assert.is(status, 200);
  // Still no rights beyond the Role: writes are forbidden.
  assert.is(await statusOf(asUser.createNamespacedConfigMap({ namespace: ns, body: configMap('nope') })), 403);
  assert.throws(() => cp().kubeConfigFor('nobody'), /no user "nobody"/);
});

it('survives an apiserver restart with its data intact', async () => {
  const ns = await namespace();
  await core().createNamespacedConfigMap({ namespace: ns, body: configMap('persisted', { a: 'b' }) });
  await cp().restartApiserver({ hard: true });
  const back = await core().readNamespacedConfigMap({ name: 'persisted', namespace: ns });
  assert.equal(back.data, { a: 'b' });
});

it('stop() ends both processes and removes its directory', async () => {
  const other = await startControlPlane();
  const dir = other.dir;
  assert.ok(existsSync(dir));
  const pids = await pidsUnder(dir);
  assert.is(pids.length, 2, 'etcd and kube-apiserver run with files under the plane directory');
  await other.stop();
  assert.not.ok(existsSync(dir));
  for (const pid of pids) assert.not.ok(alive(pid), `pid ${pid} still alive`);
  await other.stop(); // a second stop is harmless
});

/** Pids whose command line names a file under `dir` (etcd's data dir, the apiserver's cert dir). */
async function pidsUnder(dir: string): Promise<number[]> {
  const { readdirSync, readFileSync } = await import('node:fs');
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir);
      } catch {
        return false;
      }
    })
    .map(Number);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test.run();
