import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { Ajv, type ErrorObject } from 'ajv';
import { DaemonConfigConflictError, InvalidDaemonConfigError } from './errors.js';
import {
  validCidr,
  validDurationSeconds,
  validHostname,
  validHttpPath,
  validIdent,
  validInt,
  validIp,
  validLoadBalancerId,
  validPort,
} from './validate-values.js';

/** The `apiVersion` of {@link DaemonServiceConfig} objects this package writes and reads. */
export const DAEMON_CONFIG_API_VERSION = 'klb.io/v1alpha1';

/** The `kind` of a {@link DaemonServiceConfig}. */
export const DAEMON_SERVICE_CONFIG_KIND = 'DaemonServiceConfig';

/** A place a daemon sends traffic to. */
export interface DaemonTarget {
  /** IPv4 or IPv6 address (no zone, no brackets). */
  readonly address: string;
  /** TCP/UDP port on that address. */
  readonly port: number;
  /** False for a target that must get no new traffic; the renderer leaves it out. */
  readonly ready: boolean;
}

/** A named set of targets (an nginx `upstream`). */
export interface DaemonUpstream {
  /** Name, unique within the load balancer (`[a-z0-9-]`, 1–63). */
  readonly name: string;
  /** The targets, in a stable order. */
  readonly targets: readonly DaemonTarget[];
  /** Failed attempts within `failTimeoutSeconds` before a target is skipped (nginx `max_fails`, 0 disables). */
  readonly maxFails: number;
  /** The window for `maxFails`, and how long a failed target is skipped (nginx `fail_timeout`). */
  readonly failTimeoutSeconds: number;
}

/** An L7 route of an HTTP/HTTPS listener. */
export interface DaemonHttpRoute {
  /** Exact host name or `*.example.com`; absent matches any host. */
  readonly host?: string;
  /** Path to match; absent matches every path. */
  readonly path?: string;
  /** `Prefix` matches `path` and everything below it (element-wise); `Exact` only `path`. */
  readonly pathType: 'Prefix' | 'Exact';
  /** The upstream that serves the route. */
  readonly upstream: string;
}

/**
 * A TLS passthrough rule of a TLS listener: connections whose SNI server name matches go, still
 * encrypted, to the upstream.
 */
export interface DaemonSniRoute {
  /**
   * Exact host name, or `*.example.com` (one label in front of `example.com`, never
   * `example.com` itself); absent catches every other name and clients that send none.
   */
  readonly host?: string;
  /** The upstream that serves the connections. */
  readonly upstream: string;
}

/**
 * A TLS certificate and key for an HTTPS listener. The material is carried inline because the
 * config object that holds it is a Secret; `secret` records where it came from.
 */
export interface DaemonTlsCertificate {
  /** Name, unique within the listener (`[a-z0-9-]`); used in the written file names. */
  readonly name: string;
  /** The Kubernetes Secret the material was read from, for messages. */
  readonly secret?: {
    /** The Secret's namespace. */
    readonly namespace: string;
    /** The Secret's name. */
    readonly name: string;
  };
  /** Host names it serves (empty: the listener's default certificate). */
  readonly hosts: readonly string[];
  /** PEM certificate chain. */
  readonly certificate: string;
  /** PEM private key. Never logged; written with mode 0600. */
  readonly privateKey: string;
}

/** One port the load balancer accepts traffic on, on each of its addresses. */
export interface DaemonListener {
  /** Name, unique within the load balancer (`[a-z0-9-]`, 1–63). */
  readonly name: string;
  /** The port on the VIPs. */
  readonly port: number;
  /**
   * `TCP`/`UDP` become nginx `stream` servers; `HTTP`/`HTTPS` become `http` servers; `TLS` (TLS
   * passthrough) becomes a `stream` server that picks the upstream by the client's SNI server name.
   */
  readonly protocol: 'TCP' | 'UDP' | 'HTTP' | 'HTTPS' | 'TLS';
  /** The upstream of a TCP/UDP listener (required), or the default upstream of an L7 one; not for TLS. */
  readonly upstream?: string;
  /** L7 routes, most specific first (HTTP/HTTPS only). */
  readonly routes?: readonly DaemonHttpRoute[];
  /** Certificates (HTTPS only, at least one). */
  readonly tls?: readonly DaemonTlsCertificate[];
  /** HTTP only: answer every request with a redirect to HTTPS on this port of the same load balancer. */
  readonly redirectToHttpsPort?: number;
  /**
   * TLS only: where connections go by SNI server name. An exact host wins over a wildcard, and a
   * route without host catches the rest; with none, a connection for another name is closed.
   * For a host listed twice the first route counts.
   */
  readonly sniRoutes?: readonly DaemonSniRoute[];
}

/** VRRP placement of a load balancer's VIPs. */
export interface DaemonVrrp {
  /**
   * The VRRP group: all VIPs of all load balancers in one group move between nodes together,
   * in one keepalived `vrrp_instance` per address family.
   */
  readonly group: string;
  /** The group's virtual router id, 1–255, unique per group on the network. */
  readonly vrid: number;
}

/**
 * HTTP proxy settings of a load balancer's HTTP and HTTPS listeners, as whole numbers; a field
 * that is absent leaves nginx's default (and renders nothing).
 */
export interface DaemonHttpOptions {
  /** nginx `client_max_body_size`: the largest request body in bytes, `0` for no limit (nginx's default: 1 MiB). */
  readonly maxBodyBytes?: number;
  /**
   * nginx `large_client_header_buffers 4 <size>`: the longest request line or header field in
   * bytes, 1024 to 1048576 (nginx's default: 8 KiB); a request's whole header fits in four.
   */
  readonly maxHeaderBytes?: number;
  /** nginx `proxy_connect_timeout` of HTTP servers, in place of `timeouts.connectSeconds`. */
  readonly connectSeconds?: number;
  /** nginx `proxy_read_timeout` of HTTP servers, in place of `timeouts.idleSeconds`. */
  readonly readSeconds?: number;
  /** nginx `proxy_send_timeout` of HTTP servers, in place of `timeouts.idleSeconds`. */
  readonly sendSeconds?: number;
  /**
   * Read and send timeouts of upgraded (WebSocket) connections: a request with an `Upgrade`
   * header is proxied from a named location that has these instead of `readSeconds`/`sendSeconds`.
   */
  readonly upgradeSeconds?: number;
  /** nginx `proxy_buffering` and `proxy_request_buffering`: `false` streams both bodies. */
  readonly buffering?: boolean;
}

/** Largest {@link DaemonHttpOptions.maxBodyBytes}: 1 TiB. */
const MAX_BODY_BYTES = 1024 ** 4;

/** Whole-load-balancer options. */
export interface DaemonServiceOptions {
  /** Balancing algorithm. `source-ip-hash` renders `hash $remote_addr consistent`. */
  readonly algorithm: 'round-robin' | 'least-connections' | 'source-ip-hash';
  /** Client IP affinity (Service `sessionAffinity: ClientIP`): also renders the consistent hash. */
  readonly sessionAffinity: boolean;
  /** Send the PROXY protocol header to targets of TCP/UDP listeners. */
  readonly proxyProtocol: boolean;
  /** Client CIDRs allowed to connect; empty allows all. */
  readonly sourceRanges: readonly string[];
  /** Timeouts, in whole seconds. */
  readonly timeouts: {
    /** Time allowed to connect to a target. */
    readonly connectSeconds?: number;
    /** Idle time after which a connection (or UDP session) is closed. */
    readonly idleSeconds?: number;
  };
  /** HTTP proxy settings of the HTTP/HTTPS listeners; absent when none is set. */
  readonly http?: DaemonHttpOptions;
  /** VRRP group and router id. */
  readonly vrrp: DaemonVrrp;
}

/**
 * Everything the node daemons need to serve one load balancer: the versioned, schema-validated
 * JSON the controller publishes (one Kubernetes object per load balancer) and the renderers read.
 */
export interface DaemonServiceConfig {
  /** Always {@link DAEMON_CONFIG_API_VERSION}. */
  readonly apiVersion: typeof DAEMON_CONFIG_API_VERSION;
  /** Always {@link DAEMON_SERVICE_CONFIG_KIND}. */
  readonly kind: typeof DAEMON_SERVICE_CONFIG_KIND;
  /** The load balancer id (`LoadBalancerRef.id`, e.g. `service/default/coffee`). */
  readonly id: string;
  /** Content version: changes whenever anything else in the object changes (see {@link daemonConfigVersion}). */
  readonly version: string;
  /** The VIPs, IPv4 and/or IPv6. */
  readonly addresses: readonly string[];
  /** The listeners, ordered by port then protocol. */
  readonly listeners: readonly DaemonListener[];
  /** The upstreams, ordered by name. */
  readonly upstreams: readonly DaemonUpstream[];
  /** Whole-load-balancer options. */
  readonly options: DaemonServiceOptions;
}

const name = { type: 'string', minLength: 1, maxLength: 63 } as const;
const port = { type: 'integer', minimum: 1, maximum: 65535 } as const;
const seconds = { type: 'integer', minimum: 1, maximum: 604800 } as const;

const schema = {
  $id: 'https://klb.io/schemas/daemon-service-config.json',
  type: 'object',
  additionalProperties: false,
  required: ['apiVersion', 'kind', 'id', 'version', 'addresses', 'listeners', 'upstreams', 'options'],
  properties: {
    apiVersion: { const: DAEMON_CONFIG_API_VERSION },
    kind: { const: DAEMON_SERVICE_CONFIG_KIND },
    id: { type: 'string', minLength: 1, maxLength: 330 },
    version: { type: 'string', pattern: '^[a-z0-9]{1,64}$' },
    addresses: { type: 'array', minItems: 1, maxItems: 16, items: { type: 'string', maxLength: 45 } },
    listeners: {
      type: 'array',
      maxItems: 1024,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'port', 'protocol'],
        properties: {
          name,
          port,
          protocol: { enum: ['TCP', 'UDP', 'HTTP', 'HTTPS', 'TLS'] },
          upstream: name,
          routes: {
            type: 'array',
            maxItems: 4096,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['pathType', 'upstream'],
              properties: {
                host: { type: 'string', maxLength: 253 },
                path: { type: 'string', maxLength: 1024 },
                pathType: { enum: ['Prefix', 'Exact'] },
                upstream: name,
              },
            },
          },
          tls: {
            type: 'array',
            maxItems: 256,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['name', 'hosts', 'certificate', 'privateKey'],
              properties: {
                name,
                secret: {
                  type: 'object',
                  additionalProperties: false,
                  required: ['namespace', 'name'],
                  properties: {
                    namespace: { type: 'string', pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' },
                    name: { type: 'string', pattern: '^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$' },
                  },
                },
                hosts: { type: 'array', maxItems: 256, items: { type: 'string', maxLength: 253 } },
                certificate: { type: 'string', minLength: 1, maxLength: 262144 },
                privateKey: { type: 'string', minLength: 1, maxLength: 65536 },
              },
            },
          },
          redirectToHttpsPort: port,
          sniRoutes: {
            type: 'array',
            maxItems: 4096,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['upstream'],
              properties: { host: { type: 'string', maxLength: 253 }, upstream: name },
            },
          },
        },
      },
    },
    upstreams: {
      type: 'array',
      maxItems: 1024,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'targets', 'maxFails', 'failTimeoutSeconds'],
        properties: {
          name,
          targets: {
            type: 'array',
            maxItems: 10000,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['address', 'port', 'ready'],
              properties: { address: { type: 'string', maxLength: 45 }, port, ready: { type: 'boolean' } },
            },
          },
          maxFails: { type: 'integer', minimum: 0, maximum: 100 },
          failTimeoutSeconds: seconds,
        },
      },
    },
    options: {
      type: 'object',
      additionalProperties: false,
      required: ['algorithm', 'sessionAffinity', 'proxyProtocol', 'sourceRanges', 'timeouts', 'vrrp'],
      properties: {
        algorithm: { enum: ['round-robin', 'least-connections', 'source-ip-hash'] },
        sessionAffinity: { type: 'boolean' },
        proxyProtocol: { type: 'boolean' },
        sourceRanges: { type: 'array', maxItems: 1024, items: { type: 'string', maxLength: 49 } },
        timeouts: {
          type: 'object',
          additionalProperties: false,
          properties: { connectSeconds: seconds, idleSeconds: seconds },
        },
        http: {
          type: 'object',
          additionalProperties: false,
          properties: {
            maxBodyBytes: { type: 'integer', minimum: 0, maximum: MAX_BODY_BYTES },
            maxHeaderBytes: { type: 'integer', minimum: 1024, maximum: 1048576 },
            connectSeconds: seconds,
            readSeconds: seconds,
            sendSeconds: seconds,
            upgradeSeconds: seconds,
            buffering: { type: 'boolean' },
          },
        },
        vrrp: {
          type: 'object',
          additionalProperties: false,
          required: ['group', 'vrid'],
          properties: { group: name, vrid: { type: 'integer', minimum: 1, maximum: 255 } },
        },
      },
    },
  },
} as const;

/** The JSON Schema (draft-07) of {@link DaemonServiceConfig}; values are checked further by {@link validateDaemonServiceConfig}. */
export const daemonServiceConfigSchema: Readonly<Record<string, unknown>> = schema;

const ajv = new Ajv({ allErrors: false, strict: true });
const schemaCheck = ajv.compile(schema);

function schemaField(error: ErrorObject): string {
  return error.instancePath
    .split('/')
    .slice(1)
    .map((part) => (/^[0-9]+$/.test(part) ? `[${part}]` : `.${part}`))
    .join('')
    .replace(/^\./, '');
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/**
 * The certificates of a PEM chain, each one checked the way nginx will load them: only
 * `CERTIFICATE` blocks, every one of them parsable (not only the first), and never key material
 * (a private key pasted into `tls.crt` would be written where certificates go).
 */
function checkChain(pem: string, field: string): X509Certificate[] {
  const blocks = [...pem.matchAll(PEM_BLOCK)];
  if (blocks.length === 0) throw new InvalidDaemonConfigError(field, 'is not a PEM X.509 certificate');
  return blocks.map((block, i) => {
    const label = block[1] as string;
    if (label.includes('PRIVATE KEY')) {
      throw new InvalidDaemonConfigError(
        field,
        `holds a private key (block ${i + 1}): a chain holds certificates only`,
      );
    }
    if (label !== 'CERTIFICATE') {
      throw new InvalidDaemonConfigError(
        field,
        `holds a ${label} block (block ${i + 1}): a chain holds certificates only`,
      );
    }
    try {
      return new X509Certificate(block[0]);
    } catch (err) {
      throw new InvalidDaemonConfigError(field, `block ${i + 1} is not a valid X.509 certificate`, { cause: err });
    }
  });
}

function checkTls(tls: DaemonTlsCertificate, field: string): void {
  const [cert] = checkChain(tls.certificate, `${field}.certificate`) as [X509Certificate];
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(tls.privateKey);
  } catch {
    // The cause is not kept: it could quote key material.
    throw new InvalidDaemonConfigError(`${field}.privateKey`, 'is not a PEM private key');
  }
  if (!cert.checkPrivateKey(key)) {
    throw new InvalidDaemonConfigError(`${field}.privateKey`, 'does not belong to the certificate');
  }
}

/** Config objects that passed validation; configs are immutable once built (the types are readonly). */
const validated = new WeakSet<object>();

/**
 * Checks that `value` is a complete, safe {@link DaemonServiceConfig}: the JSON Schema, then every
 * value (addresses, ports, names, host names, paths, CIDRs, durations, PEM material) and every
 * reference (listeners to upstreams, redirects to HTTPS listeners). Returns it typed. A config
 * object is treated as immutable: checking the same object again is free, so pass a new object
 * for changed content.
 *
 * @throws InvalidDaemonConfigError naming the first bad field.
 */
export function validateDaemonServiceConfig(value: unknown): DaemonServiceConfig {
  if (typeof value === 'object' && value !== null && validated.has(value)) return value as DaemonServiceConfig;
  if (!schemaCheck(value)) {
    // The message names the field and the rule, never the (possibly huge or hostile) value.
    const error = schemaCheck.errors?.[0];
    throw new InvalidDaemonConfigError(
      error ? schemaField(error) : '',
      error?.message ?? 'does not match the daemon config schema',
    );
  }
  const config = value as unknown as DaemonServiceConfig;
  validLoadBalancerId(config.id, 'id');
  const seenAddresses = new Set<string>();
  config.addresses.forEach((address, i) => {
    const ip = validIp(address, `addresses[${i}]`);
    if (ip !== address) throw new InvalidDaemonConfigError(`addresses[${i}]`, `must be written canonically as ${ip}`);
    if (seenAddresses.has(ip)) throw new InvalidDaemonConfigError(`addresses[${i}]`, `${ip} is listed twice`);
    seenAddresses.add(ip);
  });
  const upstreams = new Set<string>();
  config.upstreams.forEach((upstream, i) => {
    const field = `upstreams[${i}]`;
    validIdent(upstream.name, `${field}.name`);
    if (upstreams.has(upstream.name)) throw new InvalidDaemonConfigError(`${field}.name`, 'is not unique');
    upstreams.add(upstream.name);
    validInt(upstream.maxFails, 0, 100, `${field}.maxFails`);
    validDurationSeconds(upstream.failTimeoutSeconds, `${field}.failTimeoutSeconds`);
    upstream.targets.forEach((target, j) => {
      const ip = validIp(target.address, `${field}.targets[${j}].address`);
      if (ip !== target.address) {
        throw new InvalidDaemonConfigError(`${field}.targets[${j}].address`, `must be written canonically as ${ip}`);
      }
      validPort(target.port, `${field}.targets[${j}].port`);
    });
  });
  const refUpstream = (ref: string, field: string): void => {
    validIdent(ref, field);
    if (!upstreams.has(ref)) throw new InvalidDaemonConfigError(field, `refers to unknown upstream "${ref}"`);
  };
  const listenerNames = new Set<string>();
  const ports = new Set<string>();
  const httpsPorts = new Set(config.listeners.filter((l) => l.protocol === 'HTTPS').map((l) => l.port));
  config.listeners.forEach((listener, i) => {
    const field = `listeners[${i}]`;
    validIdent(listener.name, `${field}.name`);
    if (listenerNames.has(listener.name)) throw new InvalidDaemonConfigError(`${field}.name`, 'is not unique');
    listenerNames.add(listener.name);
    validPort(listener.port, `${field}.port`);
    const transport = `${listener.protocol === 'UDP' ? 'udp' : 'tcp'}/${listener.port}`;
    if (ports.has(transport)) throw new InvalidDaemonConfigError(`${field}.port`, `${transport} is used twice`);
    ports.add(transport);
    const l7 = listener.protocol === 'HTTP' || listener.protocol === 'HTTPS';
    const passthrough = listener.protocol === 'TLS';
    if (passthrough && listener.upstream !== undefined) {
      throw new InvalidDaemonConfigError(
        field,
        'a TLS listener takes no upstream: its sniRoutes choose one (a route without host catches the rest)',
      );
    }
    if (listener.upstream !== undefined) refUpstream(listener.upstream, `${field}.upstream`);
    else if (!l7 && !passthrough) {
      throw new InvalidDaemonConfigError(`${field}.upstream`, 'is required for a TCP/UDP listener');
    }
    if (!passthrough && listener.sniRoutes !== undefined) {
      throw new InvalidDaemonConfigError(`${field}.sniRoutes`, 'are only for TLS listeners');
    }
    listener.sniRoutes?.forEach((route, j) => {
      const rf = `${field}.sniRoutes[${j}]`;
      if (route.host !== undefined) validHostname(route.host, `${rf}.host`);
      refUpstream(route.upstream, `${rf}.upstream`);
    });
    if (!l7 && (listener.routes !== undefined || listener.tls !== undefined || listener.redirectToHttpsPort)) {
      throw new InvalidDaemonConfigError(
        field,
        'routes, tls and redirectToHttpsPort are only for HTTP/HTTPS listeners',
      );
    }
    listener.routes?.forEach((route, j) => {
      const rf = `${field}.routes[${j}]`;
      if (route.host !== undefined) validHostname(route.host, `${rf}.host`);
      if (route.path !== undefined) validHttpPath(route.path, `${rf}.path`);
      refUpstream(route.upstream, `${rf}.upstream`);
    });
    if (listener.protocol === 'HTTPS') {
      if (!listener.tls || listener.tls.length === 0) {
        throw new InvalidDaemonConfigError(`${field}.tls`, 'an HTTPS listener needs at least one certificate');
      }
    } else if (listener.tls !== undefined) {
      throw new InvalidDaemonConfigError(`${field}.tls`, 'only HTTPS listeners take certificates');
    }
    const certNames = new Set<string>();
    listener.tls?.forEach((tls, j) => {
      const tf = `${field}.tls[${j}]`;
      validIdent(tls.name, `${tf}.name`);
      if (certNames.has(tls.name)) throw new InvalidDaemonConfigError(`${tf}.name`, 'is not unique');
      certNames.add(tls.name);
      tls.hosts.forEach((host, k) => {
        validHostname(host, `${tf}.hosts[${k}]`);
      });
      checkTls(tls, tf);
    });
    if (listener.redirectToHttpsPort !== undefined) {
      validPort(listener.redirectToHttpsPort, `${field}.redirectToHttpsPort`);
      if (listener.protocol !== 'HTTP') {
        throw new InvalidDaemonConfigError(`${field}.redirectToHttpsPort`, 'is only for HTTP listeners');
      }
      if (!httpsPorts.has(listener.redirectToHttpsPort)) {
        throw new InvalidDaemonConfigError(
          `${field}.redirectToHttpsPort`,
          `no HTTPS listener on port ${listener.redirectToHttpsPort}`,
        );
      }
    }
  });
  config.options.sourceRanges.forEach((range, i) => {
    validCidr(range, `options.sourceRanges[${i}]`);
  });
  if (config.options.timeouts.connectSeconds !== undefined) {
    validDurationSeconds(config.options.timeouts.connectSeconds, 'options.timeouts.connectSeconds');
  }
  if (config.options.timeouts.idleSeconds !== undefined) {
    validDurationSeconds(config.options.timeouts.idleSeconds, 'options.timeouts.idleSeconds');
  }
  const http = config.options.http;
  if (http !== undefined) {
    if (http.maxBodyBytes !== undefined) validInt(http.maxBodyBytes, 0, MAX_BODY_BYTES, 'options.http.maxBodyBytes');
    if (http.maxHeaderBytes !== undefined) validInt(http.maxHeaderBytes, 1024, 1048576, 'options.http.maxHeaderBytes');
    for (const key of ['connectSeconds', 'readSeconds', 'sendSeconds', 'upgradeSeconds'] as const) {
      if (http[key] !== undefined) validDurationSeconds(http[key], `options.http.${key}`);
    }
  }
  validIdent(config.options.vrrp.group, 'options.vrrp.group');
  validInt(config.options.vrrp.vrid, 1, 255, 'options.vrrp.vrid');
  validated.add(config);
  return config;
}

/** The outcome of checking a set of configs together: the usable ones and why others were left out. */
export interface DaemonConfigSetCheck {
  /** Configs that are valid on their own and collide with nothing earlier, sorted by id. */
  readonly accepted: readonly DaemonServiceConfig[];
  /** Per load balancer id (or `#<index>` when the id itself is unusable), why it was left out. */
  readonly rejected: ReadonlyMap<string, Error>;
}

/**
 * Validates every config and then the set: VIP:port collisions per transport, and VRRP groups
 * (all load balancers of a group must carry its router id; two groups may not share one). On a
 * collision the load balancer whose id sorts later is rejected, so the result does not depend on
 * the input order.
 */
export function checkDaemonConfigSet(configs: readonly unknown[]): DaemonConfigSetCheck {
  // Both renderers check the same list in turn: the same config objects give the same answer.
  if (lastSet !== undefined && sameObjects(lastSet.configs, configs)) return lastSet.check;
  const check = checkSet(configs);
  lastSet = { configs: [...configs], check };
  return check;
}

/** The last set {@link checkDaemonConfigSet} checked (a copy of the list) and its answer. */
let lastSet: { readonly configs: readonly unknown[]; readonly check: DaemonConfigSetCheck } | undefined;

function sameObjects(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    // Only validated objects are known to be immutable.
    if (x !== b[i] || typeof x !== 'object' || x === null || !validated.has(x)) return false;
  }
  return true;
}

function checkSet(configs: readonly unknown[]): DaemonConfigSetCheck {
  const rejected = new Map<string, Error>();
  const valid: DaemonServiceConfig[] = [];
  const seenIds = new Set<string>();
  configs.forEach((raw, i) => {
    const rawId = typeof raw === 'object' && raw !== null ? (raw as { id?: unknown }).id : undefined;
    const key = typeof rawId === 'string' && rawId.length > 0 && rawId.length <= 330 ? rawId : `#${i}`;
    try {
      const config = validateDaemonServiceConfig(raw);
      if (seenIds.has(config.id)) throw new DaemonConfigConflictError(`${config.id} is present twice`);
      seenIds.add(config.id);
      valid.push(config);
    } catch (err) {
      if (!rejected.has(key)) rejected.set(key, err as Error);
    }
  });
  valid.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const sockets = new Map<string, string>();
  const groupVrid = new Map<string, { vrid: number; id: string }>();
  const vridGroup = new Map<number, { group: string; id: string }>();
  const accepted: DaemonServiceConfig[] = [];
  for (const config of valid) {
    try {
      const { group, vrid } = config.options.vrrp;
      const g = groupVrid.get(group);
      if (g && g.vrid !== vrid) {
        throw new DaemonConfigConflictError(
          `${config.id}: VRRP group "${group}" has router id ${g.vrid} (from ${g.id}), not ${vrid}`,
        );
      }
      const v = vridGroup.get(vrid);
      if (v && v.group !== group) {
        throw new DaemonConfigConflictError(
          `${config.id}: VRRP router id ${vrid} already belongs to group "${v.group}" (from ${v.id})`,
        );
      }
      const mine: string[] = [];
      for (const address of config.addresses) {
        for (const listener of config.listeners) {
          const socket = `${listener.protocol === 'UDP' ? 'udp' : 'tcp'} ${address} ${listener.port}`;
          const owner = sockets.get(socket);
          if (owner !== undefined) {
            throw new DaemonConfigConflictError(`${config.id}: ${socket} is already used by ${owner}`);
          }
          mine.push(socket);
        }
      }
      for (const socket of mine) sockets.set(socket, config.id);
      if (!g) groupVrid.set(group, { vrid, id: config.id });
      if (!v) vridGroup.set(vrid, { group, id: config.id });
      accepted.push(config);
    } catch (err) {
      rejected.set(config.id, err as Error);
    }
  }
  return { accepted, rejected };
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * The content version of a config: the first 16 hex digits of the SHA-256 of its canonical JSON
 * without `version`. Equal content gives an equal version on every node and every run.
 */
export function daemonConfigVersion(config: Omit<DaemonServiceConfig, 'version'> | DaemonServiceConfig): string {
  const { version: _ignored, ...rest } = config as DaemonServiceConfig;
  return createHash('sha256').update(canonicalJson(rest)).digest('hex').slice(0, 16);
}
