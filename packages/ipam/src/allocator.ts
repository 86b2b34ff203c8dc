import { IpamError } from './errors.js';
import { formatAddress, formatV4, type IpFamily, parseAddress } from './ip.js';
import { matchesSelector } from './label-selector.js';
import type { Pool } from './pool-config.js';
import type { AddressHolder, Allocation, AllocationOwner, AllocationRequest, PoolStats, PortSpec } from './types.js';

const SAFE = 1n << 53n;
const FAMILIES: readonly IpFamily[] = ['IPv4', 'IPv6'];
const PROTOCOLS = new Set(['TCP', 'UDP', 'SCTP']);
const KINDS = new Set(['Service', 'ConfigMap', 'Ingress', 'Gateway']);
const SHARING_KEY = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,252}$/;

type OffsetKey = number | bigint;

/** Count of values x in [0, n] with x % 256 === 0 or 255. */
function buggyUpTo(n: bigint): bigint {
  if (n < 0n) return 0n;
  return n / 256n + 1n + (n >= 255n ? (n - 255n) / 256n + 1n : 0n);
}

/** A contiguous run of assignable addresses (a pool range minus reserved ones). */
class Interval {
  readonly used = new Map<OffsetKey, Holder>();
  /** Offset of the next candidate. */
  cursor = 0n;
  readonly size: bigint;
  readonly assignable: bigint;
  /** For IPv4: the start as a number (fast formatting). */
  readonly startNum: number;
  readonly avoidBuggy: boolean;

  constructor(
    readonly family: IpFamily,
    readonly start: bigint,
    readonly end: bigint,
    readonly pool: PoolState,
  ) {
    this.size = end - start + 1n;
    this.avoidBuggy = family === 'IPv4' && pool.pool.avoidBuggyIPs;
    this.assignable = this.avoidBuggy ? this.size - (buggyUpTo(end) - buggyUpTo(start - 1n)) : this.size;
    this.startNum = family === 'IPv4' ? Number(start) : 0;
  }

  keyOf(value: bigint): OffsetKey {
    const off = value - this.start;
    return off < SAFE ? Number(off) : off;
  }

  valueOf(key: OffsetKey): bigint {
    return this.start + BigInt(key);
  }

  format(key: OffsetKey): string {
    if (this.family === 'IPv4') return formatV4(this.startNum + (key as number));
    return formatAddress('IPv6', this.start + BigInt(key));
  }

  isBuggy(key: OffsetKey): boolean {
    if (!this.avoidBuggy) return false;
    const low = (this.startNum + (key as number)) % 256;
    return low === 0 || low === 255;
  }

  /** First free offset in [from, to], or undefined. */
  scan(from: bigint, to: bigint): OffsetKey | undefined {
    if (this.size < SAFE) {
      const last = Number(to);
      for (let o = Number(from); o <= last; o++) {
        if (this.avoidBuggy) {
          const low = (this.startNum + o) % 256;
          if (low === 0 || low === 255) continue;
        }
        if (!this.used.has(o)) return o;
      }
      return undefined;
    }
    for (let o = from; o <= to; o++) {
      const key = o < SAFE ? Number(o) : o;
      if (!this.used.has(key)) return key;
    }
    return undefined;
  }
}

class PoolState {
  readonly intervals: Record<IpFamily, Interval[]> = { IPv4: [], IPv6: [] };
  readonly assignable: Record<IpFamily, bigint> = { IPv4: 0n, IPv6: 0n };
  readonly used: Record<IpFamily, number> = { IPv4: 0, IPv6: 0 };
  readonly usedAssignable: Record<IpFamily, number> = { IPv4: 0, IPv6: 0 };
  readonly next: Record<IpFamily, number> = { IPv4: 0, IPv6: 0 };
  readonly order: number;

  constructor(
    readonly pool: Pool,
    order: number,
  ) {
    this.order = order;
    for (const range of pool.ranges) {
      let pieces: Array<[bigint, bigint]> = [[range.start, range.end]];
      for (const r of pool.reserved) {
        if (r.family !== range.family) continue;
        pieces = pieces.flatMap(([s, e]): Array<[bigint, bigint]> => {
          if (r.end < s || r.start > e) return [[s, e]];
          const out: Array<[bigint, bigint]> = [];
          if (r.start > s) out.push([s, r.start - 1n]);
          if (r.end < e) out.push([r.end + 1n, e]);
          return out;
        });
      }
      for (const [s, e] of pieces) {
        const iv = new Interval(range.family, s, e, this);
        this.intervals[range.family].push(iv);
        this.assignable[range.family] += iv.assignable;
      }
    }
  }

  get name(): string {
    return this.pool.name;
  }

  /** True when `value` lies in one of the pool's configured ranges (reserved or not). */
  covers(family: IpFamily, value: bigint): boolean {
    return this.pool.ranges.some((r) => r.family === family && r.start <= value && value <= r.end);
  }
}

/** Where one held address lives: in an interval (by offset key) or outside every pool (by text). */
interface Slot {
  readonly iv: Interval | undefined;
  readonly key: OffsetKey | string;
}

interface Share {
  readonly key: string | undefined;
  readonly ports: ReadonlySet<string>;
  readonly list: readonly PortSpec[];
}

const NO_SHARE: Share = { key: undefined, ports: new Set(), list: [] };

interface Rare {
  readonly share: Share;
  /** Slots beyond the first. */
  readonly more: Slot[] | undefined;
  /** Pool name recorded for addresses outside every configured pool. */
  readonly pool: string | undefined;
}

/**
 * What one owner holds. Kept small (four fields): the common case, one address without sharing,
 * needs no other object; the rest lives in `rare`.
 */
class OwnerState {
  iv: Interval | undefined = undefined;
  key: OffsetKey | string | undefined = undefined;
  rare: Rare | undefined = undefined;
  constructor(public owner: AllocationOwner) {}

  get share(): Share {
    return this.rare?.share ?? NO_SHARE;
  }

  set share(share: Share) {
    this.#setRare(share, this.rare?.more, this.rare?.pool);
  }

  get pool(): string {
    return this.iv?.pool.name ?? this.rare?.more?.find((s) => s.iv)?.iv?.pool.name ?? this.rare?.pool ?? '';
  }

  set outsidePool(pool: string | undefined) {
    this.#setRare(this.share, this.rare?.more, pool);
  }

  #setRare(share: Share, more: Slot[] | undefined, pool: string | undefined): void {
    this.rare = share === NO_SHARE && more === undefined && pool === undefined ? undefined : { share, more, pool };
  }

  slots(): Slot[] {
    if (this.key === undefined) return [];
    const first: Slot = { iv: this.iv, key: this.key };
    return this.rare?.more ? [first, ...this.rare.more] : [first];
  }

  setSlots(slots: readonly Slot[]): void {
    const first = slots[0];
    this.iv = first?.iv;
    this.key = first?.key;
    const more = slots.length > 1 ? slots.slice(1) : undefined;
    if (more !== undefined || this.rare !== undefined) this.#setRare(this.share, more, this.rare?.pool);
  }
}

type Holder = OwnerState | OwnerState[];

const NO_SLOTS: readonly Slot[] = [];

function holdersOf(h: Holder | undefined): OwnerState[] {
  return h === undefined ? [] : Array.isArray(h) ? h : [h];
}

/** A chosen address. */
interface Pick {
  readonly iv: Interval;
  readonly key: OffsetKey;
  readonly address: string;
}

/** The outcome of {@link Allocator.plan}: what {@link Allocator.allocate} would hold for the owner. */
export interface AllocationPlan {
  /** The pool chosen. */
  readonly pool: string;
  /** The addresses, primary family first. */
  readonly addresses: string[];
  /** True when the owner already holds exactly these addresses with the same sharing terms. */
  readonly unchanged: boolean;
  /** Addresses the owner does not hold yet. */
  readonly added: string[];
  /** Addresses the owner holds now and would give up. */
  readonly removed: string[];
  /** The owner's sharing key in the plan. */
  readonly sharingKey: string | undefined;
  /** The owner's ports in the plan. */
  readonly ports: readonly PortSpec[];
}

interface NormalRequest {
  readonly addresses: Array<{ family: IpFamily; value: bigint; text: string }> | undefined;
  readonly pool: string | undefined;
  readonly order: readonly IpFamily[];
  readonly explicitFamilies: boolean;
  readonly policy: 'SingleStack' | 'PreferDualStack' | 'RequireDualStack';
  readonly share: Share;
  readonly namespace: string;
  readonly namespaceLabels: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
  readonly loadBalancerClass: string | undefined;
}

function invalid(message: string): IpamError {
  return new IpamError('INVALID_REQUEST', message);
}

function ownerText(o: AllocationOwner): string {
  return `${o.kind} ${o.namespace}/${o.name}`;
}

/** Validates an owner; throws `INVALID_REQUEST`. */
export function checkOwner(owner: AllocationOwner): void {
  if (typeof owner !== 'object' || owner === null) throw invalid('owner must be an object');
  if (!KINDS.has(owner.kind))
    throw invalid(`owner.kind must be Service, ConfigMap or Ingress, not ${String(owner.kind)}`);
  for (const field of ['namespace', 'name', 'uid'] as const) {
    const v = owner[field];
    if (typeof v !== 'string' || v.length === 0 || v.length > 253) {
      throw invalid(`owner.${field} must be a non-empty string of at most 253 characters`);
    }
  }
}

function normalizeShare(sharingKey: unknown, ports: unknown): Share {
  if (sharingKey === undefined && (ports === undefined || (Array.isArray(ports) && ports.length === 0)))
    return NO_SHARE;
  if (sharingKey !== undefined && (typeof sharingKey !== 'string' || !SHARING_KEY.test(sharingKey))) {
    throw invalid(`sharingKey ${JSON.stringify(sharingKey)} must be 1-253 characters of letters, digits and ._:/-`);
  }
  if (ports !== undefined && !Array.isArray(ports)) throw invalid('ports must be an array');
  const set = new Set<string>();
  const list: PortSpec[] = [];
  for (const p of (ports ?? []) as unknown[]) {
    const spec = p as PortSpec;
    if (typeof p !== 'object' || p === null || !PROTOCOLS.has(spec.protocol)) {
      throw invalid(`ports: protocol must be TCP, UDP or SCTP, got ${JSON.stringify(p)}`);
    }
    if (!Number.isInteger(spec.port) || spec.port < 1 || spec.port > 65535) {
      throw invalid(`ports: port must be an integer 1-65535, got ${JSON.stringify(spec.port)}`);
    }
    const k = `${spec.protocol}/${spec.port}`;
    if (!set.has(k)) list.push({ protocol: spec.protocol, port: spec.port });
    set.add(k);
  }
  if (sharingKey === undefined && set.size === 0) return NO_SHARE;
  return { key: sharingKey as string | undefined, ports: set, list };
}

/** Like normalizeShare, but never throws: for records read back from the API. */
function importShare(sharingKey: unknown, ports: unknown): Share {
  const key = typeof sharingKey === 'string' && SHARING_KEY.test(sharingKey) ? sharingKey : undefined;
  const valid = Array.isArray(ports)
    ? ports.filter(
        (p: PortSpec) =>
          typeof p === 'object' &&
          p !== null &&
          PROTOCOLS.has(p.protocol) &&
          Number.isInteger(p.port) &&
          p.port >= 1 &&
          p.port <= 65535,
      )
    : [];
  return normalizeShare(key, valid);
}

/** True when `key` is a valid sharing key (1-253 characters of letters, digits and `._:/-`). */
export function isValidSharingKey(key: string): boolean {
  return SHARING_KEY.test(key);
}

function labelMap(v: unknown, what: string): Readonly<Record<string, string>> {
  if (v === undefined) return NO_LABELS;
  if (typeof v !== 'object' || v === null || Object.values(v).some((x) => typeof x !== 'string')) {
    throw invalid(`${what} must map strings to strings`);
  }
  return v as Record<string, string>;
}

const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});
const POLICIES: readonly string[] = ['SingleStack', 'PreferDualStack', 'RequireDualStack'];

function normalizeRequest(owner: AllocationOwner, req: AllocationRequest): NormalRequest {
  if (typeof req !== 'object' || req === null) throw invalid('request must be an object');
  let addresses: NormalRequest['addresses'];
  if (req.addresses !== undefined) {
    if (!Array.isArray(req.addresses)) throw invalid('addresses must be an array of IP addresses');
    addresses = [];
    for (const text of req.addresses) {
      const parsed = typeof text === 'string' ? parseAddress(text.trim()) : undefined;
      if (!parsed) throw invalid(`requested address ${JSON.stringify(text)} is not a valid IPv4 or IPv6 address`);
      if (addresses.some((a) => a.family === parsed.family)) {
        throw invalid(`at most one requested address per family; two ${parsed.family} addresses given`);
      }
      addresses.push({ ...parsed, text: formatAddress(parsed.family, parsed.value) });
    }
    if (addresses.length === 0) addresses = undefined;
  }
  if (req.pool !== undefined && (typeof req.pool !== 'string' || req.pool.length === 0)) {
    throw invalid('pool must be a non-empty string');
  }
  const fams = req.ipFamilies;
  if (fams !== undefined) {
    if (!Array.isArray(fams) || fams.length > 2 || fams.some((f) => f !== 'IPv4' && f !== 'IPv6')) {
      throw invalid('ipFamilies must list IPv4 and/or IPv6');
    }
    if (fams.length === 2 && fams[0] === fams[1]) throw invalid('ipFamilies lists the same family twice');
  }
  if (req.ipFamilyPolicy !== undefined && !POLICIES.includes(req.ipFamilyPolicy)) {
    throw invalid(`ipFamilyPolicy must be one of ${POLICIES.join(', ')}`);
  }
  const policy = req.ipFamilyPolicy ?? (fams?.length === 2 ? 'PreferDualStack' : 'SingleStack');
  if (policy === 'SingleStack' && fams?.length === 2) throw invalid('ipFamilyPolicy SingleStack allows one ipFamily');
  const explicitFamilies = fams !== undefined && fams.length > 0;
  const order: IpFamily[] = explicitFamilies ? [...fams] : [];
  for (const f of addresses?.map((a) => a.family) ?? []) if (!order.includes(f)) order.push(f);
  for (const f of FAMILIES) if (!order.includes(f)) order.push(f);
  if (addresses) {
    if (policy === 'SingleStack' && addresses.length > 1) {
      throw invalid('two addresses requested but ipFamilyPolicy is SingleStack');
    }
    if (policy === 'RequireDualStack' && addresses.length < 2) {
      throw invalid('ipFamilyPolicy RequireDualStack needs one requested address of each family');
    }
    if (explicitFamilies) {
      for (const a of addresses) {
        if (!fams.includes(a.family)) throw invalid(`requested address ${a.text} is ${a.family}, not in ipFamilies`);
      }
    }
    addresses.sort((a, b) => order.indexOf(a.family) - order.indexOf(b.family));
  }
  if (req.loadBalancerClass !== undefined && typeof req.loadBalancerClass !== 'string') {
    throw invalid('loadBalancerClass must be a string');
  }
  if (req.namespace !== undefined && typeof req.namespace !== 'string') throw invalid('namespace must be a string');
  return {
    addresses,
    pool: req.pool,
    order,
    explicitFamilies,
    policy,
    share: normalizeShare(req.sharingKey, req.ports),
    namespace: req.namespace ?? owner.namespace,
    namespaceLabels: labelMap(req.namespaceLabels, 'namespaceLabels'),
    labels: labelMap(req.labels, 'labels'),
    loadBalancerClass: req.loadBalancerClass,
  };
}

function disjoint(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  for (const x of a) if (b.has(x)) return false;
  return true;
}

function sameShare(a: Share, b: Share): boolean {
  if (a.key !== b.key || a.ports.size !== b.ports.size) return false;
  for (const x of a.ports) if (!b.ports.has(x)) return false;
  return true;
}

/**
 * The in-memory allocator: pools and who holds which address. Pure and synchronous; memory and
 * time grow with the number of allocations, never with pool size (a pool is a handful of
 * intervals; only held addresses are stored, as offsets into them).
 *
 * {@link KubeIpam} wraps it with persistence; tests and benchmarks use it directly.
 */
export class Allocator {
  #pools: PoolState[] = [];
  /** The autoAssign pools by priority, then configuration order. */
  #autoPools: PoolState[] = [];
  #byName = new Map<string, PoolState>();
  /** All intervals of a family, sorted by start (pools never overlap). */
  #sorted: Record<IpFamily, Interval[]> = { IPv4: [], IPv6: [] };
  readonly #owners = new Map<string, OwnerState>();
  readonly #outside = new Map<string, Holder>();
  readonly #sharing = new Map<string, Set<OwnerState>>();

  /** @param pools - validated pools (from {@link parsePoolConfig} and friends). */
  constructor(pools: readonly Pool[] = []) {
    this.#build(pools);
  }

  /** The configured pools. */
  get pools(): readonly Pool[] {
    return this.#pools.map((p) => p.pool);
  }

  /** Number of owners holding addresses. */
  get size(): number {
    return this.#owners.size;
  }

  #build(pools: readonly Pool[]): void {
    this.#pools = pools.map((p, i) => new PoolState(p, i));
    this.#byName = new Map(this.#pools.map((p) => [p.name, p]));
    this.#autoPools = this.#pools
      .filter((p) => p.pool.autoAssign)
      .sort(
        (a, b) =>
          (a.pool.priority ?? Number.MAX_SAFE_INTEGER) - (b.pool.priority ?? Number.MAX_SAFE_INTEGER) ||
          a.order - b.order,
      );
    for (const f of FAMILIES) {
      this.#sorted[f] = this.#pools.flatMap((p) => p.intervals[f]).sort((a, b) => (a.start < b.start ? -1 : 1));
    }
  }

  /**
   * Replaces the pools. Every existing allocation is kept: addresses still inside a pool are
   * re-indexed; the others are held "outside" until the owner is re-allocated or released.
   */
  setPools(pools: readonly Pool[]): void {
    const saved = [...this.#owners.values()].map((s) => ({
      owner: s.owner,
      pool: s.pool,
      share: s.share,
      addresses: s.slots().map((slot) => this.#slotText(slot)),
    }));
    this.#owners.clear();
    this.#outside.clear();
    this.#sharing.clear();
    this.#build(pools);
    for (const s of saved) this.#place(s.owner, s.addresses, s.share, s.pool);
  }

  #slotText(slot: Slot): string {
    return slot.iv ? slot.iv.format(slot.key as OffsetKey) : (slot.key as string);
  }

  #locate(family: IpFamily, value: bigint): Interval | undefined {
    const list = this.#sorted[family];
    let lo = 0;
    let hi = list.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const iv = list[mid] as Interval;
      if (value < iv.start) hi = mid - 1;
      else if (value > iv.end) lo = mid + 1;
      else return iv;
    }
    return undefined;
  }

  #slotFor(address: string): Slot {
    const parsed = parseAddress(address);
    if (!parsed) throw invalid(`${JSON.stringify(address)} is not a valid IP address`);
    const iv = this.#locate(parsed.family, parsed.value);
    return iv
      ? { iv, key: iv.keyOf(parsed.value) }
      : { iv: undefined, key: formatAddress(parsed.family, parsed.value) };
  }

  #holderAt(slot: Slot): Holder | undefined {
    return slot.iv ? slot.iv.used.get(slot.key as OffsetKey) : this.#outside.get(slot.key as string);
  }

  #setHolderAt(slot: Slot, holders: OwnerState[]): void {
    const before = this.#holderAt(slot);
    const value = holders.length === 0 ? undefined : holders.length === 1 ? holders[0] : holders;
    if (!slot.iv) {
      if (value === undefined) this.#outside.delete(slot.key as string);
      else this.#outside.set(slot.key as string, value);
      return;
    }
    const iv = slot.iv;
    const key = slot.key as OffsetKey;
    if (value === undefined) iv.used.delete(key);
    else iv.used.set(key, value as Holder);
    const delta =
      before === undefined && value !== undefined ? 1 : before !== undefined && value === undefined ? -1 : 0;
    if (delta !== 0) {
      iv.pool.used[iv.family] += delta;
      if (!iv.isBuggy(key)) iv.pool.usedAssignable[iv.family] += delta;
    }
  }

  #sameSlot(a: Slot, b: Slot): boolean {
    return a.iv === b.iv && a.key === b.key;
  }

  #removeOwnerFromSlot(state: OwnerState, slot: Slot): void {
    this.#setHolderAt(
      slot,
      holdersOf(this.#holderAt(slot)).filter((h) => h !== state),
    );
  }

  #setShare(state: OwnerState, share: Share): void {
    if (state.share.key !== undefined) {
      const set = this.#sharing.get(state.share.key);
      set?.delete(state);
      if (set?.size === 0) this.#sharing.delete(state.share.key);
    }
    state.share = share;
    if (share.key !== undefined) {
      let set = this.#sharing.get(share.key);
      if (!set) {
        set = new Set();
        this.#sharing.set(share.key, set);
      }
      set.add(state);
    }
  }

  #dropOwner(state: OwnerState): void {
    for (const slot of state.slots()) this.#removeOwnerFromSlot(state, slot);
    this.#setShare(state, NO_SHARE);
    this.#owners.delete(state.owner.uid);
  }

  /** Puts `owner` on `addresses` (adding to their holders), replacing what it held. */
  #place(owner: AllocationOwner, addresses: readonly string[], share: Share, pool?: string): OwnerState {
    return this.#placeSlots(
      owner,
      addresses.map((a) => this.#slotFor(a)),
      share,
      pool,
    );
  }

  #placeSlots(owner: AllocationOwner, picked: readonly Slot[], share: Share, pool?: string): OwnerState {
    const slots: Slot[] = [];
    for (const p of picked) slots.push({ iv: p.iv, key: p.key });
    const existing = this.#owners.get(owner.uid);
    if (existing) this.#dropOwner(existing);
    const state = new OwnerState(owner);
    state.setSlots(slots);
    if (!slots.some((s) => s.iv) && pool !== undefined && pool !== '') state.outsidePool = pool;
    for (const slot of slots) {
      const before = this.#holderAt(slot);
      this.#setHolderAt(slot, before === undefined ? [state] : [...holdersOf(before), state]);
    }
    this.#setShare(state, share);
    this.#owners.set(owner.uid, state);
    return state;
  }

  #allocationOf(state: OwnerState): Allocation {
    return { owner: state.owner, addresses: state.slots().map((s) => this.#slotText(s)), pool: state.pool };
  }

  /** The owner's allocation (by uid), if any. */
  get(owner: AllocationOwner | string): Allocation | undefined {
    const state = this.#owners.get(typeof owner === 'string' ? owner : owner.uid);
    return state && this.#allocationOf(state);
  }

  /** Every allocation. */
  *allocations(): IterableIterator<Allocation> {
    for (const state of this.#owners.values()) yield this.#allocationOf(state);
  }

  /** Who holds `address` (canonical or not), with their sharing terms. */
  holders(address: string): AddressHolder[] {
    return holdersOf(this.#holderAt(this.#slotFor(address))).map((s) => ({
      owner: s.owner,
      ...(s.share.key === undefined ? {} : { sharingKey: s.share.key }),
      ports: s.share.list,
    }));
  }

  #eligible(pool: PoolState, req: NormalRequest): boolean {
    const p = pool.pool;
    if (p.namespaces && !p.namespaces.includes(req.namespace)) return false;
    if (p.namespaceSelector && !matchesSelector(p.namespaceSelector, req.namespaceLabels)) return false;
    if (p.serviceSelector && !matchesSelector(p.serviceSelector, req.labels)) return false;
    if (p.loadBalancerClasses) {
      if (req.loadBalancerClass === undefined || !p.loadBalancerClasses.includes(req.loadBalancerClass)) return false;
    }
    return true;
  }

  #families(pool: PoolState, req: NormalRequest): IpFamily[] | undefined {
    const available: IpFamily[] = [];
    for (const f of req.order) if (pool.intervals[f].length > 0) available.push(f);
    const primary = req.order[0] as IpFamily;
    const hasPrimary = pool.intervals[primary].length > 0;
    if (req.policy === 'SingleStack') {
      if (req.explicitFamilies) return hasPrimary ? [primary] : undefined;
      return available.length > 0 ? [available[0] as IpFamily] : undefined;
    }
    if (req.policy === 'RequireDualStack') return available.length === 2 ? available : undefined;
    // PreferDualStack: the primary family (when given) is required, the other is optional.
    if (req.explicitFamilies && !hasPrimary) return undefined;
    return available.length > 0 ? available : undefined;
  }

  /** Whether `state` may hold `slot` alongside its other holders under `share`. */
  #compatible(slot: Slot, state: OwnerState | undefined, share: Share): 'ok' | 'taken' | 'conflict' {
    const others = holdersOf(this.#holderAt(slot)).filter((h) => h !== state);
    if (others.length === 0) return 'ok';
    if (share.key === undefined || others.some((o) => o.share.key !== share.key)) return 'taken';
    return others.every((o) => disjoint(o.share.ports, share.ports)) ? 'ok' : 'conflict';
  }

  #satisfies(state: OwnerState, req: NormalRequest): boolean {
    const slots = state.slots();
    if (slots.length === 0 || slots.some((s) => s.iv === undefined)) return false;
    const pool = (slots[0] as Slot).iv?.pool as PoolState;
    if (slots.some((s) => s.iv?.pool !== pool)) return false;
    if (req.pool !== undefined && req.pool !== pool.name) return false;
    if (!this.#eligible(pool, req) || !sameShare(state.share, req.share)) return false;
    const fams = slots.map((s) => s.iv?.family as IpFamily);
    const want = req.addresses ? req.addresses.map((a) => a.family) : this.#families(pool, req);
    if (!want || want.length !== fams.length || want.some((f, i) => fams[i] !== f)) return false;
    if (req.addresses) {
      const texts = slots.map((s) => this.#slotText(s));
      if (req.addresses.some((a, i) => a.text !== texts[i])) return false;
    }
    return true;
  }

  /**
   * What {@link Allocator.allocate} would do, without changing anything. Throws the same errors.
   */
  plan(owner: AllocationOwner, request: AllocationRequest = {}): AllocationPlan {
    const { state, req, picks } = this.#decide(owner, request);
    const current = state ? state.slots().map((s) => this.#slotText(s)) : [];
    const addresses = picks ? picks.map((p) => p.address) : current;
    return {
      pool: picks ? (picks[0] as Pick).iv.pool.name : (state as OwnerState).pool,
      addresses,
      unchanged: picks === undefined,
      added: addresses.filter((a) => !current.includes(a)),
      removed: current.filter((a) => !addresses.includes(a)),
      sharingKey: req.share.key,
      ports: req.share.list,
    };
  }

  /** The decision shared by plan() and allocate(): `picks` undefined means "keep what is held". */
  #decide(
    owner: AllocationOwner,
    request: AllocationRequest,
  ): { state: OwnerState | undefined; req: NormalRequest; picks: Pick[] | undefined } {
    checkOwner(owner);
    const req = normalizeRequest(owner, request);
    const state = this.#owners.get(owner.uid);
    if (state && this.#satisfies(state, req)) return { state, req, picks: undefined };
    const picks = req.addresses ? this.#planExplicit(state, req) : this.#planAuto(state, req);
    return { state, req, picks };
  }

  #planExplicit(state: OwnerState | undefined, req: NormalRequest): Pick[] {
    const picks: Pick[] = [];
    let pool: PoolState | undefined;
    for (const a of req.addresses ?? []) {
      const iv = this.#locate(a.family, a.value);
      if (!iv) {
        const owning = this.#pools.find((p) => p.covers(a.family, a.value));
        if (owning) throw new IpamError('ADDRESS_RESERVED', `address ${a.text} is reserved in pool ${owning.name}`);
        throw new IpamError('ADDRESS_OUTSIDE_POOLS', `address ${a.text} is not in any configured pool`);
      }
      if (pool && iv.pool !== pool) {
        throw invalid(`requested addresses are in different pools (${pool.name}, ${iv.pool.name})`);
      }
      pool = iv.pool;
      if (req.pool !== undefined && req.pool !== pool.name) {
        throw new IpamError(
          'ADDRESS_OUTSIDE_POOLS',
          `address ${a.text} is in pool ${pool.name}, not in pool ${req.pool}`,
        );
      }
      if (!this.#eligible(pool, req)) {
        throw new IpamError(
          'NO_MATCHING_POOL',
          `address ${a.text} is in pool ${pool.name}, which is not available to this owner (namespace, labels or class)`,
        );
      }
      const key = iv.keyOf(a.value);
      const slot: Slot = { iv, key };
      const mine = state?.slots().some((s) => this.#sameSlot(s, slot)) ?? false;
      if (iv.isBuggy(key) && !mine) {
        throw new IpamError('ADDRESS_RESERVED', `address ${a.text} ends in .0 or .255, avoided in pool ${pool.name}`);
      }
      const verdict = this.#compatible(slot, state, req.share);
      if (verdict !== 'ok') throw this.#holderError(a.text, slot, state, req.share, verdict);
      picks.push({ iv, key, address: a.text });
    }
    return picks;
  }

  #holderError(address: string, slot: Slot, state: OwnerState | undefined, share: Share, verdict: string): IpamError {
    const other = holdersOf(this.#holderAt(slot)).find((h) => h !== state) as OwnerState;
    if (verdict === 'conflict') {
      const clash = [...share.ports].filter((p) =>
        holdersOf(this.#holderAt(slot)).some((h) => h !== state && h.share.ports.has(p)),
      );
      return new IpamError(
        'SHARING_CONFLICT',
        `address ${address} is shared under key "${share.key}" by ${ownerText(other.owner)}, whose ports overlap (${clash.join(', ')})`,
      );
    }
    return new IpamError(
      'ADDRESS_TAKEN',
      `address ${address} is held by ${ownerText(other.owner)}${other.share.key === undefined ? '' : ` (sharing key "${other.share.key}")`}`,
    );
  }

  #planAuto(state: OwnerState | undefined, req: NormalRequest): Pick[] {
    let candidates: PoolState[];
    if (req.pool !== undefined) {
      const named = this.#byName.get(req.pool);
      if (!named) throw new IpamError('NO_MATCHING_POOL', `no pool named "${req.pool}"`);
      if (!this.#eligible(named, req)) {
        throw new IpamError(
          'NO_MATCHING_POOL',
          `pool ${req.pool} is not available to this owner (namespace, labels or class)`,
        );
      }
      candidates = [named];
    } else {
      candidates = [];
      for (const p of this.#autoPools) if (this.#eligible(p, req)) candidates.push(p);
      if (candidates.length === 0) {
        throw new IpamError(
          'NO_MATCHING_POOL',
          'no auto-assign pool is available to this owner (namespace, labels or class)',
        );
      }
    }
    const held = state ? state.slots() : NO_SLOTS;
    let currentPool: PoolState | undefined;
    for (const slot of held) {
      if (slot.iv) {
        currentPool = slot.iv.pool;
        break;
      }
    }
    if (currentPool && candidates.includes(currentPool)) {
      candidates = [currentPool, ...candidates.filter((p) => p !== currentPool)];
    }
    let exhausted: string | undefined;
    let familyMissing: string | undefined;
    for (const pool of candidates) {
      const fams = this.#families(pool, req);
      if (!fams) {
        familyMissing ??= pool.name;
        continue;
      }
      const picks: Pick[] = [];
      for (const family of fams) {
        const pick =
          this.#stickyPick(held, state, pool, family, req) ??
          this.#sharedPick(state, pool, family, req) ??
          this.#freePick(pool, family);
        if (!pick) break;
        picks.push(pick);
      }
      if (picks.length === fams.length) return picks;
      exhausted ??= pool.name;
    }
    if (exhausted !== undefined) {
      throw new IpamError(
        'POOL_EXHAUSTED',
        candidates.length === 1
          ? `pool ${exhausted} has no free address`
          : `no free address in any of the matching pools (${candidates.map((p) => p.name).join(', ')})`,
      );
    }
    const want =
      req.policy === 'RequireDualStack' ? 'IPv4 and IPv6' : req.explicitFamilies ? req.order[0] : 'any family';
    throw new IpamError(
      'FAMILY_UNAVAILABLE',
      `no matching pool offers ${want} (${req.policy})${familyMissing ? `; e.g. pool ${familyMissing}` : ''}`,
    );
  }

  #stickyPick(
    held: readonly Slot[],
    state: OwnerState | undefined,
    pool: PoolState,
    family: IpFamily,
    req: NormalRequest,
  ): Pick | undefined {
    for (const slot of held) {
      const iv = slot.iv;
      if (!iv || iv.pool !== pool || iv.family !== family) continue;
      if (this.#compatible(slot, state, req.share) !== 'ok') continue;
      return { iv, key: slot.key as OffsetKey, address: this.#slotText(slot) };
    }
    return undefined;
  }

  #sharedPick(state: OwnerState | undefined, pool: PoolState, family: IpFamily, req: NormalRequest): Pick | undefined {
    if (req.share.key === undefined) return undefined;
    for (const other of this.#sharing.get(req.share.key) ?? []) {
      if (other === state) continue;
      for (const slot of other.slots()) {
        const iv = slot.iv;
        if (!iv || iv.pool !== pool || iv.family !== family) continue;
        if (this.#compatible(slot, state, req.share) === 'ok') {
          return { iv, key: slot.key as OffsetKey, address: this.#slotText(slot) };
        }
      }
    }
    return undefined;
  }

  #freePick(pool: PoolState, family: IpFamily): Pick | undefined {
    if (BigInt(pool.usedAssignable[family]) >= pool.assignable[family]) return undefined;
    const list = pool.intervals[family];
    const n = list.length;
    const first = pool.next[family] % n;
    for (let step = 0; step <= n; step++) {
      const i = (first + step) % n;
      const iv = list[i] as Interval;
      const last = iv.size - 1n;
      // The first visit scans from the cursor to the end; the last wraps to the start of the first interval.
      const from = step === 0 ? iv.cursor : 0n;
      const to = step === n ? iv.cursor - 1n : last;
      if (from > to) continue;
      const key = iv.scan(from, to);
      if (key === undefined) continue;
      const next = BigInt(key) + 1n;
      iv.cursor = next > last ? 0n : next;
      pool.next[family] = i;
      return { iv, key, address: iv.format(key) };
    }
    return undefined;
  }

  /**
   * Allocates for `owner`: returns its current allocation when that still satisfies the request
   * (idempotent), else picks new addresses (keeping current ones where they still fit) and frees
   * the old ones. On error nothing changes.
   */
  allocate(owner: AllocationOwner, request: AllocationRequest = {}): Allocation {
    const { state, req, picks } = this.#decide(owner, request);
    if (!picks) return this.#allocationOf(state as OwnerState);
    this.#placeSlots(owner, picks, req.share);
    return { owner, addresses: picks.map((p) => p.address), pool: (picks[0] as Pick).iv.pool.name };
  }

  /**
   * Records that `owner` holds exactly `addresses` (replacing what it held), without checking
   * pools or conflicts: for importing what the Kubernetes API says and committing a plan.
   */
  assign(
    owner: AllocationOwner,
    addresses: readonly string[],
    options: { readonly pool?: string; readonly sharingKey?: string; readonly ports?: readonly PortSpec[] } = {},
  ): Allocation {
    checkOwner(owner);
    if (addresses.length === 0) {
      this.release(owner);
      return { owner, addresses: [], pool: options.pool ?? '' };
    }
    const share = normalizeShare(options.sharingKey, options.ports);
    return this.#allocationOf(this.#place(owner, addresses, share, options.pool));
  }

  /**
   * Sets the holders of one address to exactly `holders` (from a persisted record): owners no
   * longer listed lose the address, listed ones gain it (their other addresses are kept).
   */
  setHolders(address: string, holders: readonly AddressHolder[], pool?: string): void {
    const slot = this.#slotFor(address);
    const text = this.#slotText(slot);
    const uids = new Set(holders.map((h) => h.owner.uid));
    for (const old of holdersOf(this.#holderAt(slot))) {
      if (uids.has(old.owner.uid)) continue;
      const rest = old.slots().filter((s) => !this.#sameSlot(s, slot));
      this.#removeOwnerFromSlot(old, slot);
      if (rest.length === 0) this.#dropOwner(old);
      else old.setSlots(rest);
    }
    for (const h of holders) {
      const state = this.#owners.get(h.owner.uid);
      const share = importShare(h.sharingKey, h.ports);
      if (!state) {
        this.#place(h.owner, [text], share, pool);
        continue;
      }
      state.owner = h.owner;
      this.#setShare(state, share);
      const slots = state.slots();
      if (!slots.some((s) => this.#sameSlot(s, slot))) {
        slots.push(slot);
        state.setSlots(slots);
        this.#setHolderAt(slot, [...holdersOf(this.#holderAt(slot)), state]);
      }
    }
  }

  /** Frees everything `owner` holds (by uid). Idempotent; returns what was freed. */
  release(owner: AllocationOwner | string): Allocation | undefined {
    const state = this.#owners.get(typeof owner === 'string' ? owner : owner.uid);
    if (!state) return undefined;
    const allocation = this.#allocationOf(state);
    this.#dropOwner(state);
    return allocation;
  }

  /** Usage per pool and family (families the pool has addresses of). */
  stats(): PoolStats[] {
    return this.#pools.flatMap((p) =>
      FAMILIES.filter((f) => p.intervals[f].length > 0 || p.pool.families.includes(f)).map((family) => ({
        pool: p.name,
        family,
        size: p.assignable[family],
        used: p.used[family],
        available: p.assignable[family] - BigInt(p.usedAssignable[family]),
      })),
    );
  }

  /** The pool that owns `address` (its ranges, reserved addresses included), if any. */
  poolOf(address: string): string | undefined {
    const parsed = parseAddress(address);
    return parsed ? this.#pools.find((p) => p.covers(parsed.family, parsed.value))?.name : undefined;
  }
}
