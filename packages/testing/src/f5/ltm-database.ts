import { isIP } from 'node:net';
import { alreadyExists, mcpError, notFound } from './f5-error.js';
import { absolutePath, joinFullPath } from './ltm-path.js';

/** The LTM collections the emulator serves (URL path after `/mgmt/tm/ltm/`). */
export type LtmCollection =
  | 'virtual'
  | 'virtual-address'
  | 'pool'
  | 'node'
  | 'monitor/tcp'
  | 'monitor/http'
  | 'monitor/https'
  | 'persistence/source-addr';

/** All collections, in dependency order (what others refer to first). */
export const ltmCollections: readonly LtmCollection[] = [
  'monitor/tcp',
  'monitor/http',
  'monitor/https',
  'persistence/source-addr',
  'node',
  'pool',
  'virtual-address',
  'virtual',
];

/** A stored LTM object: F5's JSON properties. */
export type LtmObject = Record<string, unknown> & {
  /** Object name. */
  name: string;
  /** Partition. */
  partition: string;
  /** `/Partition[/folder]/name`. */
  fullPath: string;
};

/** Options that change behaviours F5 documents as unverified. */
export interface LtmDatabaseOptions {
  /** HTTP status when deleting a pool that a virtual uses (F5: status unverified). Default 400. */
  readonly poolInUseStatus?: number;
  /** Remove an auto-created virtual address with its last virtual (F5: unverified). Default true. */
  readonly autoDeleteVirtualAddresses?: boolean;
}

const labels: Record<LtmCollection, string> = {
  virtual: 'Virtual Server',
  'virtual-address': 'Virtual Address',
  pool: 'Pool',
  node: 'Node',
  'monitor/tcp': 'Monitor',
  'monitor/http': 'Monitor',
  'monitor/https': 'Monitor',
  'persistence/source-addr': 'Persistence Profile',
};

const builtinMonitors: Record<string, LtmCollection> = {
  '/Common/tcp': 'monitor/tcp',
  '/Common/http': 'monitor/http',
  '/Common/https': 'monitor/https',
};

/**
 * The stock persistence profiles, with the values the REST API reports for them (BIG-IP
 * 14.1: `timeout "180"`, flags as `enabled`/`disabled`). Only source-address affinity is
 * emulated.
 */
const builtinPersistence: Record<string, { collection: LtmCollection; values: Record<string, unknown> }> = {
  '/Common/source_addr': {
    collection: 'persistence/source-addr',
    values: {
      hashAlgorithm: 'default',
      mapProxies: 'enabled',
      mask: 'none',
      matchAcrossPools: 'disabled',
      matchAcrossServices: 'disabled',
      matchAcrossVirtuals: 'disabled',
      mirror: 'disabled',
      overrideConnectionLimit: 'disabled',
      timeout: '180',
    },
  },
};

/** Source-address persistence properties a child profile inherits from its parent. */
const persistenceProperties = Object.keys(builtinPersistence['/Common/source_addr']?.values ?? {});

const enabledFlags = [
  'mapProxies',
  'matchAcrossPools',
  'matchAcrossServices',
  'matchAcrossVirtuals',
  'mirror',
  'overrideConnectionLimit',
];

const builtinProfiles = new Set([
  '/Common/tcp',
  '/Common/udp',
  '/Common/http',
  '/Common/fastL4',
  '/Common/clientssl',
  '/Common/serverssl',
]);

const memberSessions = new Set(['monitor-enabled', 'user-enabled', 'user-disabled']);

/** Object kinds as F5 names them. */
export function kindOf(collection: LtmCollection, what: 'state' | 'collectionstate'): string {
  const [a, b] = collection.split('/') as [string, string | undefined];
  const leaf = b ?? a;
  const base = b ? `tm:ltm:${a}:${b}` : `tm:ltm:${a}`;
  return `${base}:${leaf}${what}`;
}

/** The address and port of a member name `10.0.0.5:80`, `2001:db8::5.80` or `node1:80`. */
export function parseMemberName(name: string): { node: string; port: number; isAddress: boolean } {
  const stripped = name.replace(/^\/[^/]+\//, '');
  const colons = stripped.split(':').length - 1;
  const sep = colons > 1 ? stripped.lastIndexOf('.') : stripped.lastIndexOf(':');
  if (sep <= 0) throw mcpError(400, `01070587:3: The requested pool member name (${name}) is invalid.`);
  const node = stripped.slice(0, sep);
  const port = Number(stripped.slice(sep + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw mcpError(400, `01070587:3: The requested pool member name (${name}) is invalid.`);
  }
  return { node, port, isAddress: isIP(node.replace(/%\d+$/, '')) !== 0 };
}

/** Parses a virtual destination `/P/10.1.1.10:80` or `/P/2001:db8::1.80`. */
export function parseDestination(
  destination: string,
  partition: string,
): { address: string; addressPath: string; port: number } {
  const full = absolutePath(destination, partition);
  const slash = full.lastIndexOf('/');
  const prefix = full.slice(0, slash);
  const rest = full.slice(slash + 1);
  const colons = rest.split(':').length - 1;
  const sep = colons > 1 ? rest.lastIndexOf('.') : rest.lastIndexOf(':');
  const address = sep > 0 ? rest.slice(0, sep) : '';
  const port = Number(rest.slice(sep + 1));
  if (!address || !Number.isInteger(port) || port < 0 || port > 65535 || isIP(address.replace(/%\d+$/, '')) === 0) {
    throw mcpError(400, `01070022:3: The requested destination (${destination}) is invalid.`);
  }
  return { address, addressPath: `${prefix}/${address}`, port };
}

function monitorReferences(expression: unknown, partition: string): string[] {
  if (typeof expression !== 'string') return [];
  return (expression.match(/[^\s{}]+/g) ?? [])
    .filter((t) => !['and', 'min', 'of'].includes(t) && !/^\d+$/.test(t))
    .map((t) => absolutePath(t, partition));
}

const selfBase = 'https://localhost/mgmt/tm/ltm';

function copy<T>(value: T): T {
  return structuredClone(value);
}

/**
 * The emulated configuration database (mcpd): LTM objects with F5's referential rules. Every
 * method throws {@link F5RestError}-shaped errors; `clone()` gives transactions a scratch copy.
 */
export class LtmDatabase {
  readonly #options: LtmDatabaseOptions;
  readonly #partitions: Set<string>;
  #objects: Map<LtmCollection, Map<string, LtmObject>>;
  #generation: number;

  constructor(partitions: readonly string[], options: LtmDatabaseOptions = {}) {
    this.#options = options;
    this.#partitions = new Set(['Common', ...partitions]);
    this.#objects = new Map(ltmCollections.map((c) => [c, new Map<string, LtmObject>()]));
    this.#generation = 1;
  }

  /** A copy (for transactions: apply to the copy, then {@link LtmDatabase.adopt} it). */
  clone(): LtmDatabase {
    const db = new LtmDatabase([...this.#partitions], this.#options);
    // Copy-on-write: stored objects are never mutated in place, so sharing them is safe.
    db.#objects = new Map([...this.#objects].map(([c, m]) => [c, new Map(m)]));
    db.#generation = this.#generation;
    return db;
  }

  /** Takes over the contents of `other` (a committed transaction's copy). */
  adopt(other: LtmDatabase): void {
    this.#objects = other.#objects;
    this.#generation = other.#generation;
  }

  /** The partitions that exist. */
  partitions(): string[] {
    return [...this.#partitions];
  }

  #map(collection: LtmCollection): Map<string, LtmObject> {
    return this.#objects.get(collection) as Map<string, LtmObject>;
  }

  #nextGeneration(): number {
    this.#generation += 1;
    return this.#generation;
  }

  #requirePartition(partition: string): void {
    if (!this.#partitions.has(partition)) throw notFound('folder', `/${partition}`);
  }

  /** The persistence collection of a stock or stored profile, undefined when none exists there. */
  #persistenceCollection(fullPath: string): LtmCollection | undefined {
    const builtin = builtinPersistence[fullPath];
    if (builtin) return builtin.collection;
    return (['persistence/source-addr'] as const).find((c) => this.#map(c).has(fullPath));
  }

  /** Full paths of the persistence profiles a virtual references. */
  #persistPaths(virtual: LtmObject): string[] {
    const list = Array.isArray(virtual.persist) ? (virtual.persist as LtmObject[]) : [];
    return list.map((p) => `/${p.partition}/${p.name}`);
  }

  #monitorExists(fullPath: string): boolean {
    if (builtinMonitors[fullPath]) return true;
    return ['monitor/tcp', 'monitor/http', 'monitor/https'].some((c) => this.#map(c as LtmCollection).has(fullPath));
  }

  /** Lists a collection, optionally only one partition's objects. */
  list(collection: LtmCollection, partition?: string): LtmObject[] {
    return [...this.#map(collection).values()]
      .filter((o) => partition === undefined || o.partition === partition)
      .map(copy);
  }

  /** Reads one object; 404 if it does not exist. */
  get(collection: LtmCollection, fullPath: string): LtmObject {
    const found = this.#map(collection).get(fullPath);
    if (!found) throw notFound(labels[collection], fullPath);
    return copy(found);
  }

  /** Whether an object exists. */
  has(collection: LtmCollection, fullPath: string): boolean {
    return this.#map(collection).has(fullPath);
  }

  /** Creates an object from a POST body. */
  create(collection: LtmCollection, body: Record<string, unknown>): LtmObject {
    const name = body.name;
    if (typeof name !== 'string' || name === '' || /[\s/~?#]/.test(name)) {
      throw mcpError(400, `01070022:3: The requested name (${String(name)}) is invalid.`);
    }
    const partition = typeof body.partition === 'string' ? body.partition : 'Common';
    const subPath = typeof body.subPath === 'string' ? body.subPath : undefined;
    this.#requirePartition(partition);
    const fullPath = joinFullPath(partition, name, subPath);
    if (
      this.#map(collection).has(fullPath) ||
      (collection.startsWith('monitor/') && this.#monitorExists(fullPath)) ||
      (collection.startsWith('persistence/') && this.#persistenceCollection(fullPath) !== undefined)
    ) {
      throw alreadyExists(labels[collection], fullPath, partition);
    }
    const { members, ...rest } = body;
    const defaults = collection.startsWith('persistence/')
      ? this.#inherited(body.defaultsFrom, partition)
      : this.#defaults(collection, partition);
    const obj: LtmObject = { ...defaults, ...rest, name, partition, fullPath };
    if (subPath !== undefined) obj.subPath = subPath;
    this.#validate(collection, obj, undefined);
    obj.generation = this.#nextGeneration();
    if (collection === 'pool') obj.members = [];
    this.#map(collection).set(fullPath, obj);
    if (collection === 'virtual') this.#ensureVirtualAddress(obj);
    if (collection === 'pool' && members !== undefined) this.#replaceMembers(obj, members);
    return copy(obj);
  }

  /** Applies a PATCH or PUT body (F5 merges the given properties; `members` replaces the set). */
  update(collection: LtmCollection, fullPath: string, body: Record<string, unknown>): LtmObject {
    const current = this.#map(collection).get(fullPath);
    if (!current) throw notFound(labels[collection], fullPath);
    for (const key of ['name', 'partition', 'fullPath'] as const) {
      if (body[key] !== undefined && body[key] !== current[key]) {
        throw mcpError(400, `01070022:3: The ${key} of ${labels[collection]} (${fullPath}) cannot be changed.`);
      }
    }
    const { members, ...rest } = body;
    const next: LtmObject = { ...copy(current), ...rest, name: current.name, partition: current.partition, fullPath };
    this.#validate(collection, next, current);
    next.generation = this.#nextGeneration();
    this.#map(collection).set(fullPath, next);
    if (collection === 'virtual' && next.destination !== current.destination) {
      this.#ensureVirtualAddress(next);
      this.#collectVirtualAddress(String(current.destination), current.partition);
    }
    if (collection === 'pool' && members !== undefined) this.#replaceMembers(next, members);
    return copy(next);
  }

  /** Deletes an object, refusing while others refer to it. */
  remove(collection: LtmCollection, fullPath: string): void {
    const current = this.#map(collection).get(fullPath);
    if (!current) throw notFound(labels[collection], fullPath);
    if (collection === 'pool') {
      const users = this.list('virtual').filter(
        (v) => typeof v.pool === 'string' && absolutePath(v.pool, v.partition) === fullPath,
      );
      if (users.length > 0) {
        throw mcpError(
          this.#options.poolInUseStatus ?? 400,
          `01070265:3: The Pool (${fullPath}) cannot be deleted because it is referenced by one or more virtual servers.`,
        );
      }
    }
    if (collection === 'node') {
      for (const pool of this.#map('pool').values()) {
        for (const member of pool.members as LtmObject[]) {
          if (this.#memberNodePath(member) === fullPath) {
            throw mcpError(
              400,
              `01070110:3: Node address '${fullPath}' is referenced by a member of pool '${pool.fullPath}'.`,
            );
          }
        }
      }
    }
    if (collection.startsWith('monitor/')) {
      for (const pool of this.#map('pool').values()) {
        if (monitorReferences(pool.monitor, pool.partition).includes(fullPath)) {
          throw mcpError(400, `01070083:3: Monitor ${fullPath} is in use.`);
        }
      }
    }
    if (collection.startsWith('persistence/')) {
      const user = [...this.#map('virtual').values()].find((v) => this.#persistPaths(v).includes(fullPath));
      if (user) {
        throw mcpError(
          400,
          `01070265:3: The Persistence Profile (${fullPath}) cannot be deleted because it is in use by a virtual server (${user.fullPath}).`,
        );
      }
      const child = [...this.#map(collection).values()].find((p) => p.defaultsFrom === fullPath);
      if (child) {
        throw mcpError(
          400,
          `01070265:3: The Persistence Profile (${fullPath}) cannot be deleted because it is in use by a persistence profile (${child.fullPath}).`,
        );
      }
    }
    if (collection === 'virtual-address') {
      const used = this.list('virtual').some(
        (v) => parseDestination(String(v.destination), v.partition).addressPath === fullPath,
      );
      if (used)
        throw mcpError(
          400,
          `01070339:3: Cannot delete virtual address ${fullPath} because it is in use by a virtual server.`,
        );
    }
    this.#map(collection).delete(fullPath);
    this.#nextGeneration();
    if (collection === 'virtual') this.#collectVirtualAddress(String(current.destination), current.partition);
  }

  /** The members of a pool. */
  members(poolPath: string): LtmObject[] {
    const pool = this.#map('pool').get(poolPath);
    if (!pool) throw notFound('Pool', poolPath);
    return copy(pool.members as LtmObject[]).map((m) => this.#presentMember(pool, m));
  }

  /** One member of a pool (`memberPath` is `/P/10.0.0.5:80`). */
  member(poolPath: string, memberPath: string): LtmObject {
    const found = this.members(poolPath).find((m) => m.fullPath === memberPath);
    if (!found) throw notFound('Pool Member', `${poolPath} ${memberPath}`);
    return found;
  }

  /** Adds a member to a pool (POST to the members subcollection). */
  createMember(poolPath: string, body: Record<string, unknown>): LtmObject {
    const pool = this.#writablePool(poolPath);
    const member = this.#buildMember(pool, body);
    const list = pool.members as LtmObject[];
    if (list.some((m) => m.fullPath === member.fullPath)) {
      throw alreadyExists('Pool Member', `${poolPath} ${member.fullPath}`, member.partition);
    }
    this.#createNodeFor(member);
    list.push(member);
    pool.generation = this.#nextGeneration();
    return this.#presentMember(pool, copy(member));
  }

  /** PATCH/PUT of one member (`address` cannot change). */
  updateMember(poolPath: string, memberPath: string, body: Record<string, unknown>): LtmObject {
    const pool = this.#writablePool(poolPath);
    const list = pool.members as LtmObject[];
    const index = list.findIndex((m) => m.fullPath === memberPath);
    const current = list[index];
    if (!current) throw notFound('Pool Member', `${poolPath} ${memberPath}`);
    if (body.address !== undefined && body.address !== current.address) {
      throw mcpError(400, `01070587:3: The address of pool member (${memberPath}) cannot be changed.`);
    }
    const next: LtmObject = {
      ...current,
      ...body,
      name: current.name,
      partition: current.partition,
      fullPath: memberPath,
    };
    this.#validateSession(next);
    next.generation = this.#nextGeneration();
    list[index] = next;
    pool.generation = next.generation;
    return this.#presentMember(pool, copy(next));
  }

  /** Removes a member from a pool (its node stays, as on a BIG-IP). */
  removeMember(poolPath: string, memberPath: string): void {
    const pool = this.#writablePool(poolPath);
    const list = pool.members as LtmObject[];
    const index = list.findIndex((m) => m.fullPath === memberPath);
    if (index < 0) throw notFound('Pool Member', `${poolPath} ${memberPath}`);
    list.splice(index, 1);
    pool.generation = this.#nextGeneration();
  }

  /** Replaces a stored pool by a copy (with its own member list) that may be changed. */
  #writablePool(poolPath: string): LtmObject {
    const stored = this.#map('pool').get(poolPath);
    if (!stored) throw notFound('Pool', poolPath);
    const pool: LtmObject = { ...stored, members: [...(stored.members as LtmObject[])] };
    this.#map('pool').set(poolPath, pool);
    return pool;
  }

  /** A pool as the REST API presents it (members as a subcollection reference, items on request). */
  presentPool(pool: LtmObject, expand: boolean, selfBase: string): Record<string, unknown> {
    const { members: _members, ...rest } = pool;
    const link = `${selfBase}/~${pool.fullPath.slice(1).replaceAll('/', '~')}/members?ver=17.1.0`;
    const ref: Record<string, unknown> = { link, isSubcollection: true };
    if (expand) ref.items = this.members(pool.fullPath);
    return { ...rest, membersReference: ref };
  }

  #presentMember(pool: LtmObject, member: LtmObject): LtmObject {
    const out = { ...member };
    if (out.session === 'user-enabled' && typeof pool.monitor === 'string' && pool.monitor.trim() !== '') {
      out.session = 'monitor-enabled';
    }
    out.state = out.session === 'user-disabled' ? 'user-down' : pool.monitor ? 'up' : 'unchecked';
    return out;
  }

  #defaults(collection: LtmCollection, partition: string): Record<string, unknown> {
    switch (collection) {
      case 'virtual':
        return {
          ipProtocol: 'tcp',
          mask: '255.255.255.255',
          source: '0.0.0.0/0',
          sourceAddressTranslation: { type: 'none' },
          translateAddress: 'enabled',
          translatePort: 'enabled',
          enabled: true,
          profiles: [{ name: 'tcp', partition: 'Common', fullPath: '/Common/tcp', context: 'all' }],
        };
      case 'pool':
        return { loadBalancingMode: 'round-robin', minActiveMembers: 0 };
      case 'node':
        return { session: 'user-enabled', state: 'unchecked', ratio: 1, monitor: 'default' };
      case 'virtual-address':
        return { autoDelete: 'true', enabled: 'yes', arp: 'enabled', mask: '255.255.255.255' };
      case 'persistence/source-addr':
        return this.#inherited(undefined, partition);
      default: {
        const type = collection.slice('monitor/'.length);
        return { defaultsFrom: `/Common/${type}`, interval: 5, timeout: 16, destination: '*:*', partition };
      }
    }
  }

  /**
   * What a new persistence profile starts from: its parent's values (`defaultsFrom`, default
   * the stock `/Common/source_addr`). An unknown parent is refused by validation.
   */
  #inherited(defaultsFrom: unknown, partition: string): Record<string, unknown> {
    const parent = absolutePath(typeof defaultsFrom === 'string' ? defaultsFrom : '/Common/source_addr', partition);
    const builtin = builtinPersistence[parent];
    const stored = this.#map('persistence/source-addr').get(parent);
    const values = builtin
      ? builtin.values
      : Object.fromEntries(persistenceProperties.filter((k) => stored?.[k] !== undefined).map((k) => [k, stored?.[k]]));
    return { ...values, defaultsFrom: parent };
  }

  #validatePersistence(collection: LtmCollection, obj: LtmObject): void {
    const parent = absolutePath(String(obj.defaultsFrom), obj.partition);
    if (parent === obj.fullPath || this.#persistenceCollection(parent) !== collection) {
      throw notFound(labels[collection], parent);
    }
    obj.defaultsFrom = parent;
    const timeout = obj.timeout;
    const seconds =
      typeof timeout === 'number' ? timeout : /^\d+$/.test(String(timeout)) ? Number(timeout) : Number.NaN;
    if (timeout !== 'indefinite' && !(Number.isInteger(seconds) && seconds >= 1 && seconds <= 4294967295)) {
      throw mcpError(400, `01070022:3: The requested persistence timeout (${String(timeout)}) is invalid.`);
    }
    // The REST API reports the timeout as a string, e.g. "180".
    obj.timeout = timeout === 'indefinite' ? 'indefinite' : String(seconds);
    for (const flag of enabledFlags) {
      if (obj[flag] !== 'enabled' && obj[flag] !== 'disabled') {
        throw mcpError(400, `01070022:3: The requested ${flag} (${String(obj[flag])}) is invalid.`);
      }
    }
    if (obj.hashAlgorithm !== 'default' && obj.hashAlgorithm !== 'carp') {
      throw mcpError(400, `01070022:3: The requested hash algorithm (${String(obj.hashAlgorithm)}) is invalid.`);
    }
  }

  /**
   * A virtual's `persist` list as the REST API returns it: `[{name, partition, tmDefault,
   * nameReference}]`. Entries may be sent as a full path, or a name with or without a
   * partition (then looked up in the virtual's partition, then in `Common`); each must name an
   * existing persistence profile.
   */
  #normalisePersist(persist: unknown, partition: string): Record<string, unknown>[] {
    if (persist === undefined || persist === 'none') return [];
    if (!Array.isArray(persist)) throw mcpError(400, '01070022:3: persist must be an array.');
    return persist.map((p) => {
      const entry = typeof p === 'string' ? { name: p } : (p as Record<string, unknown>);
      const name = String(entry.fullPath ?? entry.name ?? '');
      let full: string;
      if (name.startsWith('/')) full = name;
      else if (typeof entry.partition === 'string') full = `/${entry.partition}/${name}`;
      else {
        full = `/${partition}/${name}`;
        if (this.#persistenceCollection(full) === undefined && this.#persistenceCollection(`/Common/${name}`))
          full = `/Common/${name}`;
      }
      const collection = this.#persistenceCollection(full);
      if (collection === undefined) throw notFound('Persistence Profile', full);
      const tmDefault = entry.tmDefault ?? 'yes';
      if (tmDefault !== 'yes' && tmDefault !== 'no') {
        throw mcpError(400, `01070022:3: The requested tmDefault (${String(tmDefault)}) is invalid.`);
      }
      const slash = full.lastIndexOf('/');
      const profilePartition = full.slice(1, full.indexOf('/', 1));
      return {
        name: full.slice(slash + 1),
        partition: profilePartition,
        tmDefault,
        nameReference: { link: `${selfBase}/${collection}/~${full.slice(1).replaceAll('/', '~')}?ver=17.1.0` },
      };
    });
  }

  #validate(collection: LtmCollection, obj: LtmObject, previous: LtmObject | undefined): void {
    if (collection === 'virtual') {
      if (typeof obj.destination !== 'string')
        throw mcpError(400, '01070022:3: A virtual server requires a destination.');
      const dest = parseDestination(obj.destination, obj.partition);
      obj.destination = `${dest.addressPath}${dest.address.includes(':') ? '.' : ':'}${dest.port}`;
      if (dest.address.includes(':') && (obj.mask === '255.255.255.255' || obj.mask === undefined)) {
        obj.mask = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
      }
      if (obj.ipProtocol !== 'tcp' && obj.ipProtocol !== 'udp' && obj.ipProtocol !== 'sctp') {
        throw mcpError(400, `01070022:3: The requested ip-protocol (${String(obj.ipProtocol)}) is invalid.`);
      }
      if (obj.pool !== undefined && obj.pool !== '' && obj.pool !== 'none') {
        const poolPath = absolutePath(String(obj.pool), obj.partition);
        if (!this.#map('pool').has(poolPath)) throw notFound('Pool', poolPath);
        obj.pool = poolPath;
      }
      obj.profiles = this.#normaliseProfiles(obj.profiles, obj.partition);
      obj.persist = this.#normalisePersist(obj.persist, obj.partition);
      for (const other of this.#map('virtual').values()) {
        if (other.fullPath === obj.fullPath) continue;
        if (other.destination === obj.destination && other.ipProtocol === obj.ipProtocol) {
          throw mcpError(
            400,
            `01070333:3: Virtual Server ${obj.fullPath} illegally shares destination address, source address, service port, ip-protocol, and route domain with Virtual Server ${other.fullPath}.`,
          );
        }
      }
    }
    if (collection === 'pool') {
      for (const monitor of monitorReferences(obj.monitor, obj.partition)) {
        if (!this.#monitorExists(monitor)) throw mcpError(400, `01070083:3: Monitor ${monitor} was not found.`);
      }
      if (typeof obj.monitor === 'string') obj.monitor = obj.monitor.trim();
    }
    if (collection.startsWith('monitor/')) {
      const parent = absolutePath(String(obj.defaultsFrom), obj.partition);
      if (!this.#monitorExists(parent) || (builtinMonitors[parent] ?? this.#monitorCollection(parent)) !== collection) {
        throw notFound('monitor', parent);
      }
      obj.defaultsFrom = parent;
      for (const key of ['interval', 'timeout'] as const) {
        const value = Number(obj[key]);
        if (!Number.isInteger(value) || value < 1)
          throw mcpError(400, `01070022:3: The monitor ${key} (${String(obj[key])}) is invalid.`);
        obj[key] = value;
      }
    }
    if (collection.startsWith('persistence/')) this.#validatePersistence(collection, obj);
    if (collection === 'node') {
      if (previous && obj.address !== previous.address) {
        throw mcpError(400, `01070587:3: The address of node (${obj.fullPath}) cannot be changed.`);
      }
      if (typeof obj.address !== 'string' || isIP(obj.address.replace(/%\d+$/, '')) === 0) {
        throw mcpError(400, `01070022:3: The requested node address (${String(obj.address)}) is invalid.`);
      }
      for (const other of this.#map('node').values()) {
        if (other.fullPath !== obj.fullPath && other.address === obj.address && other.partition === obj.partition) {
          throw mcpError(
            400,
            `01070734:3: Configuration error: Invalid Node, the IP address ${obj.address} already exists.`,
          );
        }
      }
    }
    if (collection === 'virtual-address') {
      if (typeof obj.address !== 'string') obj.address = obj.name;
      if (isIP(String(obj.address).replace(/%\d+$/, '')) === 0) {
        throw mcpError(400, `01070022:3: The requested virtual address (${String(obj.address)}) is invalid.`);
      }
    }
  }

  #monitorCollection(fullPath: string): LtmCollection | undefined {
    return (['monitor/tcp', 'monitor/http', 'monitor/https'] as const).find((c) => this.#map(c).has(fullPath));
  }

  #normaliseProfiles(profiles: unknown, partition: string): Record<string, unknown>[] {
    const list = Array.isArray(profiles) ? profiles : [];
    return list.map((p) => {
      const entry = typeof p === 'string' ? { name: p } : (p as Record<string, unknown>);
      const full = absolutePath(String(entry.fullPath ?? entry.name), partition);
      if (!builtinProfiles.has(full)) throw notFound('profile', full);
      const [, profilePartition, profileName] = full.split('/');
      const context = entry.context ?? 'all';
      if (!['all', 'clientside', 'serverside'].includes(String(context))) {
        throw mcpError(400, `01070022:3: The requested profile context (${String(context)}) is invalid.`);
      }
      return { name: profileName, partition: profilePartition, fullPath: full, context };
    });
  }

  #ensureVirtualAddress(virtual: LtmObject): void {
    const dest = parseDestination(String(virtual.destination), virtual.partition);
    const map = this.#map('virtual-address');
    if (map.has(dest.addressPath)) return;
    const [, partition] = dest.addressPath.split('/');
    map.set(dest.addressPath, {
      ...this.#defaults('virtual-address', String(partition)),
      name: dest.address,
      partition: String(partition),
      fullPath: dest.addressPath,
      address: dest.address,
      mask: dest.address.includes(':') ? 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff' : '255.255.255.255',
      generation: this.#nextGeneration(),
    });
  }

  #collectVirtualAddress(destination: string, partition: string): void {
    if (this.#options.autoDeleteVirtualAddresses === false) return;
    const dest = parseDestination(destination, partition);
    const address = this.#map('virtual-address').get(dest.addressPath);
    if (address?.autoDelete !== 'true') return;
    const used = [...this.#map('virtual').values()].some(
      (v) => parseDestination(String(v.destination), v.partition).addressPath === dest.addressPath,
    );
    if (!used) this.#map('virtual-address').delete(dest.addressPath);
  }

  #memberNodePath(member: LtmObject): string {
    return `/${member.partition}/${parseMemberName(member.name).node}`;
  }

  #validateSession(member: LtmObject): void {
    if (member.session !== undefined && !memberSessions.has(String(member.session))) {
      throw mcpError(400, `01070022:3: The requested session (${String(member.session)}) is invalid.`);
    }
  }

  #buildMember(pool: LtmObject, body: Record<string, unknown>): LtmObject {
    if (typeof body.name !== 'string') throw mcpError(400, '01070587:3: A pool member requires a name.');
    const name = body.name.replace(/^\/[^/]+\//, '');
    const partition = typeof body.partition === 'string' ? body.partition : pool.partition;
    this.#requirePartition(partition);
    const parsed = parseMemberName(name);
    let address: string;
    if (parsed.isAddress) {
      address = parsed.node;
      if (body.address !== undefined && body.address !== address) {
        throw mcpError(400, `01070587:3: The address of pool member (/${partition}/${name}) does not match its name.`);
      }
    } else {
      const node = this.#map('node').get(`/${partition}/${parsed.node}`);
      if (!node) throw notFound('node', `/${partition}/${parsed.node}`);
      address = String(node.address);
    }
    const { name: _n, partition: _p, ...rest } = body;
    const member: LtmObject = {
      kind: 'tm:ltm:pool:members:membersstate',
      session: 'user-enabled',
      ratio: 1,
      ...rest,
      name,
      partition,
      fullPath: `/${partition}/${name}`,
      address,
      generation: this.#generation,
    };
    this.#validateSession(member);
    return member;
  }

  #createNodeFor(member: LtmObject): void {
    const parsed = parseMemberName(member.name);
    if (!parsed.isAddress) return;
    const path = `/${member.partition}/${parsed.node}`;
    if (this.#map('node').has(path)) return;
    this.#map('node').set(path, {
      ...this.#defaults('node', member.partition),
      name: parsed.node,
      partition: member.partition,
      fullPath: path,
      address: parsed.node,
      generation: this.#nextGeneration(),
    });
  }

  #replaceMembers(pool: LtmObject, members: unknown): void {
    if (!Array.isArray(members)) throw mcpError(400, '01070022:3: members must be an array.');
    const built = members.map((m) => {
      const body = typeof m === 'string' ? { name: m } : (m as Record<string, unknown>);
      const existing = (pool.members as LtmObject[]).find(
        (e) =>
          e.fullPath === `/${String(body.partition ?? pool.partition)}/${String(body.name).replace(/^\/[^/]+\//, '')}`,
      );
      const member = this.#buildMember(pool, existing ? { ...existing, ...body } : body);
      if (existing && member.address !== existing.address) {
        throw mcpError(400, `01070587:3: The address of pool member (${member.fullPath}) cannot be changed.`);
      }
      return member;
    });
    const seen = new Set<string>();
    for (const member of built) {
      if (seen.has(member.fullPath))
        throw alreadyExists('Pool Member', `${pool.fullPath} ${member.fullPath}`, member.partition);
      seen.add(member.fullPath);
    }
    for (const member of built) this.#createNodeFor(member);
    pool.members = built;
    pool.generation = this.#nextGeneration();
  }
}
