import { createHash } from 'node:crypto';
import {
  addressIngress,
  type BackendCapabilities,
  type BackendContext,
  type ConfigMapObject,
  describeHttpSettings,
  Informer,
  isConflict,
  isNotFound,
  type KubeClient,
  type KubeObject,
  type LoadBalancerBackend,
  type LoadBalancerRef,
  type LoadBalancerSpec,
  type LoadBalancerStatus,
  type Logger,
  parseLoadBalancerId,
  RetryAfterError,
  silentLogger,
  TerminalError,
} from '@klb/core';
import type { DaemonServiceConfig } from './daemon-config.js';
import {
  COMPAT_CONFIGMAP_LABEL,
  COMPAT_CONFIGMAP_NAME,
  CONFIG_VERSION_ANNOTATION,
  compatConfigKey,
  DAEMON_CONFIG_KEY,
  DAEMON_CONFIG_LABEL,
  type DaemonConfigObject,
  daemonConfigObjectName,
  daemonConfigSecret,
  LOAD_BALANCER_ID_ANNOTATION,
  readDaemonConfigObject,
} from './daemon-config-object.js';
import { DaemonConfigConflictError } from './errors.js';
import { DAEMON_REPORT_KEY, DAEMON_REPORT_LABEL, type DaemonNodeReport, parseDaemonNodeReport } from './node-report.js';
import { daemonConfigFromSpec, type PassiveHealthDefaults } from './spec-to-daemon-config.js';
import { validIdent } from './validate-values.js';

/** Annotation choosing a load balancer's VRRP group (default {@link KeepalivedNginxBackendOptions.vrrpGroup}). */
export const VRRP_GROUP_ANNOTATION = 'klb.io/vrrp-group';

/** How the backend publishes daemon configs. */
export type DaemonConfigPublishMode = 'per-load-balancer' | 'daemon-configmap';

/** Options of {@link KeepalivedNginxBackend}. */
export interface KeepalivedNginxBackendOptions {
  /** Kubernetes API client (from `@klb/core`). */
  readonly client: KubeClient;
  /** Namespace of the daemon config objects and the node reports; default `klb-system`. */
  readonly namespace?: string;
  /**
   * `per-load-balancer` (default): one Secret per load balancer (scales to any number of load
   * balancers, keeps TLS keys in Secrets). `daemon-configmap`: the original system's single
   * ConfigMap `daemon-configmap` labelled `loadbalancer=daemon`, one key per load balancer; it is
   * limited to 1 MiB in total and refuses HTTPS listeners (private keys do not go in ConfigMaps).
   */
  readonly mode?: DaemonConfigPublishMode;
  /** VRRP group of load balancers without the {@link VRRP_GROUP_ANNOTATION} annotation; default `default`. */
  readonly vrrpGroup?: string;
  /** Virtual router ids the backend may give to groups; default 1–255 (VRRP's limit per network). */
  readonly vridRange?: {
    /** Lowest id, ≥ 1. */
    readonly min: number;
    /** Highest id, ≤ 255. */
    readonly max: number;
  };
  /** Passive health of upstreams without a health check; default 3 fails within 10 s. */
  readonly passiveHealth?: PassiveHealthDefaults;
  /** A node report older than this many seconds counts as stale in status messages; default 120. */
  readonly reportStaleSeconds?: number;
  /** Logger. */
  readonly logger?: Logger;
}

/** What the backend knows about a published load balancer. */
interface Published {
  readonly version: string;
  readonly group: string;
  readonly addresses: readonly string[];
  readonly sockets: readonly string[];
}

/** What the backend keeps of a published daemon-config Secret: who owns it, its version, a digest of its data. */
interface PublishedSecret extends KubeObject {
  readonly digest: string;
}

function digestOf(data: Readonly<Record<string, string>> | undefined): string {
  return createHash('sha256')
    .update(data?.[DAEMON_CONFIG_KEY] ?? '')
    .digest('base64');
}

interface GroupEntry {
  vrid: number;
  /** Published load balancers in the group. */
  members: number;
  /** Ensures in flight that reserved the group. */
  pending: number;
}

const socketsOf = (c: DaemonServiceConfig): string[] =>
  c.addresses.flatMap((a) => c.listeners.map((l) => `${l.protocol === 'UDP' ? 'udp' : 'tcp'} ${a} ${l.port}`));

const MAX_COMPAT_BYTES = 1_000_000;

/**
 * The controller side of the keepalived + nginx software load balancer. `ensure` validates the
 * spec, turns it into a {@link DaemonServiceConfig} (VRRP group and router id included), checks it
 * against every other published load balancer (VIP:port collisions), and publishes it for the node
 * daemons; the returned status carries the VIPs and a summary of the daemons' reports (where the
 * config is applied, which node holds the VIPs, errors). `watch` re-triggers reconciles when
 * reports change.
 */
export class KeepalivedNginxBackend implements LoadBalancerBackend {
  /** `keepalived-nginx`. */
  readonly name = 'keepalived-nginx';
  /**
   * TCP/UDP and TLS passthrough by SNI (nginx stream), HTTP/HTTPS with routes and TLS (nginx
   * http); addresses come from
   * KLB's IPAM. Targets: node IP + nodePort first (works wherever the load-balancing nodes can
   * reach the nodes, as the original system did), pod endpoints second (no second hop and the
   * client address kept, when the load-balancing nodes route to the pod network). Not cluster IPs:
   * the daemons run in the host network, where Service IPs need kube-proxy on the same node.
   */
  readonly capabilities: BackendCapabilities = {
    protocols: ['TCP', 'UDP', 'HTTP', 'HTTPS', 'TLS'],
    l7: true,
    tls: true,
    allocatesAddresses: false,
    targetKinds: ['node', 'pod'],
    ipFamilies: ['IPv4', 'IPv6'],
    sourceRanges: true,
    proxyProtocol: true,
  };

  readonly #client: KubeClient;
  readonly #namespace: string;
  readonly #mode: DaemonConfigPublishMode;
  readonly #defaultGroup: string;
  readonly #vridMin: number;
  readonly #vridMax: number;
  readonly #passive: PassiveHealthDefaults | undefined;
  readonly #staleMs: number;
  readonly #log: Logger;
  readonly #published = new Map<string, Published>();
  /** `tcp|udp VIP port` → the load balancer using it. */
  readonly #sockets = new Map<string, string>();
  readonly #groups = new Map<string, GroupEntry>();
  #loaded: Promise<void> | undefined;
  #reports: Informer<ConfigMapObject> | undefined;
  /** The published Secrets as the API has them, without their content (watched, not read one by one). */
  #secrets: Informer<PublishedSecret> | undefined;
  /** Secret name → resourceVersion of this process's last write of it. */
  readonly #writtenVersions = new Map<string, string>();
  readonly #parsedReports = new Map<string, { rv: string | undefined; report: DaemonNodeReport | undefined }>();
  readonly #listeners = new Set<(ref: LoadBalancerRef) => void>();
  #compatLock: Promise<unknown> = Promise.resolve();

  constructor(options: KeepalivedNginxBackendOptions) {
    this.#client = options.client;
    this.#namespace = options.namespace ?? 'klb-system';
    this.#mode = options.mode ?? 'per-load-balancer';
    this.#defaultGroup = validIdent(options.vrrpGroup ?? 'default', 'vrrpGroup');
    this.#vridMin = options.vridRange?.min ?? 1;
    this.#vridMax = options.vridRange?.max ?? 255;
    if (
      !Number.isInteger(this.#vridMin) ||
      !Number.isInteger(this.#vridMax) ||
      this.#vridMin < 1 ||
      this.#vridMax > 255 ||
      this.#vridMin > this.#vridMax
    ) {
      throw new TerminalError(`vridRange ${this.#vridMin}-${this.#vridMax} is not within 1-255`);
    }
    this.#passive = options.passiveHealth;
    this.#staleMs = (options.reportStaleSeconds ?? 120) * 1000;
    this.#log = (options.logger ?? silentLogger).child({ backend: this.name });
  }

  async ensure(spec: LoadBalancerSpec, ctx: BackendContext): Promise<LoadBalancerStatus> {
    await this.#load(ctx.signal);
    const rawGroup = spec.annotations[VRRP_GROUP_ANNOTATION];
    const group =
      rawGroup === undefined ? this.#defaultGroup : validIdent(rawGroup, `annotation ${VRRP_GROUP_ANNOTATION}`);
    const entry = this.#reserveGroup(group, spec.ref.id);
    entry.pending++;
    try {
      const config = daemonConfigFromSpec(spec, { group, vrid: entry.vrid }, this.#passive);
      this.#checkCollisions(config);
      if (this.#mode === 'daemon-configmap' && config.listeners.some((l) => l.protocol === 'HTTPS')) {
        throw new TerminalError(
          'HTTPS listeners need the per-load-balancer publish mode: the daemon-configmap compatibility mode cannot carry TLS private keys (ConfigMaps are not for secrets)',
          { code: 'TLS_NEEDS_SECRET', reason: 'UnsupportedInCompatibilityMode' },
        );
      }
      if (this.#mode === 'daemon-configmap') await this.#publishCompat(config, ctx);
      else await this.#publishSecret(config, ctx);
      this.#remember(config);
      const summary = await this.#summary(config);
      // What nginx does not apply is said where users look: the affinity (`hash $remote_addr
      // consistent`) has no timeout, and HTTP settings need an HTTP listener.
      const notes: string[] = [];
      const affinity = spec.options.sessionAffinity;
      if (affinity) {
        notes.push(
          `session affinity by client address has no timeout in nginx (timeoutSeconds ${affinity.timeoutSeconds} not applied)`,
        );
      }
      const http = describeHttpSettings(spec.options.http);
      if (http !== undefined && !config.listeners.some((l) => l.protocol === 'HTTP' || l.protocol === 'HTTPS')) {
        notes.push(`no HTTP listener: ${http} not applied`);
      }
      const status: LoadBalancerStatus = {
        // nginx proxies every connection, and the VIP sits on a node: with ipMode VIP, kube-proxy
        // there would send the VIP's traffic to the pods itself, past nginx (seen in a real cluster).
        ingress: addressIngress(config.addresses, config.listeners, 'Proxy'),
        ...summary,
        ...(notes.length > 0 && summary.message !== undefined
          ? { message: clip([summary.message, ...notes].join('; ')) }
          : {}),
      };
      ctx.log.debug({ id: config.id, version: config.version, vrid: entry.vrid, group }, 'daemon config published');
      return status;
    } finally {
      entry.pending--;
      if (entry.members === 0 && entry.pending === 0) this.#groups.delete(group);
    }
  }

  async remove(ref: LoadBalancerRef, ctx: BackendContext): Promise<void> {
    await this.#load(ctx.signal);
    if (this.#mode === 'daemon-configmap') {
      await this.#withCompat(async () => {
        const cm = await this.#getCompat(ctx.signal);
        const key = compatConfigKey(ref.id);
        if (!cm?.data || !(key in cm.data)) return;
        const data = { ...cm.data };
        delete data[key];
        await this.#client.replace(this.#compatPath(), { ...cm, data }, ctx.signal);
      }, ctx);
    } else {
      const path = this.#secretPath(daemonConfigObjectName(ref.id));
      this.#writtenVersions.delete(daemonConfigObjectName(ref.id));
      let existing: DaemonConfigObject & { metadata?: { uid?: string } };
      try {
        existing = await this.#client.get(path, ctx.signal);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        this.#forget(ref.id);
        return;
      }
      if (existing.metadata?.annotations?.[LOAD_BALANCER_ID_ANNOTATION] !== ref.id) {
        ctx.log.warn(
          { id: ref.id, object: existing.metadata?.name },
          'config object belongs to someone else; not deleting it',
        );
        this.#forget(ref.id);
        return;
      }
      try {
        await this.#client.delete(
          path,
          existing.metadata?.uid ? { uid: existing.metadata.uid } : undefined,
          ctx.signal,
        );
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    this.#forget(ref.id);
  }

  async list(ctx: BackendContext): Promise<LoadBalancerRef[]> {
    const configs = await this.#readPublished(ctx.signal);
    const refs: LoadBalancerRef[] = [];
    for (const id of configs.ids) {
      const ref = parseLoadBalancerId(id);
      if (ref) refs.push(ref);
      else ctx.log.warn({ id }, 'published daemon config with an unparsable load balancer id; not listed');
    }
    return refs;
  }

  async watch(notify: (ref: LoadBalancerRef) => void, _ctx: BackendContext): Promise<() => void> {
    this.#startReports();
    this.#listeners.add(notify);
    return () => {
      this.#listeners.delete(notify);
    };
  }

  async close(): Promise<void> {
    this.#listeners.clear();
    await Promise.all([this.#reports?.stop(), this.#secrets?.stop()]);
    this.#reports = undefined;
    this.#secrets = undefined;
    this.#loaded = undefined;
  }

  // --- publishing ---------------------------------------------------------------------------

  #secretPath(name?: string): string {
    const base = `/api/v1/namespaces/${this.#namespace}/secrets`;
    return name === undefined ? base : `${base}/${name}`;
  }

  #compatPath(): string {
    return `/api/v1/namespaces/${this.#namespace}/configmaps/${COMPAT_CONFIGMAP_NAME}`;
  }

  async #publishSecret(config: DaemonServiceConfig, ctx: BackendContext): Promise<void> {
    const desired = daemonConfigSecret(this.#namespace, config);
    const name = desired.metadata?.name as string;
    // The watched copy answers the common cases without a read: unchanged (nothing to do), absent
    // (create), or changed (replace at its resourceVersion). A conflict reads the object itself.
    // The watched copy lags behind this process's own last write until the watch delivers it.
    const watched = this.#secrets?.synced ? this.#secrets : undefined;
    const cached = watched?.get(`${this.#namespace}/${name}`);
    const written = this.#writtenVersions.get(name);
    const fresh = watched !== undefined && (written === undefined || cached?.metadata?.resourceVersion === written);
    let existing: PublishedSecret | DaemonConfigObject | undefined = cached;
    for (let attempt = fresh ? 0 : 1; attempt < 4; attempt++) {
      if (attempt > 0) {
        existing = undefined;
        try {
          existing = await this.#client.get<DaemonConfigObject>(this.#secretPath(name), ctx.signal);
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      }
      if (existing === undefined) {
        try {
          const created = await this.#client.create(this.#secretPath(), desired, ctx.signal);
          this.#wrote(name, created);
          return;
        } catch (err) {
          if (isConflict(err) || (err as { status?: number }).status === 409) continue;
          throw err;
        }
      }
      const owner = existing.metadata?.annotations?.[LOAD_BALANCER_ID_ANNOTATION];
      if (owner !== config.id) {
        throw new TerminalError(`Secret ${this.#namespace}/${name} exists and does not belong to ${config.id}`, {
          code: 'CONFIG_OBJECT_TAKEN',
          reason: 'ConfigObjectTaken',
        });
      }
      const existingDigest = 'digest' in existing ? existing.digest : digestOf(existing.data);
      const same =
        existing.metadata?.annotations?.[CONFIG_VERSION_ANNOTATION] === config.version &&
        existingDigest === digestOf(desired.data);
      if (same) return;
      try {
        const replaced = await this.#client.replace(
          this.#secretPath(name),
          {
            ...desired,
            metadata: { ...desired.metadata, resourceVersion: existing.metadata?.resourceVersion ?? '' },
          },
          ctx.signal,
        );
        this.#wrote(name, replaced);
        return;
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
    }
    throw new RetryAfterError(`Secret ${this.#namespace}/${name} kept changing while being written`, 1000);
  }

  #wrote(name: string, obj: KubeObject): void {
    const rv = obj.metadata?.resourceVersion;
    if (rv === undefined) this.#writtenVersions.delete(name);
    else this.#writtenVersions.set(name, rv);
  }

  #withCompat<T>(fn: () => Promise<T>, ctx: BackendContext): Promise<T> {
    // One writer at a time in this process; conflicts with other writers are retried.
    const run = async (): Promise<T> => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await fn();
        } catch (err) {
          if (!isConflict(err) || attempt >= 4) throw err;
          ctx.log.debug({ attempt }, 'daemon-configmap changed meanwhile; retrying');
        }
      }
    };
    const next = this.#compatLock.then(run, run);
    this.#compatLock = next.catch(() => {});
    return next;
  }

  async #getCompat(signal: AbortSignal): Promise<DaemonConfigObject | undefined> {
    try {
      return await this.#client.get<DaemonConfigObject>(this.#compatPath(), signal);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async #publishCompat(config: DaemonServiceConfig, ctx: BackendContext): Promise<void> {
    const key = compatConfigKey(config.id);
    const value = JSON.stringify(config);
    await this.#withCompat(async () => {
      const cm = await this.#getCompat(ctx.signal);
      if (cm?.data?.[key] === value) return;
      const data = { ...(cm?.data ?? {}), [key]: value };
      const size = Object.entries(data).reduce((n, [k, v]) => n + k.length + Buffer.byteLength(v), 0);
      if (size > MAX_COMPAT_BYTES) {
        throw new TerminalError(
          `${COMPAT_CONFIGMAP_NAME} would hold ${size} bytes, over the 1 MiB object limit; use the per-load-balancer publish mode`,
          { code: 'COMPAT_CONFIGMAP_FULL', reason: 'DaemonConfigMapFull' },
        );
      }
      const metadata = {
        name: COMPAT_CONFIGMAP_NAME,
        namespace: this.#namespace,
        labels: { ...(cm?.metadata?.labels ?? {}), [COMPAT_CONFIGMAP_LABEL.key]: COMPAT_CONFIGMAP_LABEL.value },
        ...(cm?.metadata?.annotations ? { annotations: cm.metadata.annotations } : {}),
        ...(cm?.metadata?.resourceVersion ? { resourceVersion: cm.metadata.resourceVersion } : {}),
      };
      const body = { apiVersion: 'v1', kind: 'ConfigMap', metadata, data };
      if (cm === undefined)
        await this.#client.create(`/api/v1/namespaces/${this.#namespace}/configmaps`, body, ctx.signal);
      else await this.#client.replace(this.#compatPath(), body, ctx.signal);
    }, ctx);
  }

  // --- the published set: collisions and VRRP router ids -------------------------------------

  async #readPublished(signal: AbortSignal): Promise<{ ids: string[]; configs: DaemonServiceConfig[] }> {
    const configs: DaemonServiceConfig[] = [];
    const ids: string[] = [];
    if (this.#mode === 'daemon-configmap') {
      const cm = await this.#getCompat(signal);
      if (cm) {
        const content = readDaemonConfigObject({ ...cm, kind: 'ConfigMap' });
        configs.push(...content.configs);
        ids.push(...content.configs.map((c) => c.id));
        for (const [id, err] of content.errors) {
          if (parseLoadBalancerId(id)) ids.push(id);
          this.#log.warn({ id, err: err.message }, 'unreadable entry in daemon-configmap');
        }
      }
    } else {
      const { items } = await this.#client.list<DaemonConfigObject>(
        this.#secretPath(),
        { labelSelector: `${DAEMON_CONFIG_LABEL}=true` },
        signal,
      );
      for (const item of items) {
        const id = item.metadata?.annotations?.[LOAD_BALANCER_ID_ANNOTATION];
        if (id !== undefined) ids.push(id);
        const content = readDaemonConfigObject({ ...item, kind: 'Secret' });
        configs.push(...content.configs);
        for (const [key, err] of content.errors) this.#log.warn({ key, err: err.message }, 'unreadable daemon config');
      }
    }
    return { ids: [...new Set(ids)].sort(), configs };
  }

  #load(signal: AbortSignal): Promise<void> {
    this.#loaded ??= (async () => {
      const { configs } = await this.#readPublished(signal);
      if (this.#mode === 'per-load-balancer') {
        // Publishing reads the objects one by one until the watch has synced.
        const synced = this.#watchSecrets().waitForSync();
        await Promise.race([synced, new Promise((r) => setTimeout(r, 10_000).unref())]);
      }
      for (const config of configs) this.#remember(config);
      this.#log.info({ count: configs.length }, 'imported published daemon configs');
    })().catch((err: unknown) => {
      this.#loaded = undefined;
      throw err;
    });
    return this.#loaded;
  }

  #reserveGroup(group: string, id: string): GroupEntry {
    const existing = this.#groups.get(group);
    if (existing) return existing;
    const used = new Set([...this.#groups.values()].map((g) => g.vrid));
    for (let vrid = this.#vridMin; vrid <= this.#vridMax; vrid++) {
      if (used.has(vrid)) continue;
      const entry = { vrid, members: 0, pending: 0 };
      this.#groups.set(group, entry);
      return entry;
    }
    throw new TerminalError(
      `${id}: no free VRRP router id for group "${group}": ids ${this.#vridMin}-${this.#vridMax} are all used by other groups (VRRP allows 255 per network; put more load balancers in one group with the ${VRRP_GROUP_ANNOTATION} annotation)`,
      { code: 'VRID_EXHAUSTED', reason: 'VridExhausted' },
    );
  }

  #checkCollisions(config: DaemonServiceConfig): void {
    for (const socket of socketsOf(config)) {
      const owner = this.#sockets.get(socket);
      if (owner !== undefined && owner !== config.id) {
        throw new DaemonConfigConflictError(`${config.id}: ${socket} is already used by ${owner}`);
      }
    }
  }

  #remember(config: DaemonServiceConfig): void {
    this.#forget(config.id);
    const { group, vrid } = config.options.vrrp;
    let entry = this.#groups.get(group);
    if (!entry) {
      entry = { vrid, members: 0, pending: 0 };
      this.#groups.set(group, entry);
    } else if (entry.vrid !== vrid) {
      this.#log.warn(
        { id: config.id, group, vrid, groupVrid: entry.vrid },
        'published config has another router id than its group',
      );
    }
    entry.members++;
    const sockets = socketsOf(config);
    for (const socket of sockets) if (!this.#sockets.has(socket)) this.#sockets.set(socket, config.id);
    this.#published.set(config.id, { version: config.version, group, addresses: config.addresses, sockets });
  }

  #forget(id: string): void {
    const old = this.#published.get(id);
    if (!old) return;
    this.#published.delete(id);
    for (const socket of old.sockets) if (this.#sockets.get(socket) === id) this.#sockets.delete(socket);
    const entry = this.#groups.get(old.group);
    if (!entry) return;
    entry.members--;
    if (entry.members <= 0 && entry.pending <= 0) this.#groups.delete(old.group);
  }

  #watchSecrets(): Informer<PublishedSecret> {
    if (this.#secrets) return this.#secrets;
    const informer = new Informer<PublishedSecret>(this.#client, {
      resource: 'daemon-configs',
      path: this.#secretPath(),
      labelSelector: `${DAEMON_CONFIG_LABEL}=true`,
      logger: this.#log,
      transform: (obj) => {
        const { name, namespace, resourceVersion, uid, annotations } = obj.metadata ?? {};
        const data = (obj as DaemonConfigObject).data;
        return {
          metadata: { name, namespace, resourceVersion, uid, annotations },
          digest: digestOf(data),
        } as PublishedSecret;
      },
    });
    informer.start();
    this.#secrets = informer;
    return informer;
  }

  // --- daemon reports -----------------------------------------------------------------------

  #startReports(): Informer<ConfigMapObject> {
    if (this.#reports) return this.#reports;
    const informer = new Informer<ConfigMapObject>(this.#client, {
      resource: 'daemon-reports',
      path: `/api/v1/namespaces/${this.#namespace}/configmaps`,
      labelSelector: `${DAEMON_REPORT_LABEL}=true`,
      logger: this.#log,
    });
    informer.on({
      add: (obj) => this.#reportChanged(undefined, obj),
      update: (before, after) => this.#reportChanged(before, after),
      delete: (obj) => this.#reportChanged(obj, undefined),
    });
    informer.start();
    this.#reports = informer;
    return informer;
  }

  #parse(obj: ConfigMapObject | undefined): DaemonNodeReport | undefined {
    if (!obj) return undefined;
    const key = `${obj.metadata?.namespace}/${obj.metadata?.name}`;
    const rv = obj.metadata?.resourceVersion;
    const cached = this.#parsedReports.get(key);
    if (cached && cached.rv === rv && rv !== undefined) return cached.report;
    let report: DaemonNodeReport | undefined;
    try {
      report = parseDaemonNodeReport(obj.data?.[DAEMON_REPORT_KEY] ?? '');
    } catch (err) {
      this.#log.warn({ object: key, err: (err as Error).message }, 'unreadable daemon report');
    }
    this.#parsedReports.set(key, { rv, report });
    return report;
  }

  #reportChanged(before: ConfigMapObject | undefined, after: ConfigMapObject | undefined): void {
    const old = this.#parse(before);
    const now = this.#parse(after);
    if (!after && before) this.#parsedReports.delete(`${before.metadata?.namespace}/${before.metadata?.name}`);
    const ids = new Set<string>();
    const states = (r: DaemonNodeReport | undefined) => new Map((r?.vrrp ?? []).map((i) => [i.instance, i]));
    for (const id of new Set([...Object.keys(old?.applied ?? {}), ...Object.keys(now?.applied ?? {})])) {
      if (old?.applied[id] !== now?.applied[id]) ids.add(id);
    }
    for (const id of new Set([...Object.keys(old?.rejected ?? {}), ...Object.keys(now?.rejected ?? {})])) {
      if (old?.rejected[id]?.message !== now?.rejected[id]?.message) ids.add(id);
    }
    if (JSON.stringify(old?.errors ?? []) !== JSON.stringify(now?.errors ?? [])) {
      for (const id of this.#published.keys()) ids.add(id);
    }
    const oldStates = states(old);
    const newStates = states(now);
    const changedVips = new Set<string>();
    for (const name of new Set([...oldStates.keys(), ...newStates.keys()])) {
      const a = oldStates.get(name);
      const b = newStates.get(name);
      if (a?.state !== b?.state)
        for (const vip of [...(a?.addresses ?? []), ...(b?.addresses ?? [])]) changedVips.add(vip);
    }
    if (changedVips.size > 0) {
      for (const [id, p] of this.#published) if (p.addresses.some((a) => changedVips.has(a))) ids.add(id);
    }
    for (const id of ids) {
      const ref = parseLoadBalancerId(id);
      if (!ref) continue;
      for (const notify of this.#listeners) notify(ref);
    }
  }

  /**
   * What the nodes did with `config`, from their reports: the status message, and a problem when
   * every node that reported recently refused it (nothing serves it anywhere).
   */
  async #summary(config: DaemonServiceConfig): Promise<Pick<LoadBalancerStatus, 'message' | 'problem'>> {
    const informer = this.#startReports();
    if (!informer.synced) {
      await Promise.race([informer.waitForSync(), new Promise((r) => setTimeout(r, 5000).unref())]);
    }
    if (!informer.synced) {
      return { message: `daemon config ${config.version} published; daemon reports are not readable yet` };
    }
    const now = Date.now();
    const reports = informer
      .list()
      .map((obj) => this.#parse(obj))
      .filter((r): r is DaemonNodeReport => r !== undefined)
      .sort((a, b) => (a.node < b.node ? -1 : 1));
    const fresh = reports.filter((r) => now - Date.parse(r.updatedAt) <= this.#staleMs);
    const stale = reports.filter((r) => !fresh.includes(r)).map((r) => r.node);
    if (fresh.length === 0) {
      return {
        message: `daemon config ${config.version} published; no daemon has reported${stale.length ? ` recently (stale: ${stale.join(', ')})` : ' yet'}`,
      };
    }
    const applied = fresh.filter((r) => r.applied[config.id] === config.version).map((r) => r.node);
    const parts = [`daemon config ${config.version} applied on ${applied.length}/${fresh.length} nodes`];
    const holders = new Map<string, string[]>();
    for (const r of fresh) {
      for (const instance of r.vrrp) {
        if (instance.state !== 'MASTER') continue;
        for (const vip of instance.addresses) {
          if (config.addresses.includes(vip)) holders.set(vip, [...(holders.get(vip) ?? []), r.node]);
        }
      }
    }
    for (const vip of config.addresses) {
      const nodes = holders.get(vip) ?? [];
      parts.push(nodes.length === 0 ? `${vip} held by no node` : `${vip} held by ${nodes.join(', ')}`);
    }
    const refusals: string[] = [];
    for (const r of fresh) {
      const rejected = r.rejected[config.id];
      if (rejected?.version === config.version) refusals.push(`rejected on ${r.node}: ${rejected.message}`);
      else if (!applied.includes(r.node) && r.errors.length > 0) parts.push(`${r.node}: ${r.errors[0]}`);
    }
    parts.push(...refusals);
    if (stale.length > 0) parts.push(`stale: ${stale.join(', ')}`);
    const message = clip(parts.join('; '));
    if (refusals.length === fresh.length) {
      return {
        message,
        problem: {
          reason: 'RejectedByNodes',
          message: clip(`every node refused daemon config ${config.version}: ${refusals.join('; ')}`),
        },
      };
    }
    return { message };
  }
}

function clip(message: string): string {
  return message.length > 1000 ? `${message.slice(0, 999)}…` : message;
}
