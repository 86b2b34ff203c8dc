import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRetryAfterError, isTerminalError } from '@klb/core';
import { generateSelfSignedCertificate, type OpenStack, requireComponents, startOpenStack } from '@klb/testing';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  createHttp,
  KeystoneAuthError,
  KeystoneSession,
  OctaviaClient,
  OctaviaConflictError,
  OctaviaImmutableError,
  OctaviaQuotaError,
  OctaviaUnavailableError,
  OctaviaValidationError,
  type OpenStackConfig,
  openStackConfigFromCloudsYaml,
  openStackConfigFromEnv,
  openStackConfigFromSecret,
} from '../src/index.js';
import { userConfig } from './helpers.js';

const test = suite('octavia client (real Keystone + Octavia API)');
const missing = requireComponents('keystone', 'octavia', 'openssl');
const it = missing ? test.skip : test;

const TOKEN_SECONDS = 12;
let stack: OpenStack | undefined;
if (!missing) {
  // Short tokens (re-auth before expiry) and no token cache in octavia-api (a revoked token is
  // refused at once, so the 401 path is real).
  stack = await startOpenStack({ tokenExpirationSeconds: TOKEN_SECONDS, tokenCacheSeconds: -1 });
  test.after(async () => {
    await stack?.stop();
  });
}
const os = (): OpenStack => stack as OpenStack;
const silent = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };

function clientFor(config: OpenStackConfig): { session: KeystoneSession; client: OctaviaClient } {
  const http = createHttp(config, 30_000, silent);
  const session = new KeystoneSession(config, {}, http);
  return { session, client: new OctaviaClient(session, http, { retryAfterMs: () => 250 }) };
}

async function rejects(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err,
  );
}

async function waitActive(client: OctaviaClient, id: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const lb = await client.getLoadBalancer(id);
    if (lb?.provisioning_status === 'ACTIVE') return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`load balancer ${id} never became ACTIVE`);
}

async function keystoneAs(
  token: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${os().authUrl}${path}`, {
    method,
    headers: { 'content-type': 'application/json', 'x-auth-token': token, ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

it('password auth by names: token from X-Subject-Token, public endpoint from the catalog', async () => {
  const { session, client } = clientFor(userConfig(os()));
  const token = await session.token();
  assert.match(token.token, /^gAAAAA/);
  assert.is(token.octaviaEndpoint, os().octaviaUrl);
  assert.is(token.projectId, os().user.projectId);
  const lbs = await client.listLoadBalancers({});
  assert.ok(Array.isArray(lbs));
});

it('password auth by ids, and the interface / region / override choose the endpoint', async () => {
  const byId = userConfig(os(), {
    credentials: {
      type: 'password',
      userId: os().user.userId,
      password: os().user.password,
      projectId: os().user.projectId,
    },
  });
  assert.is((await clientFor(byId).session.token()).projectId, os().user.projectId);
  const internal = clientFor(userConfig(os(), { interface: 'internal' }));
  assert.is((await internal.session.token()).octaviaEndpoint, os().octaviaDirectUrl);
  await internal.client.listLoadBalancers({});
  const wrongRegion = clientFor(userConfig(os(), { region: 'RegionNowhere' }));
  const err = await rejects(wrongRegion.session.token());
  assert.instance(err, KeystoneAuthError);
  assert.match((err as Error).message, /no load-balancer endpoint for interface public in region RegionNowhere/);
  const override = clientFor(userConfig(os(), { region: 'RegionNowhere', endpointOverride: os().octaviaDirectUrl }));
  assert.is((await override.session.token()).octaviaEndpoint, os().octaviaDirectUrl);
  await override.client.listLoadBalancers({});
});

it('application credentials, by id and by name with their user', async () => {
  const { token } = await os().issueToken('user');
  const res = await keystoneAs(token, 'POST', `/users/${os().user.userId}/application_credentials`, {
    application_credential: { name: 'klb-app' },
  });
  assert.is(res.status, 201);
  const { application_credential: cred } = (await res.json()) as {
    application_credential: { id: string; secret: string };
  };
  const byId = clientFor(
    userConfig(os(), { credentials: { type: 'applicationCredential', id: cred.id, secret: cred.secret } }),
  );
  assert.is((await byId.session.token()).projectId, os().user.projectId);
  await byId.client.listLoadBalancers({});
  const byName = clientFor(
    userConfig(os(), {
      credentials: {
        type: 'applicationCredential',
        name: 'klb-app',
        secret: cred.secret,
        username: os().user.username,
        userDomainName: 'Default',
      },
    }),
  );
  await byName.client.listLoadBalancers({});
  const wrong = clientFor(
    userConfig(os(), { credentials: { type: 'applicationCredential', id: cred.id, secret: 'nope' } }),
  );
  assert.instance(await rejects(wrong.session.token()), KeystoneAuthError);
});

it('bad credentials: a clear KeystoneAuthError that does not contain the password', async () => {
  const config = userConfig(os(), {
    credentials: {
      type: 'password',
      username: os().user.username,
      password: 'definitely-wrong-pw',
      userDomainName: 'Default',
      projectName: 'klb',
      projectDomainName: 'Default',
    },
  });
  const err = (await rejects(clientFor(config).client.listLoadBalancers({}))) as KeystoneAuthError;
  assert.instance(err, KeystoneAuthError);
  assert.is(err.code, 'KEYSTONE_AUTH');
  assert.is(err.retryable, true);
  assert.match(err.message, /refused the credentials of user klb \(401\)/);
  assert.not.match(err.message, /definitely-wrong-pw/);
});

it('a 401 from Octavia (revoked token) re-authenticates once and succeeds', async () => {
  const { session, client } = clientFor(userConfig(os()));
  const first = await session.token();
  const admin = await os().issueToken('admin');
  const revoke = await keystoneAs(admin.token, 'DELETE', '/auth/tokens', undefined, { 'x-subject-token': first.token });
  assert.is(revoke.status, 204);
  const before = session.authentications;
  await client.listLoadBalancers({});
  assert.is(session.authentications, before + 1, 'one re-authentication');
  assert.is.not((await session.token()).token, first.token);
});

it('re-authenticates before the token expires', async () => {
  const { session } = clientFor(userConfig(os()));
  const first = await session.token();
  // The margin is a quarter of the lifetime here: wait until the token is inside it.
  const margin = (first.expiresAt - first.issuedAt) / 4;
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, first.expiresAt - margin - Date.now() + 200)));
  const second = await session.token();
  assert.is.not(second.token, first.token);
  assert.is(session.authentications, 2);
});

it('version discovery: feature gates for tags (2.5) and allowed_cidrs (2.12)', async () => {
  const features = await clientFor(userConfig(os())).client.features();
  assert.is(features.minorVersion, 26);
  assert.ok(features.tags);
  assert.ok(features.allowedCidrs);
});

it('typed errors from real Octavia faults: 400, 409 immutable, 409 duplicate, 503, 403 quota', async () => {
  const { client } = clientFor(userConfig(os()));
  const invalid = await rejects(client.createLoadBalancer({ name: 'bad', vip_subnet_id: 'not-a-uuid' }));
  assert.instance(invalid, OctaviaValidationError);
  assert.ok(isTerminalError(invalid));
  assert.match((invalid as OctaviaValidationError).fault.faultstring ?? '', /vip_subnet_id/);

  await os().provider.pause(true);
  const lb = await client.createLoadBalancer({ name: 'client-errors', vip_subnet_id: os().subnetId });
  const immutable = await rejects(
    client.createListener({ loadbalancer_id: lb.id, protocol: 'TCP', protocol_port: 80 }),
  );
  await os().provider.pause(false);
  assert.instance(immutable, OctaviaImmutableError);
  assert.ok(isRetryAfterError(immutable));
  assert.is((immutable as OctaviaImmutableError).retryAfterMs, 250);

  await waitActive(client, lb.id);
  await client.createListener({ loadbalancer_id: lb.id, protocol: 'TCP', protocol_port: 80 });
  await waitActive(client, lb.id);
  const duplicate = await rejects(
    client.createListener({ loadbalancer_id: lb.id, protocol: 'TCP', protocol_port: 80 }),
  );
  assert.instance(duplicate, OctaviaConflictError);
  assert.match((duplicate as OctaviaConflictError).fault.faultstring ?? '', /already/);

  await os().provider.fail503({ count: 1, method: 'GET', pathContains: '/loadbalancers' });
  const busy = await rejects(client.getLoadBalancer(lb.id));
  assert.instance(busy, OctaviaUnavailableError);
  assert.ok(isRetryAfterError(busy));

  const admin = await os().issueToken('admin');
  const quota = await fetch(`${os().octaviaUrl}/v2/lbaas/quotas/${os().user.projectId}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', 'x-auth-token': admin.token },
    body: JSON.stringify({ quota: { load_balancer: 0 } }),
  });
  assert.is(quota.status, 202);
  const overQuota = await rejects(client.createLoadBalancer({ name: 'client-quota', vip_subnet_id: os().subnetId }));
  assert.instance(overQuota, OctaviaQuotaError);
  assert.is((overQuota as OctaviaQuotaError).code, 'OCTAVIA_QUOTA');
  await fetch(`${os().octaviaUrl}/v2/lbaas/quotas/${os().user.projectId}`, {
    method: 'DELETE',
    headers: { 'x-auth-token': admin.token },
  });
  await client.deleteLoadBalancer(lb.id, true);
});

it('configuration from the original env names, a clouds.yaml and a Secret authenticates for real', async () => {
  const env = {
    OS_AUTH_URL: os().authUrl,
    OS_USERNAME: os().user.username,
    OS_PASSWORD: os().user.password,
    OS_TENANT_NAME: os().user.projectName,
    OS_DOMAIN_NAME: 'Default',
    OS_REGION_NAME: os().region,
    OS_SUBNET_ID: os().subnetId,
  };
  const fromEnv = openStackConfigFromEnv(env);
  assert.is(fromEnv.subnetId, os().subnetId);
  await clientFor(fromEnv).client.listLoadBalancers({});

  const yaml = [
    'clouds:',
    '  mycloud:',
    '    auth:',
    `      auth_url: ${os().authUrl}`,
    `      username: ${os().user.username}`,
    `      password: "${os().user.password}"`,
    `      project_name: ${os().user.projectName}`,
    '      user_domain_name: Default',
    '      project_domain_name: Default',
    `    region_name: ${os().region}`,
    '    interface: internal',
    '',
  ].join('\n');
  const fromYaml = openStackConfigFromCloudsYaml(yaml, 'mycloud');
  assert.is((await clientFor(fromYaml).session.token()).octaviaEndpoint, os().octaviaDirectUrl);

  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const fromSecret = openStackConfigFromSecret({ 'clouds.yaml': b64(yaml), cloud: b64('mycloud') });
  await clientFor(fromSecret).client.listLoadBalancers({});
  const fromEnvSecret = openStackConfigFromSecret(Object.fromEntries(Object.entries(env).map(([k, v]) => [k, b64(v)])));
  await clientFor(fromEnvSecret).client.listLoadBalancers({});

  assert.throws(() => openStackConfigFromEnv({ OS_AUTH_URL: os().authUrl }), /user name or user id/);
  assert.throws(() => openStackConfigFromEnv({}), /OS_AUTH_URL is not set/);
  assert.throws(() => openStackConfigFromCloudsYaml('clouds: [', 'x'), /not valid YAML/);
});

it('TLS: Keystone over HTTPS is verified against the CA bundle; insecure only when asked, and logged', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'klb-octavia-tls-'));
  const cert = generateSelfSignedCertificate(dir);
  // An HTTPS front for the real Keystone (a TLS-terminating proxy, as in front of a real cloud).
  const upstream = new URL(os().authUrl).origin;
  const server = createServer({ key: cert.key, cert: cert.cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      const answer = await fetch(`${upstream}${req.url}`, {
        method: req.method ?? 'GET',
        headers: { 'content-type': 'application/json' },
        ...(body.length ? { body } : {}),
      });
      const headers: Record<string, string> = {
        'content-type': answer.headers.get('content-type') ?? 'application/json',
      };
      const token = answer.headers.get('x-subject-token');
      if (token) headers['x-subject-token'] = token;
      res.writeHead(answer.status, headers);
      res.end(Buffer.from(await answer.arrayBuffer()));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const tlsUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}/v3`;
  try {
    const untrusted = await rejects(clientFor(userConfig(os(), { authUrl: tlsUrl })).session.token());
    assert.instance(untrusted, KeystoneAuthError);
    assert.match((untrusted as Error).message, /cannot reach Keystone.*(self.signed|certificate)/i);
    const trusted = clientFor(userConfig(os(), { authUrl: tlsUrl, caBundle: cert.cert }));
    await trusted.client.listLoadBalancers({});
    const warnings: string[] = [];
    const log = { ...silent, warn: (_: object | string, msg?: string) => void warnings.push(msg ?? '') };
    const config = userConfig(os(), { authUrl: tlsUrl, insecure: true });
    const http = createHttp(config, 30_000, log);
    await new KeystoneSession(config, {}, http).token();
    assert.equal(warnings, ['OpenStack TLS certificate verification is disabled (insecure: true)']);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
