// The KLB demo: starts a real control plane (etcd + kube-apiserver on 127.0.0.1), shows it
// answering, and keeps it running until Ctrl-C (or exits at once with --once).

import { startControlPlane } from '@klb/testing';
import { CoreV1Api } from '@kubernetes/client-node';

const once = process.argv.includes('--once');
const step = (text: string) => console.log(`demo: ${text}`);

step('starting etcd and kube-apiserver on 127.0.0.1');
const plane = await startControlPlane({ onLog: (line) => step(line.replace(/^control-plane: /, '')) });
const stop = async () => {
  step('stopping everything');
  await plane.stop();
  process.exit(0);
};
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());

const core = plane.kubeConfig.makeApiClient(CoreV1Api);
const namespaces = await core.listNamespace();
step(`kube-apiserver ${plane.version} answers at ${plane.server}`);
step(`namespaces: ${namespaces.items.map((ns) => ns.metadata?.name).join(', ')}`);
const cm = await core.createNamespacedConfigMap({
  namespace: 'default',
  body: {
    metadata: { name: 'coffee-lb', labels: { app: 'loadbalancer' } },
    data: { namespace: 'default', 'target-service-name': 'coffee-svc' },
  },
});
step(`created the original-style ConfigMap default/${cm.metadata?.name} (app=loadbalancer)`);
const kubeconfig = plane.writeKubeConfig();
step(`admin kubeconfig: ${kubeconfig} (e.g. KUBECONFIG=${kubeconfig} kubectl get configmaps)`);
if (once) await stop();
else step('running; press Ctrl-C to stop and clean up');
