import {
  type ConfigMapObject,
  Informer,
  type KubeClient,
  type Logger,
  type SecretObject,
  silentLogger,
} from '@klb/core';
import type { DaemonServiceConfig } from '../daemon-config.js';
import {
  COMPAT_CONFIGMAP_LABEL,
  COMPAT_CONFIGMAP_NAME,
  DAEMON_CONFIG_LABEL,
  type DaemonConfigObject,
  readDaemonConfigObject,
} from '../daemon-config-object.js';

/** Options of {@link DaemonConfigWatcher}. */
export interface DaemonConfigWatcherOptions {
  /** Client for the Kubernetes API. */
  readonly client: KubeClient;
  /** The namespace the controller publishes daemon configs in (the daemons' own). */
  readonly namespace: string;
  /** Also read the original system's single ConfigMap (`daemon-configmap`, `loadbalancer=daemon`); default true. */
  readonly compatConfigMap?: boolean;
  /** Called (synchronously, cheaply) whenever a watched object changes; the caller pulls {@link DaemonConfigWatcher.snapshot}. */
  readonly onChange: () => void;
  /** A silent watch is restarted after this long; default 120000 ms. */
  readonly watchdogMs?: number;
  /** Logger. */
  readonly logger?: Logger;
}

/** Every published config, read from the watched objects. */
export interface DaemonConfigSnapshot {
  /** The configs, valid ones typed, in object order. */
  readonly configs: readonly DaemonServiceConfig[];
  /** Entries that could not be read (not JSON, invalid), by load balancer id or `<object>/<key>`. */
  readonly errors: ReadonlyMap<string, Error>;
}

interface Parsed {
  readonly resourceVersion: string;
  readonly configs: readonly DaemonServiceConfig[];
  readonly errors: ReadonlyMap<string, Error>;
}

/**
 * Lists and watches the daemon config objects of one namespace (the per-load-balancer Secrets
 * labelled `klb.io/daemon-config=true`, and optionally the compatibility ConfigMap) with
 * informers that survive watch errors (restart with backoff, relist on 410 Gone, watchdog on
 * silence). Each object is parsed and validated once per resourceVersion.
 */
export class DaemonConfigWatcher {
  readonly #secrets: Informer<SecretObject>;
  readonly #configMaps: Informer<ConfigMapObject> | undefined;
  readonly #parsed = new Map<string, Parsed>();

  constructor(options: DaemonConfigWatcherOptions) {
    const log = options.logger ?? silentLogger;
    const ns = encodeURIComponent(options.namespace);
    const common = { logger: log, watchdogMs: options.watchdogMs ?? 120_000 };
    this.#secrets = new Informer<SecretObject>(options.client, {
      ...common,
      resource: 'daemon-config-secrets',
      path: `/api/v1/namespaces/${ns}/secrets`,
      labelSelector: `${DAEMON_CONFIG_LABEL}=true`,
    });
    if (options.compatConfigMap ?? true) {
      this.#configMaps = new Informer<ConfigMapObject>(options.client, {
        ...common,
        resource: 'daemon-configmap',
        path: `/api/v1/namespaces/${ns}/configmaps`,
        labelSelector: `${COMPAT_CONFIGMAP_LABEL.key}=${COMPAT_CONFIGMAP_LABEL.value}`,
        fieldSelector: `metadata.name=${COMPAT_CONFIGMAP_NAME}`,
      });
    }
    const handler = { add: options.onChange, update: options.onChange, delete: options.onChange };
    this.#secrets.on(handler);
    this.#configMaps?.on(handler);
  }

  /** Starts listing and watching; resolves once the first lists are complete. */
  async start(): Promise<void> {
    this.#secrets.start();
    this.#configMaps?.start();
    await Promise.all([this.#secrets.waitForSync(), this.#configMaps?.waitForSync()]);
  }

  /** Stops watching. */
  async stop(): Promise<void> {
    await Promise.all([this.#secrets.stop(), this.#configMaps?.stop()]);
  }

  /** The configs in the cache now (the compatibility ConfigMap's entries after the Secrets'). */
  snapshot(): DaemonConfigSnapshot {
    const configs: DaemonServiceConfig[] = [];
    const errors = new Map<string, Error>();
    const seen = new Set<string>();
    const objects: { key: string; object: DaemonConfigObject }[] = [
      ...this.#secrets.list().map((o) => ({ key: `secret/${o.metadata?.name}`, object: { ...o, kind: 'Secret' } })),
      ...(this.#configMaps?.list() ?? []).map((o) => ({
        key: `configmap/${o.metadata?.name}`,
        object: { ...o, kind: 'ConfigMap' },
      })),
    ];
    for (const { key, object } of objects) {
      seen.add(key);
      const rv = object.metadata?.resourceVersion ?? '';
      let parsed = this.#parsed.get(key);
      if (!parsed || parsed.resourceVersion !== rv || rv === '') {
        const content = readDaemonConfigObject(object as DaemonConfigObject);
        parsed = { resourceVersion: rv, configs: content.configs, errors: content.errors };
        this.#parsed.set(key, parsed);
      }
      configs.push(...parsed.configs);
      for (const [id, err] of parsed.errors) errors.set(id, err);
    }
    for (const key of this.#parsed.keys()) if (!seen.has(key)) this.#parsed.delete(key);
    return { configs, errors };
  }
}
