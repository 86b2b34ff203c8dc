/** A virtual server, normalised for comparison. */
export interface VirtualState {
  /** `/Partition/name`. */
  readonly fullPath: string;
  /** `/Partition/10.1.1.10:80` or `/Partition/2001:db8::1.80`. */
  readonly destination: string;
  /** `tcp` or `udp`. */
  readonly ipProtocol: string;
  /** Full path of the pool. */
  readonly pool: string;
  /** Profile full paths, sorted. */
  readonly profiles: readonly string[];
  /** Source address translation type (`automap`, `none`). */
  readonly snat: string;
  /** Persistence profile full paths, sorted. */
  readonly persist: readonly string[];
  /** Description (the ownership marker). */
  readonly description: string;
}

/** A pool member, normalised. */
export interface MemberState {
  /** `10.0.0.5:30080` or `2001:db8::5.30080`. */
  readonly name: string;
  /** The node address. */
  readonly address: string;
  /** True when `session` is `user-disabled` (draining). */
  readonly disabled: boolean;
  /** Description (KLB records the drain start here). */
  readonly description: string;
}

/** A pool, normalised. */
export interface PoolState {
  /** `/Partition/name`. */
  readonly fullPath: string;
  /** F5 load balancing mode. */
  readonly loadBalancingMode: string;
  /** Monitor expression, trimmed (`''` for none). */
  readonly monitor: string;
  /** Description (the ownership marker). */
  readonly description: string;
  /** Members, sorted by name. */
  readonly members: readonly MemberState[];
}

/** A tcp or http monitor, normalised. */
export interface MonitorState {
  /** `/Partition/name`. */
  readonly fullPath: string;
  /** `tcp` or `http`. */
  readonly type: 'tcp' | 'http';
  /** Parent monitor. */
  readonly defaultsFrom: string;
  /** Seconds between checks. */
  readonly interval: number;
  /** Seconds until a member is marked down. */
  readonly timeout: number;
  /** Send string (http). */
  readonly send: string;
  /** Receive pattern (http). */
  readonly recv: string;
  /** `*:*` or `*:<port>`. */
  readonly destination: string;
  /** Description (the ownership marker). */
  readonly description: string;
}

/** A source-address persistence profile, normalised. */
export interface PersistenceState {
  /** `/Partition/name`. */
  readonly fullPath: string;
  /** Parent profile (KLB's derive from `/Common/source_addr`). */
  readonly defaultsFrom: string;
  /** Seconds a persistence record lives after the client's last connection. */
  readonly timeout: number;
  /** Description (the ownership marker). */
  readonly description: string;
}

/** A node, normalised. */
export interface NodeState {
  /** `/Partition/<address>`. */
  readonly fullPath: string;
  /** Its address. */
  readonly address: string;
  /** Description (KLB marks nodes it created). */
  readonly description: string;
}

/** What KLB knows of one partition. */
export interface PartitionSnapshot {
  /** Virtual servers by full path. */
  readonly virtuals: Map<string, VirtualState>;
  /** Pools by full path. */
  readonly pools: Map<string, PoolState>;
  /** Monitors by full path. */
  readonly monitors: Map<string, MonitorState>;
  /** Nodes by full path. */
  readonly nodes: Map<string, NodeState>;
  /** Source-address persistence profiles by full path. */
  readonly persistence: Map<string, PersistenceState>;
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function abs(reference: string, partition: string): string {
  if (reference === '' || reference === 'none') return '';
  return reference.startsWith('/') ? reference : `/${partition}/${reference}`;
}

function items(ref: unknown): Record<string, unknown>[] {
  const list = (ref as { items?: unknown } | undefined)?.items;
  return Array.isArray(list) ? (list as Record<string, unknown>[]) : [];
}

/** Normalises a virtual as the REST API returns it (with `expandSubcollections=true`). */
export function virtualFromF5(o: Record<string, unknown>): VirtualState {
  const partition = str(o.partition);
  const profiles = items(o.profilesReference).map((p) =>
    abs(str(p.fullPath) || str(p.name), str(p.partition) || partition),
  );
  const persist = (Array.isArray(o.persist) ? (o.persist as Record<string, unknown>[]) : []).map((p) =>
    abs(str(p.fullPath) || str(p.name), str(p.partition) || 'Common'),
  );
  return {
    fullPath: str(o.fullPath),
    destination: str(o.destination),
    ipProtocol: str(o.ipProtocol) || 'tcp',
    pool: abs(str(o.pool), partition),
    profiles: profiles.sort(),
    snat: str((o.sourceAddressTranslation as { type?: unknown } | undefined)?.type) || 'none',
    persist: persist.sort(),
    description: str(o.description),
  };
}

/** Normalises a pool (with `expandSubcollections=true`); compares `monitor` trimmed. */
export function poolFromF5(o: Record<string, unknown>): PoolState {
  const members = items(o.membersReference)
    .map((m) => ({
      name: str(m.name),
      address: str(m.address),
      disabled: str(m.session) === 'user-disabled',
      description: str(m.description),
    }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return {
    fullPath: str(o.fullPath),
    loadBalancingMode: str(o.loadBalancingMode) || 'round-robin',
    monitor: str(o.monitor).trim().replace(/\s+/g, ' '),
    description: str(o.description),
    members,
  };
}

/** Normalises a tcp or http monitor. */
export function monitorFromF5(type: 'tcp' | 'http', o: Record<string, unknown>): MonitorState {
  return {
    fullPath: str(o.fullPath),
    type,
    defaultsFrom: abs(str(o.defaultsFrom), 'Common'),
    interval: Number(o.interval ?? 5),
    timeout: Number(o.timeout ?? 16),
    send: str(o.send),
    recv: str(o.recv),
    destination: str(o.destination) || '*:*',
    description: str(o.description),
  };
}

/** Normalises a source-address persistence profile (the REST API returns `timeout` as a string). */
export function persistenceFromF5(o: Record<string, unknown>): PersistenceState {
  return {
    fullPath: str(o.fullPath),
    defaultsFrom: abs(str(o.defaultsFrom), 'Common'),
    timeout: Number(o.timeout ?? 180),
    description: str(o.description),
  };
}

/** Normalises a node. */
export function nodeFromF5(o: Record<string, unknown>): NodeState {
  return { fullPath: str(o.fullPath), address: str(o.address), description: str(o.description) };
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

/** Deep equality of normalised states, independent of key order. */
export function sameState(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}
