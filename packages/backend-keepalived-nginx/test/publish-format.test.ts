// The published object formats: names, the Secret and compatibility ConfigMap readers (a bad entry
// never hides the others), and node reports.
import {
  compatConfigKey,
  DAEMON_CONFIG_KEY,
  type DaemonNodeReport,
  daemonConfigObjectName,
  daemonConfigSecret,
  daemonReportObject,
  InvalidDaemonConfigError,
  parseDaemonNodeReport,
  readDaemonConfigObject,
} from '@klb/backend-keepalived-nginx';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { clone, l4Service, versioned } from './renderer-fixtures.js';

const test = suite('publish format');

const a = l4Service('service/default/alpha', '192.0.2.1', { tcp: 80, udp: 53 }, { tcp: [30080], udp: [30053] });
const b = l4Service('configmap/kube-system/beta.v2', '192.0.2.2', { tcp: 80, udp: 53 }, { tcp: [30081], udp: [30054] });

test('object names are readable, injective and within Kubernetes limits', () => {
  assert.is(daemonConfigObjectName('service/default/coffee'), 'service.default.coffee');
  assert.is(compatConfigKey('service/default/coffee'), 'service.default.coffee.json');
  const long = `service/${'n'.repeat(63)}/${'x'.repeat(253)}`;
  const name = daemonConfigObjectName(long);
  assert.match(name, /^lb\.[0-9a-f]{40}$/);
  assert.is.not(name, daemonConfigObjectName(`${long.slice(0, -1)}y`));
  assert.ok(compatConfigKey(long).length <= 253);
});

test('a Secret round-trips; list items without kind are recognised by their type', () => {
  const secret = daemonConfigSecret('klb-system', a);
  assert.is(secret.metadata?.labels?.['klb.io/daemon-config'], 'true');
  assert.equal(readDaemonConfigObject(secret).configs, [a]);
  const { kind: _kind, ...listItem } = secret;
  assert.equal(readDaemonConfigObject(listItem).configs, [a]);
  const broken = { ...secret, data: { [DAEMON_CONFIG_KEY]: Buffer.from('{"id": 1').toString('base64') } };
  const content = readDaemonConfigObject(broken);
  assert.equal(content.configs, []);
  assert.instance(content.errors.get('service.default.alpha/config.json'), InvalidDaemonConfigError);
});

test('the compatibility ConfigMap: every valid entry is read, bad ones are reported by id', () => {
  const bad = clone(b);
  bad.id = 'service/default/bad';
  bad.addresses = ['192.0.2.3; deny all'];
  const cm = {
    kind: 'ConfigMap',
    metadata: { name: 'daemon-configmap' },
    data: {
      [compatConfigKey(a.id)]: JSON.stringify(a),
      [compatConfigKey(b.id)]: JSON.stringify(b),
      [compatConfigKey(bad.id)]: JSON.stringify(versioned(bad)),
      'garbage.json': 'not json',
    },
  };
  const { configs, errors } = readDaemonConfigObject(cm);
  assert.equal(configs.map((c) => c.id).sort(), [b.id, a.id].sort());
  assert.equal([...errors.keys()].sort(), ['daemon-configmap/garbage.json', 'service/default/bad']);
  assert.match(String(errors.get('service/default/bad')?.message), 'addresses[0]');
});

test('node reports validate and build their ConfigMap', () => {
  const report: DaemonNodeReport = {
    apiVersion: 'klb.io/v1alpha1',
    kind: 'DaemonNodeReport',
    node: 'node-a',
    updatedAt: '2026-01-01T00:00:00Z',
    applied: { [a.id]: a.version },
    rejected: { [b.id]: { version: b.version, message: 'collides' } },
    vrrp: [{ instance: 'klb_default_4', group: 'default', vrid: 51, state: 'MASTER', addresses: ['192.0.2.1'] }],
    errors: [],
  };
  const cm = daemonReportObject('klb-system', report);
  assert.is(cm.metadata.name, 'klb-daemon-node-a');
  assert.is(cm.metadata.labels['klb.io/daemon-report'], 'true');
  assert.equal(parseDaemonNodeReport(cm.data['report.json'] as string), report);
  for (const bad of ['', '{', '{}', JSON.stringify({ ...report, vrrp: [{ ...report.vrrp[0], state: 'LEADER' }] })]) {
    assert.throws(
      () => parseDaemonNodeReport(bad),
      (err: unknown) => err instanceof InvalidDaemonConfigError,
    );
  }
});

test.run();
