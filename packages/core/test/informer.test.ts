// The informer against a real apiserver: a resource that is not served yet (a CRD not installed)
// is an empty, synced cache when the informer is optional, and fills once the CRD is installed.
import { Informer, KubeClient, type KubeObject } from '@klb/core';
import { type ControlPlane, installGatewayApiCrds, requireComponents, startControlPlane } from '@klb/testing';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { waitUntil } from './helpers.js';

const test = suite('informer');
const missing = requireComponents('kube-apiserver', 'etcd');
const it = missing ? test.skip : test;

let plane: ControlPlane | undefined;
let client: KubeClient;
if (!missing) {
  plane = await startControlPlane();
  client = new KubeClient(plane.kubeConfig);
  test.after(async () => {
    client.close();
    await plane?.stop();
  });
}

it('an optional resource not served is synced and empty, and fills once it is served', async () => {
  const path = '/apis/gateway.networking.k8s.io/v1/gatewayclasses';
  const seen: string[] = [];
  const informer = new Informer<KubeObject>(client, {
    resource: 'gatewayclasses',
    path,
    optional: true,
    unservedRetryMs: 200,
  });
  informer.on({ add: (o) => seen.push(o.metadata?.name ?? '') });
  const strict = new Informer<KubeObject>(client, {
    resource: 'gatewayclasses',
    path,
    backoff: { baseMs: 100, maxMs: 200 },
  });
  informer.start();
  strict.start();
  try {
    await informer.waitForSync();
    assert.is(informer.size, 0);
    assert.not.ok(strict.synced, 'without optional, a 404 is an error and the cache is not synced');
    await installGatewayApiCrds(P().kubeConfig);
    await client.create(path, {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'GatewayClass',
      metadata: { name: 'late' },
      spec: { controllerName: 'example.com/late' },
    } as KubeObject);
    await waitUntil('the class arrives', () => (seen.includes('late') ? true : undefined), 20_000);
    assert.ok(informer.get('late'));
    await strict.waitForSync();
  } finally {
    await informer.stop();
    await strict.stop();
  }
});

const P = (): ControlPlane => plane as ControlPlane;

test.run();
