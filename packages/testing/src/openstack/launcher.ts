import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort } from '../free-port.js';
import { ProcessGroup } from '../process-group.js';
import { ProviderControl } from './provider-control.js';

const run = promisify(execFile);

/** Options of {@link startOpenStack}. */
export interface OpenStackOptions {
  /** Seconds a load balancer stays PENDING_* before the provider reports it; default 0.2. Changeable later. */
  readonly provisioningDelaySeconds?: number;
  /** Keystone `[token] expiration`, in seconds; default 3600. */
  readonly tokenExpirationSeconds?: number;
  /**
   * How long octavia-api's keystonemiddleware caches a validated token, in seconds (`-1`: never,
   * every request is validated by Keystone, so a revoked token is refused at once); default 300.
   */
  readonly tokenCacheSeconds?: number;
  /** Region of the catalog entries; default `RegionOne`. */
  readonly region?: string;
  /** Python interpreter that sees Debian's OpenStack packages; default `/usr/bin/python3`. */
  readonly python?: string;
  /** Receives one line per lifecycle step; default: silent. */
  readonly onLog?: (line: string) => void;
  /** How long to wait for each server to become ready, in milliseconds; default 120000. */
  readonly readyTimeoutMs?: number;
}

/** Password credentials of a Keystone user, scoped to a project, all by name. */
export interface OpenStackUser {
  /** User name. */
  readonly username: string;
  /** User id. */
  readonly userId: string;
  /** Password. */
  readonly password: string;
  /** Project name. */
  readonly projectName: string;
  /** Project id. */
  readonly projectId: string;
  /** Domain of the user and the project (`Default`). */
  readonly domainName: string;
}

/** Pids of the processes {@link startOpenStack} started (absent: not running). */
export interface OpenStackPids {
  /** keystone-wsgi-public. */
  readonly keystone?: number;
  /** octavia-api. */
  readonly octavia?: number;
  /** The provider-status process. */
  readonly provider?: number;
}

/** A Keystone token issued by {@link OpenStack.issueToken}. */
export interface IssuedToken {
  /** The token (`X-Subject-Token`). */
  readonly token: string;
  /** Keystone's `expires_at`. */
  readonly expiresAt: string;
}

/** A running Keystone + Octavia API + provider-status process, from {@link startOpenStack}. */
export interface OpenStack {
  /** Keystone v3 URL, `http://127.0.0.1:<port>/v3` (`OS_AUTH_URL`). */
  readonly authUrl: string;
  /** Region of the catalog entries. */
  readonly region: string;
  /**
   * The Octavia endpoint registered in the catalog for the `public` and `admin` interfaces: the
   * provider-status proxy in front of octavia-api (records requests, can inject 503s).
   */
  readonly octaviaUrl: string;
  /** octavia-api itself, registered as the `internal` interface. */
  readonly octaviaDirectUrl: string;
  /** The cloud admin (`keystone-manage bootstrap`): role `admin` on project `admin`. */
  readonly admin: OpenStackUser;
  /** An ordinary user with roles `member` and `load-balancer_member` on its own project `klb`. */
  readonly user: OpenStackUser;
  /** A subnet id for `vip_subnet_id` (the noop network driver accepts any UUID). */
  readonly subnetId: string;
  /** Controls the provider-status process. */
  readonly provider: ProviderControl;
  /** Pids of the running servers (for tests that prove they are real processes). */
  pids(): OpenStackPids;
  /** Issues a project-scoped token for `who` (default the user) through Keystone. */
  issueToken(who?: 'admin' | 'user'): Promise<IssuedToken>;
  /** Directory holding the servers' files and logs; removed by {@link OpenStack.stop}. */
  readonly dir: string;
  /** The last lines of each server's log, for diagnosing a failed test. */
  logTails(lines?: number): string;
  /** Stops every process (by pid) and removes {@link OpenStack.dir}. Safe to call twice. */
  stop(): Promise<void>;
}

function scriptPath(name: string): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const candidate of [join(here, name), join(here, '..', '..', 'src', 'openstack', name)]) {
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`@klb/testing: ${name} not found next to ${here}`);
}

async function waitFor(
  what: string,
  timeoutMs: number,
  group: ProcessGroup,
  probe: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const exited = group.exited();
    if (exited) throw new Error(`${what} did not start: ${exited}`);
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what} not ready after ${timeoutMs} ms\n${group.logTails()}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function keystone<T>(authUrl: string, token: string, method: string, path: string, body?: unknown): Promise<T> {
  let res: Response | undefined;
  // Keystone on sqlite answers 500 "database is locked" now and then; the request had no effect.
  for (let attempt = 0; attempt < 20; attempt++) {
    res = await fetch(`${authUrl}${path}`, {
      method,
      headers: { 'content-type': 'application/json', 'x-auth-token': token },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (res.status !== 500) break;
    await res.text();
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  if (!res) throw new Error(`keystone ${method} ${path}: no answer`);
  if (!res.ok) throw new Error(`keystone ${method} ${path}: HTTP ${res.status} ${await res.text()}`);
  return (res.status === 204 ? {} : await res.json()) as T;
}

async function passwordToken(
  authUrl: string,
  user: Pick<OpenStackUser, 'username' | 'password' | 'projectName' | 'domainName'>,
): Promise<{ token: string; expiresAt: string; userId: string; projectId: string }> {
  const res = await fetch(`${authUrl}/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: user.username, domain: { name: user.domainName }, password: user.password } },
        },
        scope: { project: { name: user.projectName, domain: { name: user.domainName } } },
      },
    }),
  });
  const token = res.headers.get('x-subject-token');
  if (res.status !== 201 || !token) throw new Error(`keystone auth failed: HTTP ${res.status} ${await res.text()}`);
  const body = (await res.json()) as {
    token: { expires_at: string; user: { id: string }; project: { id: string } };
  };
  return { token, expiresAt: body.token.expires_at, userId: body.token.user.id, projectId: body.token.project.id };
}

/**
 * Starts a real Keystone (Debian `keystone`: sqlite, fernet tokens, `keystone-manage
 * bootstrap`) and a real Octavia API (Debian `octavia-api`: noop provider, sqlite schema built
 * from Octavia's models, Keystone token validation through keystonemiddleware) on free ports of
 * 127.0.0.1, plus the provider-status process that plays the provider (PENDING_* → ACTIVE /
 * DELETED after a delay; ERROR and 503 injection). Registers the `load-balancer` service and its
 * endpoints with the Keystone API and creates an ordinary user `klb` in project `klb`.
 *
 * Every process is ended by pid in {@link OpenStack.stop}, and also when the test process exits.
 */
export async function startOpenStack(options: OpenStackOptions = {}): Promise<OpenStack> {
  const log = options.onLog ?? (() => {});
  const python = options.python ?? '/usr/bin/python3';
  const region = options.region ?? 'RegionOne';
  const readyTimeoutMs = options.readyTimeoutMs ?? 120_000;
  const shm = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = await mkdtemp(join(shm, 'klb-openstack-'));
  const group = new ProcessGroup(dir);
  const quietPython = { PYTHONWARNINGS: 'ignore' };

  try {
    const [keystonePort, octaviaPort, proxyPort, controlPort] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const authUrl = `http://127.0.0.1:${keystonePort}/v3`;
    const octaviaDirectUrl = `http://127.0.0.1:${octaviaPort}`;
    const octaviaUrl = `http://127.0.0.1:${proxyPort}`;
    const adminPassword = randomBytes(12).toString('hex');

    const keystoneConf = join(dir, 'keystone.conf');
    writeFileSync(
      keystoneConf,
      [
        '[DEFAULT]',
        'use_stderr = true',
        '[database]',
        `connection = sqlite:///${join(dir, 'keystone.db')}?timeout=60`,
        '[fernet_tokens]',
        `key_repository = ${join(dir, 'fernet-keys')}`,
        '[fernet_receipts]',
        `key_repository = ${join(dir, 'fernet-receipts')}`,
        '[credential]',
        `key_repository = ${join(dir, 'credential-keys')}`,
        '[token]',
        `expiration = ${options.tokenExpirationSeconds ?? 3600}`,
        '[identity]',
        'password_hash_rounds = 4',
        '',
      ].join('\n'),
    );
    const manage = async (...args: string[]): Promise<void> => {
      log(`openstack: keystone-manage ${args[0]}`);
      // db_sync prints an eventlet AttributeError at exit although the schema is complete;
      // the next steps (bootstrap) fail loudly if it is not.
      await run('keystone-manage', ['--config-file', keystoneConf, ...args], { cwd: dir }).catch((err: unknown) => {
        if (args[0] !== 'db_sync') throw err;
      });
    };
    await manage('db_sync');
    await manage('fernet_setup', '--keystone-user', 'root', '--keystone-group', 'root');
    await manage('credential_setup', '--keystone-user', 'root', '--keystone-group', 'root');
    await manage(
      'bootstrap',
      '--bootstrap-password',
      adminPassword,
      '--bootstrap-public-url',
      `${authUrl}/`,
      '--bootstrap-region-id',
      region,
    );

    // WAL journal: a reader that keystone leaves open must not make another request's commit
    // fail with "database is locked" (rollback-journal sqlite blocks commits behind readers).
    const wal = async (db: string): Promise<void> => {
      await run(python, [
        '-c',
        'import sqlite3,sys; sqlite3.connect(sys.argv[1]).execute("PRAGMA journal_mode=WAL")',
        db,
      ]);
    };
    await wal(join(dir, 'keystone.db'));
    log(`openstack: starting keystone on ${authUrl}`);
    group.start('keystone', 'keystone-wsgi-public', ['--host', '127.0.0.1', '--port', String(keystonePort)], {
      env: { OS_KEYSTONE_CONFIG_FILES: keystoneConf, ...quietPython },
    });
    await waitFor(`keystone at ${authUrl}`, readyTimeoutMs, group, async () => (await fetch(authUrl)).ok);

    const adminBase = { username: 'admin', password: adminPassword, projectName: 'admin', domainName: 'Default' };
    const adminAuth = await passwordToken(authUrl, adminBase);
    const admin: OpenStackUser = { ...adminBase, userId: adminAuth.userId, projectId: adminAuth.projectId };
    const tok = adminAuth.token;

    const { service } = await keystone<{ service: { id: string } }>(authUrl, tok, 'POST', '/services', {
      service: { type: 'load-balancer', name: 'octavia', enabled: true },
    });
    const endpoints: Array<[string, string]> = [
      ['public', octaviaUrl],
      ['admin', octaviaUrl],
      ['internal', octaviaDirectUrl],
    ];
    for (const [iface, url] of endpoints) {
      await keystone(authUrl, tok, 'POST', '/endpoints', {
        endpoint: { service_id: service.id, interface: iface, url, region_id: region, enabled: true },
      });
    }
    const { project } = await keystone<{ project: { id: string } }>(authUrl, tok, 'POST', '/projects', {
      project: { name: 'klb', domain_id: 'default', enabled: true },
    });
    const userPassword = randomBytes(12).toString('hex');
    const { user: created } = await keystone<{ user: { id: string } }>(authUrl, tok, 'POST', '/users', {
      user: { name: 'klb', domain_id: 'default', password: userPassword, enabled: true },
    });
    const { role: lbRole } = await keystone<{ role: { id: string } }>(authUrl, tok, 'POST', '/roles', {
      role: { name: 'load-balancer_member' },
    });
    const { roles } = await keystone<{ roles: Array<{ id: string; name: string }> }>(
      authUrl,
      tok,
      'GET',
      '/roles?name=member',
    );
    for (const roleId of [lbRole.id, ...roles.map((r) => r.id)]) {
      await keystone(authUrl, tok, 'PUT', `/projects/${project.id}/users/${created.id}/roles/${roleId}`);
    }
    const user: OpenStackUser = {
      username: 'klb',
      userId: created.id,
      password: userPassword,
      projectName: 'klb',
      projectId: project.id,
      domainName: 'Default',
    };

    const octaviaDb = join(dir, 'octavia.db');
    log('openstack: building the octavia schema');
    await run(python, [scriptPath('octavia-schema.py'), octaviaDb], {
      cwd: dir,
      env: { ...process.env, ...quietPython },
    });
    await wal(octaviaDb);
    const serviceAuth = [
      `auth_url = ${authUrl}`,
      'auth_type = password',
      'username = admin',
      `password = ${adminPassword}`,
      'project_name = admin',
      'user_domain_name = Default',
      'project_domain_name = Default',
    ];
    const octaviaConf = join(dir, 'octavia.conf');
    writeFileSync(
      octaviaConf,
      [
        '[DEFAULT]',
        'transport_url = fake:/',
        'use_stderr = true',
        '[api_settings]',
        'bind_host = 127.0.0.1',
        `bind_port = ${octaviaPort}`,
        'auth_strategy = keystone',
        'enabled_provider_drivers = noop_driver:The noop provider; provider-status reports its outcomes',
        'default_provider_driver = noop_driver',
        '[controller_worker]',
        'network_driver = network_noop_driver',
        'compute_driver = compute_noop_driver',
        'amphora_driver = amphora_noop_driver',
        '[database]',
        `connection = sqlite:///${octaviaDb}?timeout=60`,
        '[keystone_authtoken]',
        `www_authenticate_uri = ${authUrl}`,
        'interface = public',
        `region_name = ${region}`,
        `token_cache_time = ${options.tokenCacheSeconds ?? 300}`,
        ...serviceAuth,
        '[service_auth]',
        ...serviceAuth,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    log(`openstack: starting octavia-api on ${octaviaDirectUrl}`);
    group.start('octavia-api', 'octavia-api', ['--config-file', octaviaConf], { env: quietPython });
    await waitFor(`octavia-api at ${octaviaDirectUrl}`, readyTimeoutMs, group, async () => {
      return (await fetch(`${octaviaDirectUrl}/`)).ok;
    });

    log(`openstack: starting provider-status (proxy ${octaviaUrl})`);
    group.start(
      'provider-status',
      python,
      [
        scriptPath('provider-status.py'),
        '--config-file',
        octaviaConf,
        '--db',
        octaviaDb,
        '--control-port',
        String(controlPort),
        '--proxy-port',
        String(proxyPort),
        '--upstream',
        octaviaDirectUrl,
        '--delay',
        String(options.provisioningDelaySeconds ?? 0.2),
      ],
      { env: quietPython },
    );
    const controlUrl = `http://127.0.0.1:${controlPort}`;
    await waitFor('provider-status', readyTimeoutMs, group, async () => (await fetch(`${controlUrl}/health`)).ok);
    await waitFor('the octavia proxy', readyTimeoutMs, group, async () => (await fetch(`${octaviaUrl}/`)).ok);
    log('openstack: ready');

    let stopped = false;
    return {
      authUrl,
      region,
      octaviaUrl,
      octaviaDirectUrl,
      admin,
      user,
      subnetId: randomUUID(),
      provider: new ProviderControl(controlUrl),
      dir,
      pids() {
        const pids: { keystone?: number; octavia?: number; provider?: number } = {};
        const keystonePid = group.pid('keystone');
        const octaviaPid = group.pid('octavia-api');
        const providerPid = group.pid('provider-status');
        if (keystonePid !== undefined) pids.keystone = keystonePid;
        if (octaviaPid !== undefined) pids.octavia = octaviaPid;
        if (providerPid !== undefined) pids.provider = providerPid;
        return pids;
      },
      async issueToken(who = 'user') {
        const issued = await passwordToken(authUrl, who === 'admin' ? admin : user);
        return { token: issued.token, expiresAt: issued.expiresAt };
      },
      logTails(lines = 30) {
        return group.logTails(lines);
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        log('openstack: stopping');
        await group.stopAll();
      },
    };
  } catch (err) {
    const tails = group.logTails(40);
    await group.stopAll();
    throw new Error(`startOpenStack failed: ${(err as Error).message}\n${tails}`, { cause: err });
  }
}
