// The emulator's AS3 service, checked with plain HTTPS requests against AS3's documented answers
// and F5's published schema.
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { as3SchemaValidator, type F5Emulator, requireComponents, startF5Emulator } from '@klb/testing';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const schemaPath = new URL('../../../../shared/data/f5-as3/as3-schema-3.56.0.json', import.meta.url).pathname;
const examplePath = new URL('../../../../shared/data/f5-as3/example-http-https-one-declaration.json', import.meta.url)
  .pathname;
const test = suite('f5 emulator: AS3');
const missing = requireComponents('openssl');
const it = missing ? test.skip : test;
let f5!: F5Emulator;
if (!missing) {
  f5 = await startF5Emulator({ as3SchemaPath: schemaPath, as3TaskPolls: 2 });
  test.after(async () => {
    await f5.stop();
  });
}

function call(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      `${f5.url}${path}`,
      {
        method,
        ca: f5.ca,
        headers: {
          'content-type': 'application/json',
          authorization: `Basic ${Buffer.from('admin:admin').toString('base64')}`,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} });
        });
      },
    );
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

const example = JSON.parse(readFileSync(examplePath, 'utf8')) as Record<string, unknown>;

it("the schema validator accepts F5's own example declaration and rejects a broken one", () => {
  const validate = as3SchemaValidator(schemaPath);
  assert.ok(validate(structuredClone(example)), JSON.stringify(validate.errors?.slice(0, 3)));
  const broken = structuredClone(example) as { declaration: Record<string, Record<string, Record<string, unknown>>> };
  (broken.declaration.Sample_http_04 as Record<string, Record<string, unknown>>).A1 = {
    class: 'Application',
    service: { class: 'Service_HTTP', virtualPort: 'eighty' },
  };
  assert.not.ok(validate(broken));
});

it('info reports the AS3 version', async () => {
  const info = await call('GET', '/mgmt/shared/appsvcs/info');
  assert.is(info.status, 200);
  assert.is(info.body.version, '3.56.0');
});

it('a declaration answers success per tenant, then "no change" when posted again', async () => {
  const first = await call('POST', '/mgmt/shared/appsvcs/declare', example);
  assert.is(first.status, 200);
  assert.equal(
    (first.body.results as Record<string, unknown>[]).map((r) => [r.tenant, r.code, r.message]),
    [['Sample_http_04', 200, 'success']],
  );
  const again = await call('POST', '/mgmt/shared/appsvcs/declare', example);
  assert.is((again.body.results as Record<string, unknown>[])[0]?.message, 'no change');
  const read = await call('GET', '/mgmt/shared/appsvcs/declare');
  assert.ok((read.body.Sample_http_04 as Record<string, unknown>).A1);
});

it('an invalid declaration is a 422 with the errors', async () => {
  const bad = await call('POST', '/mgmt/shared/appsvcs/declare', {
    class: 'ADC',
    schemaVersion: '3.56.0',
    T: { class: 'Tenant', A: { class: 'Application', s: { class: 'Service_TCP', virtualPort: 'x' } } },
  });
  assert.is(bad.status, 422);
  assert.is(bad.body.message, 'declaration is invalid');
  assert.ok((bad.body.errors as unknown[]).length > 0);
});

it('a Persist object referenced from a service is accepted; AS3 pointers must exist and be of the right class', async () => {
  const app = (persistenceMethods: unknown[], pool = 'web_pool') => ({
    class: 'Application',
    web: {
      class: 'Service_TCP',
      virtualAddresses: ['10.1.0.9'],
      virtualPort: 80,
      pool,
      persistenceMethods,
    },
    web_pool: { class: 'Pool', members: [{ servicePort: 30080, serverAddresses: ['10.0.0.1'] }] },
    sticky: { class: 'Persist', persistenceMethod: 'source-address', duration: 600 },
  });
  const post = (a: unknown) =>
    call('POST', '/mgmt/shared/appsvcs/declare/TP/applications', { schemaVersion: '3.56.0', A: a });
  const ok = await post(app([{ use: 'sticky' }]));
  assert.is(ok.status, 200, JSON.stringify(ok.body));
  const declared = f5.state().as3.TP?.A as Record<string, Record<string, unknown>> | undefined;
  assert.equal(declared?.sticky, { class: 'Persist', persistenceMethod: 'source-address', duration: 600 });
  assert.is((await post(app([{ use: '/TP/A/sticky' }]))).status, 200, 'an absolute pointer into the application');
  const missing = await post(app([{ use: 'nothing' }]));
  assert.is(missing.status, 422);
  assert.ok(
    (missing.body.errors as string[]).some((e) =>
      /persistenceMethods\/0\/use: contains path to non-existent object nothing$/.test(e),
    ),
    JSON.stringify(missing.body.errors),
  );
  const wrongClass = await post(app([{ use: 'web_pool' }]));
  assert.is(wrongClass.status, 422);
  assert.ok(
    (wrongClass.body.errors as string[]).some((e) =>
      e.endsWith('AS3 pointer web_pool does not point to required object type'),
    ),
    JSON.stringify(wrongClass.body.errors),
  );
  const badPool = await post(app([], 'no_pool'));
  assert.is(badPool.status, 422);
  const tooLong = await post({
    ...app([{ use: 'sticky' }]),
    sticky: { class: 'Persist', persistenceMethod: 'source-address', duration: 604801 },
  });
  assert.is(tooLong.status, 422, 'AS3 caps duration at 604800 s');
  assert.is((await call('DELETE', '/mgmt/shared/appsvcs/declare/TP')).status, 200);
});

it('async declarations return 202 and a task that reads "in progress" until done', async () => {
  const accepted = await call('POST', '/mgmt/shared/appsvcs/declare?async=true', {
    class: 'ADC',
    schemaVersion: '3.56.0',
    T2: { class: 'Tenant', A: { class: 'Application', p: { class: 'Pool', members: [] } } },
  });
  assert.is(accepted.status, 202);
  const id = String(accepted.body.id);
  const messages: string[] = [];
  for (let i = 0; i < 3; i++) {
    const task = await call('GET', `/mgmt/shared/appsvcs/task/${id}`);
    messages.push(String((task.body.results as Record<string, unknown>[])[0]?.message));
  }
  assert.equal(messages, ['in progress', 'in progress', 'success']);
});

it('per-application API: add, read, replace, delete one application; delete a tenant', async () => {
  const app = {
    class: 'Application',
    web: { class: 'Service_TCP', virtualAddresses: ['10.1.0.1'], virtualPort: 80, pool: 'web_pool' },
    web_pool: { class: 'Pool', members: [{ servicePort: 30080, serverAddresses: ['10.0.0.1'] }] },
  };
  const added = await call('POST', '/mgmt/shared/appsvcs/declare/T3/applications', {
    schemaVersion: '3.56.0',
    A1: app,
  });
  assert.is(added.status, 200);
  assert.is((added.body.results as Record<string, unknown>[])[0]?.message, 'success');
  await call('POST', '/mgmt/shared/appsvcs/declare/T3/applications', { schemaVersion: '3.56.0', A2: app });
  const one = await call('GET', '/mgmt/shared/appsvcs/declare/T3/applications/A1');
  assert.equal(one.body.A1, app);
  const same = await call('POST', '/mgmt/shared/appsvcs/declare/T3/applications', { schemaVersion: '3.56.0', A1: app });
  assert.is((same.body.results as Record<string, unknown>[])[0]?.message, 'no change');
  assert.is((await call('DELETE', '/mgmt/shared/appsvcs/declare/T3/applications/A1')).status, 200);
  assert.is((await call('GET', '/mgmt/shared/appsvcs/declare/T3/applications/A1')).status, 404);
  assert.ok(f5.state().as3.T3?.A2, 'the other application stays');
  assert.is((await call('DELETE', '/mgmt/shared/appsvcs/declare/T3')).status, 200);
  assert.is(f5.state().as3.T3, undefined);
});

test.run();
