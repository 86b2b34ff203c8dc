import { createHash } from 'node:crypto';
import ipaddr from 'ipaddr.js';
import { InvalidDaemonConfigError } from './errors.js';

/*
 * Validators for every kind of value that reaches nginx.conf or keepalived.conf. Each accepts only
 * a narrow, directive-free character set and returns the value in the one form the renderers
 * print. They are used twice: on the whole config before rendering, and again as the liquidjs
 * filters the templates must pass every value through.
 */

const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
/** Canonical dotted-decimal IPv4 (no leading zeros), the fast path of {@link validIp}. */
const IPV4 = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);
const IDENT = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const PATH = /^\/[A-Za-z0-9._~/%+@:,=&-]{0,1023}$/;
const IPV6_CHARS = /^[0-9a-fA-F:.]{2,45}$/;
const IFACE = /^[A-Za-z0-9_.-]{1,15}$/;
const FILE_PATH = /^\/[A-Za-z0-9._/-]{0,1023}$/;

function describe(value: unknown): string {
  if (typeof value === 'string') {
    const shown = value.length > 40 ? `${value.slice(0, 40)}…` : value;
    return `${JSON.stringify(shown)}${value.length > 40 ? ` (${value.length} characters)` : ''}`;
  }
  return typeof value === 'number' ? String(value) : typeof value;
}

function fail(field: string, value: unknown, what: string): never {
  throw new InvalidDaemonConfigError(field, `${describe(value)} is not ${what}`);
}

/** An IPv4 (dotted four-part decimal) or IPv6 address (no zone, no brackets), in canonical form. */
export function validIp(value: unknown, field = 'address'): string {
  if (typeof value !== 'string') return fail(field, value, 'an IP address');
  if (IPV4.test(value)) return value;
  if (ipaddr.IPv4.isValidFourPartDecimal(value)) return ipaddr.IPv4.parse(value).toString();
  if (IPV6_CHARS.test(value) && ipaddr.IPv6.isValid(value)) return ipaddr.IPv6.parse(value).toString();
  return fail(field, value, 'an IPv4 or IPv6 address');
}

/** The family of an address already checked by {@link validIp}. */
export function ipFamily(address: string): 'IPv4' | 'IPv6' {
  return address.includes(':') ? 'IPv6' : 'IPv4';
}

/** `addr:port`, with brackets around an IPv6 address, as nginx `listen` and `server` want it. */
export function validHostPort(address: unknown, port: unknown, field = 'address'): string {
  const ip = validIp(address, field);
  const p = validPort(port, `${field}.port`);
  return ipFamily(ip) === 'IPv6' ? `[${ip}]:${p}` : `${ip}:${p}`;
}

/** A CIDR such as `10.0.0.0/8` or `fd00::/64`, in canonical form (host bits kept as given). */
export function validCidr(value: unknown, field = 'sourceRange'): string {
  if (typeof value !== 'string') return fail(field, value, 'a CIDR');
  const slash = value.indexOf('/');
  if (slash < 0) return fail(field, value, 'a CIDR (address/prefix)');
  const address = validIp(value.slice(0, slash), field);
  const prefixText = value.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(prefixText)) return fail(field, value, 'a CIDR (address/prefix)');
  const prefix = Number(prefixText);
  const max = ipFamily(address) === 'IPv6' ? 128 : 32;
  if (prefix > max) return fail(field, value, `a CIDR (prefix at most ${max})`);
  // nginx parses 255.255.255.255 as its "invalid address" value and refuses the whole config.
  if (address === '255.255.255.255') return fail(field, value, 'a CIDR nginx can load (nginx refuses 255.255.255.255)');
  return `${address}/${prefix}`;
}

/** An integer within `[min, max]`. */
export function validInt(value: unknown, min: number, max: number, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    return fail(field, value, `an integer from ${min} to ${max}`);
  }
  return value;
}

/** A TCP/UDP port, 1–65535. */
export function validPort(value: unknown, field = 'port'): number {
  return validInt(value, 1, 65535, field);
}

/** A duration in whole seconds, 1 s to 7 days. */
export function validDurationSeconds(value: unknown, field = 'timeout'): number {
  return validInt(value, 1, 604_800, field);
}

/** A name: lower-case letters, digits and `-`, 1–63 characters, not starting or ending with `-`. */
export function validIdent(value: unknown, field = 'name'): string {
  if (typeof value !== 'string' || !IDENT.test(value)) {
    return fail(field, value, 'a name ([a-z0-9-], 1-63 characters, alphanumeric at both ends)');
  }
  return value;
}

/** A DNS host name (lower case, RFC 1123), optionally a wildcard `*.example.com`. */
export function validHostname(value: unknown, field = 'host'): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 253) {
    return fail(field, value, 'a host name (1-253 characters)');
  }
  const labels = value.startsWith('*.') ? value.slice(2).split('.') : value.split('.');
  if (labels.length === 0 || !labels.every((label) => LABEL.test(label))) {
    return fail(field, value, 'a lower-case DNS host name, optionally starting with "*."');
  }
  return value;
}

/** An HTTP path: starts with `/`, at most 1024 characters of `A-Za-z0-9._~/%+@:,=&-`. */
export function validHttpPath(value: unknown, field = 'path'): string {
  if (typeof value !== 'string' || !PATH.test(value)) {
    return fail(field, value, 'an HTTP path ("/" then up to 1023 of A-Z a-z 0-9 . _ ~ / % + @ : , = & -)');
  }
  return value;
}

/** An absolute file path of `A-Za-z0-9._/-` (for node-level options such as the TLS directory). */
export function validFilePath(value: unknown, field = 'path'): string {
  if (typeof value !== 'string' || !FILE_PATH.test(value) || value.split('/').includes('..')) {
    return fail(field, value, 'an absolute file path of A-Z a-z 0-9 . _ / - without ".."');
  }
  return value;
}

/** A network interface name (`eth0`, `br-lb.10`), 1–15 characters. */
export function validInterface(value: unknown, field = 'interface'): string {
  if (typeof value !== 'string' || !IFACE.test(value)) {
    return fail(field, value, 'a network interface name (1-15 of A-Z a-z 0-9 _ . -)');
  }
  return value;
}

/**
 * The id of a load balancer, `<kind>/<namespace>/<name>` (see `LoadBalancerRef.id` in
 * `@klb/core`), with Kubernetes name rules.
 */
export function validLoadBalancerId(value: unknown, field = 'id'): string {
  if (
    typeof value !== 'string' ||
    !/^(service|configmap|ingress|gateway)\/[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\/[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/.test(
      value,
    )
  ) {
    return fail(field, value, 'a load balancer id (<service|configmap|ingress|gateway>/<namespace>/<name>)');
  }
  return value;
}

/**
 * A name for nginx built from a load balancer id: `service/default/coffee` →
 * `service_default_coffee`. Injective, because ids never contain `_`.
 */
export function idToken(id: string): string {
  return validLoadBalancerId(id).replaceAll('/', '_');
}

/** Words an nginx `map` block reads as its own parameters, not as a source value. */
const MAP_PARAMETERS = new Set(['default', 'hostnames', 'include', 'volatile']);

/**
 * An SNI host of a TLS passthrough listener as a source value of an nginx `map` with `hostnames`:
 * an exact name as it is (behind `\` when nginx would read it as a map parameter such as
 * `default`), and `*.example.com` as the case-insensitive regular expression
 * `~*^[^.]+\.example\.com$`, because nginx's own `*.example.com` matches any number of labels
 * and a wildcard host matches exactly one. Both are built from a {@link validHostname} only.
 */
export function validSniHost(value: unknown, field = 'host'): string {
  const host = validHostname(value, field);
  if (host.startsWith('*.')) return `~*^[^.]+${host.slice(1).replaceAll('.', '\\.')}$`;
  return MAP_PARAMETERS.has(host) ? `\\${host}` : host;
}

/**
 * The nginx variable (`$klb_sni_` and 16 hex digits of a SHA-256) that holds the upstream a TLS
 * passthrough listener picked by SNI. Short, because nginx keeps variable names in a hash of
 * small buckets; the renderer refuses the second of two listeners whose variables would collide.
 */
export function sniVariable(id: unknown, listener: unknown): string {
  const key = `${validLoadBalancerId(id)}/${validIdent(listener, 'listener')}`;
  return `$klb_sni_${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
}
