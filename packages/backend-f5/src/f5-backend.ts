import {
  addressIngress,
  type BackendCapabilities,
  type BackendContext,
  type LoadBalancerBackend,
  type LoadBalancerRef,
  type LoadBalancerSpec,
  type LoadBalancerStatus,
  type Logger,
  parseLoadBalancerId,
  silentLogger,
  TerminalError,
} from '@klb/core';
import {
  type DesiredLoadBalancer,
  desiredLoadBalancer,
  nodeMarker,
  ownerMarker,
  parseOwnerMarker,
  unappliedHttpSettings,
} from './desired-state.js';
import { isF5Error } from './f5-error.js';
import { fullPath, isValidPartition, urlName } from './f5-path.js';
import type { F5Command, IControlClient } from './icontrol-client.js';
import {
  type MemberState,
  type MonitorState,
  monitorFromF5,
  type NodeState,
  nodeFromF5,
  type PartitionSnapshot,
  type PersistenceState,
  type PoolState,
  persistenceFromF5,
  poolFromF5,
  sameState,
  type VirtualState,
  virtualFromF5,
} from './ltm-state.js';
import { SharedLock } from './shared-lock.js';

/** Options of {@link F5Backend}. */
export interface F5BackendOptions {
  /** The iControl client (the backend closes it in `close()`). */
  readonly client: IControlClient;
  /** Partition that holds KLB's objects; it must exist on the BIG-IP (default `klb`). */
  readonly partition?: string;
  /**
   * Identifies this controller in the ownership marker `klb:<controllerId> <ref.id>` written
   * to every object's description (default `klb`). Two controllers sharing a partition need
   * different ids.
   */
  readonly controllerId?: string;
  /** Source address translation of virtual servers: `automap` (default) or `none`. */
  readonly snat?: 'automap' | 'none';
  /**
   * Seconds a removed member stays `user-disabled` (draining) before it is deleted; 0 (the
   * default) removes at once. A drained member is removed by the first reconcile after the time.
   */
  readonly drainSeconds?: number;
  /**
   * How old the cached partition snapshot may be before an `ensure` reads it again, ms
   * (default 5000). Drift made within this window is repaired by the next resync after it.
   */
  readonly snapshotMaxAgeMs?: number;
  /** Logger (default silent). */
  readonly logger?: Logger;
}

type Collection = 'virtual' | 'pool' | 'monitor' | 'node' | 'persistence';

interface Change {
  readonly op: 'create' | 'update' | 'delete';
  readonly collection: Collection;
  readonly state: VirtualState | PoolState | MonitorState | NodeState | PersistenceState;
  /** For pool updates: only `members` differ. */
  readonly membersOnly?: boolean;
  /** For pool updates: some member goes away (its node may become unused). */
  readonly releases?: boolean;
}

interface Snapshot {
  readonly data: PartitionSnapshot;
  readonly startedAt: number;
}

interface JournalEntry {
  readonly at: number;
  readonly changes: readonly Change[];
}

/** Member description while draining: when it started, ms since the epoch. */
const drainPrefix = 'klb-drain-since:';

function emptySnapshot(): PartitionSnapshot {
  return { virtuals: new Map(), pools: new Map(), monitors: new Map(), nodes: new Map(), persistence: new Map() };
}

function byName(a: MemberState, b: MemberState): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/**
 * The F5 BIG-IP backend: per listener a virtual server, a pool and a monitor in one partition
 * (and, for client IP affinity, one source-address persistence profile per load balancer with
 * its timeout), all marked as KLB's; created and updated as one iControl transaction per load
 * balancer, member changes as one PATCH of the pool's members, objects KLB does not own never
 * touched.
 * It diffs against a cached snapshot of the partition (read with a handful of GETs shared by
 * every load balancer) so a reconcile with nothing to change makes no write.
 */
export class F5Backend implements LoadBalancerBackend {
  /** `f5`. */
  readonly name = 'f5';
  /** TCP/UDP (and HTTP as TCP with an HTTP profile) to node targets; addresses come from KLB's IPAM. */
  readonly capabilities: BackendCapabilities = {
    protocols: ['TCP', 'UDP', 'HTTP'],
    l7: false,
    tls: false,
    allocatesAddresses: false,
    targetKinds: ['node'],
    ipFamilies: ['IPv4', 'IPv6'],
    sourceRanges: false,
    proxyProtocol: false,
  };

  readonly #client: IControlClient;
  readonly #partition: string;
  readonly #controllerId: string;
  readonly #snat: 'automap' | 'none';
  readonly #drainSeconds: number;
  readonly #maxAgeMs: number;
  readonly #log: Logger;
  readonly #lock = new SharedLock();
  #snapshot: Snapshot | undefined;
  #refresh: { startedAt: number; promise: Promise<Snapshot> } | undefined;
  #journal: JournalEntry[] = [];
  readonly #pendingNodes = new Map<string, Promise<void>>();

  constructor(options: F5BackendOptions) {
    this.#client = options.client;
    this.#partition = options.partition ?? 'klb';
    this.#controllerId = options.controllerId ?? 'klb';
    if (!isValidPartition(this.#partition))
      throw new TerminalError(`invalid F5 partition name ${JSON.stringify(this.#partition)}`);
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(this.#controllerId)) {
      throw new TerminalError(`invalid controller id ${JSON.stringify(this.#controllerId)}`);
    }
    this.#snat = options.snat ?? 'automap';
    this.#drainSeconds = options.drainSeconds ?? 0;
    this.#maxAgeMs = options.snapshotMaxAgeMs ?? 5000;
    this.#log = options.logger ?? silentLogger;
  }

  /** Creates or updates the load balancer's objects (one transaction, or one member PATCH). */
  async ensure(spec: LoadBalancerSpec, ctx: BackendContext): Promise<LoadBalancerStatus> {
    const desired = desiredLoadBalancer(spec, {
      partition: this.#partition,
      controllerId: this.#controllerId,
      snat: this.#snat,
    });
    let releasedMembers = false;
    await this.#lock.shared(async () => {
      for (let attempt = 0; ; attempt++) {
        const snapshot = await this.#read(attempt === 0 ? Date.now() - this.#maxAgeMs : Date.now(), ctx.signal);
        const changes = this.#plan(snapshot.data, spec.ref.id, desired);
        if (changes.length === 0) return;
        try {
          await this.#executeWithNodes(changes, ctx);
          releasedMembers = changes.some((c) => c.collection === 'pool' && (c.op === 'delete' || c.releases === true));
          return;
        } catch (err) {
          this.#invalidate();
          if (
            attempt === 0 &&
            (isF5Error(err, 'F5_CONFLICT') || isF5Error(err, 'F5_NOT_FOUND') || isF5Error(err, 'F5_TRANSACTION_FAILED'))
          ) {
            ctx.log.info({ err: (err as Error).message }, 'F5 state changed under us; reading it again');
            continue;
          }
          throw err;
        }
      }
    });
    if (releasedMembers) await this.#collectNodes(ctx);
    const members = desired.pools.reduce((n, p) => n + p.members.length, 0);
    return {
      // The virtual server proxies, away from the nodes: in-cluster clients must go through it too.
      ingress: addressIngress(spec.addresses, spec.listeners, 'Proxy'),
      message: `${spec.listeners.length} virtual server(s), ${members} member(s) in /${this.#partition}${unappliedHttpSettings(spec)}`,
    };
  }

  /** Deletes the load balancer's objects (virtuals, then pools, monitors, persistence profile) in one transaction. */
  async remove(ref: LoadBalancerRef, ctx: BackendContext): Promise<void> {
    const started = Date.now();
    await this.#lock.shared(async () => {
      for (let attempt = 0; ; attempt++) {
        const snapshot = await this.#read(attempt === 0 ? started : Date.now(), ctx.signal);
        const changes = this.#plan(snapshot.data, ref.id, undefined);
        if (changes.length === 0) return;
        try {
          await this.#execute(changes, ctx);
          return;
        } catch (err) {
          this.#invalidate();
          if (attempt === 0 && (isF5Error(err, 'F5_NOT_FOUND') || isF5Error(err, 'F5_TRANSACTION_FAILED'))) continue;
          throw err;
        }
      }
    });
    await this.#collectNodes(ctx);
  }

  /** The load balancers that have objects marked with this controller's id. Throws on any read failure. */
  async list(ctx: BackendContext): Promise<LoadBalancerRef[]> {
    const snapshot = await this.#read(Date.now(), ctx.signal);
    const ids = new Set<string>();
    const { virtuals, pools, monitors, persistence } = snapshot.data;
    for (const obj of [...virtuals.values(), ...pools.values(), ...monitors.values(), ...persistence.values()]) {
      const id = parseOwnerMarker(obj.description, this.#controllerId);
      if (id !== undefined) ids.add(id);
    }
    const refs: LoadBalancerRef[] = [];
    for (const id of [...ids].sort()) {
      const ref = parseLoadBalancerId(id);
      if (ref) refs.push(ref);
      else ctx.log.warn({ id }, 'ignoring an F5 object with an unparseable KLB marker');
    }
    return refs;
  }

  /** Logs out (deletes the token) and closes connections. */
  async close(): Promise<void> {
    await this.#client.close();
  }

  #invalidate(): void {
    this.#snapshot = undefined;
  }

  /** A snapshot whose reading started at or after `notBefore` (shared with concurrent callers). */
  async #read(notBefore: number, signal: AbortSignal): Promise<Snapshot> {
    if (this.#snapshot && this.#snapshot.startedAt >= notBefore) return this.#snapshot;
    if (this.#refresh && this.#refresh.startedAt >= notBefore) return this.#refresh.promise;
    const startedAt = Date.now();
    const promise = this.#load(startedAt, signal).then(
      (snapshot) => {
        if (this.#refresh?.promise === promise) this.#refresh = undefined;
        if (!this.#snapshot || this.#snapshot.startedAt <= startedAt) this.#snapshot = snapshot;
        return snapshot;
      },
      (err: unknown) => {
        if (this.#refresh?.promise === promise) this.#refresh = undefined;
        throw err;
      },
    );
    this.#refresh = { startedAt, promise };
    return promise;
  }

  async #load(startedAt: number, signal: AbortSignal): Promise<Snapshot> {
    const filter = `$filter=partition%20eq%20${encodeURIComponent(this.#partition)}`;
    const get = async (path: string): Promise<Record<string, unknown>[]> => {
      const answer = await this.#client.get<{ items?: unknown }>(path, { signal });
      if (answer === undefined || answer === null || typeof answer !== 'object') {
        throw new TerminalError(`unexpected answer from ${path}`);
      }
      return Array.isArray(answer.items) ? (answer.items as Record<string, unknown>[]) : [];
    };
    const [virtuals, pools, tcp, http, nodes, sourceAddr] = await Promise.all([
      get(`/mgmt/tm/ltm/virtual?expandSubcollections=true&${filter}`),
      get(`/mgmt/tm/ltm/pool?expandSubcollections=true&${filter}`),
      get(`/mgmt/tm/ltm/monitor/tcp?${filter}`),
      get(`/mgmt/tm/ltm/monitor/http?${filter}`),
      get(`/mgmt/tm/ltm/node?${filter}`),
      get(`/mgmt/tm/ltm/persistence/source-addr?${filter}`),
    ]);
    const data = emptySnapshot();
    const mine = (o: Record<string, unknown>): boolean => o.partition === this.#partition;
    for (const o of virtuals.filter(mine)) data.virtuals.set(String(o.fullPath), virtualFromF5(o));
    for (const o of pools.filter(mine)) data.pools.set(String(o.fullPath), poolFromF5(o));
    for (const o of tcp.filter(mine)) data.monitors.set(String(o.fullPath), monitorFromF5('tcp', o));
    for (const o of http.filter(mine)) data.monitors.set(String(o.fullPath), monitorFromF5('http', o));
    for (const o of nodes.filter(mine)) data.nodes.set(String(o.fullPath), nodeFromF5(o));
    for (const o of sourceAddr.filter(mine)) data.persistence.set(String(o.fullPath), persistenceFromF5(o));
    // Writes that completed while this read was under way may be missing from it: replay them.
    this.#journal = this.#journal.filter((e) => e.at > Date.now() - 120_000);
    for (const entry of this.#journal) if (entry.at >= startedAt) this.#applyLocal(data, entry.changes);
    return { data, startedAt };
  }

  #applyLocal(data: PartitionSnapshot, changes: readonly Change[]): void {
    for (const change of changes) {
      const maps = {
        virtual: data.virtuals,
        pool: data.pools,
        monitor: data.monitors,
        node: data.nodes,
        persistence: data.persistence,
      };
      const map = maps[change.collection] as Map<string, Change['state']>;
      if (change.op === 'delete') map.delete(change.state.fullPath);
      else map.set(change.state.fullPath, change.state);
    }
  }

  #owned(description: string, refId: string): boolean {
    return parseOwnerMarker(description, this.#controllerId) === refId;
  }

  #refuseForeign(live: { description: string; fullPath: string } | undefined, refId: string): void {
    if (live && !this.#owned(live.description, refId)) {
      throw new TerminalError(
        `F5 object ${live.fullPath} exists and is not managed by KLB for ${refId}; it is left untouched`,
        {
          reason: 'F5ObjectNotOwned',
        },
      );
    }
  }

  /** Members KLB wants in a pool, keeping removed ones user-disabled while they drain. */
  #members(live: PoolState | undefined, wanted: readonly MemberState[]): MemberState[] {
    if (!live || this.#drainSeconds <= 0) return [...wanted];
    const now = Date.now();
    const names = new Set(wanted.map((m) => m.name));
    const kept: MemberState[] = [];
    for (const member of live.members) {
      if (names.has(member.name)) continue;
      const since = member.description.startsWith(drainPrefix)
        ? Number(member.description.slice(drainPrefix.length))
        : Number.NaN;
      if (member.disabled && Number.isFinite(since)) {
        if (now - since < this.#drainSeconds * 1000) kept.push(member);
        continue;
      }
      kept.push({ ...member, disabled: true, description: `${drainPrefix}${now}` });
    }
    return [...wanted, ...kept].sort(byName);
  }

  /** The changes that make the partition match `desired` for `refId` (removal when undefined). */
  #plan(data: PartitionSnapshot, refId: string, desired: DesiredLoadBalancer | undefined): Change[] {
    const changes: Change[] = [];
    /** `<collection> <fullPath>` of the objects to keep (a pool and its virtual share a name). */
    const keep = new Set<string>();
    /** Creates or updates what differs (objects without pool members). */
    const sync = <T extends Change['state']>(collection: Collection, wanted: readonly T[], live: Map<string, T>) => {
      for (const state of wanted) {
        keep.add(`${collection} ${state.fullPath}`);
        const current = live.get(state.fullPath);
        this.#refuseForeign(current, refId);
        if (!current) changes.push({ op: 'create', collection, state });
        else if (!sameState(current, state)) changes.push({ op: 'update', collection, state });
      }
    };
    if (desired) {
      sync('persistence', desired.persistence, data.persistence);
      sync('monitor', desired.monitors, data.monitors);
      for (const pool of desired.pools) {
        keep.add(`pool ${pool.fullPath}`);
        const live = data.pools.get(pool.fullPath);
        this.#refuseForeign(live, refId);
        const state: PoolState = { ...pool, members: this.#members(live, pool.members) };
        if (!live) {
          changes.push({ op: 'create', collection: 'pool', state });
          continue;
        }
        const propsSame = sameState({ ...live, members: [] }, { ...state, members: [] });
        const membersSame = sameState(live.members, state.members);
        if (!propsSame || !membersSame) {
          const names = new Set(state.members.map((m) => m.name));
          const releases = live.members.some((m) => !names.has(m.name));
          changes.push({ op: 'update', collection: 'pool', state, membersOnly: propsSame, releases });
        }
      }
      sync('virtual', desired.virtuals, data.virtuals);
      const nodes = new Set<string>();
      for (const change of changes) {
        if (change.collection !== 'pool') continue;
        for (const member of (change.state as PoolState).members) {
          const path = fullPath(this.#partition, member.address);
          if (!data.nodes.has(path) && !nodes.has(path)) {
            nodes.add(path);
            changes.push({
              op: 'create',
              collection: 'node',
              state: { fullPath: path, address: member.address, description: nodeMarker(this.#controllerId) },
            });
          }
        }
      }
    }
    const owned: [Collection, Map<string, Change['state']>][] = [
      ['virtual', data.virtuals],
      ['pool', data.pools],
      ['monitor', data.monitors],
      ['persistence', data.persistence],
    ];
    for (const [collection, live] of owned) {
      for (const [path, state] of live) {
        if (!keep.has(`${collection} ${path}`) && this.#owned(state.description, refId)) {
          changes.push({ op: 'delete', collection, state });
        }
      }
    }
    return changes;
  }

  #path(collection: Collection, state: Change['state']): string {
    const base =
      collection === 'monitor'
        ? `monitor/${(state as MonitorState).type}`
        : collection === 'persistence'
          ? 'persistence/source-addr'
          : collection;
    return `/mgmt/tm/ltm/${base}`;
  }

  #memberBodies(pool: PoolState): Record<string, unknown>[] {
    return pool.members.map((m) => ({
      name: m.name,
      address: m.address,
      partition: this.#partition,
      session: m.disabled ? 'user-disabled' : 'user-enabled',
      description: m.description,
    }));
  }

  #body(change: Change): Record<string, unknown> {
    const named = (path: string): Record<string, unknown> =>
      change.op === 'create' ? { name: path.slice(path.lastIndexOf('/') + 1), partition: this.#partition } : {};
    switch (change.collection) {
      case 'virtual': {
        const v = change.state as VirtualState;
        return {
          ...named(v.fullPath),
          destination: v.destination,
          ipProtocol: v.ipProtocol,
          pool: v.pool,
          profiles: v.profiles.map((p) => ({ name: p, context: 'all' })),
          sourceAddressTranslation: { type: v.snat },
          persist: v.persist.map((p) => ({
            name: p.slice(p.lastIndexOf('/') + 1),
            partition: p.slice(1, p.indexOf('/', 1)),
            tmDefault: 'yes',
          })),
          description: v.description,
        };
      }
      case 'pool': {
        const p = change.state as PoolState;
        if (change.membersOnly) return { members: this.#memberBodies(p) };
        return {
          ...named(p.fullPath),
          loadBalancingMode: p.loadBalancingMode,
          monitor: p.monitor,
          description: p.description,
          members: this.#memberBodies(p),
        };
      }
      case 'monitor': {
        const m = change.state as MonitorState;
        return {
          ...named(m.fullPath),
          defaultsFrom: m.defaultsFrom,
          interval: m.interval,
          timeout: m.timeout,
          send: m.send,
          recv: m.recv,
          destination: m.destination,
          description: m.description,
        };
      }
      case 'persistence': {
        const p = change.state as PersistenceState;
        return {
          ...named(p.fullPath),
          defaultsFrom: p.defaultsFrom,
          // The REST API takes and returns the timeout as a string.
          timeout: String(p.timeout),
          description: p.description,
        };
      }
      default: {
        const n = change.state as NodeState;
        return { name: n.address, partition: this.#partition, address: n.address, description: n.description };
      }
    }
  }

  #command(change: Change): F5Command {
    const collectionPath = this.#path(change.collection, change.state);
    if (change.op === 'create') return { method: 'POST', path: collectionPath, body: this.#body(change) };
    const path = `${collectionPath}/${urlName(change.state.fullPath)}`;
    if (change.op === 'delete') return { method: 'DELETE', path };
    return { method: 'PATCH', path, body: this.#body(change) };
  }

  /**
   * Executes `changes`, but leaves node creations that another in-flight reconcile already
   * makes to that one (waiting for it first), so concurrent load balancers on the same nodes
   * do not race to create them.
   */
  async #executeWithNodes(changes: Change[], ctx: BackendContext): Promise<void> {
    const waitFor: Promise<void>[] = [];
    const own: string[] = [];
    const mine = changes.filter((c) => {
      if (c.collection !== 'node' || c.op !== 'create') return true;
      const pending = this.#pendingNodes.get(c.state.fullPath);
      if (pending) {
        waitFor.push(pending);
        return false;
      }
      own.push(c.state.fullPath);
      return true;
    });
    // Claim our node creations before the first await, so concurrent reconciles see the claim.
    let release = (): void => undefined;
    const claim = new Promise<void>((resolve) => {
      release = resolve;
    });
    for (const path of own) this.#pendingNodes.set(path, claim);
    try {
      await Promise.all(waitFor);
      await this.#execute(mine, ctx);
    } finally {
      for (const path of own) if (this.#pendingNodes.get(path) === claim) this.#pendingNodes.delete(path);
      release();
    }
  }

  async #execute(changes: Change[], ctx: BackendContext): Promise<void> {
    const memberOnly = changes.every((c) => c.collection === 'pool' && c.op === 'update' && c.membersOnly);
    if (memberOnly && changes.length === 1) {
      const [change] = changes as [Change];
      ctx.log.info(
        { pool: change.state.fullPath, members: (change.state as PoolState).members.length },
        'updating F5 pool members',
      );
      await this.#client.request('PATCH', `/mgmt/tm/ltm/pool/${urlName(change.state.fullPath)}`, {
        body: this.#body(change),
        signal: ctx.signal,
      });
    } else {
      // Create what others refer to first, delete it last: a persistence profile goes only after
      // the virtuals are deleted or updated not to use it (a BIG-IP refuses it while in use).
      const rank = (c: Change): number => {
        if (c.op === 'delete') {
          return c.collection === 'virtual' ? 0 : c.collection === 'pool' ? 5 : c.collection === 'monitor' ? 6 : 7;
        }
        return c.collection === 'node' || c.collection === 'persistence'
          ? 1
          : c.collection === 'monitor'
            ? 2
            : c.collection === 'pool'
              ? 3
              : 4;
      };
      const ordered = [...changes].sort((a, b) => rank(a) - rank(b));
      ctx.log.info(
        { changes: ordered.map((c) => `${c.op} ${c.collection} ${c.state.fullPath}`) },
        'applying F5 changes in one transaction',
      );
      await this.#client.commit(
        ordered.map((c) => this.#command(c)),
        ctx.signal,
      );
    }
    const at = Date.now();
    this.#journal.push({ at, changes });
    if (this.#snapshot) this.#applyLocal(this.#snapshot.data, changes);
  }

  /** Deletes nodes this controller created that no pool member uses any more. */
  async #collectNodes(ctx: BackendContext): Promise<void> {
    await this.#lock.exclusive(async () => {
      const snapshot = await this.#read(Date.now() - this.#maxAgeMs, ctx.signal);
      const used = new Set<string>();
      for (const pool of snapshot.data.pools.values()) for (const m of pool.members) used.add(m.address);
      const marker = nodeMarker(this.#controllerId);
      const unused = [...snapshot.data.nodes.values()].filter((n) => n.description === marker && !used.has(n.address));
      if (unused.length === 0) return;
      const changes: Change[] = unused.map((n) => ({ op: 'delete', collection: 'node', state: n }));
      try {
        await this.#execute(changes, ctx);
      } catch (err) {
        // A node still in use (someone else's member) or already gone: leave it for a later pass.
        this.#invalidate();
        ctx.log.info({ err: (err as Error).message }, 'F5 node clean-up deferred');
      }
    });
  }

  /** The ownership marker this backend writes for `ref` (for tests and tools). */
  markerFor(ref: LoadBalancerRef): string {
    return ownerMarker(this.#controllerId, ref.id);
  }
}
