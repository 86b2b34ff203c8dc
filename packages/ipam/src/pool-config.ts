import { readFile } from 'node:fs/promises';
import { ApiException, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { Ajv, type ErrorObject } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { IpamError } from './errors.js';
import { type AddressRange, formatRange, type IpFamily, parseRange } from './ip.js';
import type { LabelSelector } from './label-selector.js';

/** One pool as written in the configuration (see {@link poolConfigSchema}). */
export interface PoolSpec {
  /** Unique name: lowercase letters, digits, `-` and `.`, at most 63 characters. */
  readonly name: string;
  /** CIDRs (`10.0.0.0/24`, `fd00::/64`), ranges (`10.0.1.10-10.0.1.20`) or single addresses, IPv4 and/or IPv6. */
  readonly addresses: readonly string[];
  /** Addresses inside `addresses` that are never assigned (same forms). */
  readonly reserved?: readonly string[];
  /**
   * Never assign IPv4 addresses ending in `.0` or `.255` (some clients mistake them for network
   * or broadcast addresses). Default false: a CIDR pool then hands out its network address first
   * (`192.0.2.0` from `192.0.2.0/24`), as MetalLB does.
   */
  readonly avoidBuggyIPs?: boolean;
  /** When false, the pool is only used by requests that name it (or ask for one of its addresses). Default true. */
  readonly autoAssign?: boolean;
  /** Order among matching pools: lower values are tried first; pools without a priority come last. */
  readonly priority?: number;
  /** Only owners in these namespaces may use the pool. */
  readonly namespaces?: readonly string[];
  /** Only owners whose namespace's labels match may use the pool. */
  readonly namespaceSelector?: LabelSelector;
  /** Only owners whose own labels match may use the pool. */
  readonly serviceSelector?: LabelSelector;
  /** Only requests with one of these `loadBalancerClass` values may use the pool (default: any). */
  readonly loadBalancerClasses?: readonly string[];
}

/** The whole pool configuration document. */
export interface PoolConfig {
  /** The pools; names unique, no address in two pools. */
  readonly pools: readonly PoolSpec[];
}

/** A range of a validated pool, with the text it came from. */
export interface PoolRange extends AddressRange {
  /** The configuration entry, as written. */
  readonly text: string;
}

/** A validated, normalised pool. */
export interface Pool {
  /** Unique pool name. */
  readonly name: string;
  /** The pool's ranges, sorted by family then start. */
  readonly ranges: readonly PoolRange[];
  /** Reserved ranges (each inside the pool's ranges). */
  readonly reserved: readonly AddressRange[];
  /** Skip IPv4 addresses ending in `.0` and `.255`. */
  readonly avoidBuggyIPs: boolean;
  /** Used without being named. */
  readonly autoAssign: boolean;
  /** Lower is tried first; undefined comes last. */
  readonly priority: number | undefined;
  /** Allowed namespaces (undefined: all). */
  readonly namespaces: readonly string[] | undefined;
  /** Selector on the owner's namespace labels (undefined: all). */
  readonly namespaceSelector: LabelSelector | undefined;
  /** Selector on the owner's labels (undefined: all). */
  readonly serviceSelector: LabelSelector | undefined;
  /** Allowed load balancer classes (undefined: any). */
  readonly loadBalancerClasses: readonly string[] | undefined;
  /** The families the pool has addresses of. */
  readonly families: readonly IpFamily[];
}

const selectorSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    matchLabels: { type: 'object', additionalProperties: { type: 'string', maxLength: 63 } },
    matchExpressions: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['key', 'operator'],
        properties: {
          key: { type: 'string', minLength: 1, maxLength: 317 },
          operator: { enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'] },
          values: { type: 'array', items: { type: 'string', maxLength: 63 } },
        },
      },
    },
  },
} as const;

/**
 * The JSON Schema (draft 2020-12 subset, checked with ajv) of a {@link PoolConfig}. Semantic rules
 * it cannot express (addresses parse, ranges not inverted, one family per range, no overlap
 * between or within pools, reserved entries inside the pool) are checked by {@link parsePoolConfig}.
 */
export const poolConfigSchema: Readonly<Record<string, unknown>> = {
  type: 'object',
  additionalProperties: false,
  required: ['pools'],
  properties: {
    pools: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'addresses'],
        properties: {
          name: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$' },
          addresses: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1, maxLength: 100 } },
          reserved: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 100 } },
          avoidBuggyIPs: { type: 'boolean' },
          autoAssign: { type: 'boolean' },
          priority: { type: 'integer', minimum: 0, maximum: 1000000 },
          namespaces: { type: 'array', items: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$' } },
          namespaceSelector: selectorSchema,
          serviceSelector: selectorSchema,
          loadBalancerClasses: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 253 } },
        },
      },
    },
  },
} as const;

let validateShape: ReturnType<Ajv['compile']> | undefined;

function schemaErrors(errors: readonly ErrorObject[]): string[] {
  return errors.map((e) => {
    const where =
      e.instancePath === '' ? 'config' : `config${e.instancePath.replace(/\/(\d+)/g, '[$1]').replace(/\//g, '.')}`;
    if (e.keyword === 'additionalProperties') {
      return `${where}: unknown field "${String((e.params as { additionalProperty: string }).additionalProperty)}"`;
    }
    if (e.keyword === 'enum') {
      return `${where}: must be one of ${JSON.stringify((e.params as { allowedValues: unknown[] }).allowedValues)}`;
    }
    return `${where}: ${e.message ?? 'is invalid'}`;
  });
}

interface Located {
  readonly range: AddressRange;
  readonly where: string;
  readonly text: string;
}

/**
 * Validates a pool configuration (already parsed from YAML/JSON) and returns the normalised
 * pools. Throws an {@link IpamError} `INVALID_CONFIG` whose message names the first offending
 * entry (`pools[1].addresses[0] "10.0.0.9-10.0.0.1" is inverted ...`) and whose `details` list
 * every problem found.
 */
export function parsePoolConfig(input: unknown): Pool[] {
  validateShape ??= new Ajv({ allErrors: true, strict: true }).compile(poolConfigSchema);
  if (!validateShape(input)) {
    const problems = schemaErrors(validateShape.errors ?? []);
    throw new IpamError('INVALID_CONFIG', `invalid pool configuration: ${problems[0]}`, { details: problems });
  }
  const config = input as PoolConfig;
  const problems: string[] = [];
  const names = new Map<string, number>();
  const all: Located[] = [];
  const pools: Pool[] = [];
  config.pools.forEach((spec, i) => {
    const at = `pools[${i}] (${spec.name})`;
    const seen = names.get(spec.name);
    if (seen !== undefined) problems.push(`${at}: duplicate pool name, also pools[${seen}]`);
    else names.set(spec.name, i);
    const ranges: PoolRange[] = [];
    spec.addresses.forEach((text, j) => {
      try {
        const range = parseRange(text);
        ranges.push({ ...range, text });
        all.push({ range, where: `${at}.addresses[${j}]`, text });
      } catch (err) {
        problems.push(`${at}.addresses[${j}]: ${(err as Error).message}`);
      }
    });
    const reserved: AddressRange[] = [];
    (spec.reserved ?? []).forEach((text, j) => {
      try {
        const range = parseRange(text);
        const inside = ranges.some((r) => r.family === range.family && r.start <= range.start && range.end <= r.end);
        if (!inside) problems.push(`${at}.reserved[${j}]: "${text}" is not inside one of the pool's address entries`);
        else reserved.push(range);
      } catch (err) {
        problems.push(`${at}.reserved[${j}]: ${(err as Error).message}`);
      }
    });
    ranges.sort((a, b) => (a.family === b.family ? (a.start < b.start ? -1 : 1) : a.family === 'IPv4' ? -1 : 1));
    const families = (['IPv4', 'IPv6'] as const).filter((f) => ranges.some((r) => r.family === f));
    pools.push({
      name: spec.name,
      ranges,
      reserved,
      avoidBuggyIPs: spec.avoidBuggyIPs ?? false,
      autoAssign: spec.autoAssign ?? true,
      priority: spec.priority,
      namespaces: spec.namespaces,
      namespaceSelector: spec.namespaceSelector,
      serviceSelector: spec.serviceSelector,
      loadBalancerClasses: spec.loadBalancerClasses,
      families,
    });
  });
  all.sort((a, b) =>
    a.range.family === b.range.family ? (a.range.start < b.range.start ? -1 : 1) : a.range.family === 'IPv4' ? -1 : 1,
  );
  // Sweep: compare each entry with the entry reaching furthest so far (same family).
  let reach: Located | undefined;
  for (const cur of all) {
    if (reach && reach.range.family === cur.range.family && cur.range.start <= reach.range.end) {
      problems.push(`${cur.where} "${cur.text}" overlaps ${reach.where} "${reach.text}"`);
    }
    if (!reach || reach.range.family !== cur.range.family || cur.range.end > reach.range.end) reach = cur;
  }
  if (problems.length > 0) {
    throw new IpamError('INVALID_CONFIG', `invalid pool configuration: ${problems[0]}`, { details: problems });
  }
  return pools;
}

/** Parses YAML or JSON text (YAML is a superset) and validates it with {@link parsePoolConfig}. */
export function parsePoolConfigText(text: string, source = 'pool configuration'): Pool[] {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new IpamError('INVALID_CONFIG', `${source} is not valid YAML/JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return parsePoolConfig(doc);
}

/** Reads and validates a YAML or JSON pool configuration file. */
export async function loadPoolConfigFile(path: string): Promise<Pool[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new IpamError('INVALID_CONFIG', `cannot read pool configuration ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return parsePoolConfigText(text, path);
}

/** The key of a ConfigMap's `data` that holds the pool configuration by default. */
export const POOL_CONFIGMAP_KEY = 'pools.yaml';

/**
 * Validates the pool configuration held in a ConfigMap's `data[key]` (default `pools.yaml`).
 * Pass the object as read from the API.
 */
export function poolConfigFromConfigMap(
  configMap: {
    readonly metadata?: { readonly namespace?: string; readonly name?: string };
    readonly data?: Record<string, string>;
  },
  key: string = POOL_CONFIGMAP_KEY,
): Pool[] {
  const where = `ConfigMap ${configMap.metadata?.namespace ?? ''}/${configMap.metadata?.name ?? ''}`;
  const text = configMap.data?.[key];
  if (text === undefined) throw new IpamError('INVALID_CONFIG', `${where} has no data key "${key}"`);
  return parsePoolConfigText(text, `${where} data["${key}"]`);
}

/**
 * Reads the ConfigMap `namespace/name` from the API and validates its `data[key]` (default
 * `pools.yaml`). A missing ConfigMap is `INVALID_CONFIG`; other API failures are `API_ERROR`.
 */
export async function loadPoolConfigMap(
  kubeConfig: KubeConfig,
  namespace: string,
  name: string,
  key: string = POOL_CONFIGMAP_KEY,
): Promise<Pool[]> {
  let configMap: Awaited<ReturnType<CoreV1Api['readNamespacedConfigMap']>>;
  try {
    configMap = await kubeConfig.makeApiClient(CoreV1Api).readNamespacedConfigMap({ namespace, name });
  } catch (err) {
    if (err instanceof ApiException && err.code === 404) {
      throw new IpamError('INVALID_CONFIG', `pool ConfigMap ${namespace}/${name} does not exist`, { cause: err });
    }
    throw new IpamError('API_ERROR', `reading pool ConfigMap ${namespace}/${name} failed: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return poolConfigFromConfigMap(configMap, key);
}

/**
 * The original controller's configuration: `VIP_ALLOCATION_START` and `VIP_ALLOCATION_END`
 * (inclusive) become one pool named `default`. Returns undefined when neither is set; throws
 * `INVALID_CONFIG` when only one is set or the range is invalid.
 */
export function poolConfigFromEnv(env: Readonly<Record<string, string | undefined>> = process.env): Pool[] | undefined {
  const start = env.VIP_ALLOCATION_START?.trim();
  const end = env.VIP_ALLOCATION_END?.trim();
  if (!start && !end) return undefined;
  if (!start || !end) {
    throw new IpamError('INVALID_CONFIG', 'VIP_ALLOCATION_START and VIP_ALLOCATION_END must both be set');
  }
  try {
    return parsePoolConfig({ pools: [{ name: 'default', addresses: [`${start}-${end}`] }] });
  } catch (err) {
    const detail = (err as IpamError).details?.[0] ?? (err as Error).message;
    throw new IpamError('INVALID_CONFIG', `VIP_ALLOCATION_START/VIP_ALLOCATION_END: ${detail}`, { cause: err });
  }
}

/** A one-line description of a pool's ranges, for logs. */
export function describePool(pool: Pool): string {
  return `${pool.name} [${pool.ranges.map((r) => formatRange(r)).join(', ')}]`;
}
