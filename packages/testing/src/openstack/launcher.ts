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
import { apiRequest } from './api-request.js';
import { childPids, createNeutronTopology, neutronConfig, type OpenStackNeutron, reapWorkers } from './neutron.js';
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
  /**
   * Also start a real Neutron (Debian `neutron-server`) with the floating-IP topology of
   * {@link OpenStackNeutron}, and make Octavia allocate VIP ports in it; default false.
   */
  readonly neutron?: boolean;
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
  /** neutron-server (with `neutron: true`). */
  readonly neutron?: number;
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
  /**
   * A subnet id for `vip_subnet_id`: any UUID (the noop network driver accepts it), or with
   * `neutron: true` the real VIP subnet ({@link OpenStackNeutron.vipSubnetId}).
   */
  readonly subnetId: string;
  /** The real Neutron and its floating-IP topology, with `neutron: true`; else undefined. */
  readonly neutron?: OpenStackNeutron;
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

function keystone<T>(authUrl: string, token: string, method: string, path: string, body?: unknown): Promise<T> {
  return apiRequest<T>(`${authUrl}${path}`, token, method, body).catch((err: unknown) => {
    throw new Error(`keystone ${(err as Error).message}`, { cause: err });
  });
}

async function registerService(
  authUrl: string,
  token: string,
  region: string,
  type: string,
  name: string,
  endpoints: ReadonlyArray<[string, string]>,
): Promise<void> {
  const { service } = await keystone<{ service: { id: string } }>(authUrl, token, 'POST', '/services', {
    service: { type, name, enabled: true },
  });
  for (const [iface, url] of endpoints) {
    await keystone(authUrl, token, 'POST', '/endpoints', {
      endpoint: { service_id: service.id, interface: iface, url, region_id: region, enabled: true },
    });
  }
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

/** Stops every process of the group, and neutron-server's forked workers with it. */
async function stopGroup(group: ProcessGroup): Promise<void> {
  const neutronPid = group.pid('neutron-server');
  const workers = neutronPid === undefined ? [] : childPids(neutronPid);
  await group.stopAll();
  await reapWorkers(workers);
}

/**
 * Starts a real Keystone (Debian `keystone`: sqlite, fernet tokens, `keystone-manage
 * bootstrap`) and a real Octavia API (Debian `octavia-api`: noop provider, sqlite schema built
 * from Octavia's models, Keystone token validation through keystonemiddleware) on free ports of
 * 127.0.0.1, plus the provider-status process that plays the provider (PENDING_* → ACTIVE /
 * DELETED after a delay; ERROR and 503 injection). Registers the `load-balancer` service and its
 * endpoints with the Keystone API and creates an ordinary user `klb` in project `klb`.
 *
 * With `neutron: true` it also starts a real Neutron (Debian `neutron-server` 21: ML2 without
 * mechanism drivers, the L3 router plugin, sqlite schema built from Neutron's models as its unit
 * tests do, keystonemiddleware, no agents, RPC on the fake transport),
 * registers the `network` service, creates the floating-IP topology of {@link OpenStackNeutron},
 * and points Octavia's network driver at it (`allowed_address_pairs_driver`, `[neutron]
 * endpoint`), so that `vip_port_id` is a real Neutron port on the VIP subnet that a floating IP
 * can be associated with. Why Octavia then defaults to its `amphora` provider and not to the
 * noop one (checked against octavia-api 11's code and by running it):
 *
 * - the noop provider driver implements `create_vip_port` itself and invents the VIP (a random
 *   `vip_port_id`, address `198.0.2.5` unless one is requested), so octavia-api never asks its
 *   network driver for a port, whatever the driver;
 * - the amphora provider's API-side driver (it runs inside octavia-api) allocates the VIP port
 *   through Octavia's network driver, i.e. a real `POST /v2.0/ports` on the VIP subnet
 *   (`device_owner` `Octavia`, in the load balancer's project); its controller-worker messages go
 *   to the fake transport, where nobody consumes them — the provider-status process reports the
 *   outcomes instead, as it does for the noop provider;
 * - Octavia's `DriverUpdater`, which the provider-status process reports DELETED through,
 *   deallocates an Octavia-owned VIP port in Neutron, as for any real provider.
 *
 * So no harness code fakes a port: creating a port with Octavia's chosen id through Neutron's
 * API is not possible anyway (`id` is not writable on POST). The noop provider stays enabled
 * (`provider: 'noop_driver'`).
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
  let neutronStarted: Promise<void> = Promise.resolve();

  try {
    const [keystonePort, octaviaPort, proxyPort, controlPort, neutronPort, neutronProxyPort] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const authUrl = `http://127.0.0.1:${keystonePort}/v3`;
    const octaviaDirectUrl = `http://127.0.0.1:${octaviaPort}`;
    const octaviaUrl = `http://127.0.0.1:${proxyPort}`;
    const neutronDirectUrl = `http://127.0.0.1:${neutronPort}`;
    const neutronUrl = `http://127.0.0.1:${neutronProxyPort}`;
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
    const buildSchema = async (service: string, db: string): Promise<void> => {
      log(`openstack: building the ${service} schema`);
      await run(python, [scriptPath(`${service}-schema.py`), db], {
        cwd: dir,
        env: { ...process.env, ...quietPython },
      });
      await wal(db);
    };
    log(`openstack: starting keystone on ${authUrl}`);
    group.start('keystone', 'keystone-wsgi-public', ['--host', '127.0.0.1', '--port', String(keystonePort)], {
      env: { OS_KEYSTONE_CONFIG_FILES: keystoneConf, ...quietPython },
    });
    await waitFor(`keystone at ${authUrl}`, readyTimeoutMs, group, async () => (await fetch(authUrl)).ok);

    const adminBase = { username: 'admin', password: adminPassword, projectName: 'admin', domainName: 'Default' };
    const adminAuth = await passwordToken(authUrl, adminBase);
    const admin: OpenStackUser = { ...adminBase, userId: adminAuth.userId, projectId: adminAuth.projectId };
    const tok = adminAuth.token;

    await registerService(authUrl, tok, region, 'load-balancer', 'octavia', [
      ['public', octaviaUrl],
      ['admin', octaviaUrl],
      ['internal', octaviaDirectUrl],
    ]);
    if (options.neutron) {
      await registerService(authUrl, tok, region, 'network', 'neutron', [
        ['public', neutronUrl],
        ['admin', neutronUrl],
        ['internal', neutronDirectUrl],
      ]);
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

    const serviceAuth = [
      `auth_url = ${authUrl}`,
      'auth_type = password',
      'username = admin',
      `password = ${adminPassword}`,
      'project_name = admin',
      'user_domain_name = Default',
      'project_domain_name = Default',
    ];
    const authToken = [
      `www_authenticate_uri = ${authUrl}`,
      'interface = public',
      `region_name = ${region}`,
      `token_cache_time = ${options.tokenCacheSeconds ?? 300}`,
      ...serviceAuth,
    ];

    // neutron-server builds its schema and starts while Octavia's schema is built.
    neutronStarted = options.neutron
      ? (async () => {
          const db = join(dir, 'neutron.db');
          await buildSchema('neutron', db);
          const conf = join(dir, 'neutron.conf');
          writeFileSync(conf, neutronConfig({ port: neutronPort, dir, db, authToken }), { mode: 0o600 });
          log(`openstack: starting neutron-server on ${neutronDirectUrl}`);
          group.start('neutron-server', 'neutron-server', ['--config-file', conf], { env: quietPython });
          await waitFor(`neutron-server at ${neutronDirectUrl}`, readyTimeoutMs, group, async () => {
            return (await fetch(`${neutronDirectUrl}/`)).ok;
          });
        })()
      : Promise.resolve();
    // Handled below (awaited after Octavia started); keep an early failure from being unhandled.
    neutronStarted.catch(() => {});

    const octaviaDb = join(dir, 'octavia.db');
    await buildSchema('octavia', octaviaDb);
    const providers = [
      ...(options.neutron
        ? ["amphora:Octavia's amphora provider (API side); provider-status reports its outcomes"]
        : []),
      'noop_driver:The noop provider; provider-status reports its outcomes',
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
        `enabled_provider_drivers = ${providers.join(',')}`,
        `default_provider_driver = ${options.neutron ? 'amphora' : 'noop_driver'}`,
        '[controller_worker]',
        `network_driver = ${options.neutron ? 'allowed_address_pairs_driver' : 'network_noop_driver'}`,
        'compute_driver = compute_noop_driver',
        'amphora_driver = amphora_noop_driver',
        '[database]',
        `connection = sqlite:///${octaviaDb}?timeout=60`,
        '[keystone_authtoken]',
        ...authToken,
        '[service_auth]',
        ...serviceAuth,
        ...(options.neutron ? ['[neutron]', `endpoint = ${neutronDirectUrl}`, `region_name = ${region}`] : []),
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
        ...(options.neutron
          ? ['--neutron-proxy-port', String(neutronProxyPort), '--neutron-upstream', neutronDirectUrl]
          : []),
      ],
      { env: quietPython },
    );
    const controlUrl = `http://127.0.0.1:${controlPort}`;
    await waitFor('provider-status', readyTimeoutMs, group, async () => (await fetch(`${controlUrl}/health`)).ok);
    await waitFor('the octavia proxy', readyTimeoutMs, group, async () => (await fetch(`${octaviaUrl}/`)).ok);

    await neutronStarted;
    let neutron: OpenStackNeutron | undefined;
    if (options.neutron) {
      log('openstack: creating the floating-IP topology in neutron');
      const userToken = (await passwordToken(authUrl, user)).token;
      neutron = {
        url: neutronUrl,
        directUrl: neutronDirectUrl,
        ...(await createNeutronTopology(neutronDirectUrl, tok, userToken)),
      };
      await waitFor('the neutron proxy', readyTimeoutMs, group, async () => (await fetch(`${neutronUrl}/`)).ok);
    }
    log('openstack: ready');

    let stopped = false;
    return {
      authUrl,
      region,
      octaviaUrl,
      octaviaDirectUrl,
      admin,
      user,
      subnetId: neutron?.vipSubnetId ?? randomUUID(),
      ...(neutron ? { neutron } : {}),
      provider: new ProviderControl(controlUrl),
      dir,
      pids() {
        const pids: { -readonly [K in keyof OpenStackPids]: number } = {};
        const names = {
          keystone: 'keystone',
          octavia: 'octavia-api',
          provider: 'provider-status',
          neutron: 'neutron-server',
        };
        for (const [key, name] of Object.entries(names) as Array<[keyof OpenStackPids, string]>) {
          const pid = group.pid(name);
          if (pid !== undefined) pids[key] = pid;
        }
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
        await stopGroup(group);
      },
    };
  } catch (err) {
    await neutronStarted.catch(() => {});
    const tails = group.logTails(40);
    await stopGroup(group);
    throw new Error(`startOpenStack failed: ${(err as Error).message}\n${tails}`, { cause: err });
  }
}
