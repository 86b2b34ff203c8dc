import { readFileSync } from 'node:fs';
import { type OpenStack, requireComponents, startOpenStack } from '@klb/testing';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('openstack launcher');
const missing = requireComponents('keystone', 'octavia');
const it = missing ? test.skip : test;

let stack: OpenStack | undefined;
if (!missing) {
  stack = await startOpenStack({ provisioningDelaySeconds: 0.3 });
  test.after(async () => {
    await stack?.stop();
  });
}
const os = (): OpenStack => stack as OpenStack;

interface Lb {
  id: string;
  name: string;
  provisioning_status: string;
  vip_address: string;
  tags: string[];
}

async function octavia(method: string, path: string, token: string, body?: unknown): Promise<Response> {
  return fetch(`${os().octaviaUrl}${path}`, {
    method,
    headers: { 'content-type': 'application/json', 'x-auth-token': token },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function until<T>(probe: () => Promise<T | undefined>, what: string): Promise<T> {
  for (let i = 0; i < 600; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`gave up waiting for ${what}`);
}

async function lbStatus(id: string, token: string): Promise<string> {
  const res = await octavia('GET', `/v2/lbaas/loadbalancers/${id}`, token);
  if (res.status === 404) return 'GONE';
  return ((await res.json()) as { loadbalancer: Lb }).loadbalancer.provisioning_status;
}

it('runs the real Debian keystone and octavia-api processes', () => {
  const pids = os().pids();
  const cmd = (pid: number | undefined) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  assert.match(cmd(pids.keystone), /keystone-wsgi-public/);
  assert.match(cmd(pids.octavia), /octavia-api --config-file/);
  assert.match(cmd(pids.provider), /provider-status\.py/);
});

it('keystone issues fernet tokens and a catalog with the load-balancer service', async () => {
  const res = await fetch(`${os().authUrl}/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: os().user.username, domain: { name: 'Default' }, password: os().user.password } },
        },
        scope: { project: { name: os().user.projectName, domain: { name: 'Default' } } },
      },
    }),
  });
  assert.is(res.status, 201);
  assert.match(res.headers.get('x-subject-token') ?? '', /^gAAAAA/, 'a fernet token');
  const body = (await res.json()) as {
    token: {
      catalog: Array<{ type: string; endpoints: Array<{ interface: string; url: string; region_id: string }> }>;
    };
  };
  const lb = body.token.catalog.find((s) => s.type === 'load-balancer');
  assert.ok(lb, 'load-balancer in the catalog');
  const urls = Object.fromEntries(lb.endpoints.map((e) => [e.interface, e.url]));
  assert.is(urls.public, os().octaviaUrl);
  assert.is(urls.internal, os().octaviaDirectUrl);

  const bad = await fetch(`${os().authUrl}/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: os().user.username, domain: { name: 'Default' }, password: 'wrong' } },
        },
      },
    }),
  });
  assert.is(bad.status, 401, 'a wrong password is refused');
});

it('octavia-api validates tokens with keystone and serves the v2 API', async () => {
  const { token } = await os().issueToken();
  assert.is((await octavia('GET', '/v2/lbaas/loadbalancers', 'not-a-token')).status, 401);
  const res = await octavia('GET', '/v2/lbaas/loadbalancers', token);
  assert.is(res.status, 200);
  const versions = (await (await fetch(`${os().octaviaUrl}/`)).json()) as { versions: Array<{ id: string }> };
  assert.ok(
    versions.versions.some((v) => v.id === 'v2.26'),
    'Octavia 11 API versions',
  );
});

it('the provider moves a load balancer and its children to ACTIVE, then DELETED', async () => {
  const { token } = await os().issueToken();
  const create = await octavia('POST', '/v2/lbaas/loadbalancers', token, {
    loadbalancer: {
      name: 'launcher-1',
      vip_subnet_id: os().subnetId,
      listeners: [
        {
          protocol: 'TCP',
          protocol_port: 80,
          default_pool: {
            name: 'launcher-1-pool',
            protocol: 'TCP',
            lb_algorithm: 'ROUND_ROBIN',
            members: [{ address: '192.0.2.10', protocol_port: 30080 }],
            healthmonitor: { type: 'TCP', delay: 5, timeout: 3, max_retries: 3 },
          },
        },
      ],
    },
  });
  const created = (await create.json()) as { loadbalancer: Lb };
  assert.is(create.status, 201, JSON.stringify(created));
  const lb = created.loadbalancer;
  assert.is(lb.provisioning_status, 'PENDING_CREATE');
  // The real API refuses a child create while the load balancer is immutable.
  const early = await octavia('POST', '/v2/lbaas/listeners', token, {
    listener: { loadbalancer_id: lb.id, protocol: 'TCP', protocol_port: 81 },
  });
  assert.is(early.status, 409);
  assert.match(((await early.json()) as { faultstring: string }).faultstring, /immutable/);

  await until(async () => ((await lbStatus(lb.id, token)) === 'ACTIVE' ? true : undefined), 'ACTIVE');
  const pools = (await (await octavia('GET', `/v2/lbaas/pools?loadbalancer_id=${lb.id}`, token)).json()) as {
    pools: Array<{ id: string; provisioning_status: string }>;
  };
  const pool = pools.pools[0];
  assert.is(pool?.provisioning_status, 'ACTIVE', 'the pool too');
  const members = (await (await octavia('GET', `/v2/lbaas/pools/${pool?.id}/members`, token)).json()) as {
    members: Array<{ provisioning_status: string }>;
  };
  assert.equal(
    members.members.map((m) => m.provisioning_status),
    ['ACTIVE'],
    'and its member',
  );

  const del = await octavia('DELETE', `/v2/lbaas/loadbalancers/${lb.id}?cascade=true`, token);
  assert.is(del.status, 204);
  await until(async () => ((await lbStatus(lb.id, token)) === 'GONE' ? true : undefined), 'deleted');
  const transitions = await os().provider.transitions();
  assert.ok(transitions.some((t) => t.id === lb.id && t.from === 'PENDING_CREATE' && t.to === 'ACTIVE'));
  assert.ok(transitions.some((t) => t.id === lb.id && t.from === 'PENDING_DELETE' && t.to === 'DELETED'));
});

it('injects ERROR outcomes and 503s, and records requests', async () => {
  const { token } = await os().issueToken();
  await os().provider.reset();
  await os().provider.failNextProvisioning('launcher-err');
  const create = await octavia('POST', '/v2/lbaas/loadbalancers', token, {
    loadbalancer: { name: 'launcher-err', vip_subnet_id: os().subnetId },
  });
  const lb = ((await create.json()) as { loadbalancer: Lb }).loadbalancer;
  await until(async () => ((await lbStatus(lb.id, token)) === 'ERROR' ? true : undefined), 'ERROR');

  await os().provider.fail503({ count: 1, method: 'GET' });
  const busy = await octavia('GET', '/v2/lbaas/loadbalancers', token);
  assert.is(busy.status, 503);
  assert.match(((await busy.json()) as { faultstring: string }).faultstring, /busy/);
  assert.is((await octavia('GET', '/v2/lbaas/loadbalancers', token)).status, 200, 'only one was injected');

  const recorded = await os().provider.requests();
  assert.ok(recorded.some((r) => r.method === 'POST' && r.path === '/v2/lbaas/loadbalancers' && r.status === 201));
  assert.ok(recorded.some((r) => r.status === 503));
  // An ERROR load balancer can still be deleted (cascade), as on a real cloud.
  assert.is((await octavia('DELETE', `/v2/lbaas/loadbalancers/${lb.id}?cascade=true`, token)).status, 204);
  await until(async () => ((await lbStatus(lb.id, token)) === 'GONE' ? true : undefined), 'deleted');
});

test.run();
