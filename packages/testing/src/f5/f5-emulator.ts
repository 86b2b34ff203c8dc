import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../free-port.js';
import { As3Service, as3SchemaValidator } from './as3-service.js';
import { CallLog, type F5CallCategory } from './call-log.js';
import { generateSelfSignedCertificate } from './certificate.js';
import { EmulatorClock } from './emulator-clock.js';
import { F5RestError, mcpError, restError } from './f5-error.js';
import { FaultInjector } from './fault-injector.js';
import { kindOf, type LtmCollection, LtmDatabase, type LtmObject, ltmCollections } from './ltm-database.js';
import { parseUrlName } from './ltm-path.js';
import { type F5User, TokenStore } from './token-store.js';
import { TransactionManager } from './transaction-manager.js';

/** Options of {@link startF5Emulator}. */
export interface F5EmulatorOptions {
  /** Users that can log in (default one user `admin` / `admin`). */
  readonly users?: readonly F5User[];
  /** Partitions besides `Common` that exist (default `['klb']`). */
  readonly partitions?: readonly string[];
  /** Latency added to every call, ms (default 0; changeable later through `faults.latencyMs`). */
  readonly latencyMs?: number;
  /** Seed of the fault injector's random generator (default 1). */
  readonly seed?: number;
  /** Active tokens per user before login fails (default 100, as K44237337). */
  readonly maxTokensPerUser?: number;
  /** Failed logins before `Maximum number of login attempts exceeded.` (default 5). */
  readonly maxLoginFailures?: number;
  /** `timeoutSeconds` of new transactions (default 120). */
  readonly transactionTimeoutSeconds?: number;
  /**
   * HTTP status of a commit whose transaction FAILED: 200 with the transaction body
   * (`state: FAILED`, `failureReason`; the default) or 400 with an error body
   * `transaction failed:<reason>`. Which one a BIG-IP sends is not documented; clients must
   * handle both.
   */
  readonly failedCommitStatus?: 200 | 400;
  /** Status when deleting a pool a virtual uses (default 400; F5: unverified). */
  readonly poolInUseStatus?: number;
  /** Remove an auto-created virtual address with its last virtual (default true; F5: unverified). */
  readonly autoDeleteVirtualAddresses?: boolean;
  /** Answer 404 to a pool-member POST without `partition` although it was applied (default true). */
  readonly memberWithoutPartitionQuirk?: boolean;
  /** Return pools' `monitor` with a trailing space, as BIG-IPs do (default true). */
  readonly monitorTrailingSpace?: boolean;
  /**
   * F5's AS3 JSON schema file: when given, every AS3 declaration is validated against it (422
   * `declaration is invalid` with the errors); otherwise only structurally.
   */
  readonly as3SchemaPath?: string;
  /** How many reads of an AS3 task answer "in progress" before its result (default 1). */
  readonly as3TaskPolls?: number;
  /**
   * Address to listen on (default `127.0.0.1`), e.g. a test cluster's node address so that pods
   * reach it; the certificate names it too.
   */
  readonly host?: string;
}

/** Everything the emulator holds, for tests to assert on. */
export interface F5EmulatorState {
  /** Virtual servers. */
  readonly virtuals: LtmObject[];
  /** Virtual addresses. */
  readonly virtualAddresses: LtmObject[];
  /** Pools, each with `members` (the member objects). */
  readonly pools: LtmObject[];
  /** Nodes. */
  readonly nodes: LtmObject[];
  /** Monitors by type. */
  readonly monitors: {
    /** TCP monitors. */
    readonly tcp: LtmObject[];
    /** HTTP monitors. */
    readonly http: LtmObject[];
    /** HTTPS monitors. */
    readonly https: LtmObject[];
  };
  /** Persistence profiles by type (the stock `/Common/source_addr` is not listed). */
  readonly persistence: {
    /** Source-address affinity profiles (`/mgmt/tm/ltm/persistence/source-addr`). */
    readonly sourceAddr: LtmObject[];
  };
  /** Number of active tokens (all users). */
  readonly activeTokens: number;
  /** AS3 declarations by tenant (applications by name), as declared. */
  readonly as3: Record<string, Record<string, unknown>>;
  /** Live transactions. */
  readonly transactions: readonly {
    /** Transaction id. */
    readonly transId: number;
    /** Its state. */
    readonly state: string;
    /** How many commands are queued. */
    readonly commands: number;
  }[];
}

/** A running iControl REST emulator. */
export interface F5Emulator {
  /** Base URL, `https://127.0.0.1:<port>` (or the `host` option's address). */
  readonly url: string;
  /** Host and port, `127.0.0.1:<port>` (what `F5_HOST` holds). */
  readonly host: string;
  /** The self-signed certificate in PEM: the CA bundle clients must trust. */
  readonly ca: string;
  /** The emulator's clock; `clock.advance(s)` moves token and transaction expiry forward. */
  readonly clock: EmulatorClock;
  /** Fault rules and per-call latency (`faults.latencyMs`). */
  readonly faults: FaultInjector;
  /** Every call answered, with counts of reads and writes. */
  readonly calls: CallLog;
  /** A deep copy of the whole configuration. */
  state(): F5EmulatorState;
  /** Makes every token expired (the next call with one gets 401 `X-F5-Auth-Token has expired.`). */
  expireTokens(): void;
  /** Forgets every token, as after an HA failover (401 `X-F5-Auth-Token does not exist.`). */
  forgetTokens(): void;
  /** Number of active tokens of a user. */
  activeTokens(userName?: string): number;
  /** Stops the server and removes its temporary directory. */
  stop(): Promise<void>;
}

const jsonLimit = 16 * 1024 * 1024;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > jsonLimit) {
        reject(restError(413, 'Request body too large.'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseJson(text: string): Record<string, unknown> | undefined {
  if (text.trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw restError(400, 'Found invalid JSON body in the request.');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw restError(400, 'Found invalid JSON body in the request.');
  }
  return value as Record<string, unknown>;
}

interface Answer {
  readonly status: number;
  readonly body: unknown;
}

const selfBase = 'https://localhost/mgmt/tm/ltm';

/**
 * Starts an F5 BIG-IP iControl REST emulator on 127.0.0.1 (HTTPS with a self-signed certificate
 * made by `openssl` in a temporary directory). It follows F5's documented behaviour (see
 * `F5-ICONTROL.md`): token auth with the 100-token cap, LTM virtuals, virtual addresses, pools,
 * members, nodes, tcp/http/https monitors and source-address persistence profiles with F5's
 * referential rules and error bodies, transactions, and fault injection.
 */
export async function startF5Emulator(options: F5EmulatorOptions = {}): Promise<F5Emulator> {
  const dir = mkdtempSync(join(tmpdir(), 'klb-f5-'));
  const address = options.host ?? '127.0.0.1';
  const certificate = generateSelfSignedCertificate(dir, address);
  const clock = new EmulatorClock();
  const faults = new FaultInjector(options.seed ?? 1);
  faults.latencyMs = options.latencyMs ?? 0;
  const calls = new CallLog();
  const tokens = new TokenStore(
    clock,
    options.users ?? [{ username: 'admin', password: 'admin' }],
    options.maxTokensPerUser ?? 100,
    options.maxLoginFailures ?? 5,
  );
  const transactions = new TransactionManager(clock, options.transactionTimeoutSeconds ?? 120);
  const dbOptions: { poolInUseStatus?: number; autoDeleteVirtualAddresses?: boolean } = {};
  if (options.poolInUseStatus !== undefined) dbOptions.poolInUseStatus = options.poolInUseStatus;
  if (options.autoDeleteVirtualAddresses !== undefined)
    dbOptions.autoDeleteVirtualAddresses = options.autoDeleteVirtualAddresses;
  const db = new LtmDatabase(options.partitions ?? ['klb'], dbOptions);
  const quirkMembers = options.memberWithoutPartitionQuirk ?? true;
  const trailingSpace = options.monitorTrailingSpace ?? true;
  const as3 = new As3Service(
    options.as3SchemaPath === undefined ? undefined : as3SchemaValidator(options.as3SchemaPath),
    options.as3TaskPolls ?? 1,
  );

  function present(collection: LtmCollection, obj: LtmObject, expand: boolean): Record<string, unknown> {
    const urlName = `~${obj.fullPath.slice(1).replaceAll('/', '~')}`;
    let out: Record<string, unknown> = { ...obj };
    if (collection === 'pool') {
      out = db.presentPool(obj, expand, `${selfBase}/pool`);
      if (trailingSpace && typeof out.monitor === 'string' && out.monitor !== '') out.monitor = `${out.monitor} `;
    }
    if (collection === 'virtual') {
      const { profiles, ...rest } = out;
      const ref: Record<string, unknown> = {
        link: `${selfBase}/virtual/${urlName}/profiles?ver=17.1.0`,
        isSubcollection: true,
      };
      if (expand) ref.items = profiles;
      out = { ...rest, profilesReference: ref };
    }
    return { kind: kindOf(collection, 'state'), ...out, selfLink: `${selfBase}/${collection}/${urlName}?ver=17.1.0` };
  }

  /** Applies one LTM call to `target`. Throws F5RestError. */
  function applyLtm(
    target: LtmDatabase,
    method: string,
    path: string,
    query: URLSearchParams,
    body: Record<string, unknown> | undefined,
    direct: boolean,
  ): Answer {
    const rest = path.slice('/mgmt/tm/ltm/'.length).split('/').filter(Boolean);
    let collection: string;
    let segments: string[];
    if (rest[0] === 'monitor' || rest[0] === 'persistence') {
      collection = `${rest[0]}/${rest[1] ?? ''}`;
      segments = rest.slice(2);
    } else {
      collection = rest[0] ?? '';
      segments = rest.slice(1);
    }
    if (!(ltmCollections as readonly string[]).includes(collection))
      throw restError(404, `Public URI path not registered: ${path}`);
    const c = collection as LtmCollection;
    const expand = query.get('expandSubcollections') === 'true';
    const filter = /^partition\s+eq\s+(\S+)$/.exec(query.get('$filter') ?? '');
    const [id, sub, subId, ...extra] = segments;
    if (extra.length > 0) throw restError(404, `Public URI path not registered: ${path}`);
    const data = body ?? {};
    if (id === undefined) {
      if (method === 'GET') {
        return {
          status: 200,
          body: {
            kind: kindOf(c, 'collectionstate'),
            selfLink: `${selfBase}/${c}?ver=17.1.0`,
            items: target.list(c, filter?.[1]).map((o) => present(c, o, expand)),
          },
        };
      }
      if (method === 'POST') return { status: 200, body: present(c, target.create(c, data), false) };
      throw restError(405, `Method ${method} not allowed on ${path}`);
    }
    const at = parseUrlName(id);
    if (sub === undefined) {
      if (method === 'GET') return { status: 200, body: present(c, target.get(c, at.fullPath), expand) };
      if (method === 'PATCH' || method === 'PUT')
        return { status: 200, body: present(c, target.update(c, at.fullPath, data), false) };
      if (method === 'DELETE') {
        target.remove(c, at.fullPath);
        return { status: 200, body: undefined };
      }
      throw restError(405, `Method ${method} not allowed on ${path}`);
    }
    if (c === 'virtual' && sub === 'profiles' && subId === undefined && method === 'GET') {
      const virtual = target.get(c, at.fullPath);
      return {
        status: 200,
        body: { kind: 'tm:ltm:virtual:profiles:profilescollectionstate', items: virtual.profiles },
      };
    }
    if (c !== 'pool' || sub !== 'members') throw restError(404, `Public URI path not registered: ${path}`);
    const memberKind = 'tm:ltm:pool:members:membersstate';
    if (subId === undefined) {
      if (method === 'GET') {
        return {
          status: 200,
          body: { kind: 'tm:ltm:pool:members:memberscollectionstate', items: target.members(at.fullPath) },
        };
      }
      if (method === 'POST') {
        const created = target.createMember(at.fullPath, data);
        if (direct && quirkMembers && data.partition === undefined) {
          throw mcpError(
            404,
            `01020036:3: The requested Pool Member (${at.fullPath} ${created.fullPath}) was not found.`,
          );
        }
        return { status: 200, body: { kind: memberKind, ...created } };
      }
      throw restError(405, `Method ${method} not allowed on ${path}`);
    }
    const member = parseUrlName(subId);
    if (method === 'GET')
      return { status: 200, body: { kind: memberKind, ...target.member(at.fullPath, member.fullPath) } };
    if (method === 'PATCH' || method === 'PUT') {
      return { status: 200, body: { kind: memberKind, ...target.updateMember(at.fullPath, member.fullPath, data) } };
    }
    if (method === 'DELETE') {
      target.removeMember(at.fullPath, member.fullPath);
      return { status: 200, body: undefined };
    }
    throw restError(405, `Method ${method} not allowed on ${path}`);
  }

  function authenticate(req: IncomingMessage): void {
    const token = req.headers['x-f5-auth-token'];
    if (typeof token === 'string' && token !== '') {
      tokens.authenticate(token);
      return;
    }
    const header = req.headers.authorization;
    if (typeof header === 'string' && header.startsWith('Basic ')) {
      const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      tokens.checkPassword(decoded.slice(0, colon), decoded.slice(colon + 1));
      return;
    }
    throw restError(401, `Authorization failed: no user authentication header or token detected. Uri:${req.url ?? ''}`);
  }

  function route(req: IncomingMessage, method: string, url: URL, body: Record<string, unknown> | undefined): Answer {
    const path = url.pathname.replace(/\/+$/, '');
    if (path === '/mgmt/shared/authn/login') {
      if (method !== 'POST') throw restError(405, `Method ${method} not allowed on ${path}`);
      return { status: 200, body: tokens.login(body ?? {}) };
    }
    if (!path.startsWith('/mgmt/tm/') && !path.startsWith('/mgmt/shared/')) {
      throw restError(404, `Public URI path not registered: ${path}`);
    }
    authenticate(req);
    const tokenMatch = /^\/mgmt\/shared\/authz\/tokens\/([^/]+)$/.exec(path);
    if (tokenMatch) {
      const name = decodeURIComponent(tokenMatch[1] as string);
      if (method === 'GET') return { status: 200, body: tokens.present(tokens.get(name)) };
      if (method === 'PATCH') return { status: 200, body: tokens.present(tokens.extend(name, body ?? {})) };
      if (method === 'DELETE') return { status: 200, body: tokens.present(tokens.remove(name)) };
      throw restError(405, `Method ${method} not allowed on ${path}`);
    }
    if (path === '/mgmt/shared/appsvcs' || path.startsWith('/mgmt/shared/appsvcs/')) {
      return as3.handle(method, path, url.searchParams, body);
    }
    const coordination = req.headers['x-f5-rest-coordination-id'];
    if (path === '/mgmt/tm/transaction' || path.startsWith('/mgmt/tm/transaction/')) {
      if (coordination !== undefined) {
        throw mcpError(
          400,
          'Transaction operations cannot be sent within a transaction (X-F5-REST-Coordination-Id).',
          1,
        );
      }
      const [, id, sub] = path.slice('/mgmt/tm/transaction'.length).split('/');
      if (id === undefined) {
        if (method === 'POST') return { status: 200, body: transactions.present(transactions.create()) };
        if (method === 'GET') {
          return {
            status: 200,
            body: {
              kind: 'tm:transactioncollectionstate',
              items: transactions.list().map((t) => transactions.present(t)),
            },
          };
        }
        throw restError(405, `Method ${method} not allowed on ${path}`);
      }
      if (sub === 'commands' && method === 'GET') {
        const tx = transactions.get(id);
        return {
          status: 200,
          body: {
            kind: 'tm:transaction:commandscollectionstate',
            items: tx.commands.map((command) => transactions.presentCommand(tx, command)),
          },
        };
      }
      if (sub !== undefined) throw restError(404, `Public URI path not registered: ${path}`);
      if (method === 'GET') return { status: 200, body: transactions.present(transactions.get(id)) };
      if (method === 'DELETE') {
        transactions.remove(id);
        return { status: 200, body: undefined };
      }
      if (method === 'PATCH') {
        const tx = transactions.commit(id, body, (commands) => {
          const scratch = db.clone();
          for (const command of commands) {
            const commandUrl = new URL(command.path, 'https://localhost');
            applyLtm(scratch, command.method, commandUrl.pathname, commandUrl.searchParams, command.body, false);
          }
          db.adopt(scratch);
        });
        if (tx.state === 'FAILED' && options.failedCommitStatus === 400) {
          throw mcpError(400, `transaction failed:${tx.failureReason ?? ''}`, 2);
        }
        return { status: 200, body: transactions.present(tx) };
      }
      throw restError(405, `Method ${method} not allowed on ${path}`);
    }
    if (!path.startsWith('/mgmt/tm/ltm/')) throw restError(404, `Public URI path not registered: ${path}`);
    if (typeof coordination === 'string' && method !== 'GET') {
      const tx = transactions.get(coordination);
      const command = transactions.queue(coordination, method, `${path}${url.search}`, body);
      return { status: 200, body: transactions.presentCommand(tx, command) };
    }
    return applyLtm(db, method, path, url.searchParams, body, true);
  }

  function categorise(req: IncomingMessage, method: string, path: string): F5CallCategory {
    if (path.startsWith('/mgmt/shared/authn') || path.startsWith('/mgmt/shared/authz')) return 'auth';
    if (path === '/mgmt/tm/transaction' || path.startsWith('/mgmt/tm/transaction/')) {
      return method === 'PATCH' ? 'write' : 'transaction';
    }
    if (method === 'GET') return 'read';
    return req.headers['x-f5-rest-coordination-id'] !== undefined ? 'queued' : 'write';
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', 'https://localhost');
    const category = categorise(req, method, url.pathname);
    let answer: Answer;
    try {
      const text = await readBody(req);
      if (faults.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, faults.latencyMs));
      const effect = faults.pick(method, url.pathname, category === 'auth');
      if (effect === 'malformed-body') {
        calls.add({ method, path: `${url.pathname}${url.search}`, status: 200, category });
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html><body>Service temporarily moved</body></html>');
        return;
      }
      if (effect === 'service-unavailable') throw restError(503, 'Service Unavailable');
      if (effect === 'mcpd-lost') throw mcpError(500, 'The connection to mcpd has been lost, try again.', 1);
      if (effect === 'uri-not-registered') throw restError(404, `Public URI path not registered: ${url.pathname}`);
      answer = route(req, method, url, parseJson(text));
      if (effect === 'member-404-despite-success') {
        throw mcpError(404, `01020036:3: The requested Pool Member (${url.pathname}) was not found.`);
      }
    } catch (err) {
      answer =
        err instanceof F5RestError
          ? { status: err.status, body: err.body }
          : { status: 500, body: { code: 500, message: String(err), errorStack: [], apiError: 1 } };
    }
    calls.add({ method, path: `${url.pathname}${url.search}`, status: answer.status, category });
    const payload = answer.body === undefined ? '' : JSON.stringify(answer.body);
    res.writeHead(answer.status, {
      'content-type': 'application/json; charset=UTF-8',
      'content-length': Buffer.byteLength(payload),
    });
    res.end(payload);
  }

  const server: Server = createServer({ cert: certificate.cert, key: certificate.key }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      res.writeHead(500);
      res.end(JSON.stringify({ code: 500, message: String(err) }));
    });
  });
  const port = await freePort(address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve());
  });

  return {
    url: `https://${address}:${port}`,
    host: `${address}:${port}`,
    ca: certificate.cert,
    clock,
    faults,
    calls,
    state(): F5EmulatorState {
      const pools = db.list('pool').map((p) => ({ ...p, members: db.members(p.fullPath) }));
      return {
        virtuals: db.list('virtual'),
        virtualAddresses: db.list('virtual-address'),
        pools,
        nodes: db.list('node'),
        monitors: { tcp: db.list('monitor/tcp'), http: db.list('monitor/http'), https: db.list('monitor/https') },
        persistence: { sourceAddr: db.list('persistence/source-addr') },
        activeTokens: tokens.activeCount(),
        as3: as3.tenants(),
        transactions: transactions
          .list()
          .map((t) => ({ transId: t.transId, state: t.state, commands: t.commands.length })),
      };
    },
    expireTokens: () => tokens.expireAll(),
    forgetTokens: () => tokens.forgetAll(),
    activeTokens: (userName?: string) => tokens.activeCount(userName),
    async stop(): Promise<void> {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
