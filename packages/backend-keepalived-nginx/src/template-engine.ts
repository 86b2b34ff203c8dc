import { Liquid, type Template } from 'liquidjs';
import { InvalidDaemonConfigError } from './errors.js';
import {
  idToken,
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
} from './validate-values.js';

/**
 * A liquidjs engine in strict mode (`strictVariables`, `strictFilters`, no file system: every
 * template is an in-memory string) whose filters are the typed validators. A template prints a
 * value only through one of them, so a bad value stops the render with an
 * {@link InvalidDaemonConfigError} instead of reaching the output.
 */
export function createTemplateEngine(): Liquid {
  const engine = new Liquid({
    strictVariables: true,
    strictFilters: true,
    ownPropertyOnly: true,
    greedy: false,
    relativeReference: false,
    templates: {},
  });
  engine.registerFilter('ip', (v: unknown) => validIp(v));
  engine.registerFilter('hostport', (v: unknown, port: unknown) => validHostPort(v, port));
  engine.registerFilter('port', (v: unknown) => validPort(v));
  engine.registerFilter('ident', (v: unknown) => validIdent(v));
  engine.registerFilter('hostname', (v: unknown) => validHostname(v));
  engine.registerFilter('path', (v: unknown) => validHttpPath(v));
  engine.registerFilter('file', (v: unknown) => validFilePath(v));
  engine.registerFilter('iface', (v: unknown) => validInterface(v));
  engine.registerFilter('cidr', (v: unknown) => validCidr(v));
  engine.registerFilter('duration', (v: unknown) => `${validDurationSeconds(v)}s`);
  engine.registerFilter('int', (v: unknown, min: unknown, max: unknown) =>
    validInt(v, Number(min), Number(max), 'value'),
  );
  engine.registerFilter('lbtoken', (v: unknown) => idToken(v as string));
  engine.registerFilter('lbid', (v: unknown) => validLoadBalancerId(v));
  // Composite filters: one tag prints one whole validated token, which keeps a 10,000-service
  // render fast (liquidjs costs a few microseconds per tag).
  engine.registerFilter('listen', (v: unknown) => {
    const l = v as { address: unknown; port: unknown; udp?: unknown; ssl?: unknown; def?: unknown };
    return `${validHostPort(l.address, l.port)}${l.udp === true ? ' udp' : ''}${l.ssl === true ? ' ssl' : ''}${
      l.def === true ? ' default_server' : ''
    }`;
  });
  engine.registerFilter('target', (v: unknown) => {
    const t = v as { address: unknown; port: unknown };
    return validHostPort(t.address, t.port, 'target');
  });
  engine.registerFilter('server', (v: unknown, upstream: unknown) => {
    const t = v as { address: unknown; port: unknown };
    const u = upstream as { maxFails: unknown; failTimeoutSeconds: unknown };
    return `${validHostPort(t.address, t.port, 'target')} max_fails=${validInt(u.maxFails, 0, 100, 'maxFails')} fail_timeout=${validDurationSeconds(u.failTimeoutSeconds, 'failTimeoutSeconds')}s`;
  });
  engine.registerFilter('location', (v: unknown) => {
    const l = v as { path: unknown; exact: unknown };
    return `${l.exact === true ? '= ' : ''}${validHttpPath(l.path)}`;
  });
  engine.registerFilter('header', (v: unknown) => {
    const h = v as { lb: unknown; version: unknown };
    if (typeof h.version !== 'string' || !/^[a-z0-9]{1,64}$/.test(h.version)) {
      throw new InvalidDaemonConfigError('version', 'is not 1-64 of [a-z0-9]');
    }
    return `${validLoadBalancerId(h.lb)} ${h.version}`;
  });
  engine.registerFilter('fails', (v: unknown) => {
    const u = v as { maxFails: unknown; failTimeoutSeconds: unknown };
    return `max_fails=${validInt(u.maxFails, 0, 100, 'maxFails')} fail_timeout=${validDurationSeconds(
      u.failTimeoutSeconds,
      'failTimeoutSeconds',
    )}s`;
  });
  engine.registerFilter('upstream', (v: unknown) => {
    const u = v as { lb: unknown; name: unknown };
    return `${idToken(u.lb as string)}.${validIdent(u.name, 'upstream')}`;
  });
  engine.registerFilter('balance', (v: unknown) => {
    if (v === 'least') return 'least_conn';
    if (v === 'hash') return 'hash $remote_addr consistent';
    throw new InvalidDaemonConfigError('algorithm', `${String(v)} is not least or hash`);
  });
  engine.registerFilter('vip', (v: unknown) => {
    const ip = validIp(v, 'vip');
    return `${ip}/${ip.includes(':') ? 128 : 32}`;
  });
  engine.registerFilter('version', (v: unknown) => {
    if (typeof v !== 'string' || !/^[a-z0-9]{1,64}$/.test(v)) {
      throw new InvalidDaemonConfigError('version', 'is not 1-64 of [a-z0-9]');
    }
    return v;
  });
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
