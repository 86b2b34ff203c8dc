// Shared by the in-cluster suite and the cluster bench: the images built by
// scripts/build-images.sh, the echo app's manifests, and traffic through a VIP from the client
// namespace of a @klb/testing cluster.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Cluster, ComponentMissingError, eventually, type NetnsClient } from '@klb/testing';
import { CoreV1Api, type V1Service } from '@kubernetes/client-node';

export const root = join(import.meta.dirname, '../../..');
/** The test overlay: deploy/keepalived-nginx with only the pool and the daemon's interface patched. */
export const overlay = join(import.meta.dirname, 'cluster-overlay');
export const LB_CLASS = 'klb.io/load-balancer';

/**
 * deploy/gateway-api as a user installs it (server-side, then waits until it is Established):
 * before the overlay, whose GatewayClass needs the Gateway API CRDs.
 */
export async function applyGatewayApiCrds(cluster: Cluster): Promise<void> {
  await cluster.kubectl(['apply', '--server-side', '-k', join(root, 'deploy/gateway-api')], { timeoutMs: 300_000 });
  await cluster.kubectl(
    ['wait', '--for=condition=Established', '--timeout=120s', 'crd/gatewayclasses.gateway.networking.k8s.io'],
    { timeoutMs: 300_000 },
  );
}

interface ImageEntry {
  readonly image: string;
  readonly archive: string;
}

/**
 * The images of scripts/build-images.sh (`KLB_CLUSTER_IMAGES`, else .cache/images/images.json), or
 * a line saying what is missing. In CI a missing image is an error, not a skip.
 */
export function clusterImages(): { archives: string[]; pause: string } | string {
  const file =
    process.env.KLB_CLUSTER_IMAGES ?? join(process.env.KLB_CACHE_DIR ?? join(root, '.cache'), 'images', 'images.json');
  const problem = (why: string): string => {
    if (process.env.CI === 'true') throw new ComponentMissingError('images', why);
    const line = `skip: ${why}`;
    process.stdout.write(`${line}\n`);
    return line;
  };
  if (!existsSync(file)) return problem(`${file} is missing: run scripts/build-images.sh`);
  const images = JSON.parse(readFileSync(file, 'utf8')) as Record<string, ImageEntry>;
  const archives = Object.values(images).map((i) => i.archive);
  const gone = archives.find((a) => !existsSync(a));
  if (gone) return problem(`${gone} is missing: run scripts/build-images.sh`);
  const pause = images.pause?.image;
  if (!pause) return problem(`${file} names no pause image: run scripts/build-images.sh`);
  return { archives, pause };
}

/** A Deployment of the echo app (answers with its pod name) and a Service type=LoadBalancer of KLB's class. */
export function echoApp(name: string, replicas: number, service: Partial<V1Service['spec']> = {}): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: [
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name, namespace: 'default' },
        spec: {
          replicas,
          selector: { matchLabels: { app: name } },
          template: {
            metadata: { labels: { app: name } },
            spec: {
              terminationGracePeriodSeconds: 30,
              containers: [
                {
                  name: 'echo',
                  image: 'localhost/klb-echo:1',
                  imagePullPolicy: 'Never',
                  env: [{ name: 'SHUTDOWN_DELAY', value: '5s' }],
                  ports: [{ containerPort: 80 }],
                  readinessProbe: { httpGet: { path: '/healthz', port: 80 }, periodSeconds: 1, failureThreshold: 1 },
                },
              ],
            },
          },
        },
      },
      lbService(name, name, service),
    ],
  });
}

/** A Service type=LoadBalancer of KLB's class in `default`, port 80 to the pods labelled app=`app`. */
export function lbService(name: string, app: string, spec: Partial<V1Service['spec']> = {}): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default' },
    spec: {
      type: 'LoadBalancer',
      loadBalancerClass: LB_CLASS,
      selector: { app },
      ports: [{ name: 'http', port: 80, targetPort: 80, protocol: 'TCP' }],
      ...spec,
    },
  };
}

/** The pod name in an echo (or nginxdemos/hello) answer. */
export function serverName(body: string | undefined): string | undefined {
  return /^Server name: (\S+)$/m.exec(body ?? '')?.[1];
}

/** The VIP KLB wrote into a Service's status. */
export async function serviceVip(cluster: Cluster, name: string, timeoutMs = 120_000): Promise<string> {
  const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  return eventually(
    `service ${name} has a VIP`,
    async () => {
      const svc = await core.readNamespacedService({ name, namespace: 'default' });
      return svc.status?.loadBalancer?.ingress?.[0]?.ip;
    },
    timeoutMs,
  );
}

/** GETs `url` from the client namespace until an answer names a pod; returns that pod name. */
export async function firstAnswer(
  client: NetnsClient,
  url: string,
  timeoutMs = 120_000,
  host?: string,
): Promise<string> {
  return eventually(
    `an answer through ${url}`,
    async () => {
      const reply = await client.http(url, { timeoutMs: 2000, ...(host ? { host } : {}) });
      return reply.status === 200 ? serverName(reply.body) : undefined;
    },
    timeoutMs,
  );
}

/** `n` GETs in a row: the pod names that answered and the number of failed requests. */
export async function answers(
  client: NetnsClient,
  url: string,
  n: number,
): Promise<{ names: string[]; failed: number }> {
  const names: string[] = [];
  let failed = 0;
  for (let i = 0; i < n; i++) {
    const reply = await client.http(url, { timeoutMs: 2000 });
    const name = reply.status === 200 ? serverName(reply.body) : undefined;
    if (name) names.push(name);
    else failed++;
  }
  return { names, failed };
}

/** Names of the running, ready pods with label app=`app`. */
export async function readyPods(cluster: Cluster, app: string): Promise<{ name: string; ip: string }[]> {
  const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  const pods = await core.listNamespacedPod({ namespace: 'default', labelSelector: `app=${app}` });
  return pods.items
    .filter((p) => !p.metadata?.deletionTimestamp)
    .filter((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
    .map((p) => ({ name: p.metadata?.name ?? '', ip: p.status?.podIP ?? '' }));
}

/** The shipped daemon image under another tag in the node's containerd, as a release would bring it; returns the new name. */
export function retagDaemonImage(cluster: Cluster, tag: string): string {
  const next = `ghcr.io/klb-project/klb-reference-daemon:${tag}`;
  const ctr = ['--address', cluster.containerdSocket, '-n', 'k8s.io', 'images'];
  execFileSync('ctr', [...ctr, 'tag', '--force', 'ghcr.io/klb-project/klb-reference-daemon:0.0.0', next]);
  return next;
}
