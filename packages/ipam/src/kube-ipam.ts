import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  NetworkingV1Api,
  type V1ConfigMap,
  type V1Ingress,
  type V1Service,
} from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import {
  ADDRESS_CLAIM_GROUP,
  ADDRESS_CLAIM_PLURAL,
  ADDRESS_CLAIM_VERSION,
  type AddressClaim,
  addressClaimName,
  buildAddressClaim,
  claimHolders,
  holderLabel,
} from './address-claim.js';
import { type AllocationPlan, Allocator, checkOwner, isValidSharingKey } from './allocator.js';
import { type ClaimEvent, ClaimWatch } from './claim-watch.js';
import { IpamError, isIpamError } from './errors.js';
import { canonicalAddress, parseAddress } from './ip.js';
import { listAll, listAllIfServed, listAllVersioned } from './kube-list.js';
import { type IpamLogger, silentIpamLogger } from './logger.js';
import { IpamMetrics } from './metrics.js';
import type { Pool } from './pool-config.js';
import type { AddressHolder, Allocation, AllocationOwner, AllocationRequest, PortSpec } from './types.js';

/** The annotation whose value is a Service's sharing key when importing its assigned addresses. */
export const SHARING_KEY_ANNOTATION = 'klb.io/allow-shared-ip';

/** Options of {@link KubeIpam}. */
export interface KubeIpamOptions {
  /** Where the Kubernetes API is, and who we are. */
  readonly kubeConfig: KubeConfig;
  /** The pools, or a loader called by {@link KubeIpam.start} (e.g. reading a file or a ConfigMap). */
  readonly pools: readonly Pool[] | (() => Promise<readonly Pool[]>);
  /** Namespace where the AddressClaim records live. */
  readonly namespace: string;
  /** Logger; default: silent. */
  readonly logger?: IpamLogger;
  /** Prometheus registry for the pool gauges and the rejection counter; default: no metrics. */
  readonly registry?: Registry;
  /**
   * Kinds whose assigned addresses are imported at start and whose deletion frees claims.
   * Default: Service, ConfigMap (original-style, labelled `app=loadbalancer`) and Ingress; add
   * `Gateway` when Gateways are served (the Gateway API CRDs must then be installed).
   */
  readonly ownerKinds?: readonly AllocationOwner['kind'][];
  /** How many times one allocate() re-plans after losing a race for an address; default 64. */
  readonly maxAttempts?: number;
  /** Parallel API writes while importing at start; default 16. */
  readonly importConcurrency?: number;
  /** Page size of the list calls at start; default 1000. */
  readonly pageSize?: number;
  /**
   * This instance is the only one that allocates in `namespace` (the controller runs with leader
   * election, or as one replica): an unchanged allocation is then confirmed from the watched
   * claims, without reading them (a restart reads no claim one by one). Default false: each
   * unchanged allocation re-reads its claims, which also catches a second active instance that
   * changed them a moment ago.
   */
  readonly singleWriter?: boolean;
}

type ClaimOutcome = 'ok' | 'lost';

/** Gateways (gateway.networking.k8s.io/v1), for the addresses they hold. */
const GATEWAYS = '/apis/gateway.networking.k8s.io/v1/gateways';

/** The fields of a Gateway the import reads. */
interface GatewayJson {
  metadata?: { namespace?: string; name?: string; uid?: string; annotations?: Record<string, string> };
  status?: { addresses?: { type?: string; value: string }[] };
}

interface LiveOwner {
  readonly owner: AllocationOwner;
  readonly addresses: readonly string[];
  readonly sharingKey: string | undefined;
  readonly ports: readonly PortSpec[];
}

function apiError(what: string, err: unknown): IpamError {
  if (isIpamError(err)) return err;
  const code = err instanceof ApiException ? ` (HTTP ${err.code})` : '';
  return new IpamError('API_ERROR', `${what} failed${code}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

/** Whether resourceVersion `a` is older than `b` (both etcd revisions); unknown forms are not compared. */
function isOlder(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b || !/^[0-9]+$/.test(a) || !/^[0-9]+$/.test(b)) return false;
  return BigInt(a) < BigInt(b);
}

function status(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

function samePorts(a: readonly PortSpec[] | undefined, b: readonly PortSpec[] | undefined): boolean {
  const key = (l: readonly PortSpec[] | undefined) =>
    (l ?? [])
      .map((p) => `${p.protocol}/${p.port}`)
      .sort()
      .join(',');
  return key(a) === key(b);
}

function portsOverlap(a: readonly PortSpec[] | undefined, b: readonly PortSpec[] | undefined): boolean {
  const set = new Set((a ?? []).map((p) => `${p.protocol}/${p.port}`));
  return (b ?? []).some((p) => set.has(`${p.protocol}/${p.port}`));
}

/** The sharing key annotation of an imported object; an invalid value counts as none. */
function sharingKeyOf(annotations: Record<string, string> | undefined): string | undefined {
  const value = annotations?.[SHARING_KEY_ANNOTATION]?.trim();
  return value && isValidSharingKey(value) ? value : undefined;
}

async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Address management backed by the Kubernetes API: every allocated address is an
 * `AddressClaim` object named after the address (see `crds/`), claimed by *create* (a 409
 * AlreadyExists means someone else holds it) and shared through updates with resourceVersion
 * preconditions. Two processes racing, or a crash between allocating and writing a Service's
 * status, therefore never give one address to two owners.
 *
 * Call {@link KubeIpam.start} first: it imports the claims, then the addresses already assigned
 * (Service and Ingress `status.loadBalancer.ingress`, original-style ConfigMaps' `bind-ip`),
 * and frees claims whose owner is confirmed gone. Nothing is allocated before it finishes.
 * Operations of one instance are serialised.
 */
export class KubeIpam {
  readonly #options: KubeIpamOptions;
  readonly #log: IpamLogger;
  readonly #allocator = new Allocator();
  readonly #custom: CustomObjectsApi;
  readonly #core: CoreV1Api;
  readonly #networking: NetworkingV1Api;
  readonly #metrics: IpamMetrics | undefined;
  readonly #kinds: ReadonlySet<AllocationOwner['kind']>;
  #ready = false;
  #starting: Promise<void> | undefined;
  #claimWatch: ClaimWatch | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  /** @param options - see {@link KubeIpamOptions}. */
  constructor(options: KubeIpamOptions) {
    this.#options = options;
    this.#log = (options.logger ?? silentIpamLogger).child({ component: 'ipam' });
    this.#custom = options.kubeConfig.makeApiClient(CustomObjectsApi);
    this.#core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.#networking = options.kubeConfig.makeApiClient(NetworkingV1Api);
    this.#kinds = new Set(options.ownerKinds ?? ['Service', 'ConfigMap', 'Ingress']);
    this.#metrics = options.registry && new IpamMetrics(options.registry, () => this.#allocator.stats());
  }

  /** True once {@link KubeIpam.start} has imported every existing assignment. */
  get ready(): boolean {
    return this.#ready;
  }

  /** The in-memory state (read it; change it only through this class). */
  get allocator(): Allocator {
    return this.#allocator;
  }

  /**
   * Loads the pools, imports the claims and the existing assignments, and frees claims whose
   * owner no longer exists (confirmed by reading the owner: a failed read frees nothing).
   * Idempotent; concurrent calls share one import.
   */
  start(): Promise<void> {
    this.#starting ??= this.#start().catch((err: unknown) => {
      this.#starting = undefined;
      throw isIpamError(err) ? err : apiError('importing existing assignments', err);
    });
    return this.#starting;
  }

  async #start(): Promise<void> {
    const started = Date.now();
    const pools = typeof this.#options.pools === 'function' ? await this.#options.pools() : this.#options.pools;
    this.#allocator.setPools(pools);
    const [{ items: claims, resourceVersion }, live] = await Promise.all([this.#listClaims(), this.#listOwners()]);
    const listed = Date.now();
    for (const claim of claims) this.#importClaim(claim);
    const liveByUid = new Map(live.map((l) => [l.owner.uid, l]));
    // Assignments made outside the claims (the original controller, a crash, another tool).
    const pending: Array<{ live: LiveOwner; address: string }> = [];
    for (const l of live) {
      for (const text of l.addresses) {
        const address = canonicalAddress(text);
        if (address === undefined || this.#allocator.poolOf(address) === undefined) continue;
        if (this.#allocator.holders(address).some((h) => h.owner.uid === l.owner.uid)) continue;
        pending.push({ live: l, address });
      }
    }
    const concurrency = this.#options.importConcurrency ?? 16;
    const indexed = Date.now();
    await mapLimit(pending, concurrency, async ({ live: l, address }) => {
      const plan = { pool: this.#allocator.poolOf(address) ?? '', sharingKey: l.sharingKey, ports: l.ports };
      let outcome: ClaimOutcome;
      try {
        outcome = await this.#claim(address, l.owner, plan);
      } catch (err) {
        // The apiserver rejects the claim itself (e.g. a name or port it will not store): one
        // bad object must not stop the import. Transient errors still fail start().
        if (!isIpamError(err) || status(err.cause) !== 422) throw err;
        this.#log.warn({ address, owner: `${l.owner.namespace}/${l.owner.name}`, err: err.message }, 'cannot import');
        return;
      }
      if (outcome === 'lost') {
        const holder = this.#allocator.holders(address)[0]?.owner;
        this.#log.warn(
          {
            address,
            owner: `${l.owner.namespace}/${l.owner.name}`,
            holder: holder && `${holder.namespace}/${holder.name}`,
          },
          'address in an object status is claimed by another owner; the object will get another address',
        );
      } else {
        this.#allocator.setHolders(address, claimHolders(this.#claimFromCache(address)));
      }
    });
    // Claims whose holders are gone.
    const orphans = claims.filter((c) => c.spec.holders.some((h) => this.#kinds.has(h.kind) && !liveByUid.has(h.uid)));
    await mapLimit(orphans, concurrency, (claim) => this.#reclaim(claim));
    // The only writer keeps its memory current by watching; other instances re-read claims instead.
    if (this.#options.singleWriter) this.#startClaimWatch(resourceVersion);
    this.#ready = true;
    this.#log.info(
      {
        claims: claims.length,
        owners: live.length,
        imported: pending.length,
        reclaimed: orphans.length,
        listMs: listed - started,
        indexMs: indexed - listed,
        ms: Date.now() - started,
      },
      'ipam ready',
    );
  }

  readonly #cache = new Map<string, AddressClaim>();

  #claimFromCache(address: string): AddressClaim {
    return this.#cache.get(addressClaimName(address)) as AddressClaim;
  }

  #importClaim(claim: AddressClaim): void {
    const address = canonicalAddress(claim.spec?.address ?? '');
    if (address === undefined || addressClaimName(address) !== claim.metadata.name) {
      this.#log.warn({ claim: claim.metadata.name }, 'ignoring an AddressClaim whose name does not match its address');
      return;
    }
    this.#cache.set(claim.metadata.name, claim);
    this.#allocator.setHolders(address, claimHolders(claim), claim.spec.pool);
  }

  #claimsPath(): string {
    const ns = encodeURIComponent(this.#options.namespace);
    return `/apis/${ADDRESS_CLAIM_GROUP}/${ADDRESS_CLAIM_VERSION}/namespaces/${ns}/${ADDRESS_CLAIM_PLURAL}`;
  }

  // The claims may come from the apiserver's watch cache (resourceVersion=0), a little behind
  // etcd. That is safe: a claim missing from the list still makes our create fail with 409 (and
  // is then read). The owners are listed consistently, so no recent status is missed.
  #listClaims(): Promise<{ items: AddressClaim[]; resourceVersion: string }> {
    return listAllVersioned<AddressClaim>(
      this.#options.kubeConfig,
      this.#claimsPath(),
      {},
      this.#options.pageSize,
      true,
    );
  }

  /** Follows the claims from `resourceVersion` on (see {@link KubeIpamOptions.singleWriter}). */
  #startClaimWatch(resourceVersion: string): void {
    this.#claimWatch = new ClaimWatch(
      {
        kubeConfig: this.#options.kubeConfig,
        path: this.#claimsPath(),
        logger: this.#log,
        ...(this.#options.pageSize ? { pageSize: this.#options.pageSize } : {}),
        onEvent: (event) => this.#follow(() => this.#claimChanged(event)),
        onRelist: (all) =>
          this.#follow(() => {
            const listed = new Set(all.map((c) => c.metadata.name));
            for (const [name, claim] of this.#cache) {
              if (!listed.has(name)) this.#claimChanged({ type: 'delete', claim });
            }
            for (const claim of all) this.#claimChanged({ type: 'upsert', claim });
          }),
      },
      resourceVersion,
    );
    this.#claimWatch.start();
  }

  /** Applies what the claim watch saw, in turn with the allocations; a claim memory cannot take is logged. */
  #follow(apply: () => void): void {
    void this.#serial(async () => apply()).catch((err: unknown) =>
      this.#log.warn({ err: String(err) }, 'a watched AddressClaim could not be taken into memory'),
    );
  }

  /** A claim changed in the API (seen by the watch): memory follows unless it already holds a newer copy. */
  #claimChanged({ type, claim }: ClaimEvent): void {
    const name = claim.metadata?.name ?? '';
    const cached = this.#cache.get(name);
    if (cached && isOlder(claim.metadata?.resourceVersion, cached.metadata?.resourceVersion)) return;
    if (type === 'upsert') {
      this.#importClaim(claim);
      return;
    }
    const address = canonicalAddress(claim.spec?.address ?? '');
    this.#cache.delete(name);
    if (address !== undefined) this.#allocator.setHolders(address, []);
  }

  /** Stops following the claims (the instance allocates nothing more). */
  async stop(): Promise<void> {
    this.#claimWatch?.stop();
  }

  async #listOwners(): Promise<LiveOwner[]> {
    const kc = this.#options.kubeConfig;
    const size = this.#options.pageSize;
    const [services, configMaps, ingresses, gateways] = await Promise.all([
      this.#kinds.has('Service') ? listAll<V1Service>(kc, '/api/v1/services', {}, size) : [],
      this.#kinds.has('ConfigMap')
        ? listAll<V1ConfigMap>(kc, '/api/v1/configmaps', { labelSelector: 'app=loadbalancer' }, size)
        : [],
      this.#kinds.has('Ingress') ? listAll<V1Ingress>(kc, '/apis/networking.k8s.io/v1/ingresses', {}, size) : [],
      // Without the Gateway API CRDs there are no Gateways.
      this.#kinds.has('Gateway') ? listAllIfServed<GatewayJson>(kc, GATEWAYS, {}, size) : [],
    ]);
    const owner = (
      kind: AllocationOwner['kind'],
      md: { namespace?: string; name?: string; uid?: string } | undefined,
    ): AllocationOwner | undefined =>
      md?.namespace && md.name && md.uid ? { kind, namespace: md.namespace, name: md.name, uid: md.uid } : undefined;
    const live: LiveOwner[] = [];
    for (const s of services) {
      const o = owner('Service', s.metadata);
      if (!o) continue;
      const isLb = s.spec?.type === 'LoadBalancer';
      live.push({
        owner: o,
        addresses: isLb ? (s.status?.loadBalancer?.ingress ?? []).flatMap((i) => (i.ip ? [i.ip] : [])) : [],
        sharingKey: sharingKeyOf(s.metadata?.annotations),
        ports: (s.spec?.ports ?? []).map((p) => ({
          protocol: (p.protocol ?? 'TCP') as PortSpec['protocol'],
          port: p.port,
        })),
      });
    }
    for (const cm of configMaps) {
      const o = owner('ConfigMap', cm.metadata);
      const ip = cm.data?.['bind-ip']?.trim();
      if (o) live.push({ owner: o, addresses: ip ? [ip] : [], sharingKey: undefined, ports: [] });
    }
    for (const ing of ingresses) {
      const o = owner('Ingress', ing.metadata);
      if (!o) continue;
      const ips = (ing.status?.loadBalancer?.ingress ?? []).flatMap((i) => (i.ip ? [i.ip] : []));
      live.push({ owner: o, addresses: ips, sharingKey: undefined, ports: [] });
    }
    for (const gw of gateways) {
      const o = owner('Gateway', gw.metadata);
      if (!o) continue;
      const ips = (gw.status?.addresses ?? []).flatMap((a) =>
        (a.type ?? 'IPAddress') === 'IPAddress' ? [a.value] : [],
      );
      live.push({ owner: o, addresses: ips, sharingKey: sharingKeyOf(gw.metadata?.annotations), ports: [] });
    }
    return live;
  }

  /** True when the owner is confirmed gone (404, or the name now belongs to another uid). */
  async #ownerGone(h: AddressClaim['spec']['holders'][number]): Promise<boolean> {
    try {
      const read =
        h.kind === 'Service'
          ? await this.#core.readNamespacedService({ namespace: h.namespace, name: h.name })
          : h.kind === 'ConfigMap'
            ? await this.#core.readNamespacedConfigMap({ namespace: h.namespace, name: h.name })
            : h.kind === 'Gateway'
              ? ((await this.#custom.getNamespacedCustomObject({
                  group: 'gateway.networking.k8s.io',
                  version: 'v1',
                  namespace: h.namespace,
                  plural: 'gateways',
                  name: h.name,
                })) as GatewayJson)
              : await this.#networking.readNamespacedIngress({ namespace: h.namespace, name: h.name });
      return read.metadata?.uid !== h.uid;
    } catch (err) {
      if (status(err) === 404) return true;
      this.#log.warn(
        { owner: `${h.namespace}/${h.name}`, err: String(err) },
        'cannot confirm an owner is gone; keeping its claim',
      );
      return false;
    }
  }

  async #reclaim(claim: AddressClaim): Promise<void> {
    const address = claim.spec.address;
    for (const h of claim.spec.holders) {
      if (!this.#kinds.has(h.kind)) continue;
      if (!(await this.#ownerGone(h))) continue;
      const owner: AllocationOwner = { kind: h.kind, namespace: h.namespace, name: h.name, uid: h.uid };
      try {
        await this.#unclaim(address, owner);
        this.#log.info(
          { address, owner: `${h.kind} ${h.namespace}/${h.name}` },
          'freed the address of a deleted owner',
        );
      } catch (err) {
        this.#log.warn({ address, err: String(err) }, 'could not free the address of a deleted owner');
      }
    }
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #notReady(): IpamError {
    return new IpamError('NOT_READY', 'the IPAM has not finished importing existing assignments (call start())');
  }

  /**
   * Allocates addresses for `owner`. Idempotent: the owner gets its current addresses back
   * while they still satisfy the request (also after a restart); a changed request
   * re-allocates (keeping what still fits) and frees the rest. Throws {@link IpamError}.
   */
  allocate(owner: AllocationOwner, request: AllocationRequest = {}): Promise<Allocation> {
    if (!this.#ready) {
      this.#metrics?.rejected('NOT_READY');
      return Promise.reject(this.#notReady());
    }
    return this.#serial(() => this.#allocate(owner, request)).catch((err: unknown) => {
      const e = isIpamError(err) ? err : apiError('allocate', err);
      this.#metrics?.rejected(e.code);
      throw e;
    });
  }

  async #allocate(owner: AllocationOwner, request: AllocationRequest): Promise<Allocation> {
    checkOwner(owner);
    const claimed = new Set<string>();
    let result: Allocation | undefined;
    try {
      const attempts = this.#options.maxAttempts ?? 64;
      for (let attempt = 0; attempt < attempts; attempt++) {
        const plan = this.#allocator.plan(owner, request);
        if (plan.unchanged) {
          // Memory may be stale when another instance changed the claims: confirm them.
          if (!(await this.#confirm(owner, plan.addresses))) continue;
          result = this.#allocator.get(owner) as Allocation;
          return result;
        }
        const current = this.#allocator.holders.bind(this.#allocator);
        const termsChanged = plan.addresses.some((a) => {
          const mine = current(a).find((h) => h.owner.uid === owner.uid);
          return mine !== undefined && (mine.sharingKey !== plan.sharingKey || !samePorts(mine.ports, plan.ports));
        });
        const toClaim = termsChanged ? plan.addresses : plan.added;
        let lost = false;
        for (const address of toClaim) {
          if ((await this.#claim(address, owner, plan)) === 'lost') {
            lost = true;
            break;
          }
          claimed.add(address);
        }
        if (lost) continue;
        result = this.#allocator.assign(owner, plan.addresses, {
          pool: plan.pool,
          ports: plan.ports,
          ...(plan.sharingKey === undefined ? {} : { sharingKey: plan.sharingKey }),
        });
        for (const address of plan.removed) await this.#unclaim(address, owner);
        if (plan.removed.length > 0) result = this.#allocator.get(owner) as Allocation;
        return result;
      }
      throw new IpamError(
        'CONFLICT_RETRY',
        `lost the race for an address ${attempts} times in a row; other allocators are busy, retry later`,
      );
    } finally {
      // Claims written by an attempt that did not end in this owner's allocation are undone.
      const kept = new Set(result?.addresses ?? this.#allocator.get(owner)?.addresses ?? []);
      for (const address of claimed) {
        if (kept.has(address)) continue;
        await this.#unclaim(address, owner).catch((err: unknown) =>
          this.#log.warn({ address, err: String(err) }, 'could not undo a claim; it is freed at the next start'),
        );
      }
    }
  }

  /**
   * Re-reads the claims of `addresses` into memory; true when every one still lists `owner`.
   */
  async #confirm(owner: AllocationOwner, addresses: readonly string[]): Promise<boolean> {
    // The only writer's memory follows the claims while the watch is live: nothing to read.
    if (this.#claimWatch?.live) {
      return addresses.every((a) => this.#allocator.holders(a).some((h) => h.owner.uid === owner.uid));
    }
    let confirmed = true;
    for (const address of addresses) {
      const current = await this.#read(addressClaimName(address));
      const holders = current ? claimHolders(current) : [];
      if (!holders.some((h) => h.owner.uid === owner.uid)) {
        confirmed = false;
        this.#log.warn(
          { address, owner: `${owner.namespace}/${owner.name}` },
          'claim changed by someone else; re-allocating',
        );
      }
      this.#allocator.setHolders(address, holders, current?.spec.pool);
    }
    return confirmed;
  }

  /**
   * Makes the API record say `owner` holds `address` under the plan's sharing terms.
   * 'lost' when another owner holds it incompatibly (its claim is then imported).
   */
  async #claim(
    address: string,
    owner: AllocationOwner,
    plan: Pick<AllocationPlan, 'pool' | 'sharingKey' | 'ports'>,
  ): Promise<ClaimOutcome> {
    const name = addressClaimName(address);
    const family = parseAddress(address)?.family ?? 'IPv4';
    const me: AddressHolder = {
      owner,
      ports: plan.ports,
      ...(plan.sharingKey === undefined ? {} : { sharingKey: plan.sharingKey }),
    };
    const api = {
      group: ADDRESS_CLAIM_GROUP,
      version: ADDRESS_CLAIM_VERSION,
      namespace: this.#options.namespace,
      plural: ADDRESS_CLAIM_PLURAL,
    };
    for (let i = 0; i < 16; i++) {
      let current: AddressClaim | undefined;
      if (this.#allocator.holders(address).length === 0 || i > 0) {
        try {
          const created = (await this.#custom.createNamespacedCustomObject({
            ...api,
            body: buildAddressClaim(address, family, plan.pool, [me]),
          })) as AddressClaim;
          this.#cache.set(name, created);
          return 'ok';
        } catch (err) {
          if (status(err) !== 409) throw apiError(`creating AddressClaim ${name}`, err);
        }
      }
      current = await this.#read(name);
      if (!current) continue; // deleted in between: try to create it again
      this.#cache.set(name, current);
      const holders = claimHolders(current);
      const others = holders.filter((h) => h.owner.uid !== owner.uid);
      const compatible = others.every(
        (o) => plan.sharingKey !== undefined && o.sharingKey === plan.sharingKey && !portsOverlap(o.ports, plan.ports),
      );
      if (!compatible) {
        this.#allocator.setHolders(address, holders, current.spec.pool);
        return 'lost';
      }
      const mine = holders.find((h) => h.owner.uid === owner.uid);
      if (mine && mine.sharingKey === plan.sharingKey && samePorts(mine.ports, plan.ports)) return 'ok';
      try {
        const replaced = (await this.#custom.replaceNamespacedCustomObject({
          ...api,
          name,
          body: buildAddressClaim(
            address,
            family,
            current.spec.pool ?? plan.pool,
            [...others, me],
            current.metadata.resourceVersion,
          ),
        })) as AddressClaim;
        this.#cache.set(name, replaced);
        return 'ok';
      } catch (err) {
        const code = status(err);
        if (code !== 409 && code !== 404) throw apiError(`updating AddressClaim ${name}`, err);
      }
    }
    throw new IpamError('CONFLICT_RETRY', `AddressClaim ${name} kept changing; retry later`);
  }

  async #read(name: string): Promise<AddressClaim | undefined> {
    try {
      return (await this.#custom.getNamespacedCustomObject({
        group: ADDRESS_CLAIM_GROUP,
        version: ADDRESS_CLAIM_VERSION,
        namespace: this.#options.namespace,
        plural: ADDRESS_CLAIM_PLURAL,
        name,
      })) as AddressClaim;
    } catch (err) {
      if (status(err) === 404) {
        this.#cache.delete(name);
        return undefined;
      }
      throw apiError(`reading AddressClaim ${name}`, err);
    }
  }

  /** Removes `owner` from the record of `address` (deleting it when nobody is left) and syncs memory. */
  async #unclaim(address: string, owner: AllocationOwner): Promise<void> {
    const name = addressClaimName(address);
    const api = {
      group: ADDRESS_CLAIM_GROUP,
      version: ADDRESS_CLAIM_VERSION,
      namespace: this.#options.namespace,
      plural: ADDRESS_CLAIM_PLURAL,
    };
    for (let i = 0; i < 16; i++) {
      const current = await this.#read(name);
      if (!current) {
        this.#allocator.setHolders(address, []);
        return;
      }
      const holders = claimHolders(current);
      const rest = holders.filter((h) => h.owner.uid !== owner.uid);
      if (rest.length === holders.length) {
        this.#allocator.setHolders(address, holders, current.spec.pool);
        return;
      }
      try {
        if (rest.length === 0) {
          await this.#custom.deleteNamespacedCustomObject({
            ...api,
            name,
            body: { preconditions: { resourceVersion: current.metadata.resourceVersion ?? '' } },
          });
          this.#cache.delete(name);
        } else {
          const family = current.spec.family;
          const replaced = (await this.#custom.replaceNamespacedCustomObject({
            ...api,
            name,
            body: buildAddressClaim(address, family, current.spec.pool ?? '', rest, current.metadata.resourceVersion),
          })) as AddressClaim;
          this.#cache.set(name, replaced);
        }
        this.#allocator.setHolders(address, rest, current.spec.pool);
        return;
      } catch (err) {
        const code = status(err);
        if (code !== 409 && code !== 404) throw apiError(`releasing AddressClaim ${name}`, err);
      }
    }
    throw new IpamError('CONFLICT_RETRY', `AddressClaim ${name} kept changing; retry later`);
  }

  /** Frees everything `owner` holds. Idempotent. Throws `API_ERROR` (retryable) if the API fails. */
  release(owner: AllocationOwner): Promise<void> {
    if (!this.#ready) return Promise.reject(this.#notReady());
    return this.#serial(async () => {
      checkOwner(owner);
      // Memory, and the API: another instance may have claimed addresses for this owner.
      const addresses = new Set(this.#allocator.get(owner)?.addresses ?? []);
      const label = holderLabel(owner.uid);
      if (label) {
        for (const claim of await listAll<AddressClaim>(this.#options.kubeConfig, this.#claimsPath(), {
          labelSelector: label,
        })) {
          const address = canonicalAddress(claim.spec?.address ?? '');
          if (address !== undefined && claim.spec.holders.some((h) => h.uid === owner.uid)) addresses.add(address);
        }
      }
      for (const address of addresses) await this.#unclaim(address, owner);
      this.#allocator.release(owner);
    });
  }

  /** The owner's current allocation, if any. */
  get(owner: AllocationOwner): Allocation | undefined {
    return this.#allocator.get(owner);
  }

  /**
   * Replaces the pools (already validated, e.g. by `parsePoolConfig`). Existing allocations
   * are kept, even outside the new pools, until their owners are re-allocated or released.
   */
  setPools(pools: readonly Pool[]): Promise<void> {
    return this.#serial(async () => this.#allocator.setPools(pools));
  }
}
