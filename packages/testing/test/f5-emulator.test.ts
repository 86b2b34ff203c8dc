// Checks the emulator against F5's documented behaviour (F5-ICONTROL.md) with plain HTTPS
// requests: no KLB client involved.
import { request } from 'node:https';
import { type F5Emulator, requireComponents, startF5Emulator } from '@klb/testing';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('f5 emulator');
const missing = requireComponents('openssl');
const it = missing ? test.skip : test;
let f5!: F5Emulator;
if (!missing) {
  f5 = await startF5Emulator({ partitions: ['klb', 'other'] });
  test.after(async () => {
    await f5.stop();
  });
}

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

function call(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  trust = true,
): Promise<Reply> {
  const basic = `Basic ${Buffer.from('admin:admin').toString('base64')}`;
  const auth = headers['X-F5-Auth-Token'] || headers.authorization !== undefined ? {} : { authorization: basic };
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      `${f5.url}${path}`,
      {
        method,
        ...(trust ? { ca: f5.ca } : {}),
        headers: { 'content-type': 'application/json', ...auth, ...headers },
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

async function login(username = 'admin', password = 'admin'): Promise<Reply> {
  return call(
    'POST',
    '/mgmt/shared/authn/login',
    { username, password, loginProviderName: 'tmos' },
    { authorization: '' },
  );
}

function tokenOf(reply: Reply): string {
  return (reply.body.token as { token: string }).token;
}

it('the certificate is self-signed: verification fails without the CA and passes with it', async () => {
  let failed = false;
  try {
    await call('GET', '/mgmt/tm/ltm/pool', undefined, {}, false);
  } catch (err) {
    failed = /SELF_SIGNED|self-signed|self signed/i.test(`${String((err as { code?: string }).code)} ${String(err)}`);
  }
  assert.ok(failed, 'a client without the CA bundle must fail verification');
  assert.is((await call('GET', '/mgmt/tm/ltm/pool')).status, 200);
});

it('login returns a token valid for 1200 s, usable as X-F5-Auth-Token, extendable, deletable', async () => {
  const reply = await login();
  assert.is(reply.status, 200);
  const token = reply.body.token as Record<string, unknown>;
  assert.is(reply.body.username, 'admin');
  assert.is(reply.body.loginProviderName, 'tmos');
  assert.is(token.timeout, 1200);
  for (const key of ['token', 'name', 'userName', 'startTime', 'expirationMicros', 'selfLink'])
    assert.ok(key in token, key);
  const t = tokenOf(reply);
  assert.is((await call('GET', '/mgmt/tm/ltm/pool', undefined, { 'X-F5-Auth-Token': t })).status, 200);
  const extended = await call('PATCH', `/mgmt/shared/authz/tokens/${t}`, { timeout: 36000 }, { 'X-F5-Auth-Token': t });
  assert.is(extended.status, 200);
  assert.is(extended.body.timeout, 36000);
  const tooLong = await call('PATCH', `/mgmt/shared/authz/tokens/${t}`, { timeout: 36001 }, { 'X-F5-Auth-Token': t });
  assert.is(tooLong.status, 400);
  assert.is((await call('DELETE', `/mgmt/shared/authz/tokens/${t}`, undefined, { 'X-F5-Auth-Token': t })).status, 200);
  const after = await call('GET', '/mgmt/tm/ltm/pool', undefined, { 'X-F5-Auth-Token': t });
  assert.is(after.status, 401);
  assert.is(after.body.message, 'X-F5-Auth-Token does not exist.');
});

it('a token expires after its timeout, counted from its start time', async () => {
  const t = tokenOf(await login());
  f5.clock.advance(1199);
  assert.is((await call('GET', '/mgmt/tm/ltm/node', undefined, { 'X-F5-Auth-Token': t })).status, 200);
  f5.clock.advance(2);
  const expired = await call('GET', '/mgmt/tm/ltm/node', undefined, { 'X-F5-Auth-Token': t });
  assert.is(expired.status, 401);
  assert.is(expired.body.message, 'X-F5-Auth-Token has expired.');
  assert.is(expired.body.kind, ':resterrorresponse');
});

it('forced expiry and failover make tokens fail with F5 messages', async () => {
  const a = tokenOf(await login());
  f5.expireTokens();
  assert.is(
    (await call('GET', '/mgmt/tm/ltm/node', undefined, { 'X-F5-Auth-Token': a })).body.message,
    'X-F5-Auth-Token has expired.',
  );
  const b = tokenOf(await login());
  f5.forgetTokens();
  assert.is(
    (await call('GET', '/mgmt/tm/ltm/node', undefined, { 'X-F5-Auth-Token': b })).body.message,
    'X-F5-Auth-Token does not exist.',
  );
});

it('at most 100 active tokens per user: the 101st login fails 400', async () => {
  f5.expireTokens();
  for (let i = 0; i < 100; i++) assert.is((await login()).status, 200);
  assert.is(f5.activeTokens('admin'), 100);
  const refused = await login();
  assert.is(refused.status, 400);
  assert.is(refused.body.message, 'user admin has reached maximum active login tokens');
  f5.expireTokens();
  assert.is((await login()).status, 200);
  f5.expireTokens();
});

it('requests without credentials, and bad passwords, are refused with 401', async () => {
  const none = await call('GET', '/mgmt/tm/ltm/pool', undefined, { authorization: '' });
  assert.is(none.status, 401);
  const bad = await login('admin', 'wrong');
  assert.is(bad.status, 401);
});

it('pool CRUD, duplicate 409, members subcollection, expandSubcollections, monitor trailing space', async () => {
  const created = await call('POST', '/mgmt/tm/ltm/pool', {
    name: 'web',
    partition: 'klb',
    monitor: '/Common/tcp',
    members: [{ name: '10.0.0.5:30080', address: '10.0.0.5', partition: 'klb' }],
  });
  assert.is(created.status, 200);
  assert.is(created.body.fullPath, '/klb/web');
  assert.is(created.body.kind, 'tm:ltm:pool:poolstate');
  const dup = await call('POST', '/mgmt/tm/ltm/pool', { name: 'web', partition: 'klb' });
  assert.is(dup.status, 409);
  assert.equal(dup.body, {
    code: 409,
    message: '01020066:3: The requested Pool (/klb/web) already exists in partition klb.',
    errorStack: [],
    apiError: 3,
  });
  const plain = await call('GET', '/mgmt/tm/ltm/pool/~klb~web');
  assert.is(plain.body.monitor, '/Common/tcp ');
  assert.is((plain.body.membersReference as Record<string, unknown>).items, undefined);
  const expanded = await call('GET', '/mgmt/tm/ltm/pool/~klb~web?expandSubcollections=true');
  const items = (expanded.body.membersReference as { items: Record<string, unknown>[] }).items;
  assert.is(items.length, 1);
  assert.is(items[0]?.name, '10.0.0.5:30080');
  assert.is(items[0]?.session, 'monitor-enabled');
  const node = await call('GET', '/mgmt/tm/ltm/node/~klb~10.0.0.5');
  assert.is(node.status, 200, 'a member named IP:port creates its node');
  const list = await call('GET', '/mgmt/tm/ltm/pool?$filter=partition%20eq%20klb&expandSubcollections=true');
  assert.is(list.body.kind, 'tm:ltm:pool:poolcollectionstate');
  assert.ok((list.body.items as unknown[]).length >= 1);
  const missing = await call('GET', '/mgmt/tm/ltm/pool/~klb~nope');
  assert.equal(missing.body, {
    code: 404,
    message: '01020036:3: The requested Pool (/klb/nope) was not found.',
    errorStack: [],
    apiError: 3,
  });
});

it('PATCH with members replaces the whole member set; a member address cannot change', async () => {
  await call('POST', '/mgmt/tm/ltm/pool', {
    name: 'set',
    partition: 'klb',
    members: [{ name: '10.0.1.1:80', partition: 'klb' }],
  });
  const patched = await call('PATCH', '/mgmt/tm/ltm/pool/~klb~set', {
    members: [
      { name: '10.0.1.2:80', partition: 'klb' },
      { name: '10.0.1.3:80', partition: 'klb', session: 'user-disabled' },
    ],
  });
  assert.is(patched.status, 200);
  const members = await call('GET', '/mgmt/tm/ltm/pool/~klb~set/members');
  assert.equal(
    (members.body.items as Record<string, unknown>[]).map((m) => [m.name, m.session]),
    [
      ['10.0.1.2:80', 'user-enabled'],
      ['10.0.1.3:80', 'user-disabled'],
    ],
  );
  const change = await call('PATCH', '/mgmt/tm/ltm/pool/~klb~set/members/~klb~10.0.1.2:80', { address: '10.9.9.9' });
  assert.is(change.status, 400);
});

it('IPv6 members use addr.port and IPv6 destinations addr.port', async () => {
  const pool = await call('POST', '/mgmt/tm/ltm/pool', {
    name: 'v6',
    partition: 'klb',
    members: [{ name: '2001:db8::5.8080', partition: 'klb' }],
  });
  assert.is(pool.status, 200);
  const member = await call('GET', '/mgmt/tm/ltm/pool/~klb~v6/members/~klb~2001:db8::5.8080');
  assert.is(member.body.address, '2001:db8::5');
  const vs = await call('POST', '/mgmt/tm/ltm/virtual', {
    name: 'v6-vs',
    partition: 'klb',
    destination: '/klb/2001:db8::1.80',
    pool: '/klb/v6',
  });
  assert.is(vs.status, 200);
  assert.is(vs.body.destination, '/klb/2001:db8::1.80');
  assert.is((await call('GET', '/mgmt/tm/ltm/virtual-address/~klb~2001:db8::1')).status, 200);
});

it('a member named nodename:port needs its node; node deletion is refused while a member uses it', async () => {
  await call('POST', '/mgmt/tm/ltm/pool', { name: 'named', partition: 'klb' });
  const missing = await call('POST', '/mgmt/tm/ltm/pool/~klb~named/members', { name: 'n1:80', partition: 'klb' });
  assert.is(missing.status, 404);
  assert.is(missing.body.message, '01020036:3: The requested node (/klb/n1) was not found.');
  assert.is(
    (await call('POST', '/mgmt/tm/ltm/node', { name: 'n1', partition: 'klb', address: '10.0.2.1' })).status,
    200,
  );
  const added = await call('POST', '/mgmt/tm/ltm/pool/~klb~named/members', { name: 'n1:80', partition: 'klb' });
  assert.is(added.status, 200);
  assert.is(added.body.address, '10.0.2.1');
  const refused = await call('DELETE', '/mgmt/tm/ltm/node/~klb~n1');
  assert.is(refused.status, 400);
  assert.is(refused.body.message, "01070110:3: Node address '/klb/n1' is referenced by a member of pool '/klb/named'.");
});

it('a member POST without partition answers 404 although it was applied', async () => {
  await call('POST', '/mgmt/tm/ltm/pool', { name: 'quirk', partition: 'klb' });
  const reply = await call('POST', '/mgmt/tm/ltm/pool/~klb~quirk/members', { name: '10.0.3.1:80' });
  assert.is(reply.status, 404);
  const members = await call('GET', '/mgmt/tm/ltm/pool/~klb~quirk/members');
  assert.is((members.body.items as unknown[]).length, 1);
});

it('virtuals: pool must exist, the pool in use cannot be deleted, the virtual address comes and goes', async () => {
  const noPool = await call('POST', '/mgmt/tm/ltm/virtual', {
    name: 'vs',
    partition: 'klb',
    destination: '/klb/10.1.1.10:80',
    pool: '/klb/ghost',
  });
  assert.is(noPool.status, 404);
  assert.is(noPool.body.message, '01020036:3: The requested Pool (/klb/ghost) was not found.');
  await call('POST', '/mgmt/tm/ltm/pool', { name: 'vp', partition: 'klb' });
  const vs = await call('POST', '/mgmt/tm/ltm/virtual', {
    name: 'vs',
    partition: 'klb',
    destination: '/klb/10.1.1.10:80',
    ipProtocol: 'tcp',
    pool: '/klb/vp',
    sourceAddressTranslation: { type: 'automap' },
    profiles: [{ name: '/Common/http', context: 'all' }, '/Common/tcp'],
  });
  assert.is(vs.status, 200);
  assert.is(vs.body.kind, 'tm:ltm:virtual:virtualstate');
  assert.is((await call('GET', '/mgmt/tm/ltm/virtual-address/~klb~10.1.1.10')).status, 200);
  const inUse = await call('DELETE', '/mgmt/tm/ltm/pool/~klb~vp');
  assert.is(inUse.status, 400);
  assert.match(String(inUse.body.message), 'is referenced by one or more virtual servers');
  const expanded = await call('GET', '/mgmt/tm/ltm/virtual/~klb~vs?expandSubcollections=true');
  assert.is((expanded.body.profilesReference as { items: unknown[] }).items.length, 2);
  assert.is((await call('DELETE', '/mgmt/tm/ltm/virtual/~klb~vs')).status, 200);
  assert.is((await call('GET', '/mgmt/tm/ltm/virtual-address/~klb~10.1.1.10')).status, 404);
  assert.is((await call('DELETE', '/mgmt/tm/ltm/pool/~klb~vp')).status, 200);
});

it('monitors: tcp/http/https with defaults; a monitor used by a pool cannot be deleted', async () => {
  const m = await call('POST', '/mgmt/tm/ltm/monitor/http', {
    name: 'hm',
    partition: 'klb',
    defaultsFrom: '/Common/http',
    send: 'GET /healthz HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n',
    recv: '200',
  });
  assert.is(m.status, 200);
  assert.is(m.body.interval, 5);
  assert.is(m.body.timeout, 16);
  assert.is(m.body.kind, 'tm:ltm:monitor:http:httpstate');
  assert.is((await call('POST', '/mgmt/tm/ltm/monitor/tcp', { name: 'tm', partition: 'klb' })).status, 200);
  assert.is((await call('POST', '/mgmt/tm/ltm/monitor/https', { name: 'sm', partition: 'klb' })).status, 200);
  const badPool = await call('POST', '/mgmt/tm/ltm/pool', { name: 'mp', partition: 'klb', monitor: '/klb/none' });
  assert.is(badPool.status, 400);
  await call('POST', '/mgmt/tm/ltm/pool', { name: 'mp', partition: 'klb', monitor: '/klb/hm and /klb/tm' });
  const inUse = await call('DELETE', '/mgmt/tm/ltm/monitor/http/~klb~hm');
  assert.is(inUse.status, 400);
  assert.is(inUse.body.message, '01070083:3: Monitor /klb/hm is in use.');
});

it('source-addr persistence: created from /Common/source_addr with its own timeout (a string), modified, deleted', async () => {
  const created = await call('POST', '/mgmt/tm/ltm/persistence/source-addr', {
    name: 'sticky',
    partition: 'klb',
    defaultsFrom: '/Common/source_addr',
    timeout: '600',
  });
  assert.is(created.status, 200);
  assert.is(created.body.kind, 'tm:ltm:persistence:source-addr:source-addrstate');
  assert.is(created.body.fullPath, '/klb/sticky');
  assert.is(created.body.timeout, '600');
  assert.is(created.body.matchAcrossPools, 'disabled', 'inherited from the parent');
  const inherited = await call('POST', '/mgmt/tm/ltm/persistence/source-addr', { name: 'plain', partition: 'klb' });
  assert.is(inherited.body.defaultsFrom, '/Common/source_addr');
  assert.is(inherited.body.timeout, '180', "the stock profile's timeout");
  const duplicate = await call('POST', '/mgmt/tm/ltm/persistence/source-addr', { name: 'sticky', partition: 'klb' });
  assert.is(duplicate.status, 409);
  assert.is(
    duplicate.body.message,
    '01020066:3: The requested Persistence Profile (/klb/sticky) already exists in partition klb.',
  );
  const noParent = await call('POST', '/mgmt/tm/ltm/persistence/source-addr', {
    name: 'orphan',
    partition: 'klb',
    defaultsFrom: '/Common/nothing',
  });
  assert.is(noParent.status, 404);
  const badTimeout = await call('PATCH', '/mgmt/tm/ltm/persistence/source-addr/~klb~sticky', { timeout: 'soon' });
  assert.is(badTimeout.status, 400);
  const modified = await call('PATCH', '/mgmt/tm/ltm/persistence/source-addr/~klb~sticky', { timeout: 30 });
  assert.is(modified.body.timeout, '30');
  const listed = await call('GET', '/mgmt/tm/ltm/persistence/source-addr?$filter=partition%20eq%20klb');
  assert.is(listed.body.kind, 'tm:ltm:persistence:source-addr:source-addrcollectionstate');
  assert.equal((listed.body.items as { name: string }[]).map((p) => p.name).sort(), ['plain', 'sticky']);
  assert.is((await call('DELETE', '/mgmt/tm/ltm/persistence/source-addr/~klb~plain')).status, 200);
  assert.is((await call('GET', '/mgmt/tm/ltm/persistence/source-addr/~klb~plain')).status, 404);
});

it('persist on a virtual: the profile must exist, and cannot be deleted while a virtual references it', async () => {
  await call('POST', '/mgmt/tm/ltm/pool', { name: 'pp', partition: 'klb' });
  const missing = await call('POST', '/mgmt/tm/ltm/virtual', {
    name: 'pv',
    partition: 'klb',
    destination: '/klb/10.1.5.1:80',
    pool: '/klb/pp',
    persist: [{ name: 'ghost', partition: 'klb', tmDefault: 'yes' }],
  });
  assert.is(missing.status, 404);
  assert.is(missing.body.message, '01020036:3: The requested Persistence Profile (/klb/ghost) was not found.');
  const vs = await call('POST', '/mgmt/tm/ltm/virtual', {
    name: 'pv',
    partition: 'klb',
    destination: '/klb/10.1.5.1:80',
    pool: '/klb/pp',
    persist: [{ name: 'sticky', partition: 'klb', tmDefault: 'yes' }],
  });
  assert.is(vs.status, 200);
  const persist = vs.body.persist as Record<string, unknown>[];
  assert.equal(
    persist.map((p) => [p.name, p.partition, p.tmDefault]),
    [['sticky', 'klb', 'yes']],
  );
  const stock = await call('POST', '/mgmt/tm/ltm/virtual', {
    name: 'pv2',
    partition: 'klb',
    destination: '/klb/10.1.5.2:80',
    persist: [{ name: '/Common/source_addr' }],
  });
  assert.equal(
    (stock.body.persist as Record<string, unknown>[]).map((p) => [p.name, p.partition]),
    [['source_addr', 'Common']],
  );
  const inUse = await call('DELETE', '/mgmt/tm/ltm/persistence/source-addr/~klb~sticky');
  assert.is(inUse.status, 400);
  assert.is(
    inUse.body.message,
    '01070265:3: The Persistence Profile (/klb/sticky) cannot be deleted because it is in use by a virtual server (/klb/pv).',
  );
  // Detach and delete in one transaction, in that order: allowed. The reverse order fails.
  const reversed = String((await call('POST', '/mgmt/tm/transaction', {})).body.transId);
  const r = { 'X-F5-REST-Coordination-Id': reversed };
  await call('DELETE', '/mgmt/tm/ltm/persistence/source-addr/~klb~sticky', undefined, r);
  await call('PATCH', '/mgmt/tm/ltm/virtual/~klb~pv', { persist: [] }, r);
  const failed = await call('PATCH', `/mgmt/tm/transaction/${reversed}`, { state: 'VALIDATING' });
  assert.is(failed.body.state, 'FAILED');
  assert.match(String(failed.body.failureReason), 'is in use by a virtual server (/klb/pv)');
  const ordered = String((await call('POST', '/mgmt/tm/transaction', {})).body.transId);
  const h = { 'X-F5-REST-Coordination-Id': ordered };
  await call('PATCH', '/mgmt/tm/ltm/virtual/~klb~pv', { persist: [] }, h);
  await call('DELETE', '/mgmt/tm/ltm/persistence/source-addr/~klb~sticky', undefined, h);
  assert.is((await call('PATCH', `/mgmt/tm/transaction/${ordered}`, { state: 'VALIDATING' })).body.state, 'COMPLETED');
  assert.equal((await call('GET', '/mgmt/tm/ltm/virtual/~klb~pv')).body.persist, []);
  assert.not.ok(f5.state().persistence.sourceAddr.some((p) => p.fullPath === '/klb/sticky'));
  await call('DELETE', '/mgmt/tm/ltm/virtual/~klb~pv');
  await call('DELETE', '/mgmt/tm/ltm/virtual/~klb~pv2');
  await call('DELETE', '/mgmt/tm/ltm/pool/~klb~pp');
});

it('unknown partition and unregistered paths', async () => {
  const noPartition = await call('POST', '/mgmt/tm/ltm/pool', { name: 'x', partition: 'nope' });
  assert.is(noPartition.status, 404);
  const unregistered = await call('GET', '/mgmt/tm/ltm/nothing');
  assert.is(unregistered.status, 404);
  assert.is(unregistered.body.kind, ':resterrorresponse');
  assert.match(String(unregistered.body.message), 'Public URI path not registered');
});

it('transactions: queued writes are invisible until commit, then applied', async () => {
  const tx = await call('POST', '/mgmt/tm/transaction', {});
  assert.is(tx.body.state, 'STARTED');
  assert.ok(typeof tx.body.timeoutSeconds === 'number');
  const id = String(tx.body.transId);
  const h = { 'X-F5-REST-Coordination-Id': id };
  assert.is((await call('POST', '/mgmt/tm/ltm/pool', { name: 'txp', partition: 'klb' }, h)).status, 200);
  assert.is(
    (
      await call(
        'POST',
        '/mgmt/tm/ltm/virtual',
        { name: 'txv', partition: 'klb', destination: '/klb/10.1.2.1:80', pool: '/klb/txp' },
        h,
      )
    ).status,
    200,
  );
  assert.is(
    (await call('GET', '/mgmt/tm/ltm/pool/~klb~txp', undefined, h)).status,
    404,
    'GETs do not see queued changes',
  );
  const commands = await call('GET', `/mgmt/tm/transaction/${id}/commands`);
  assert.equal(
    (commands.body.items as Record<string, unknown>[]).map((c) => [c.method, c.evalOrder]),
    [
      ['POST', 1],
      ['POST', 2],
    ],
  );
  const withHeader = await call('PATCH', `/mgmt/tm/transaction/${id}`, { state: 'VALIDATING' }, h);
  assert.is(withHeader.status, 400, 'queue management with the header is refused');
  const committed = await call('PATCH', `/mgmt/tm/transaction/${id}`, { state: 'VALIDATING' });
  assert.is(committed.body.state, 'COMPLETED');
  assert.is((await call('GET', '/mgmt/tm/ltm/virtual/~klb~txv')).status, 200);
});

it('transactions: a failing command fails the whole commit and applies nothing', async () => {
  const id = String((await call('POST', '/mgmt/tm/transaction', {})).body.transId);
  const h = { 'X-F5-REST-Coordination-Id': id };
  await call('POST', '/mgmt/tm/ltm/pool', { name: 'fp', partition: 'klb' }, h);
  await call(
    'POST',
    '/mgmt/tm/ltm/virtual',
    { name: 'fv', partition: 'klb', destination: '/klb/10.1.3.1:80', pool: '/klb/missing' },
    h,
  );
  const committed = await call('PATCH', `/mgmt/tm/transaction/${id}`, { state: 'VALIDATING' });
  assert.is(committed.body.state, 'FAILED');
  assert.is(committed.body.failureReason, '01020036:3: The requested Pool (/klb/missing) was not found.');
  assert.is((await call('GET', '/mgmt/tm/ltm/pool/~klb~fp')).status, 404);
});

it('transactions: one not committed within timeoutSeconds is dropped', async () => {
  const tx = await call('POST', '/mgmt/tm/transaction', {});
  const id = String(tx.body.transId);
  await call('POST', '/mgmt/tm/ltm/pool', { name: 'late', partition: 'klb' }, { 'X-F5-REST-Coordination-Id': id });
  f5.clock.advance(Number(tx.body.timeoutSeconds) + 1);
  const commit = await call('PATCH', `/mgmt/tm/transaction/${id}`, { state: 'VALIDATING' });
  assert.is(commit.status, 404);
  assert.is((await call('GET', '/mgmt/tm/ltm/pool/~klb~late')).status, 404);
  f5.expireTokens();
});

it('fault injection: 503, mcpd lost, unregistered URI, member 404 despite success', async () => {
  const stop503 = f5.faults.add({ effect: 'service-unavailable', path: '/mgmt/tm/ltm/node', times: 1 });
  assert.is((await call('GET', '/mgmt/tm/ltm/node')).status, 503);
  assert.is((await call('GET', '/mgmt/tm/ltm/node')).status, 200);
  stop503();
  f5.faults.add({ effect: 'mcpd-lost', method: 'GET', path: '/mgmt/tm/ltm/node', times: 1 });
  const lost = await call('GET', '/mgmt/tm/ltm/node');
  assert.is(lost.status, 500);
  assert.is(lost.body.message, 'The connection to mcpd has been lost, try again.');
  f5.faults.add({ effect: 'uri-not-registered', path: /virtual$/, times: 1 });
  assert.match(String((await call('GET', '/mgmt/tm/ltm/virtual')).body.message), 'Public URI path not registered');
  await call('POST', '/mgmt/tm/ltm/pool', { name: 'q2', partition: 'klb' });
  f5.faults.add({ effect: 'member-404-despite-success', path: '/members', times: 1 });
  const quirk = await call('POST', '/mgmt/tm/ltm/pool/~klb~q2/members', { name: '10.0.4.1:80', partition: 'klb' });
  assert.is(quirk.status, 404);
  assert.is(((await call('GET', '/mgmt/tm/ltm/pool/~klb~q2/members')).body.items as unknown[]).length, 1);
  f5.faults.clear();
});

it('the call log counts reads and writes; transaction bookkeeping and queued commands apart', async () => {
  const mark = f5.calls.length;
  await call('GET', '/mgmt/tm/ltm/pool');
  await call('POST', '/mgmt/tm/ltm/pool', { name: 'counted', partition: 'klb' });
  const id = String((await call('POST', '/mgmt/tm/transaction', {})).body.transId);
  await call('DELETE', '/mgmt/tm/ltm/pool/~klb~counted', undefined, { 'X-F5-REST-Coordination-Id': id });
  await call('PATCH', `/mgmt/tm/transaction/${id}`, { state: 'VALIDATING' });
  const counts = f5.calls.counts(mark);
  assert.equal(counts, { reads: 1, writes: 2, auth: 0, transaction: 1, queued: 1, total: 5 });
});

it('state() returns the whole configuration', () => {
  const state = f5.state();
  assert.ok(state.pools.some((p) => p.fullPath === '/klb/web' && (p.members as unknown[]).length === 1));
  assert.ok(state.nodes.some((n) => n.fullPath === '/klb/10.0.0.5'));
  assert.ok(state.monitors.http.some((m) => m.fullPath === '/klb/hm'));
  assert.ok(state.virtuals.some((v) => v.fullPath === '/klb/txv'));
});

test.run();
