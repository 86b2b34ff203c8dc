import { type F5Error, f5ConfigFromEnv, f5ConfigFromSecret, IControlClient, isF5Error } from '@klb/backend-f5';
import { type F5Emulator, requireComponents, startF5Emulator } from '@klb/testing';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { recordingLogger } from './helpers.js';

const test = suite('iControl client');
const missing = requireComponents('openssl');
const it = missing ? test.skip : test;
let f5!: F5Emulator;
let f5fail400!: F5Emulator;
if (!missing) {
  f5 = await startF5Emulator({ partitions: ['klb'] });
  f5fail400 = await startF5Emulator({ partitions: ['klb'], failedCommitStatus: 400 });
  test.after(async () => {
    await f5.stop();
    await f5fail400.stop();
  });
}

const open: IControlClient[] = [];
function client(
  options: Partial<ConstructorParameters<typeof IControlClient>[0]> = {},
  on: F5Emulator = f5,
): IControlClient {
  const c = new IControlClient({
    host: on.host,
    username: 'admin',
    password: 'admin',
    ca: on.ca,
    retryBaseDelayMs: 5,
    ...options,
  });
  open.push(c);
  return c;
}
test.after.each(async () => {
  for (const c of open.splice(0)) await c.close();
  f5.faults.clear();
});

async function rejects(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

it('TLS is verified: no CA bundle fails, the CA bundle passes, insecureSkipVerify is an explicit logged opt-in', async () => {
  const err = await rejects(client({ ca: undefined as unknown as string }).get('/mgmt/tm/ltm/pool'));
  assert.ok(isF5Error(err, 'F5_NETWORK'), String(err));
  assert.match((err as Error).message, /self[- ]signed|SELF_SIGNED/i);
  assert.ok(Array.isArray((await client().get<{ items: unknown[] }>('/mgmt/tm/ltm/pool')).items));
  const { logger, lines } = recordingLogger();
  const insecure = client({ ca: undefined as unknown as string, insecureSkipVerify: true, logger });
  await insecure.get('/mgmt/tm/ltm/pool');
  assert.ok(
    lines.some(
      (l) => (l as { level: string }).level === 'warn' && /DISABLED/.test(String((l as { msg?: string }).msg)),
    ),
  );
});

it('one token is reused for many calls and deleted on close()', async () => {
  f5.expireTokens();
  const c = client();
  await Promise.all(Array.from({ length: 20 }, () => c.get('/mgmt/tm/ltm/node')));
  assert.is(c.logins, 1);
  assert.is(f5.activeTokens('admin'), 1);
  await c.close();
  assert.is(f5.activeTokens('admin'), 0);
});

it('the token is renewed before it expires (extended with PATCH)', async () => {
  const c = client({ tokenRefreshMarginSeconds: 1200 });
  await c.get('/mgmt/tm/ltm/node');
  const mark = f5.calls.length;
  await c.get('/mgmt/tm/ltm/node');
  const extend = f5.calls
    .records()
    .slice(mark)
    .find((r) => r.method === 'PATCH' && r.path.startsWith('/mgmt/shared/authz/tokens/'));
  assert.ok(extend, 'a PATCH of the token');
  assert.is(extend?.status, 200);
  assert.is(c.logins, 1);
});

it('an expired or unknown token leads to one re-login and a retry', async () => {
  const c = client();
  await c.get('/mgmt/tm/ltm/node');
  f5.expireTokens();
  await c.get('/mgmt/tm/ltm/node');
  assert.is(c.logins, 2);
  f5.forgetTokens();
  await c.get('/mgmt/tm/ltm/node');
  assert.is(c.logins, 3);
});

it('wrong credentials fail with a typed 401 and no endless re-login', async () => {
  const err = await rejects(client({ password: 'wrong' }).get('/mgmt/tm/ltm/node'));
  assert.ok(isF5Error(err, 'F5_UNAUTHORIZED'));
  assert.is((err as F5Error).status, 401);
  assert.is((err as F5Error).retryable, false);
});

it('basic auth sends credentials on each call and never logs in', async () => {
  const mark = f5.calls.length;
  const c = client({ auth: 'basic' });
  await c.get('/mgmt/tm/ltm/node');
  assert.is(c.logins, 0);
  assert.is(f5.calls.counts(mark).auth, 0);
});

it('503, "Public URI path not registered" and "mcpd lost" are retried with backoff', async () => {
  const c = client();
  await c.get('/mgmt/tm/ltm/node');
  f5.faults.add({ effect: 'service-unavailable', path: '/mgmt/tm/ltm/pool', times: 2 });
  f5.faults.add({ effect: 'uri-not-registered', path: '/mgmt/tm/ltm/pool', times: 1 });
  f5.faults.add({ effect: 'mcpd-lost', path: '/mgmt/tm/ltm/pool', times: 1 });
  await c.request('POST', '/mgmt/tm/ltm/pool', { body: { name: 'retried', partition: 'klb' } });
  assert.ok(f5.state().pools.some((p) => p.fullPath === '/klb/retried'));
  f5.faults.add({ effect: 'service-unavailable', path: '/mgmt/tm/ltm/virtual' });
  const err = await rejects(client({ retries: 2 }).get('/mgmt/tm/ltm/virtual'));
  assert.ok(isF5Error(err, 'F5_UNAVAILABLE'));
  assert.is((err as F5Error).retryable, true);
});

it('F5 error bodies become typed errors with the message id', async () => {
  const c = client();
  const missing = await rejects(c.get('/mgmt/tm/ltm/pool/~klb~ghost'));
  assert.ok(isF5Error(missing, 'F5_NOT_FOUND'));
  assert.is((missing as F5Error).messageId, '01020036');
  assert.match((missing as Error).message, 'The requested Pool (/klb/ghost) was not found.');
  await c.request('POST', '/mgmt/tm/ltm/pool', { body: { name: 'dup', partition: 'klb' } });
  const dup = await rejects(c.request('POST', '/mgmt/tm/ltm/pool', { body: { name: 'dup', partition: 'klb' } }));
  assert.ok(isF5Error(dup, 'F5_CONFLICT'));
  assert.is((dup as F5Error).messageId, '01020066');
});

it('a transaction applies everything, or nothing when a command fails (both failure shapes)', async () => {
  for (const on of [f5, f5fail400]) {
    const c = client({}, on);
    await c.commit([
      { method: 'POST', path: '/mgmt/tm/ltm/pool', body: { name: 'tx1', partition: 'klb' } },
      {
        method: 'POST',
        path: '/mgmt/tm/ltm/virtual',
        body: { name: 'tx1', partition: 'klb', destination: '/klb/10.9.0.1:80', pool: '/klb/tx1' },
      },
    ]);
    assert.ok(on.state().virtuals.some((v) => v.fullPath === '/klb/tx1'));
    const err = await rejects(
      c.commit([
        { method: 'POST', path: '/mgmt/tm/ltm/pool', body: { name: 'tx2', partition: 'klb' } },
        {
          method: 'POST',
          path: '/mgmt/tm/ltm/virtual',
          body: { name: 'tx2', partition: 'klb', destination: '/klb/10.9.0.2:80', pool: '/klb/none' },
        },
      ]),
    );
    assert.ok(isF5Error(err, 'F5_TRANSACTION_FAILED'), String(err));
    assert.match((err as Error).message, 'The requested Pool (/klb/none) was not found.');
    assert.not.ok(on.state().pools.some((p) => p.fullPath === '/klb/tx2'));
  }
});

it('a request that takes too long fails with a timeout error', async () => {
  const c = client({ timeoutMs: 50, retries: 0 });
  await c.get('/mgmt/tm/ltm/node');
  f5.faults.latencyMs = 400;
  try {
    const err = await rejects(c.get('/mgmt/tm/ltm/node'));
    assert.ok(isF5Error(err, 'F5_NETWORK'));
    assert.match((err as Error).message, /timeout|ETIMEDOUT/i);
  } finally {
    f5.faults.latencyMs = 0;
  }
});

it('no password or token ever appears in the logs', async () => {
  const { logger, lines } = recordingLogger();
  const c = client({ password: 'admin', logger, tokenRefreshMarginSeconds: 1200 });
  await c.get('/mgmt/tm/ltm/node');
  f5.expireTokens();
  await c.get('/mgmt/tm/ltm/node');
  await rejects(c.get('/mgmt/tm/ltm/pool/~klb~ghost'));
  await c.close();
  const text = JSON.stringify(lines);
  assert.ok(lines.length > 0);
  assert.not.ok(text.includes('"admin:admin"') || /password/i.test(text), 'no password');
  for (const record of f5.calls.records()) {
    const token = /\/mgmt\/shared\/authz\/tokens\/([A-Z0-9_-]+)/i.exec(record.path)?.[1];
    if (token) assert.not.ok(text.includes(token), 'no token');
  }
});

it('configuration from the original environment names and from a Secret', () => {
  const env = f5ConfigFromEnv({ F5_HOST: '10.0.0.1', F5_USER: 'u', F5_PASSWORD: 'p' });
  assert.equal(env, { host: '10.0.0.1', username: 'u', password: 'p' });
  assert.throws(() => f5ConfigFromEnv({ F5_HOST: '10.0.0.1' }), /user, password missing/);
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const secret = f5ConfigFromSecret({
    host: b64('bigip:8443'),
    username: b64('u'),
    password: b64('p'),
    'ca.crt': b64('PEM'),
  });
  assert.equal(secret, { host: 'bigip:8443', username: 'u', password: 'p', ca: 'PEM' });
  const insecure = f5ConfigFromSecret({
    F5_HOST: b64('h'),
    F5_USER: b64('u'),
    F5_PASSWORD: b64('p'),
    insecureSkipVerify: b64('true'),
  });
  assert.is(insecure.insecureSkipVerify, true);
});

test.run();
