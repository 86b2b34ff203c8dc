// KLB as its users run it: a real single-node cluster (@klb/testing's startCluster: kubelet,
// kube-proxy, controller-manager, scheduler, containerd, runc, CNI), the reference images built
// from their Dockerfiles (scripts/build-images.sh), the shipped keepalived-nginx overlay deployed
// with only the pool and interface patched (test/cluster-overlay), and traffic from the client
// namespace through the VIPs to real pods. Everything is read back as a user would: status,
// conditions, events, the ConfigMap's data, the Lease.
// klb-test: exclusive (the cluster adds host links and iptables rules and changes host sysctls:
// scripts/run-tests.mjs runs this file alone, after the others)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import {
  type Cluster,
  eventually,
  type F5Emulator,
  type NetnsClient,
  requireComponents,
  startCluster,
  startF5Emulator,
} from '@klb/testing';
import { CoordinationV1Api, CoreV1Api, NetworkingV1Api } from '@kubernetes/client-node';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  answers,
  applyGatewayApiCrds,
  clusterImages,
  echoApp,
  firstAnswer,
  overlay,
  readyPods,
  retagDaemonImage,
  root,
  serverName,
  serviceVip,
} from './cluster-fixtures.js';

const test = suite('the reference images and manifests in a real cluster');
const missing = requireComponents('kube-apiserver', 'etcd', 'cluster');
const images = missing ? undefined : clusterImages();
const it = missing || typeof images !== 'object' ? test.skip : test;
const itF5 = missing || typeof images !== 'object' || requireComponents('openssl') ? test.skip : test;

let cluster: Cluster | undefined;
let client: NetnsClient | undefined;
let f5: F5Emulator | undefined;
const C = (): Cluster => {
  if (!cluster) throw new Error('no cluster');
  return cluster;
};
const core = () => C().kubeConfig.makeApiClient(CoreV1Api);
const kubectl = (...args: string[]) => C().kubectl(args, { timeoutMs: 300_000 });

test.before(async () => {
  if (typeof images !== 'object') return;
  try {
    await deploy(images);
  } catch (err) {
    // uvu reports a failed hook only by its count: say what failed, with the components' logs.
    process.stdout.write(`!! cluster set-up failed: ${(err as Error).stack}\n${cluster?.logTails(30) ?? ''}\n`);
    throw err;
  }
});

async function deploy(images: { archives: string[]; pause: string }): Promise<void> {
  cluster = await startCluster({
    imageArchives: images.archives,
    pauseImage: images.pause,
    ...(process.env.KLB_TEST_DEBUG ? { onLog: (line: string) => process.stdout.write(`${line}\n`) } : {}),
  });
  client = cluster.client();
  // As the overlay's comments tell a user: the Gateway API CRDs, label the load-balancing node,
  // apply, wait.
  await applyGatewayApiCrds(cluster);
  await kubectl('label', 'node', cluster.nodeName, 'klb.io/load-balancer-node=true');
  await kubectl('apply', '-k', overlay);
  await kubectl('-n', 'klb-system', 'rollout', 'status', 'deployment/klb-controller', '--timeout=240s');
  await kubectl('-n', 'klb-system', 'rollout', 'status', 'daemonset/klb-daemon', '--timeout=240s');
}

test.after(async () => {
  if (cluster && process.env.KLB_TEST_DEBUG) process.stdout.write(`${cluster.logTails(20)}\n`);
  await f5?.stop();
  await cluster?.stop();
});

it('the controller (2 replicas) and the non-privileged daemon run as shipped; the init container set the node sysctl', async () => {
  const pods = await core().listNamespacedPod({ namespace: 'klb-system' });
  const ready = (prefix: string) =>
    pods.items.filter(
      (p) =>
        p.metadata?.name?.startsWith(prefix) &&
        p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    );
  assert.is(ready('klb-controller-').length, 2);
  const daemons = ready('klb-daemon-');
  assert.is(daemons.length, 1);
  const daemon = daemons[0]?.spec?.containers.find((c) => c.name === 'daemon');
  assert.is(daemon?.securityContext?.privileged, false);
  assert.is(readFileSync('/proc/sys/net/ipv4/ip_nonlocal_bind', 'utf8').trim(), '1');
});

it('a Service type=LoadBalancer gets its VIP, EnsuredLoadBalancer, and its pods answer through it from the client namespace', async () => {
  await C().kubectl(['apply', '-f', '-'], { input: echoApp('echo', 2) });
  const vip = await serviceVip(C(), 'echo');
  assert.ok(vip.startsWith('10.213.0.'), vip);
  // nginx proxies the VIP's traffic: kube-proxy must not short-circuit it to the pods.
  const status = await core().readNamespacedService({ name: 'echo', namespace: 'default' });
  assert.is(status.status?.loadBalancer?.ingress?.[0]?.ipMode, 'Proxy');
  const first = await firstAnswer(client as NetnsClient, `http://${vip}/`);
  assert.match(first, /^echo-/);
  const pods = await eventually('2 ready echo pods', async () => {
    const p = await readyPods(C(), 'echo');
    return p.length === 2 ? p : undefined;
  });
  const seen = await eventually('both pods answer', async () => {
    const { names } = await answers(client as NetnsClient, `http://${vip}/`, 20);
    return pods.every((p) => names.includes(p.name)) ? new Set(names) : undefined;
  });
  assert.equal([...seen].sort(), pods.map((p) => p.name).sort());
  const events = await core().listNamespacedEvent({
    namespace: 'default',
    fieldSelector: 'involvedObject.kind=Service,involvedObject.name=echo',
  });
  assert.ok(
    events.items.some((e) => e.reason === 'EnsuredLoadBalancer'),
    events.items.map((e) => e.reason).join(','),
  );
});

it('scaling, an unready pod and a deleted pod change what answers; requests keep being answered while a pod terminates gracefully', async () => {
  const vip = await serviceVip(C(), 'echo');
  const url = `http://${vip}/`;
  await kubectl('scale', 'deployment/echo', '--replicas=3');
  const three = await eventually('3 ready echo pods', async () => {
    const p = await readyPods(C(), 'echo');
    return p.length === 3 ? p : undefined;
  });
  await eventually(
    'all 3 pods answer',
    async () => {
      const { names } = await answers(client as NetnsClient, url, 30);
      return three.every((p) => names.includes(p.name));
    },
    120_000,
  );

  // One pod turns unready (its readiness probe fails): it stops answering, the others go on.
  const [unready, ...others] = three;
  if (!unready) throw new Error('no pod');
  const res = await fetch(`http://${unready.ip}/unready`, { method: 'POST' });
  assert.is(res.status, 200);
  await eventually('the unready pod no longer answers', async () => {
    const { names, failed } = await answers(client as NetnsClient, url, 30);
    return failed === 0 && !names.includes(unready.name) && others.every((p) => names.includes(p.name));
  });
  await fetch(`http://${unready.ip}/ready`, { method: 'POST' });
  await eventually('the pod answers again once ready', async () => {
    const { names } = await answers(client as NetnsClient, url, 30);
    return names.includes(unready.name);
  });

  // A pod deleted while requests flow: it keeps serving through its shutdown delay while it is
  // taken out of rotation, then it is gone from the answers. Known defect, cause not found yet:
  // 1 to 4 s after the deletion, while the endpoints change, a few connections are reset (0 to 13
  // of about 4,000 requests in a row on the development machine, all ECONNRESET within a few
  // milliseconds; not seen with the same traffic outside this suite); they are printed, and
  // more than 1 % fails the test.
  const victim = others[0];
  if (!victim) throw new Error('no pod');
  const failures: string[] = [];
  let total = 0;
  let stop = false;
  const started = Date.now();
  const loop = (async () => {
    while (!stop) {
      const reply = await (client as NetnsClient).http(url, { timeoutMs: 3000 });
      total++;
      if (reply.status !== 200 || !serverName(reply.body)) {
        failures.push(`${Date.now() - started} ms: ${reply.status ?? reply.error} ${reply.body?.slice(0, 80) ?? ''}`);
      }
    }
  })();
  try {
    await kubectl('delete', 'pod', victim.name, '--wait=true', '--timeout=120s');
  } finally {
    stop = true;
    await loop;
  }
  assert.ok(total > 0);
  if (failures.length)
    process.stdout.write(`requests failed while ${victim.name} terminated:\n  ${failures.join('\n  ')}\n`);
  assert.ok(
    failures.length <= total / 100,
    `${failures.length} of ${total} requests failed while ${victim.name} terminated:\n${failures.join('\n')}`,
  );
  const after = await answers(client as NetnsClient, url, 30);
  assert.not.ok(after.names.includes(victim.name));
  assert.is(after.failed, 0);
});

it('the original ConfigMap interface (coffee example) gets bind-ip and SUCCESS, and the Ingress routes cafe.example.com/coffee, through their VIPs to the coffee pods', async () => {
  await kubectl('apply', '-k', join(root, 'deploy/examples/coffee'));
  const cm = await eventually(
    'coffee-configmap status',
    async () => {
      const c = await core().readNamespacedConfigMap({ name: 'coffee-configmap', namespace: 'default' });
      return c.data?.status === 'SUCCESS' && c.data['bind-ip'] ? c.data : undefined;
    },
    120_000,
  );
  const bindIp = cm['bind-ip'] as string;
  assert.match(await firstAnswer(client as NetnsClient, `http://${bindIp}/`), /^coffee-/);

  const net = C().kubeConfig.makeApiClient(NetworkingV1Api);
  const ingressVip = await eventually(
    'the coffee Ingress has an address',
    async () => {
      const ing = await net.readNamespacedIngress({ name: 'coffee', namespace: 'default' });
      return ing.status?.loadBalancer?.ingress?.[0]?.ip;
    },
    120_000,
  );
  const name = await firstAnswer(client as NetnsClient, `http://${ingressVip}/coffee`, 120_000, 'cafe.example.com');
  assert.match(name, /^coffee-/);
  const unknownHost = await (client as NetnsClient).http(`http://${ingressVip}/coffee`, { host: 'tea.example.com' });
  assert.is.not(unknownHost.status, 200);
  assert.match(await firstAnswer(client as NetnsClient, `http://${await serviceVip(C(), 'coffee-lb')}/`), /^coffee-/);
});

it('a Gateway of the shipped GatewayClass: an HTTPRoute by host and a TCPRoute reach the echo pods through its address', async () => {
  await C().kubectl(['apply', '-f', '-'], { input: echoApp('gw-echo', 1) });
  const manifest = {
    apiVersion: 'v1',
    kind: 'List',
    items: [
      {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'Gateway',
        metadata: { name: 'web', namespace: 'default' },
        spec: {
          gatewayClassName: 'klb-keepalived-nginx',
          listeners: [
            { name: 'http', port: 8080, protocol: 'HTTP' },
            { name: 'tcp', port: 9000, protocol: 'TCP' },
          ],
        },
      },
      {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'HTTPRoute',
        metadata: { name: 'echo', namespace: 'default' },
        spec: {
          parentRefs: [{ name: 'web', sectionName: 'http' }],
          hostnames: ['echo.example.com'],
          rules: [{ backendRefs: [{ name: 'gw-echo', port: 80 }] }],
        },
      },
      {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'TCPRoute',
        metadata: { name: 'echo', namespace: 'default' },
        spec: {
          parentRefs: [{ name: 'web', sectionName: 'tcp' }],
          rules: [{ backendRefs: [{ name: 'gw-echo', port: 80 }] }],
        },
      },
    ],
  };
  await C().kubectl(['apply', '-f', '-'], { input: JSON.stringify(manifest) });
  const gateway = await eventually(
    'the Gateway is Programmed with an address',
    async () => {
      const out = await kubectl('get', 'gateway', 'web', '-n', 'default', '-o', 'json');
      const g = JSON.parse(out.stdout) as {
        status?: { addresses?: { value: string }[]; conditions?: { type: string; status: string }[] };
      };
      const programmed = g.status?.conditions?.some((c) => c.type === 'Programmed' && c.status === 'True');
      return programmed && g.status?.addresses?.[0] ? g : undefined;
    },
    120_000,
  );
  const address = gateway.status?.addresses?.[0]?.value as string;
  assert.ok(address.startsWith('10.213.0.'), address);
  const gc = JSON.parse((await kubectl('get', 'gatewayclass', 'klb-keepalived-nginx', '-o', 'json')).stdout) as {
    status?: { conditions?: { type: string; status: string }[] };
  };
  assert.ok(
    gc.status?.conditions?.some((c) => c.type === 'Accepted' && c.status === 'True'),
    'the class is Accepted',
  );
  assert.match(
    await firstAnswer(client as NetnsClient, `http://${address}:8080/`, 120_000, 'echo.example.com'),
    /^gw-echo-/,
  );
  const other = await (client as NetnsClient).http(`http://${address}:8080/`, { host: 'other.example.com' });
  assert.is.not(other.status, 200, 'a host no Route names is not served');
  assert.match(await firstAnswer(client as NetnsClient, `http://${address}:9000/`), /^gw-echo-/);
  await C().kubectl(['delete', '-f', '-'], { input: JSON.stringify(manifest) });
});

it('deleting the leader controller pod: the other replica takes the Lease and serves the next change', async () => {
  const leases = C().kubeConfig.makeApiClient(CoordinationV1Api);
  const holder = async () =>
    (await leases.readNamespacedLease({ name: 'klb-controller', namespace: 'klb-system' })).spec?.holderIdentity;
  const leader = await eventually('a leader', holder);
  const replicas = (
    await core().listNamespacedPod({ namespace: 'klb-system', labelSelector: 'app.kubernetes.io/name=klb-controller' })
  ).items.map((p) => p.metadata?.name ?? '');
  assert.ok(replicas.includes(leader), `${leader} is one of ${replicas.join(', ')}`);
  const other = replicas.find((r) => r !== leader);
  await kubectl('-n', 'klb-system', 'delete', 'pod', leader, '--wait=true', '--timeout=120s');
  await C().kubectl(['apply', '-f', '-'], { input: echoApp('after-failover', 1) });
  const vip = await serviceVip(C(), 'after-failover');
  assert.match(await firstAnswer(client as NetnsClient, `http://${vip}/`), /^after-failover-/);
  assert.is(await holder(), other);
});

it('externalTrafficPolicy=Local: the healthCheckNodePort of kube-proxy on the node says whether it has a local endpoint, and the VIP follows it', async () => {
  await C().kubectl(['apply', '-f', '-'], { input: echoApp('local', 1, { externalTrafficPolicy: 'Local' }) });
  const vip = await serviceVip(C(), 'local');
  assert.match(await firstAnswer(client as NetnsClient, `http://${vip}/`), /^local-/);
  const svc = await core().readNamespacedService({ name: 'local', namespace: 'default' });
  const hcPort = svc.spec?.healthCheckNodePort;
  assert.ok(hcPort, 'the apiserver allocated a healthCheckNodePort');
  const health = `http://${C().nodeIp}:${hcPort}/healthz`;
  const withPod = await (client as NetnsClient).http(health);
  assert.is(withPod.status, 200);
  assert.match(withPod.body ?? '', /"localEndpoints": ?1/);

  await kubectl('scale', 'deployment/local', '--replicas=0');
  await eventually('the health check node port reports no local endpoint', async () => {
    const reply = await (client as NetnsClient).http(health);
    return reply.status === 503 || undefined;
  });
  await eventually('the VIP no longer reaches a pod', async () => {
    const reply = await (client as NetnsClient).http(`http://${vip}/`, { timeoutMs: 2000 });
    return !serverName(reply.body) || undefined;
  });
  await kubectl('scale', 'deployment/local', '--replicas=1');
  assert.match(await firstAnswer(client as NetnsClient, `http://${vip}/`), /^local-/);
  await kubectl('delete', 'deployment/local', 'service/local', '--wait=true', '--timeout=120s');
});

it('a rolling update of the daemon DaemonSet to a new image tag: the new daemon pod serves the VIPs again', async () => {
  const vip = await serviceVip(C(), 'echo');
  const next = retagDaemonImage(C(), '0.0.0-rollout');
  await kubectl('-n', 'klb-system', 'set', 'image', 'daemonset/klb-daemon', `daemon=${next}`, `sysctls=${next}`);
  await kubectl('-n', 'klb-system', 'rollout', 'status', 'daemonset/klb-daemon', '--timeout=240s');
  const pods = await core().listNamespacedPod({
    namespace: 'klb-system',
    labelSelector: 'app.kubernetes.io/name=klb-daemon',
  });
  const running = pods.items.filter((p) => !p.metadata?.deletionTimestamp);
  assert.equal(
    running.map((p) => p.spec?.containers[0]?.image),
    [next],
  );
  assert.match(await firstAnswer(client as NetnsClient, `http://${vip}/`), /^echo-/);
});

it('kubectl delete -k with LoadBalancer objects still present: they keep KLB finalizer until removed by hand, as docs/getting-started.md says; deleted first, they are released', async () => {
  // The documented order: the load balancers first (the controller releases them), then KLB.
  await kubectl('delete', '-k', join(root, 'deploy/examples/coffee'), '--wait=true', '--timeout=120s');
  await kubectl('delete', 'service', 'after-failover', '--wait=true', '--timeout=120s');
  // The echo Service stays while KLB is deleted: no controller is left to release it.
  const echoVip = await serviceVip(C(), 'echo');
  await kubectl('delete', '-k', overlay, '--wait=true', '--timeout=240s');
  const onNode = execFileSync('ip', ['-o', 'addr', 'show', 'dev', C().interface], { encoding: 'utf8' });
  assert.not.ok(onNode.includes(` ${echoVip}/`), 'the daemons took their VIPs with them');
  // ipMode Proxy: kube-proxy never answered for the VIP itself, so with nginx gone nothing does.
  const unanswered = await (client as NetnsClient).http(`http://${echoVip}/`, { timeoutMs: 2000 });
  assert.not.ok(unanswered.status === 200, 'nothing serves the VIP once KLB is gone');
  const svc = await core().readNamespacedService({ name: 'echo', namespace: 'default' });
  assert.ok(svc.metadata?.finalizers?.includes('klb.io/load-balancer-cleanup'));
  await kubectl('delete', 'service', 'echo', '--wait=false');
  const stuck = await core().readNamespacedService({ name: 'echo', namespace: 'default' });
  assert.ok(stuck.metadata?.deletionTimestamp, 'deletion waits on the finalizer');
  // The documented way out once KLB is gone: remove the finalizer.
  await kubectl('patch', 'service', 'echo', '--type=json', '-p', '[{"op":"remove","path":"/metadata/finalizers"}]');
  await eventually('the echo Service is gone', async () => {
    const gone = await core()
      .readNamespacedService({ name: 'echo', namespace: 'default' })
      .then(
        () => false,
        (err: { code?: number }) => err.code === 404,
      );
    return gone || undefined;
  });
});

itF5(
  'the F5 overlay as shipped, its Secret pointing at the F5 emulator on the node address: the controller pod turns a Service type=LoadBalancer into a virtual server on its VIP with the node as pool member, and removes it with the Service',
  async () => {
    f5 = await startF5Emulator({ host: C().nodeIp, users: [{ username: 'klb', password: 'klb-test-password' }] });
    // A user's overlay: deploy/f5 with the pool and the credentials Secret filled in.
    const dir = mkdtempSync(join(tmpdir(), 'klb-f5-overlay-'));
    try {
      writeFileSync(
        join(dir, 'kustomization.yaml'),
        JSON.stringify({
          apiVersion: 'kustomize.config.k8s.io/v1beta1',
          kind: 'Kustomization',
          // kustomize takes only relative paths.
          resources: [relative(dir, join(root, 'deploy/f5'))],
          patches: [{ path: 'pools.yaml' }, { path: 'credentials.yaml' }],
        }),
      );
      writeFileSync(join(dir, 'pools.yaml'), readFileSync(join(overlay, 'pools.yaml')));
      writeFileSync(
        join(dir, 'credentials.yaml'),
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'klb-f5-credentials', namespace: 'klb-system' },
          stringData: { host: f5.host, username: 'klb', password: 'klb-test-password', 'ca.crt': f5.ca },
        }),
      );
      await kubectl('apply', '-k', dir);
      await kubectl('-n', 'klb-system', 'rollout', 'status', 'deployment/klb-controller', '--timeout=240s');
      await C().kubectl(['apply', '-f', '-'], { input: echoApp('f5-echo', 1) });
      const vip = await serviceVip(C(), 'f5-echo');
      const svc = await core().readNamespacedService({ name: 'f5-echo', namespace: 'default' });
      const nodePort = svc.spec?.ports?.[0]?.nodePort;
      const emulator = f5;
      const virtual = await eventually('a virtual server on the VIP', () =>
        emulator.state().virtuals.find((v) => String(v.destination).endsWith(`${vip}:80`)),
      );
      assert.ok(virtual);
      const pools = JSON.stringify(emulator.state().pools);
      assert.ok(pools.includes(`${C().nodeIp}:${nodePort}`), `pool member ${C().nodeIp}:${nodePort} in ${pools}`);
      await kubectl('delete', 'service', 'f5-echo', '--wait=true', '--timeout=120s');
      await eventually(
        'the virtual server is gone',
        () => emulator.state().virtuals.every((v) => !String(v.destination).endsWith(`${vip}:80`)) || undefined,
      );
      await kubectl('delete', 'deployment', 'f5-echo');
      await kubectl('delete', '-k', dir, '--wait=true', '--timeout=240s');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test.run();
