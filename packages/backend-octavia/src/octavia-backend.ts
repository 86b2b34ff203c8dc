import {
  type BackendCapabilities,
  type BackendContext,
  boundedName,
  describeHttpSettings,
  type HealthCheck,
  type HttpSettings,
  KlbError,
  type Listener,
  type LoadBalancerBackend,
  type LoadBalancerProblem,
  type LoadBalancerRef,
  type LoadBalancerSpec,
  type LoadBalancerStatus,
  type Logger,
  parseLoadBalancerId,
  silentLogger,
  TerminalError,
} from '@klb/core';
import ipaddr from 'ipaddr.js';
import { type OpenStackConfig, validateOpenStackConfig } from './config.js';
import { OctaviaPendingError, OpenStackConfigError } from './errors.js';
import { FloatingIps, floatingIpRequest } from './floating-ips.js';
import { createHttp, KeystoneSession } from './keystone.js';
import { NeutronClient } from './neutron-client.js';
import {
  OctaviaClient,
  type OctaviaFeatures,
  type OctaviaHealthMonitor,
  type OctaviaListener,
  type OctaviaLoadBalancer,
  type OctaviaMember,
} from './octavia-client.js';

/** How the backend polls a load balancer that is PENDING_*: by requeueing, never by sleeping. */
export interface OctaviaPollOptions {
  /** First delay after a mutation, in ms; default 500. */
  readonly initialMs?: number;
  /** Growth per consecutive PENDING_* observation of the same load balancer; default 1.5. */
  readonly factor?: number;
  /** Cap of the delay, in ms; default 10000. */
  readonly maxMs?: number;
  /** Random spread, as a fraction of the delay (0.2: ±20 %); default 0.2. */
  readonly jitter?: number;
}

/** Options of {@link OctaviaBackend}. */
export interface OctaviaBackendOptions {
  /** Keystone and Octavia: URL, credentials, region, interface, endpoint override, CA bundle, subnet. */
  readonly config: OpenStackConfig;
  /** Cluster name, part of names and tags so several clusters can share a project; default `kubernetes`. */
  readonly clusterName?: string;
  /** Subnet the VIP is allocated on; default `config.subnetId` (`OS_SUBNET_ID`). Required. */
  readonly subnetId?: string;
  /** Subnet of the member (node) addresses, when Octavia needs it to reach them; default none. */
  readonly memberSubnetId?: string;
  /**
   * `klb` (default): load balancers are named `klb_<cluster>_<kind>_<namespace>_<name>`.
   * `cloud-provider`: Services' load balancers are named as the OpenStack cloud provider names
   * them, `kube_service_<cluster>_<namespace>_<name>`, and an existing one of that name that KLB
   * did not tag yet is adopted (tagged and reconciled) instead of creating a second one.
   */
  readonly naming?: 'klb' | 'cloud-provider';
  /** Delete a load balancer in provisioning status ERROR and create it again; default true. */
  readonly recreateOnError?: boolean;
  /** Octavia flavor for new load balancers (annotation `klb.io/octavia-flavor-id` overrides it). */
  readonly flavorId?: string;
  /** Availability zone for new load balancers (annotation `klb.io/octavia-availability-zone` overrides it). */
  readonly availabilityZone?: string;
  /** Octavia provider for new load balancers (e.g. `amphora`, `ovn`); default Octavia's default. */
  readonly provider?: string;
  /**
   * External network (Neutron id) to give every Service a floating IP from, associated with its
   * VIP port and reported in its status instead of the VIP; default none. The annotation
   * `klb.io/octavia-floating-network-id` overrides it per Service (`none`: no floating IP), and
   * `klb.io/octavia-floating-ip-address` asks for a specific address.
   */
  readonly floatingNetworkId?: string;
  /** Requeue delays while a load balancer is PENDING_*. */
  readonly poll?: OctaviaPollOptions;
  /** Re-authenticate when the token expires within this many seconds; default 300. */
  readonly reauthMarginSeconds?: number;
  /** Timeout of one HTTP request, in ms; default 30000. */
  readonly requestTimeoutMs?: number;
  /** Logger for what happens outside a reconcile (authentication, TLS warnings). */
  readonly log?: Logger;
}

const TAG_KLB = 'klb';
const OCTAVIA_DEFAULT_DATA_TIMEOUT_MS = 50_000;
const OCTAVIA_DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

interface DesiredMonitor {
  readonly type: string;
  readonly delay: number;
  readonly timeout: number;
  readonly maxRetries: number;
  readonly maxRetriesDown: number;
  readonly urlPath: string | null;
}

interface DesiredPool {
  readonly name: string;
  readonly protocol: string;
  readonly algorithm: string;
  readonly persistence: string | null;
  readonly members: ReadonlyArray<{ address: string; port: number; monitorPort: number | null; name: string }>;
  readonly monitor?: DesiredMonitor;
}

interface DesiredListener {
  readonly key: string;
  readonly name: string;
  readonly protocol: string;
  readonly port: number;
  readonly allowedCidrs: readonly string[];
  readonly timeouts?: { client: number; connect: number; memberData: number };
  readonly pool: DesiredPool;
}

interface Found {
  readonly lb: OctaviaLoadBalancer;
  /** True when it carries no KLB tags yet (a cloud-provider load balancer to adopt). */
  readonly adopt: boolean;
}

function l4(protocol: string): string {
  return protocol === 'UDP' ? 'UDP' : 'TCP';
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const sa = [...a].sort();
  const sb = [...b].sort();
  return sa.every((v, i) => v === sb[i]);
}

function normalizeCidr(cidr: string): string {
  try {
    const [addr, bits] = ipaddr.parseCIDR(cidr);
    const bytes = addr.toByteArray();
    const keep = bytes.map((byte, i) => {
      const left = bits - i * 8;
      if (left >= 8) return byte;
      if (left <= 0) return 0;
      return byte & (0xff << (8 - left));
    });
    return `${ipaddr.fromByteArray(keep).toString()}/${bits}`;
  } catch (err) {
    throw new TerminalError(`source range ${JSON.stringify(cidr)} is not a CIDR`, {
      reason: 'InvalidSourceRange',
      cause: err,
    });
  }
}

/** Neutron's words for a fixed IP it cannot give a port (Octavia passes them on, as a 400 or 500). */
const VIP_REFUSED =
  /not a valid IP for the specified subnet|already allocated|IpAddressAlreadyAllocated|IpAddressInUse|No more IP addresses available/i;

/**
 * A TerminalError (`AddressNotAssigned`) when Octavia refused to create a load balancer because
 * Neutron would not give it the requested VIP (outside the VIP subnet, taken); undefined for any
 * other error.
 */
function vipRefused(err: unknown, requested: string | undefined): TerminalError | undefined {
  const faultstring = (err as { fault?: { faultstring?: unknown } } | undefined)?.fault?.faultstring;
  if (requested === undefined || typeof faultstring !== 'string' || !VIP_REFUSED.test(faultstring)) return undefined;
  // Neutron's request ids follow on a line of their own.
  const why = faultstring.split('\n')[0]?.trim();
  return new TerminalError(`Octavia did not give the load balancer the requested VIP ${requested}: ${why}`, {
    reason: 'AddressNotAssigned',
    code: 'OCTAVIA_VIP_REFUSED',
    cause: err,
  });
}

function sameAddress(a: string, b: string): boolean {
  try {
    return ipaddr.parse(a).toString() === ipaddr.parse(b).toString();
  } catch {
    return a === b;
  }
}

/**
 * The requested addresses an existing load balancer does not have, as a problem: Octavia gives a
 * load balancer one VIP, fixed at creation. The load balancer keeps serving on its VIP.
 */
function unassignedVips(lb: OctaviaLoadBalancer, requested: readonly string[]): LoadBalancerProblem | undefined {
  const missing = requested.filter((a) => !sameAddress(a, lb.vip_address));
  if (missing.length === 0) return undefined;
  const first = requested[0] as string;
  const message = !sameAddress(first, lb.vip_address)
    ? `the requested VIP ${first} is not the VIP ${lb.vip_address} of Octavia load balancer ${lb.id}: Octavia cannot change the VIP of a load balancer (delete and re-create the object to move it)`
    : `Octavia load balancer ${lb.id} has one VIP (${lb.vip_address}): ${missing.join(', ')} not assigned`;
  return { reason: 'AddressNotAssigned', message };
}

/**
 * The OpenStack Octavia backend: one Octavia load balancer per spec, named and tagged with the
 * cluster and the spec's `ref.id` so KLB only ever finds and touches its own. A new load balancer
 * is created fully populated in one call (listeners, pools, members, health monitors); later
 * changes are diffed and applied one mutation at a time, and while the load balancer is
 * PENDING_* `ensure` throws a RetryAfterError (capped, jittered delay) instead of waiting.
 */
export class OctaviaBackend implements LoadBalancerBackend {
  /** Backend name. */
  readonly name = 'octavia';
  /** Octavia allocates the VIP; TCP, UDP and HTTP listeners; targets are nodes (nodePorts). */
  readonly capabilities: BackendCapabilities = {
    protocols: ['TCP', 'UDP', 'HTTP'],
    l7: false,
    tls: false,
    allocatesAddresses: true,
    targetKinds: ['node'],
    ipFamilies: ['IPv4', 'IPv6'],
    sourceRanges: true,
    proxyProtocol: true,
  };
  /** The Octavia client (exposed for tests and tools: write counter, raw requests). */
  readonly client: OctaviaClient;
  /** The Keystone session. */
  readonly session: KeystoneSession;
  /** The Neutron client (floating IPs; exposed for tests and tools: write counter). */
  readonly neutron: NeutronClient;

  readonly #cluster: string;
  readonly #subnetId: string | undefined;
  readonly #options: OctaviaBackendOptions;
  readonly #pendingCounts = new Map<string, number>();
  readonly #floatingIps: FloatingIps;

  /** @param options - see {@link OctaviaBackendOptions}. */
  constructor(options: OctaviaBackendOptions) {
    const config = validateOpenStackConfig(options.config);
    const log = options.log ?? silentLogger;
    this.#options = options;
    this.#cluster = options.clusterName ?? 'kubernetes';
    if (!/^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/.test(this.#cluster)) {
      throw new OpenStackConfigError(
        `cluster name ${JSON.stringify(this.#cluster)} must match [A-Za-z0-9][A-Za-z0-9.-]*`,
      );
    }
    this.#subnetId = options.subnetId ?? config.subnetId;
    const http = createHttp(config, options.requestTimeoutMs ?? 30_000, log);
    this.session = new KeystoneSession(
      config,
      {
        log,
        ...(options.reauthMarginSeconds === undefined ? {} : { reauthMarginSeconds: options.reauthMarginSeconds }),
      },
      http,
    );
    this.client = new OctaviaClient(this.session, http, { log, retryAfterMs: () => this.#delay(undefined) });
    this.neutron = new NeutronClient(this.session, http, { log });
    this.#floatingIps = new FloatingIps(this.neutron, this.#cluster);
  }

  #delay(lbId: string | undefined): number {
    const poll = this.#options.poll ?? {};
    const initial = poll.initialMs ?? 500;
    const factor = poll.factor ?? 1.5;
    const max = poll.maxMs ?? 10_000;
    const jitter = poll.jitter ?? 0.2;
    const n = lbId === undefined ? 0 : (this.#pendingCounts.get(lbId) ?? 0);
    if (lbId !== undefined) this.#pendingCounts.set(lbId, n + 1);
    const base = Math.min(max, initial * factor ** n);
    return Math.max(1, Math.round(base * (1 + jitter * (Math.random() * 2 - 1))));
  }

  #pending(lb: OctaviaLoadBalancer, why: string): OctaviaPendingError {
    return new OctaviaPendingError(lb.id, lb.provisioning_status, this.#delay(lb.id), why);
  }

  #mutated(lb: OctaviaLoadBalancer, what: string, log: Logger): OctaviaPendingError {
    log.info({ loadBalancer: lb.id }, `octavia: ${what}`);
    this.#pendingCounts.delete(lb.id);
    return new OctaviaPendingError(lb.id, 'PENDING_UPDATE', this.#delay(lb.id), what);
  }

  /** The name KLB gives the load balancer of `ref` (Octavia names and tags hold at most 255 characters). */
  loadBalancerName(ref: LoadBalancerRef): string {
    if (this.#options.naming === 'cloud-provider' && ref.kind === 'Service') {
      return boundedName(`kube_service_${this.#cluster}_${ref.namespace}_${ref.name}`, 255);
    }
    return boundedName(`klb_${this.#cluster}_${ref.kind.toLowerCase()}_${ref.namespace}_${ref.name}`, 255);
  }

  /**
   * The tags that find the load balancer of `ref`. An id too long for one tag (a ConfigMap or
   * Ingress name near 253 characters) is bounded with a digest: unique, but not readable back by
   * {@link OctaviaBackend.list}, so such a load balancer is removed through its finalizer only.
   */
  #tags(ref: LoadBalancerRef): string[] {
    return [TAG_KLB, boundedName(`klb-cluster=${this.#cluster}`, 255), boundedName(`klb-ref=${ref.id}`, 255)];
  }

  #description(ref: LoadBalancerRef): string {
    return boundedName(`klb:${this.#cluster}:${ref.id}`, 255);
  }

  async #find(ref: LoadBalancerRef, features: OctaviaFeatures, signal: AbortSignal): Promise<Found[]> {
    const name = this.loadBalancerName(ref);
    let own: OctaviaLoadBalancer[];
    if (features.tags) {
      own = await this.client.listLoadBalancers({ tags: this.#tags(ref).join(',') }, signal);
    } else {
      own = (await this.client.listLoadBalancers({ name }, signal)).filter(
        (lb) => lb.description === this.#description(ref),
      );
    }
    const found: Found[] = own.map((lb) => ({ lb, adopt: false }));
    if (found.length === 0 && this.#options.naming === 'cloud-provider' && ref.kind === 'Service') {
      const byName = await this.client.listLoadBalancers({ name }, signal);
      for (const lb of byName) {
        if (!(lb.tags ?? []).some((t) => t.startsWith('klb-ref='))) found.push({ lb, adopt: true });
      }
    }
    return found.sort(
      (a, b) => (a.lb.created_at ?? '').localeCompare(b.lb.created_at ?? '') || a.lb.id.localeCompare(b.lb.id),
    );
  }

  #validate(spec: LoadBalancerSpec, features: OctaviaFeatures): void {
    const seen = new Set<string>();
    for (const listener of spec.listeners) {
      if (!this.capabilities.protocols.includes(listener.protocol)) {
        throw new TerminalError(
          `Octavia backend does not serve ${listener.protocol} listeners (port ${listener.port})`,
          {
            reason: 'UnsupportedProtocol',
          },
        );
      }
      if (listener.routes?.length || listener.redirectToHttpsPort !== undefined || listener.tls?.length) {
        throw new TerminalError(`Octavia backend does not support L7 routes or TLS (listener ${listener.name})`, {
          reason: 'UnsupportedFeature',
        });
      }
      const key = `${l4(listener.protocol)}:${listener.port}`;
      if (seen.has(key)) {
        throw new TerminalError(`two listeners on ${l4(listener.protocol)} port ${listener.port}`, {
          reason: 'DuplicateListener',
        });
      }
      seen.add(key);
      if (!listener.upstream || !spec.upstreams.some((u) => u.name === listener.upstream)) {
        throw new TerminalError(`listener ${listener.name} has no upstream`, { reason: 'InvalidLoadBalancer' });
      }
    }
    if (spec.options.sourceRanges.length > 0 && !features.allowedCidrs) {
      throw new TerminalError(
        `this Octavia (API v2.${features.minorVersion}) cannot restrict source ranges (needs v2.12)`,
        { reason: 'UnsupportedFeature' },
      );
    }
    if (!this.#subnetId) {
      throw new OpenStackConfigError('no VIP subnet: set OS_SUBNET_ID or the subnetId option');
    }
  }

  #desired(spec: LoadBalancerSpec): DesiredListener[] {
    const algorithm = {
      'round-robin': 'ROUND_ROBIN',
      'least-connections': 'LEAST_CONNECTIONS',
      'source-ip-hash': 'SOURCE_IP',
    }[spec.options.algorithm];
    const cidrs = [...new Set(spec.options.sourceRanges.map(normalizeCidr))].sort();
    const t = spec.options.timeouts;
    return [...spec.listeners]
      .sort((a, b) => a.port - b.port || a.protocol.localeCompare(b.protocol))
      .map((listener: Listener) => {
        const upstream = spec.upstreams.find((u) => u.name === listener.upstream);
        const protocol = listener.protocol;
        const poolProtocol = spec.options.proxyProtocol && protocol !== 'UDP' ? 'PROXY' : protocol;
        const hc: HealthCheck | undefined = upstream?.healthCheck;
        const members = new Map<string, { address: string; port: number; monitorPort: number | null; name: string }>();
        for (const target of upstream?.targets ?? []) {
          if (!target.ready) continue;
          const key = `${target.address}|${target.port}`;
          if (!members.has(key)) {
            members.set(key, {
              address: target.address,
              port: target.port,
              monitorPort: hc?.port ?? null,
              name: target.nodeName ?? target.address,
            });
          }
        }
        const clamp = (n: number) => Math.min(10, Math.max(1, Math.round(n)));
        const monitor: DesiredMonitor | undefined = hc
          ? {
              type: hc.type === 'http' ? 'HTTP' : protocol === 'UDP' ? 'UDP-CONNECT' : 'TCP',
              delay: Math.max(1, Math.round(hc.intervalSeconds)),
              timeout: Math.max(1, Math.min(Math.round(hc.timeoutSeconds), Math.round(hc.intervalSeconds))),
              maxRetries: clamp(hc.healthyThreshold),
              maxRetriesDown: clamp(hc.unhealthyThreshold),
              urlPath: hc.type === 'http' ? (hc.path ?? '/') : null,
            }
          : undefined;
        const pool: DesiredPool = {
          name: listener.name,
          protocol: poolProtocol,
          algorithm,
          persistence: spec.options.sessionAffinity ? 'SOURCE_IP' : null,
          members: [...members.values()],
          ...(monitor ? { monitor } : {}),
        };
        return {
          key: `${l4(protocol)}:${listener.port}`,
          name: listener.name,
          protocol,
          port: listener.port,
          allowedCidrs: cidrs,
          ...(protocol === 'UDP'
            ? {}
            : {
                timeouts: {
                  client: t.idleSeconds === undefined ? OCTAVIA_DEFAULT_DATA_TIMEOUT_MS : t.idleSeconds * 1000,
                  connect:
                    t.connectSeconds === undefined ? OCTAVIA_DEFAULT_CONNECT_TIMEOUT_MS : t.connectSeconds * 1000,
                  memberData: t.idleSeconds === undefined ? OCTAVIA_DEFAULT_DATA_TIMEOUT_MS : t.idleSeconds * 1000,
                },
              }),
          pool,
        };
      });
  }

  #memberBody(m: DesiredPool['members'][number]): Record<string, unknown> {
    return {
      address: m.address,
      protocol_port: m.port,
      name: m.name,
      ...(m.monitorPort === null ? {} : { monitor_port: m.monitorPort }),
      ...(this.#options.memberSubnetId ? { subnet_id: this.#options.memberSubnetId } : {}),
    };
  }

  #monitorBody(m: DesiredMonitor): Record<string, unknown> {
    return {
      type: m.type,
      delay: m.delay,
      timeout: m.timeout,
      max_retries: m.maxRetries,
      max_retries_down: m.maxRetriesDown,
      ...(m.type === 'HTTP' ? { url_path: m.urlPath, http_method: 'GET', expected_codes: '200-399' } : {}),
    };
  }

  #listenerBody(d: DesiredListener, features: OctaviaFeatures): Record<string, unknown> {
    return {
      ...(features.allowedCidrs ? { allowed_cidrs: d.allowedCidrs.length ? d.allowedCidrs : null } : {}),
      ...(d.timeouts
        ? {
            timeout_client_data: d.timeouts.client,
            timeout_member_connect: d.timeouts.connect,
            timeout_member_data: d.timeouts.memberData,
          }
        : {}),
    };
  }

  #poolBody(p: DesiredPool): Record<string, unknown> {
    return { lb_algorithm: p.algorithm, session_persistence: p.persistence ? { type: p.persistence } : null };
  }

  #status(
    lb: OctaviaLoadBalancer,
    desired: readonly DesiredListener[],
    floatingIp: string | undefined,
    http: HttpSettings | undefined,
  ): LoadBalancerStatus {
    // KLB does not map HTTP settings to Octavia's listeners: say which are not applied, never drop them.
    const unapplied = describeHttpSettings(http);
    return {
      ingress: [
        {
          ip: floatingIp ?? lb.vip_address,
          // The amphora proxies, away from the nodes: in-cluster clients must go through it too.
          ipMode: 'Proxy',
          ports: desired.map((d) => ({ port: d.port, protocol: l4(d.protocol) as 'TCP' | 'UDP' })),
        },
      ],
      message: `Octavia load balancer ${lb.id} ${lb.provisioning_status}/${lb.operating_status}${
        floatingIp ? `, floating IP ${floatingIp} → VIP ${lb.vip_address}` : ''
      }${unapplied ? `; ${unapplied} not applied: the Octavia backend has no HTTP proxy settings` : ''}`,
    };
  }

  /**
   * Creates or updates the load balancer of `spec`; one Octavia mutation per call at most. Once
   * the load balancer is ACTIVE and converged, makes its floating IP match the request (see
   * {@link OctaviaBackendOptions.floatingNetworkId}); the status then carries the floating IP.
   */
  async ensure(spec: LoadBalancerSpec, ctx: BackendContext): Promise<LoadBalancerStatus> {
    const { signal } = ctx;
    const log = ctx.log;
    const floating = floatingIpRequest(spec.annotations, this.#options.floatingNetworkId);
    const features = await this.client.features(signal);
    this.#validate(spec, features);
    const desired = this.#desired(spec);
    const found = await this.#find(spec.ref, features, signal);
    const [first, ...extra] = found;

    if (!first) {
      const ann = spec.annotations;
      const flavorId = ann['klb.io/octavia-flavor-id'] ?? this.#options.flavorId;
      const zone = ann['klb.io/octavia-availability-zone'] ?? this.#options.availabilityZone;
      const body: Record<string, unknown> = {
        name: this.loadBalancerName(spec.ref),
        description: this.#description(spec.ref),
        vip_subnet_id: this.#subnetId,
        ...(spec.requestedAddresses[0] ? { vip_address: spec.requestedAddresses[0] } : {}),
        ...(features.tags ? { tags: this.#tags(spec.ref) } : {}),
        ...(flavorId ? { flavor_id: flavorId } : {}),
        ...(zone ? { availability_zone: zone } : {}),
        ...(this.#options.provider ? { provider: this.#options.provider } : {}),
        listeners: desired.map((d) => ({
          name: d.name,
          protocol: d.protocol,
          protocol_port: d.port,
          ...this.#listenerBody(d, features),
          default_pool: {
            name: d.pool.name,
            protocol: d.pool.protocol,
            ...this.#poolBody(d.pool),
            members: d.pool.members.map((m) => this.#memberBody(m)),
            ...(d.pool.monitor ? { healthmonitor: this.#monitorBody(d.pool.monitor) } : {}),
          },
        })),
      };
      const lb = await this.client.createLoadBalancer(body, signal).catch((err: unknown) => {
        throw vipRefused(err, spec.requestedAddresses[0]) ?? err;
      });
      log.info({ loadBalancer: lb.id, name: lb.name }, 'octavia: created load balancer (fully populated)');
      this.#pendingCounts.delete(lb.id);
      throw new OctaviaPendingError(lb.id, lb.provisioning_status, this.#delay(lb.id), 'created');
    }

    const lb = first.lb;
    if (lb.provisioning_status.startsWith('PENDING_')) throw this.#pending(lb, 'waiting for the provider');
    // Duplicates carry KLB's tags for this ref (a crash between create and tagging cannot
    // happen: tags are set in the create call); keep the oldest, remove the others.
    for (const dup of extra) {
      if (dup.adopt || dup.lb.provisioning_status.startsWith('PENDING_')) continue;
      await this.client.deleteLoadBalancer(dup.lb.id, true, signal);
      throw this.#mutated(dup.lb, `deleted duplicate load balancer ${dup.lb.id}`, log);
    }
    if (lb.provisioning_status === 'ERROR') {
      if (this.#options.recreateOnError === false) {
        throw new KlbError('OCTAVIA_LB_ERROR', `Octavia load balancer ${lb.id} is in provisioning status ERROR`, true);
      }
      log.warn({ loadBalancer: lb.id }, 'octavia: load balancer is in ERROR: deleting it to create it again');
      await this.client.deleteLoadBalancer(lb.id, true, signal);
      throw this.#mutated(lb, 'deleted load balancer in ERROR', log);
    }
    if (first.adopt && features.tags) {
      await this.client.updateLoadBalancer(
        lb.id,
        { tags: [...new Set([...(lb.tags ?? []), ...this.#tags(spec.ref)])] },
        signal,
      );
      throw this.#mutated(lb, 'adopted load balancer (tagged)', log);
    }

    const listeners = await this.client.listListeners(lb.id, signal);
    const pools = await this.client.listPools(lb.id, signal);
    const wanted = new Map(desired.map((d) => [d.key, d]));

    // 1. listeners that are not wanted any more
    for (const l of listeners) {
      if (!wanted.has(`${l4(l.protocol)}:${l.protocol_port}`)) {
        await this.client.deleteListener(l.id, signal);
        throw this.#mutated(lb, `deleted listener ${l.protocol}/${l.protocol_port}`, log);
      }
    }
    // 2. pools no listener uses as its default pool
    const used = new Set(listeners.map((l) => l.default_pool_id).filter((id): id is string => !!id));
    for (const p of pools) {
      if (!used.has(p.id)) {
        await this.client.deletePool(p.id, signal);
        throw this.#mutated(lb, `deleted unused pool ${p.id}`, log);
      }
    }
    // 3. each wanted listener, its pool, members and monitor
    for (const d of desired) {
      const current = listeners.find((l) => `${l4(l.protocol)}:${l.protocol_port}` === d.key);
      if (!current) {
        await this.client.createListener(
          {
            loadbalancer_id: lb.id,
            name: d.name,
            protocol: d.protocol,
            protocol_port: d.port,
            ...this.#listenerBody(d, features),
          },
          signal,
        );
        throw this.#mutated(lb, `created listener ${d.protocol}/${d.port}`, log);
      }
      if (current.protocol !== d.protocol) {
        await this.client.deleteListener(current.id, signal);
        throw this.#mutated(
          lb,
          `deleted listener ${current.protocol}/${current.protocol_port} (protocol changed)`,
          log,
        );
      }
      if (this.#listenerDiffers(current, d, features)) {
        await this.client.updateListener(current.id, this.#listenerBody(d, features), signal);
        throw this.#mutated(lb, `updated listener ${d.protocol}/${d.port}`, log);
      }
      const pool = pools.find((p) => p.id === current.default_pool_id);
      if (!pool) {
        await this.client.createPool(
          { listener_id: current.id, name: d.pool.name, protocol: d.pool.protocol, ...this.#poolBody(d.pool) },
          signal,
        );
        throw this.#mutated(lb, `created pool for ${d.protocol}/${d.port}`, log);
      }
      if (pool.protocol !== d.pool.protocol) {
        // A pool's protocol cannot change: detach it (deleted as unused next time), then recreate.
        await this.client.updateListener(current.id, { default_pool_id: null }, signal);
        throw this.#mutated(lb, `detached pool ${pool.id} (protocol ${pool.protocol} → ${d.pool.protocol})`, log);
      }
      if (pool.lb_algorithm !== d.pool.algorithm || (pool.session_persistence?.type ?? null) !== d.pool.persistence) {
        await this.client.updatePool(pool.id, this.#poolBody(d.pool), signal);
        throw this.#mutated(lb, `updated pool of ${d.protocol}/${d.port}`, log);
      }
      const members = await this.client.listMembers(pool.id, signal);
      if (this.#membersDiffer(members, d.pool)) {
        await this.client.replaceMembers(
          pool.id,
          d.pool.members.map((m) => this.#memberBody(m)),
          signal,
        );
        throw this.#mutated(lb, `replaced the members of ${d.protocol}/${d.port} (${d.pool.members.length})`, log);
      }
      const monitor = pool.healthmonitor_id
        ? await this.client.getHealthMonitor(pool.healthmonitor_id, signal)
        : undefined;
      if (monitor && (!d.pool.monitor || monitor.type !== d.pool.monitor.type)) {
        await this.client.deleteHealthMonitor(monitor.id, signal);
        throw this.#mutated(lb, `deleted health monitor of ${d.protocol}/${d.port}`, log);
      }
      if (!monitor && d.pool.monitor) {
        await this.client.createHealthMonitor({ pool_id: pool.id, ...this.#monitorBody(d.pool.monitor) }, signal);
        throw this.#mutated(lb, `created health monitor of ${d.protocol}/${d.port}`, log);
      }
      if (monitor && d.pool.monitor && this.#monitorDiffers(monitor, d.pool.monitor)) {
        const { type: _type, ...update } = this.#monitorBody(d.pool.monitor);
        await this.client.updateHealthMonitor(monitor.id, update, signal);
        throw this.#mutated(lb, `updated health monitor of ${d.protocol}/${d.port}`, log);
      }
    }
    this.#pendingCounts.delete(lb.id);
    const floatingIp = await this.#floatingIps.ensure(spec.ref, floating, lb, log, signal);
    const status = this.#status(lb, desired, floatingIp, spec.options.http);
    const problem = unassignedVips(lb, spec.requestedAddresses);
    return problem ? { ...status, problem } : status;
  }

  #listenerDiffers(l: OctaviaListener, d: DesiredListener, features: OctaviaFeatures): boolean {
    if (features.allowedCidrs && !sameSet(l.allowed_cidrs ?? [], d.allowedCidrs)) return true;
    if (d.timeouts) {
      if ((l.timeout_client_data ?? OCTAVIA_DEFAULT_DATA_TIMEOUT_MS) !== d.timeouts.client) return true;
      if ((l.timeout_member_connect ?? OCTAVIA_DEFAULT_CONNECT_TIMEOUT_MS) !== d.timeouts.connect) return true;
      if ((l.timeout_member_data ?? OCTAVIA_DEFAULT_DATA_TIMEOUT_MS) !== d.timeouts.memberData) return true;
    }
    return false;
  }

  #membersDiffer(current: readonly OctaviaMember[], pool: DesiredPool): boolean {
    const key = (address: string, port: number, monitor: number | null) => `${address}|${port}|${monitor ?? ''}`;
    return !sameSet(
      current.map((m) => key(m.address, m.protocol_port, m.monitor_port)),
      pool.members.map((m) => key(m.address, m.port, m.monitorPort)),
    );
  }

  #monitorDiffers(m: OctaviaHealthMonitor, d: DesiredMonitor): boolean {
    return (
      m.delay !== d.delay ||
      m.timeout !== d.timeout ||
      m.max_retries !== d.maxRetries ||
      m.max_retries_down !== d.maxRetriesDown ||
      (d.type === 'HTTP' && m.url_path !== d.urlPath)
    );
  }

  /**
   * Deletes the load balancer of `ref` with everything in it (cascade). Resolves only once Octavia
   * no longer has it; meanwhile throws a RetryAfterError. First the floating IPs: the ones KLB
   * created for `ref` are deleted, others on the VIP port disassociated (kept); a failed Neutron
   * read stops it there, with nothing deleted.
   */
  async remove(ref: LoadBalancerRef, ctx: BackendContext): Promise<void> {
    const features = await this.client.features(ctx.signal);
    const found = await this.#find(ref, features, ctx.signal);
    for (const { lb } of found) {
      if (lb.provisioning_status.startsWith('PENDING_')) {
        throw this.#pending(lb, lb.provisioning_status === 'PENDING_DELETE' ? 'deleting' : 'waiting to delete');
      }
    }
    const ports = found.map(({ lb }) => lb.vip_port_id).filter((id): id is string => !!id);
    await this.#floatingIps.release(ref, ports, ctx.log, ctx.signal);
    const [target] = found;
    if (!target) {
      ctx.log.debug({ ref: ref.id }, 'octavia: nothing to remove');
      return;
    }
    await this.client.deleteLoadBalancer(target.lb.id, true, ctx.signal);
    ctx.log.info({ loadBalancer: target.lb.id }, 'octavia: deleting load balancer (cascade)');
    this.#pendingCounts.delete(target.lb.id);
    throw new OctaviaPendingError(target.lb.id, 'PENDING_DELETE', this.#delay(target.lb.id), 'deleting');
  }

  /** The refs of every load balancer this cluster's KLB created (by tag; by name and description before API 2.5). */
  async list(ctx: BackendContext): Promise<LoadBalancerRef[]> {
    const features = await this.client.features(ctx.signal);
    const refs = new Map<string, LoadBalancerRef>();
    if (features.tags) {
      const lbs = await this.client.listLoadBalancers({ tags: `${TAG_KLB},klb-cluster=${this.#cluster}` }, ctx.signal);
      for (const lb of lbs) {
        const tag = (lb.tags ?? []).find((t) => t.startsWith('klb-ref='));
        const ref = tag ? parseLoadBalancerId(tag.slice('klb-ref='.length)) : undefined;
        if (ref) refs.set(ref.id, ref);
      }
    } else {
      const prefix = `klb:${this.#cluster}:`;
      for (const lb of await this.client.listLoadBalancers({}, ctx.signal)) {
        const ref = lb.description?.startsWith(prefix)
          ? parseLoadBalancerId(lb.description.slice(prefix.length))
          : undefined;
        if (ref) refs.set(ref.id, ref);
      }
    }
    return [...refs.values()];
  }

  /** Forgets the Keystone token. */
  async close(): Promise<void> {
    this.session.close();
  }
}
