import { Liquid, type Template } from 'liquidjs';
import { InvalidDaemonConfigError } from './errors.js';
import {
  idToken,
  sniVariable,
  validCidr,
  validDurationSeconds,
  validFilePath,
  validHostname,
  validHostPort,
  validHttpPath,
  validIdent,
  validInt,
  validInterface,
  validIp,
  validLoadBalancerId,
  validPort,
  validSniHost,
} from './validate-values.js';

/** A template filter: validates its input and returns the one form the config prints. */
export type TemplateFilter = (value: unknown, ...args: unknown[]) => string | number;

/**
 * The filters every template prints values through, by name. Each is a typed validator from
 * `validate-values.ts`, so a bad value stops the render with an {@link InvalidDaemonConfigError}
 * instead of reaching the output.
 */
export const TEMPLATE_FILTERS: Readonly<Record<string, TemplateFilter>> = {
  ip: (v) => validIp(v),
  port: (v) => validPort(v),
  ident: (v) => validIdent(v),
  hostname: (v) => validHostname(v),
  file: (v) => validFilePath(v),
  iface: (v) => validInterface(v),
  cidr: (v) => validCidr(v),
  duration: (v) => `${validDurationSeconds(v)}s`,
  int: (v, min, max) => validInt(v, Number(min), Number(max), 'value'),
  // Composite filters: one tag prints one whole validated token (`addr:port udp`, a `server` line).
  // TLS listeners also speak HTTP/2 (ALPN h2, HTTP/1.1 to backends): nginx 1.22's `listen … http2`.
  listen: (v) => {
    const l = v as { address: unknown; port: unknown; udp?: unknown; ssl?: unknown; def?: unknown };
    return `${validHostPort(l.address, l.port)}${l.udp === true ? ' udp' : ''}${l.ssl === true ? ' ssl http2' : ''}${
      l.def === true ? ' default_server' : ''
    }`;
  },
  server: (v, upstream) => {
    const t = v as { address: unknown; port: unknown };
    const u = upstream as { maxFails: unknown; failTimeoutSeconds: unknown };
    return `${validHostPort(t.address, t.port, 'target')} max_fails=${validInt(u.maxFails, 0, 100, 'maxFails')} fail_timeout=${validDurationSeconds(u.failTimeoutSeconds, 'failTimeoutSeconds')}s`;
  },
  location: (v) => {
    const l = v as { path: unknown; exact: unknown };
    return `${l.exact === true ? '= ' : ''}${validHttpPath(l.path)}`;
  },
  header: (v) => {
    const h = v as { lb: unknown; version: unknown };
    return `${validLoadBalancerId(h.lb)} ${validVersion(h.version)}`;
  },
  upstream: (v) => {
    const u = v as { lb: unknown; name: unknown };
    return `${idToken(u.lb as string)}.${validIdent(u.name, 'upstream')}`;
  },
  balance: (v) => {
    if (v === 'least') return 'least_conn';
    if (v === 'hash') return 'hash $remote_addr consistent';
    throw new InvalidDaemonConfigError('algorithm', `${String(v)} is not least or hash`);
  },
  snihost: (v) => validSniHost(v, 'sniRoutes.host'),
  snivar: (v) => {
    const m = v as { lb: unknown; listener: unknown };
    return sniVariable(m.lb, m.listener);
  },
  vip: (v) => {
    const ip = validIp(v, 'vip');
    return `${ip}/${ip.includes(':') ? 128 : 32}`;
  },
};

function validVersion(v: unknown): string {
  if (typeof v !== 'string' || !/^[a-z0-9]{1,64}$/.test(v)) {
    throw new InvalidDaemonConfigError('version', 'is not 1-64 of [a-z0-9]');
  }
  return v;
}

/** The liquidjs options every KLB template engine uses: strict, and no file system. */
export const STRICT_LIQUID_OPTIONS = {
  strictVariables: true,
  strictFilters: true,
  ownPropertyOnly: true,
  greedy: false,
  relativeReference: false,
  templates: {},
} as const;

/**
 * A liquidjs engine in strict mode (`strictVariables`, `strictFilters`, no file system: every
 * template is an in-memory string) whose filters are {@link TEMPLATE_FILTERS}. A template prints
 * a value only through one of them.
 */
export function createTemplateEngine(): Liquid {
  const engine = new Liquid(STRICT_LIQUID_OPTIONS);
  for (const [name, filter] of Object.entries(TEMPLATE_FILTERS)) engine.registerFilter(name, filter);
  return engine;
}

/** Parses an in-memory template once. */
export function compile(engine: Liquid, source: string): Template[] {
  return engine.parse(source);
}

/**
 * Renders synchronously and returns the output; a validation failure inside a filter comes out as
 * the original {@link InvalidDaemonConfigError}, not liquidjs' wrapper.
 */
export function renderTemplate(engine: Liquid, template: Template[], scope: object): string {
  try {
    return engine.renderSync(template, scope) as string;
  } catch (err) {
    let cause: unknown = err;
    for (let i = 0; i < 5 && cause instanceof Error; i++) {
      if (cause instanceof InvalidDaemonConfigError) throw cause;
      const next = (cause as { originalError?: unknown }).originalError ?? cause.cause;
      if (next === undefined || next === cause) break;
      cause = next;
    }
    throw err;
  }
}
