// The klb.io/ HTTP annotations as the sources read them, without an apiserver: every form a value
// may take, every bad one refused with InvalidAnnotation naming the annotation, and the refusal
// on objects whose load balancer has no HTTP listener.
import {
  type ClusterState,
  type ConfigMapObject,
  ConfigMapSource,
  describeHttpSettings,
  type IngressObject,
  IngressSource,
  isTerminalError,
  type LoadBalancerDraft,
  type ServiceObject,
  ServiceSource,
} from '@klb/core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('HTTP annotations');

const web: ServiceObject = {
  metadata: { namespace: 'shop', name: 'web' },
  spec: { type: 'NodePort', clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, nodePort: 30080 }] },
};
const world: ClusterState = {
  service: (ns, name) => (ns === 'shop' && name === 'web' ? web : undefined),
  nodes: () => [
    {
      metadata: { name: 'node-a' },
      status: {
        addresses: [{ type: 'InternalIP', address: '192.0.2.11' }],
        conditions: [{ type: 'Ready', status: 'True' }],
      },
    },
  ],
  endpoints: () => [],
  secret: () => undefined,
  objects: () => [],
  object: () => undefined,
  capabilities: {
    protocols: ['TCP', 'UDP', 'HTTP', 'HTTPS'],
    l7: true,
    tls: true,
    allocatesAddresses: false,
    targetKinds: ['node'],
    ipFamilies: ['IPv4'],
    sourceRanges: true,
    proxyProtocol: true,
  },
  nodeAddressPreference: ['InternalIP'],
};

function ingress(annotations: Record<string, string>): IngressObject {
  return {
    metadata: { namespace: 'shop', name: 'cafe', annotations },
    spec: {
      ingressClassName: 'klb',
      defaultBackend: { service: { name: 'web', port: { number: 80 } } },
    },
  };
}

const build = (annotations: Record<string, string>): LoadBalancerDraft =>
  new IngressSource().build(ingress(annotations), world);

/** The TerminalError `fn` throws. */
function refusal(fn: () => unknown): { reason: string; message: string } {
  try {
    fn();
  } catch (err) {
    assert.ok(isTerminalError(err), String(err));
    return err;
  }
  throw new Error('not refused');
}

test('no HTTP annotation: no http block, the spec is as it was', () => {
  const draft = build({ 'klb.io/idle-timeout-seconds': '30' });
  assert.is('http' in draft.spec.options, false);
  assert.equal(draft.spec.options.timeouts, { idleSeconds: 30 });
});

test('every HTTP annotation reaches the spec as a number or a flag', () => {
  const draft = build({
    'klb.io/proxy-body-size': '16m',
    'klb.io/client-max-header-size': '32k',
    'klb.io/proxy-connect-timeout': '3',
    'klb.io/proxy-read-timeout': '120',
    'klb.io/proxy-send-timeout': '90',
    'klb.io/proxy-upgrade-timeout': '3600',
    'klb.io/proxy-buffering': 'off',
  });
  assert.equal(draft.spec.options.http, {
    maxBodyBytes: 16 * 1024 * 1024,
    maxHeaderBytes: 32 * 1024,
    connectTimeoutSeconds: 3,
    readTimeoutSeconds: 120,
    sendTimeoutSeconds: 90,
    upgradeTimeoutSeconds: 3600,
    buffering: false,
  });
  assert.is(
    describeHttpSettings(draft.spec.options.http),
    'request body size, request header size, HTTP connect timeout, read timeout, send timeout, upgraded connection timeout, buffering',
  );
  assert.is(describeHttpSettings(undefined), undefined);
  assert.is(describeHttpSettings({}), undefined);
});

test('sizes: bytes, k, m and g in either case; 0 is no limit', () => {
  const body = (value: string) => build({ 'klb.io/proxy-body-size': value }).spec.options.http?.maxBodyBytes;
  assert.is(body('0'), 0);
  assert.is(body('1048576'), 1048576);
  assert.is(body('512k'), 512 * 1024);
  assert.is(body('512K'), 512 * 1024);
  assert.is(body('10m'), 10 * 1024 ** 2);
  assert.is(body('10M'), 10 * 1024 ** 2);
  assert.is(body('1g'), 1024 ** 3);
  assert.is(body('1024g'), 1024 ** 4);
  const header = (value: string) => build({ 'klb.io/client-max-header-size': value }).spec.options.http?.maxHeaderBytes;
  assert.is(header('1k'), 1024);
  assert.is(header('1m'), 1024 ** 2);
  assert.is(header('16384'), 16384);
  assert.equal(build({ 'klb.io/proxy-buffering': 'on' }).spec.options.http, { buffering: true });
});

test('a bad value is InvalidAnnotation naming the annotation, the value quoted', () => {
  const bad: [string, string][] = [
    ['klb.io/proxy-body-size', '10 m; evil'],
    ['klb.io/proxy-body-size', '10mb'],
    ['klb.io/proxy-body-size', '1.5m'],
    ['klb.io/proxy-body-size', '-1'],
    ['klb.io/proxy-body-size', ''],
    ['klb.io/proxy-body-size', '1025g'],
    ['klb.io/proxy-body-size', '10t'],
    ['klb.io/proxy-body-size', '10m\nclient_max_body_size 0'],
    ['klb.io/client-max-header-size', '512'],
    ['klb.io/client-max-header-size', '2m'],
    ['klb.io/client-max-header-size', '8k;'],
    ['klb.io/proxy-connect-timeout', '0'],
    ['klb.io/proxy-read-timeout', '60s'],
    ['klb.io/proxy-read-timeout', '86401'],
    ['klb.io/proxy-send-timeout', '1.5'],
    ['klb.io/proxy-upgrade-timeout', '$host'],
    ['klb.io/proxy-buffering', 'true'],
    ['klb.io/proxy-buffering', 'OFF'],
    ['klb.io/proxy-buffering', 'off;'],
  ];
  for (const [key, value] of bad) {
    const err = refusal(() => build({ [key]: value }));
    assert.is(err.reason, 'InvalidAnnotation', `${key}=${value}`);
    assert.ok(err.message.startsWith(`annotation ${key}=${JSON.stringify(value)}: `), err.message);
    assert.not.match(err.message, '\n', 'the value is quoted, never raw');
  }
});

test('a Service or an original ConfigMap without host/path has no HTTP listener: the annotations are refused', () => {
  const svc: ServiceObject = {
    metadata: { namespace: 'shop', name: 'lb', annotations: { 'klb.io/proxy-read-timeout': '5' } },
    spec: { type: 'LoadBalancer', loadBalancerClass: 'klb.io/load-balancer', ports: [{ port: 80, nodePort: 30081 }] },
  };
  const err = refusal(() => new ServiceSource().build(svc, world));
  assert.is(err.reason, 'InvalidAnnotation');
  assert.match(err.message, /^annotation klb\.io\/proxy-read-timeout="5": applies to HTTP listeners/);
  assert.match(err.message, /Service shop\/lb has only TCP\/UDP ports/);
  assert.match(err.message, /klb\.io\/idle-timeout-seconds/);
  const cm = (data: Record<string, string>): ConfigMapObject => ({
    metadata: {
      namespace: 'shop',
      name: 'web-lb',
      labels: { app: 'loadbalancer' },
      annotations: { 'klb.io/proxy-body-size': '16m' },
    },
    data: { 'target-service-name': 'web', ...data },
  });
  const l4 = refusal(() => new ConfigMapSource().build(cm({}), world));
  assert.is(l4.reason, 'InvalidAnnotation');
  assert.match(l4.message, /ConfigMap shop\/web-lb \(without host or path\) has only TCP\/UDP ports/);
  // With host (HTTP), the original ConfigMap takes them as an Ingress does.
  const http = new ConfigMapSource().build(cm({ host: 'cafe.example.com' }), world);
  assert.equal(http.spec.options.http, { maxBodyBytes: 16 * 1024 * 1024 });
});

test.run();
