import { createHash } from 'node:crypto';
import { type DaemonServiceConfig, validateDaemonServiceConfig } from './daemon-config.js';
import { InvalidDaemonConfigError } from './errors.js';

/**
 * Label on every published daemon config object (value `true`): the daemons list and watch
 * Secrets with this label in their namespace.
 */
export const DAEMON_CONFIG_LABEL = 'klb.io/daemon-config';

/** The `type` of the per-load-balancer Secrets. */
export const DAEMON_CONFIG_SECRET_TYPE = 'klb.io/daemon-config';

/** The data key of a per-load-balancer Secret that holds the {@link DaemonServiceConfig} JSON. */
export const DAEMON_CONFIG_KEY = 'config.json';

/** Annotation with the load balancer id on a published Secret. */
export const LOAD_BALANCER_ID_ANNOTATION = 'klb.io/load-balancer-id';

/** Annotation with the config version on a published Secret (lets a reader skip unchanged ones). */
export const CONFIG_VERSION_ANNOTATION = 'klb.io/config-version';

/** Name of the single ConfigMap of the compatibility mode (as in the original system). */
export const COMPAT_CONFIGMAP_NAME = 'daemon-configmap';

/** Label of the compatibility ConfigMap (as in the original system): `loadbalancer=daemon`. */
export const COMPAT_CONFIGMAP_LABEL: {
  /** The label key, `loadbalancer`. */
  readonly key: 'loadbalancer';
  /** The label value, `daemon`. */
  readonly value: 'daemon';
} = { key: 'loadbalancer', value: 'daemon' };

/** A Secret or ConfigMap as plain JSON (the fields read and written here). */
export interface DaemonConfigObject {
  /** `v1`. */
  apiVersion?: string;
  /** `Secret` or `ConfigMap`. */
  kind?: string;
  /** Metadata. */
  metadata?: {
    /** Object name. */
    name?: string;
    /** Namespace. */
    namespace?: string;
    /** Labels. */
    labels?: Record<string, string>;
    /** Annotations. */
    annotations?: Record<string, string>;
    /** Optimistic-concurrency version. */
    resourceVersion?: string;
  };
  /** Secret type. */
  type?: string;
  /** Data (base64 in a Secret, plain text in a ConfigMap). */
  data?: Record<string, string>;
}

const MAX_NAME = 253;

/**
 * Name of the Secret that carries a load balancer's config: `<kind>.<namespace>.<name>` (e.g.
 * `service.default.coffee`), or `lb.<sha256 prefix>` when that would exceed 253 characters.
 * Injective: namespaces contain no dots.
 */
export function daemonConfigObjectName(id: string): string {
  const readable = id.replaceAll('/', '.');
  if (readable.length <= MAX_NAME) return readable;
  return `lb.${createHash('sha256').update(id).digest('hex').slice(0, 40)}`;
}

/** The data key of a load balancer in the compatibility ConfigMap (`<kind>.<namespace>.<name>.json`, or hashed). */
export function compatConfigKey(id: string): string {
  const readable = `${id.replaceAll('/', '.')}.json`;
  if (readable.length <= MAX_NAME) return readable;
  return `lb.${createHash('sha256').update(id).digest('hex').slice(0, 40)}.json`;
}

/** The per-load-balancer Secret for `config`, in `namespace`. */
export function daemonConfigSecret(namespace: string, config: DaemonServiceConfig): DaemonConfigObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: daemonConfigObjectName(config.id),
      namespace,
      labels: { [DAEMON_CONFIG_LABEL]: 'true', 'app.kubernetes.io/managed-by': 'klb' },
      annotations: { [LOAD_BALANCER_ID_ANNOTATION]: config.id, [CONFIG_VERSION_ANNOTATION]: config.version },
    },
    type: DAEMON_CONFIG_SECRET_TYPE,
    data: { [DAEMON_CONFIG_KEY]: Buffer.from(JSON.stringify(config)).toString('base64') },
  };
}

/** What {@link readDaemonConfigObject} found. */
export interface DaemonConfigObjectContent {
  /** The valid configs. */
  readonly configs: readonly DaemonServiceConfig[];
  /** Per load balancer id (or `<object>/<key>` when the id is unknown), why an entry was unusable. */
  readonly errors: ReadonlyMap<string, Error>;
}

function parseEntry(text: string, where: string, errors: Map<string, Error>, configs: DaemonServiceConfig[]): void {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    errors.set(where, new InvalidDaemonConfigError('', `${where} is not JSON`, { cause: err }));
    return;
  }
  const rawId = typeof value === 'object' && value !== null ? (value as { id?: unknown }).id : undefined;
  const key = typeof rawId === 'string' && rawId.length <= 330 ? rawId : where;
  try {
    configs.push(validateDaemonServiceConfig(value));
  } catch (err) {
    errors.set(key, err as Error);
  }
}

/**
 * Reads the daemon configs out of a published object: a per-load-balancer Secret
 * ({@link DAEMON_CONFIG_KEY}, base64) or the compatibility ConfigMap (one JSON entry per key).
 * Every entry is validated; an unusable one is reported in `errors` and never stops the others.
 */
export function readDaemonConfigObject(object: DaemonConfigObject): DaemonConfigObjectContent {
  const configs: DaemonServiceConfig[] = [];
  const errors = new Map<string, Error>();
  const name = object.metadata?.name ?? '(unnamed)';
  const data = object.data ?? {};
  // List items carry no `kind`; a Secret always has a `type`, a ConfigMap never.
  if (object.kind === 'Secret' || (object.kind === undefined && object.type !== undefined)) {
    const encoded = data[DAEMON_CONFIG_KEY];
    if (encoded === undefined) {
      errors.set(name, new InvalidDaemonConfigError('', `Secret ${name} has no ${DAEMON_CONFIG_KEY}`));
    } else {
      parseEntry(Buffer.from(encoded, 'base64').toString('utf8'), `${name}/${DAEMON_CONFIG_KEY}`, errors, configs);
    }
  } else {
    for (const [key, text] of Object.entries(data).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      parseEntry(text, `${name}/${key}`, errors, configs);
    }
  }
  return { configs, errors };
}
