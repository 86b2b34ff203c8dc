// The cluster of scripts/cluster.sh: startCluster() with the images of scripts/build-images.sh,
// the Gateway API CRDs and KLB's keepalived-nginx overlay (the in-cluster suite's, pool and
// interface patched) unless --bare, then wait for Ctrl-C (or, with --once, stop at once).
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startCluster } from '@klb/testing';
import { applyGatewayApiCrds, clusterImages, overlay } from '../examples/reference-controller/test/cluster-fixtures.js';

const once = process.argv.includes('--once');
const bare = process.argv.includes('--bare');
const images = clusterImages();
if (typeof images !== 'object') process.exit(1);

const cluster = await startCluster({
  imageArchives: images.archives,
  pauseImage: images.pause,
  onLog: (line) => console.log(line),
});
let stopping = false;
const stop = async (code: number): Promise<never> => {
  if (!stopping) {
    stopping = true;
    await cluster.stop();
  }
  process.exit(code);
};
// Ctrl-C runs the whole teardown (sysctls, mounts, iptables), not only the last-resort kill.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.removeAllListeners(signal);
  process.once(signal, () => void stop(0));
}

try {
  mkdirSync(join(process.cwd(), '.cache'), { recursive: true });
  const kubeconfig = join(process.cwd(), '.cache', 'cluster.kubeconfig');
  copyFileSync(cluster.writeKubeConfig(), kubeconfig);
  if (!bare) {
    await applyGatewayApiCrds(cluster);
    await cluster.kubectl(['label', 'node', cluster.nodeName, 'klb.io/load-balancer-node=true']);
    await cluster.kubectl(['apply', '-k', overlay]);
    for (const what of ['deployment/klb-controller', 'daemonset/klb-daemon']) {
      await cluster.kubectl(['-n', 'klb-system', 'rollout', 'status', what, '--timeout=240s'], { timeoutMs: 300_000 });
    }
    console.log('cluster: KLB deployed (keepalived-nginx overlay, VIPs from 10.213.0.100-10.213.0.199)');
  }
  console.log(`cluster: node ${cluster.nodeName} Ready at ${cluster.nodeIp} (${cluster.interface})`);
  console.log(`cluster: kubectl --kubeconfig ${kubeconfig} get nodes,pods -A`);
  console.log(
    `cluster: traffic from the client namespace: ip netns exec ${cluster.clientNamespace} curl http://<VIP>/`,
  );
  console.log(`cluster: pids ${JSON.stringify(cluster.pids())}`);
  if (once) await stop(0);
  console.log('cluster: running; Ctrl-C stops it');
} catch (err) {
  console.error(`cluster: ${(err as Error).message}\n${cluster.logTails(20)}`);
  await stop(1);
}
