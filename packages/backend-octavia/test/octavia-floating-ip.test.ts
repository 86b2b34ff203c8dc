// Floating IPs through the engine: real kube-apiserver + etcd, the reconcile engine of @klb/core,
// and the Octavia backend against real Keystone, Octavia API and Neutron servers (Octavia
// allocates the VIP port in Neutron; KLB's floating IP is associated with it).
import { KubeClient, type KubeObject, LoadBalancerController, type ServiceObject, silentLogger } from '@klb/core';
import {
  type ControlPlane,
  createNode,
  createTestNamespace,
  eventually,
  type OpenStack,
  type OpenStackNeutron,
  requireComponents,
  startControlPlane,
  startOpenStack,
} from '@klb/testing';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  createHttp,
  FLOATING_ADDRESS_ANNOTATION,
  FLOATING_NETWORK_ANNOTATION,
  floatingIpRequest,
  KeystoneAuthError,
  KeystoneSession,
  NeutronClient,
  type NeutronFloatingIp,
  NeutronUnavailableError,
  NeutronValidationError,
  type OctaviaBackend,
  type OpenStackConfig,
  openStackConfigFromCloudsYaml,
  openStackConfigFromEnv,
} from '../src/index.js';
import { backendFor, ctx, drive, specFor, stopSuite, userConfig } from './helpers.js';

const test = suite('octavia: floating IPs via Neutron (real apiserver, Keystone, Octavia, Neutron)');
const missing = requireComponents('kube-apiserver', 'etcd', 'keystone', 'octavia', 'neutron');
const it = missing ? test.skip : test;
const LB_CLASS = 'klb.io/load-balancer';

let plane: ControlPlane | undefined;
let stack: OpenStack | undefined;
let client: KubeClient;
let controller: LoadBalancerController | undefined;
let backend: OctaviaBackend;

if (!missing) {
  plane = await startControlPlane();
  stack = await startOpenStack({ provisioningDelaySeconds: 0.3, neutron: true });
  client = new KubeClient(plane.kubeConfig);
  await createNode(client, 'node-a', '192.0.2.11');
  backend = backendFor(stack);
  controller = new LoadBalancerController({ kubeConfig: plane.kubeConfig, backend, workers: 4, logger: silentLogger });
  await controller.start();
  test.after(() => stopSuite({ controller, client, stack, plane }));
}
const os = (): OpenStack => stack as OpenStack;
const neutron = (): OpenStackNeutron => os().neutron as OpenStackNeutron;

/** GET (or write) on neutron-server directly, as the ordinary user. */
async function neutronApi<T>(method: string, path: string, body?: unknown): Promise<T> {
  const { token } = await os().issueToken();
  const res = await fetch(`${neutron().directUrl}${path}`, {
    method,
    headers: { 'content-type': 'application/json', 'x-auth-token': token },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return (res.status === 204 ? {} : await res.json()) as T;
}

async function floatingIps(query = ''): Promise<NeutronFloatingIp[]> {
  return (await neutronApi<{ floatingips: NeutronFloatingIp[] }>('GET', `/v2.0/floatingips${query}`)).floatingips;
}

interface Lb {
  id: string;
  provisioning_status: string;
  vip_address: string;
  vip_port_id: string;
}

async function lbOf(ns: string, name: string): Promise<Lb | undefined> {
  const { token } = await os().issueToken();
  const lbName = backend.loadBalancerName({ id: `service/${ns}/${name}`, kind: 'Service', namespace: ns, name });
  const res = await fetch(`${os().octaviaDirectUrl}/v2/lbaas/loadbalancers?name=${lbName}`, {
    headers: { 'x-auth-token': token },
  });
  return ((await res.json()) as { loadbalancers: Lb[] }).loadbalancers[0];
}

const svcPath = (ns: string, name: string) => `/api/v1/namespaces/${ns}/services/${name}`;

async function createService(ns: string, name: string, annotations: Record<string, string>): Promise<void> {
  await client.create(`/api/v1/namespaces/${ns}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, annotations },
    spec: {
      type: 'LoadBalancer',
      loadBalancerClass: LB_CLASS,
      selector: { app: name },
      ports: [{ name: 'p80', port: 80, protocol: 'TCP', targetPort: 8080 }],
    },
  } as KubeObject);
}

async function statusIp(ns: string, name: string, want?: (ip: string) => boolean): Promise<string> {
  return eventually(`status of ${ns}/${name}`, async () => {
    const svc = await client.get<ServiceObject>(svcPath(ns, name));
    const ip = svc.status?.loadBalancer?.ingress?.[0]?.ip ?? undefined;
    return ip && (!want || want(ip)) ? ip : undefined;
  });
}

async function gone(ns: string, name: string): Promise<void> {
  await eventually(`${ns}/${name} is gone`, () =>
    client.get(svcPath(ns, name)).then(
      () => false,
      () => true,
    ),
  );
}

async function events(ns: string, name: string): Promise<string[]> {
  const list = await client.list<KubeObject & { message: string; involvedObject: { name: string } }>(
    `/api/v1/namespaces/${ns}/events`,
  );
  return list.items.filter((e) => e.involvedObject.name === name).map((e) => e.message);
}

const inExternal = (ip: string) => ip.startsWith('203.0.113.');

it('a Service with the floating-network annotation: a floating IP on its VIP port, in its status; resync writes nothing; deleted with the Service', async () => {
  const ns = await createTestNamespace(client, 'fip');
  await createService(ns, 'web', { [FLOATING_NETWORK_ANNOTATION]: neutron().externalNetworkId });
  const ip = await statusIp(ns, 'web');
  assert.ok(inExternal(ip), `status carries the floating IP (${ip}), not the VIP`);
  const lb = (await lbOf(ns, 'web')) as Lb;
  assert.ok(lb.vip_address.startsWith('198.51.100.'), 'the VIP is on the VIP subnet');
  const port = await neutronApi<{ port: { id: string; device_owner: string } }>('GET', `/v2.0/ports/${lb.vip_port_id}`);
  assert.is(port.port.device_owner, 'Octavia', 'the VIP port is a real Neutron port Octavia allocated');
  const [fip, ...more] = await floatingIps(`?floating_ip_address=${ip}`);
  assert.is(more.length, 0);
  assert.is(fip?.port_id, lb.vip_port_id, 'associated with the VIP port');
  assert.is(fip?.fixed_ip_address, lb.vip_address);
  assert.is(fip?.floating_network_id, neutron().externalNetworkId);
  assert.is(fip?.description, `klb:test:service/${ns}/web`);
  assert.equal([...(fip?.tags ?? [])].sort(), ['klb', 'klb-cluster=test']);

  // A resync with nothing changed (a label patch re-triggers the Service): reads only.
  await os().provider.reset();
  await client.patch(svcPath(ns, 'web'), { metadata: { labels: { touched: 'yes' } } });
  await eventually('the resync reached Neutron', async () =>
    (await os().provider.requests()).some((r) => r.service === 'neutron' && r.path === '/v2.0/floatingips'),
  );
  await new Promise((resolve) => setTimeout(resolve, 1000));
  assert.equal(
    (await os().provider.requests()).filter((r) => r.method !== 'GET'),
    [],
    'no writes to Octavia or Neutron',
  );

  await client.delete(svcPath(ns, 'web'));
  await gone(ns, 'web');
  assert.equal(await floatingIps(`?floating_ip_address=${ip}`), [], "KLB's floating IP is deleted");
  assert.is(await lbOf(ns, 'web'), undefined);
});

it("a user's floating IP by address: used, then only disassociated when the Service goes", async () => {
  const ns = await createTestNamespace(client, 'fip');
  const { floatingip: mine } = await neutronApi<{ floatingip: NeutronFloatingIp }>('POST', '/v2.0/floatingips', {
    floatingip: { floating_network_id: neutron().externalNetworkId, description: 'the user keeps this one' },
  });
  await createService(ns, 'byaddr', { [FLOATING_ADDRESS_ANNOTATION]: mine.floating_ip_address });
  assert.is(await statusIp(ns, 'byaddr'), mine.floating_ip_address);
  const lb = (await lbOf(ns, 'byaddr')) as Lb;
  const [used] = await floatingIps(`?id=${mine.id}`);
  assert.is(used?.port_id, lb.vip_port_id, 'associated with the VIP port');
  assert.is(used?.description, 'the user keeps this one', 'not marked as KLB-owned');
  assert.equal(used?.tags, [], 'not tagged');

  await client.delete(svcPath(ns, 'byaddr'));
  await gone(ns, 'byaddr');
  const [kept, ...others] = await floatingIps(`?id=${mine.id}`);
  assert.is(others.length, 0);
  assert.ok(kept, 'the user floating IP survives the Service');
  assert.is(kept?.port_id, null, 'disassociated');
  await neutronApi('DELETE', `/v2.0/floatingips/${mine.id}`);
});

it("removing the annotation deletes KLB's floating IP; the status falls back to the VIP", async () => {
  const ns = await createTestNamespace(client, 'fip');
  await createService(ns, 'toggle', { [FLOATING_NETWORK_ANNOTATION]: neutron().externalNetworkId });
  const ip = await statusIp(ns, 'toggle', inExternal);
  await client.patch(svcPath(ns, 'toggle'), { metadata: { annotations: { [FLOATING_NETWORK_ANNOTATION]: null } } });
  const lb = (await lbOf(ns, 'toggle')) as Lb;
  assert.is(await statusIp(ns, 'toggle', (s) => !inExternal(s)), lb.vip_address);
  assert.equal(await floatingIps(`?floating_ip_address=${ip}`), []);
  await client.delete(svcPath(ns, 'toggle'));
  await gone(ns, 'toggle');
});

it('Neutron failing on reads: nothing deleted, an event on the Service; it completes once Neutron answers', async () => {
  const ns = await createTestNamespace(client, 'fip');
  await createService(ns, 'outage', { [FLOATING_NETWORK_ANNOTATION]: neutron().externalNetworkId });
  const ip = await statusIp(ns, 'outage', inExternal);
  const lb = (await lbOf(ns, 'outage')) as Lb;
  await os().provider.fail503({ count: 100_000, service: 'neutron', method: 'GET' });
  await os().provider.reset();
  try {
    await client.delete(svcPath(ns, 'outage'));
    const message = await eventually('a warning event', async () =>
      (await events(ns, 'outage')).find((m) => /Neutron failed: GET \/v2\.0\/floatingips: HTTP 503/.test(m)),
    );
    assert.match(message, /Neutron is busy/);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const writes = (await os().provider.requests()).filter((r) => r.method !== 'GET');
    assert.equal(writes, [], 'no writes to Neutron or Octavia while Neutron cannot be read');
    assert.is((await floatingIps(`?floating_ip_address=${ip}`)).length, 1, 'the floating IP is still there');
    assert.is((await lbOf(ns, 'outage'))?.id, lb.id, 'the load balancer is still there');
  } finally {
    await os().provider.fail503(null);
  }
  await gone(ns, 'outage');
  assert.equal(await floatingIps(`?floating_ip_address=${ip}`), [], 'deleted once Neutron answered');
  assert.is(await lbOf(ns, 'outage'), undefined);
});

it('direct calls: a second ensure writes nothing; the floating IP stays when the load balancer is recreated', async () => {
  const b = backendFor(os(), { floatingNetworkId: neutron().externalNetworkId, clusterName: 'direct' });
  const spec = specFor('direct', [80]);
  const first = (await drive(() => b.ensure(spec, ctx()))).value;
  const ip = first.ingress[0]?.ip as string;
  assert.ok(inExternal(ip), 'the backend option alone gives a floating IP');
  const writes = [b.client.writes, b.neutron.writes];
  await b.ensure(spec, ctx());
  assert.equal([b.client.writes, b.neutron.writes], writes, 'no writes in a second ensure');

  // The load balancer goes ERROR and is recreated: the same floating IP follows the new VIP port.
  const [old] = await b.client.listLoadBalancers({ name: b.loadBalancerName(spec.ref) });
  await os().provider.failNextProvisioning((old as { id: string }).id);
  await b.client.updateLoadBalancer((old as { id: string }).id, { description: 'poke' });
  const again = (await drive(() => b.ensure(spec, ctx()))).value;
  const [fresh] = await b.client.listLoadBalancers({ name: b.loadBalancerName(spec.ref) });
  assert.is.not(fresh?.id, old?.id, 'a new load balancer');
  assert.is(again.ingress[0]?.ip, ip, 'the same floating IP');
  assert.is((await floatingIps(`?floating_ip_address=${ip}`))[0]?.port_id, fresh?.vip_port_id);

  await drive(() => b.remove(spec.ref, ctx()));
  assert.equal(await floatingIps(`?floating_ip_address=${ip}`), []);
});

function neutronClient(config: OpenStackConfig): NeutronClient & { session: KeystoneSession } {
  const log = silentLogger;
  const http = createHttp(config, 5_000, log);
  const session = new KeystoneSession(config, { log }, http);
  return Object.assign(new NeutronClient(session, http, { log }), { session });
}

it('Neutron client: catalog lookup or override, typed errors from real answers', async () => {
  const viaCatalog = neutronClient(userConfig(os()));
  assert.ok(await viaCatalog.available());
  assert.is((await viaCatalog.session.token()).networkEndpoint, neutron().url, 'the public network endpoint');
  assert.ok(Array.isArray(await viaCatalog.listFloatingIps({ tags: 'klb' })));

  const env = openStackConfigFromEnv({
    OS_AUTH_URL: os().authUrl,
    OS_USERNAME: os().user.username,
    OS_PASSWORD: os().user.password,
    OS_PROJECT_NAME: os().user.projectName,
    OS_NETWORK_ENDPOINT_OVERRIDE: neutron().directUrl,
  });
  assert.is(env.networkEndpointOverride, neutron().directUrl);
  const yaml = `clouds:\n  c:\n    auth: { auth_url: "${os().authUrl}", username: u, password: p, project_name: x }\n    network_endpoint_override: "${neutron().directUrl}"\n`;
  assert.is(openStackConfigFromCloudsYaml(yaml, 'c').networkEndpointOverride, neutron().directUrl);
  const direct = neutronClient(env);
  assert.is((await direct.session.token()).networkEndpoint, neutron().directUrl);

  // 400: not an external network (the VIP network) → a TerminalError with Neutron's message.
  const invalid = await direct
    .createFloatingIp({ floating_network_id: neutron().vipNetworkId })
    .catch((err: unknown) => err);
  assert.instance(invalid, NeutronValidationError);
  assert.match((invalid as NeutronValidationError).fault.faultstring ?? '', /external/i);

  // 503 through the catalog endpoint (the proxy), and no answer at all.
  await os().provider.fail503({ count: 1, service: 'neutron' });
  const busy = await viaCatalog.listFloatingIps({}).catch((err: unknown) => err);
  assert.instance(busy, NeutronUnavailableError);
  assert.ok((busy as NeutronUnavailableError).retryable);
  const closed = neutronClient(userConfig(os(), { networkEndpointOverride: 'http://127.0.0.1:9' }));
  const unreachable = await closed.listFloatingIps({}).catch((err: unknown) => err);
  assert.instance(unreachable, NeutronUnavailableError);
  assert.is((unreachable as NeutronUnavailableError).fault.status, 0);

  // A catalog without Neutron: the client says so; floating IPs then cannot be asked for.
  const none = neutronClient(userConfig(os(), { region: 'RegionNowhere', endpointOverride: os().octaviaUrl }));
  assert.not.ok(await none.available());
  assert.instance(await none.listFloatingIps({}).catch((err: unknown) => err), KeystoneAuthError);
});

it('floating IP requests from annotations are validated', () => {
  const net = FLOATING_NETWORK_ANNOTATION;
  const addr = FLOATING_ADDRESS_ANNOTATION;
  assert.is(floatingIpRequest({}, undefined), undefined);
  assert.equal(floatingIpRequest({}, 'ext'), { networkId: 'ext' });
  assert.equal(floatingIpRequest({ [net]: 'other' }, 'ext'), { networkId: 'other' });
  assert.is(floatingIpRequest({ [net]: 'none' }, 'ext'), undefined);
  assert.equal(floatingIpRequest({ [addr]: '2001:db8:0::7' }, undefined), { address: '2001:db8::7' });
  assert.throws(() => floatingIpRequest({ [addr]: '203.0.113.300' }, 'ext'), /not an IP address/);
  assert.throws(
    () => floatingIpRequest({ [net]: 'none', [addr]: '203.0.113.7' }, undefined),
    /asks for a floating IP, klb.io\/octavia-floating-network-id for none/,
  );
  assert.throws(() => floatingIpRequest({ [net]: 'a/b' }, undefined), /not a Neutron id/);
});

test.run();
