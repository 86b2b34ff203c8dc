// npm run bench -- cluster
// KLB in a real single-node cluster (@klb/testing's startCluster, the images of
// scripts/build-images.sh, the keepalived-nginx overlay as the in-cluster suite deploys it):
//   cluster.up_cached_s                 startCluster() to node Ready, binaries and images cached
//   cluster.service_to_traffic_p99_s    Service type=LoadBalancer created -> first successful request
//                                       through its VIP from the client namespace; 20 Services, one
//                                       after the other (p50 printed too)
//   cluster.controller_failover_s       leader controller pod deleted -> a Service created right
//                                       after gets its VIP
//   cluster.daemon_rollout_gap_s        longest gap between answers through a VIP while the daemon
//                                       DaemonSet rolls to a new image tag (one node: the only
//                                       daemon is replaced, so the VIP is down for the whole swap)
import { performance } from 'node:perf_hooks';
import { type Cluster, eventually, type NetnsClient, startCluster } from '@klb/testing';
import { CoordinationV1Api } from '@kubernetes/client-node';
import {
  clusterImages,
  echoApp,
  firstAnswer,
  lbService,
  overlay,
  retagDaemonImage,
  serverName,
  serviceVip,
} from '../examples/reference-controller/test/cluster-fixtures.js';

const images = clusterImages();
if (typeof images !== 'object') process.exit(1);
const seconds = (ms: number) => (ms / 1000).toFixed(2);
const quantile = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
};

const t0 = performance.now();
const cluster: Cluster = await startCluster({ imageArchives: images.archives, pauseImage: images.pause });
console.log(`bench cluster.up_cached_s ${seconds(performance.now() - t0)} s`);
try {
  const kubectl = (...args: string[]) => cluster.kubectl(args, { timeoutMs: 300_000 });
  const client: NetnsClient = cluster.client();
  await kubectl('label', 'node', cluster.nodeName, 'klb.io/load-balancer-node=true');
  await kubectl('apply', '-k', overlay);
  await kubectl('-n', 'klb-system', 'rollout', 'status', 'deployment/klb-controller', '--timeout=240s');
  await kubectl('-n', 'klb-system', 'rollout', 'status', 'daemonset/klb-daemon', '--timeout=240s');
  await cluster.kubectl(['apply', '-f', '-'], { input: echoApp('echo', 2) });
  await kubectl('rollout', 'status', 'deployment/echo', '--timeout=240s');
  await firstAnswer(client, `http://${await serviceVip(cluster, 'echo')}/`);

  const service = (name: string) => JSON.stringify(lbService(name, 'echo'));
  const toTraffic: number[] = [];
  for (let i = 0; i < 20; i++) {
    const start = performance.now();
    await cluster.kubectl(['apply', '-f', '-'], { input: service(`bench-${i}`) });
    const vip = await serviceVip(cluster, `bench-${i}`);
    await firstAnswer(client, `http://${vip}/`);
    toTraffic.push(performance.now() - start);
  }
  console.log(`bench cluster.service_to_traffic_p50_s ${seconds(quantile(toTraffic, 0.5))} s`);
  console.log(`bench cluster.service_to_traffic_p99_s ${seconds(quantile(toTraffic, 0.99))} s`);

  const leases = cluster.kubeConfig.makeApiClient(CoordinationV1Api);
  const leader = await eventually('a leader', async () => {
    const lease = await leases.readNamespacedLease({ name: 'klb-controller', namespace: 'klb-system' });
    return lease.spec?.holderIdentity;
  });
  const failoverStart = performance.now();
  await kubectl('-n', 'klb-system', 'delete', 'pod', leader, '--wait=false');
  await cluster.kubectl(['apply', '-f', '-'], { input: service('after-failover') });
  await serviceVip(cluster, 'after-failover');
  console.log(`bench cluster.controller_failover_s ${seconds(performance.now() - failoverStart)} s`);

  const nextImage = retagDaemonImage(cluster, '0.0.0-next');
  const url = `http://${await serviceVip(cluster, 'echo')}/`;
  let lastAnswer = performance.now();
  let longestGap = 0;
  let stop = false;
  const loop = (async () => {
    while (!stop) {
      const reply = await client.http(url, { timeoutMs: 500 });
      if (reply.status === 200 && serverName(reply.body)) {
        const now = performance.now();
        longestGap = Math.max(longestGap, now - lastAnswer);
        lastAnswer = now;
      } else {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  })();
  try {
    await kubectl(
      '-n',
      'klb-system',
      'set',
      'image',
      'daemonset/klb-daemon',
      `daemon=${nextImage}`,
      `sysctls=${nextImage}`,
    );
    await kubectl('-n', 'klb-system', 'rollout', 'status', 'daemonset/klb-daemon', '--timeout=240s');
    await firstAnswer(client, url);
    await new Promise((resolve) => setTimeout(resolve, 2000));
  } finally {
    stop = true;
    await loop;
  }
  console.log(`bench cluster.daemon_rollout_gap_s ${seconds(longestGap)} s`);
} finally {
  await cluster.stop();
}
