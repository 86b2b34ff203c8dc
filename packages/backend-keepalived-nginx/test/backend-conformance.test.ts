// The shared backend conformance suite against the keepalived-nginx backend and a real
// kube-apiserver, in both publish modes. The backend runs as its own token user under a Role;
// writes are counted at its Kubernetes client; observe() reads the published daemon configs as
// the daemons do; faults take verbs out of the Role (a real 403 from the apiserver); the data plane
// changes through a node report, as a daemon writes it.
import {
  COMPAT_CONFIGMAP_NAME,
  DAEMON_CONFIG_LABEL,
  type DaemonConfigObject,
  type DaemonNodeReport,
  type DaemonServiceConfig,
  daemonReportObject,
  KeepalivedNginxBackend,
  readDaemonConfigObject,
} from '@klb/backend-keepalived-nginx';
import { isNotFound, KubeClient, type KubeObject } from '@klb/core';
import {
  type ConformanceFaults,
  type ControlPlane,
  eventually,
  type ObservedLoadBalancer,
  requireComponents,
  runBackendConformance,
  startControlPlane,
} from '@klb/testing';
import { suite } from 'uvu';

const USER = 'klb-controller';
const READ = ['get', 'list', 'watch'];
const WRITE = ['create', 'update', 'patch', 'delete'];

/** The daemon configs as the daemons read them, in the conformance suite's terms. */
function observed(configs: readonly DaemonServiceConfig[], errors: ReadonlyMap<string, Error>): ObservedLoadBalancer[] {
  const lbs: ObservedLoadBalancer[] = configs.map((config) => {
    const used = new Set<string>();
    const listeners = config.addresses.flatMap((address) =>
      config.listeners.map((l) => {
        const names = [l.upstream, ...(l.routes ?? []).map((r) => r.upstream)].filter((n) => n !== undefined);
        for (const n of names) used.add(n);
        const targets = config.upstreams
          .filter((u) => names.includes(u.name))
          .flatMap((u) => u.targets.filter((t) => t.ready).map((t) => `${t.address}:${t.port}`));
        return { address, port: l.port, protocol: l.protocol, targets };
      }),
    );
    const strays = config.upstreams.filter((u) => !used.has(u.name)).map((u) => `upstream ${u.name}`);
    return { id: config.id, listeners, strays };
  });
  for (const [where, err] of errors) lbs.push({ id: where, listeners: [], strays: [`unreadable: ${err.message}`] });
  return lbs;
}

/** Role rules for the backend's user: secrets and configmaps with `verbs`. */
const role = (namespace: string, verbs: string[]) => ({
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'Role',
  metadata: { name: 'klb-conformance', namespace },
  rules: [{ apiGroups: [''], resources: ['secrets', 'configmaps'], verbs }],
});

/** Whether the apiserver's authorizer lets the backend's user do `verb` on secrets now. */
async function allowed(admin: KubeClient, namespace: string, verb: string): Promise<boolean> {
  const review = await admin.create<KubeObject & { spec?: unknown; status?: { allowed?: boolean } }>(
    '/apis/authorization.k8s.io/v1/subjectaccessreviews',
    {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: { user: USER, resourceAttributes: { namespace, verb, resource: 'secrets' } },
    },
  );
  return review.status?.allowed === true;
}

/** Faults through RBAC: the Role loses its read or write verbs until clear(). */
function rbacFaults(admin: KubeClient, namespace: string): ConformanceFaults {
  const path = `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/roles/klb-conformance`;
  const set = async (verbs: string[], expect: Record<string, boolean>) => {
    await admin.replace(path, role(namespace, verbs));
    for (const [verb, want] of Object.entries(expect)) {
      await eventually(`RBAC: ${verb} ${want ? 'allowed' : 'denied'}`, async () =>
        (await allowed(admin, namespace, verb)) === want ? true : undefined,
      );
    }
  };
  return {
    failReads: () => set(WRITE, { list: false, get: false }),
    failWrites: () => set(READ, { create: false, update: false, delete: false }),
    clear: () => set([...READ, ...WRITE], { list: true, create: true, delete: true }),
  };
}

const missing = requireComponents('kube-apiserver', 'etcd');
const teardown = suite('keepalived-nginx conformance teardown');
let plane: ControlPlane | undefined;
if (!missing) {
  plane = await startControlPlane();
  teardown('stops the control plane', async () => {
    await plane?.stop();
  });

  let n = 0;
  for (const mode of ['per-load-balancer', 'daemon-configmap'] as const) {
    runBackendConformance(
      async () => {
        const cp = plane as ControlPlane;
        const admin = new KubeClient(cp.kubeConfig);
        const namespace = `knginx-conf-${process.pid}-${++n}`;
        await admin.create('/api/v1/namespaces', { metadata: { name: namespace } });
        await admin.create(
          `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/roles`,
          role(namespace, [...READ, ...WRITE]),
        );
        await admin.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/rolebindings`, {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'RoleBinding',
          metadata: { name: 'klb-conformance', namespace },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'klb-conformance' },
          subjects: [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: USER }],
        });
        await eventually('RBAC: the backend user may create secrets', () => allowed(admin, namespace, 'create'));
        let writes = 0;
        const client = new KubeClient(cp.kubeConfigFor(USER), { onWrite: () => writes++ });
        const backend = new KeepalivedNginxBackend({ client, namespace, mode });
        let reportFlip = false;
        return {
          backend,
          writes: () => writes,
          observe: async () => {
            if (mode === 'daemon-configmap') {
              const path = `/api/v1/namespaces/${namespace}/configmaps/${COMPAT_CONFIGMAP_NAME}`;
              const cm = await admin.get<DaemonConfigObject>(path).catch((err: unknown) => {
                if (isNotFound(err)) return undefined;
                throw err;
              });
              if (!cm) return [];
              const { configs, errors } = readDaemonConfigObject({ ...cm, kind: 'ConfigMap' });
              return observed(configs, errors);
            }
            const { items } = await admin.list<DaemonConfigObject>(`/api/v1/namespaces/${namespace}/secrets`, {
              labelSelector: `${DAEMON_CONFIG_LABEL}=true`,
            });
            const read = items.map((item) => readDaemonConfigObject({ ...item, kind: 'Secret' }));
            return observed(
              read.flatMap((r) => r.configs),
              new Map(read.flatMap((r) => [...r.errors])),
            );
          },
          faults: rbacFaults(admin, namespace),
          // A node reports the load balancer's config applied, then refused, then applied…
          changeDataPlane: async (ref, status) => {
            const version = /daemon config ([0-9a-f]{16})/.exec(String(status.message))?.[1] ?? 'unknown';
            reportFlip = !reportFlip;
            const refused = reportFlip;
            const report: DaemonNodeReport = {
              apiVersion: 'klb.io/v1alpha1',
              kind: 'DaemonNodeReport',
              node: 'conformance-node',
              updatedAt: new Date().toISOString(),
              applied: refused ? {} : { [ref.id]: version },
              rejected: refused ? { [ref.id]: { version, message: 'nginx could not listen' } } : {},
              vrrp: [],
              errors: [],
            };
            const body = daemonReportObject(namespace, report);
            const path = `/api/v1/namespaces/${namespace}/configmaps/${body.metadata.name}`;
            const existing = await admin.get<KubeObject>(path).catch(() => undefined);
            if (existing) {
              await admin.replace(path, {
                ...body,
                metadata: { ...body.metadata, resourceVersion: existing.metadata?.resourceVersion ?? '' },
              });
            } else await admin.create(`/api/v1/namespaces/${namespace}/configmaps`, body);
          },
          cleanup: async () => {
            await backend.close();
            await admin.delete(`/api/v1/namespaces/${namespace}`);
            client.close();
            admin.close();
          },
        };
      },
      { name: `conformance: keepalived-nginx (${mode})` },
    );
  }
}
teardown.run();
