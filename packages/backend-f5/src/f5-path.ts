import ipaddr from 'ipaddr.js';

/** F5 object names KLB generates: letters, digits, `_`, `-`, `.`; at most 190 characters. */
const namePattern = /^[A-Za-z_][A-Za-z0-9_.-]{0,189}$/;

/** Whether `name` is a valid object name for KLB to create. */
export function isValidF5Name(name: string): boolean {
  return namePattern.test(name);
}

/** Whether `partition` is a valid partition name. */
export function isValidPartition(partition: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/.test(partition);
}

/** `/Partition/name`. */
export function fullPath(partition: string, name: string): string {
  return `/${partition}/${name}`;
}

/** The URL form of a full path: `/Common/web` → `~Common~web` (each part URI-encoded). */
export function urlName(path: string): string {
  return `~${path
    .replace(/^\//, '')
    .split('/')
    .map((p) => encodeURIComponent(p))
    .join('~')}`;
}

/** Normalises an address to its canonical text (IPv6 compressed, lower case). */
export function canonicalAddress(address: string): string {
  return ipaddr.parse(address).toString();
}

/** Whether `address` is IPv6. */
export function isIPv6(address: string): boolean {
  return ipaddr.parse(address).kind() === 'ipv6';
}

/** `addr:port` for IPv4, `addr.port` for IPv6 (F5's member and destination syntax). */
export function addressPort(address: string, port: number): string {
  const canonical = canonicalAddress(address);
  return isIPv6(canonical) ? `${canonical}.${port}` : `${canonical}:${port}`;
}

/** A virtual's destination: `/Partition/10.1.1.10:80` or `/Partition/2001:db8::1.80`. */
export function destination(partition: string, address: string, port: number): string {
  return `/${partition}/${addressPort(address, port)}`;
}
