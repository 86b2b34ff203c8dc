import ipaddr from 'ipaddr.js';

/** An IP address family, named as Kubernetes names them. */
export type IpFamily = 'IPv4' | 'IPv6';

/** A parsed address: its family and its value as an unsigned integer. */
export interface ParsedAddress {
  /** The address family. */
  readonly family: IpFamily;
  /** The address as an unsigned integer (32 bits for IPv4, 128 bits for IPv6). */
  readonly value: bigint;
}

const V4_MAX = (1n << 32n) - 1n;
const V6_MAX = (1n << 128n) - 1n;

/** The largest value of a family's addresses. */
export function familyMax(family: IpFamily): bigint {
  return family === 'IPv4' ? V4_MAX : V6_MAX;
}

/**
 * Parses an IPv4 address in four-part decimal form or an IPv6 address (no zone, no brackets).
 * Returns undefined for anything else (shorthand like `10.1`, octal/hex parts, zones, CIDRs,
 * IPv6 not in RFC 5952 canonical form, IPv4-mapped IPv6), as Kubernetes validates new values.
 */
export function parseAddress(text: string): ParsedAddress | undefined {
  if (typeof text !== 'string' || text.length === 0 || text.length > 45) return undefined;
  if (text.includes(':')) {
    if (text.includes('%') || !ipaddr.IPv6.isValid(text)) return undefined;
    const parsed = ipaddr.IPv6.parse(text);
    // As Kubernetes validates new values: canonical (RFC 5952) text only, never IPv4-mapped.
    if (parsed.isIPv4MappedAddress() || parsed.toRFC5952String() !== text) return undefined;
    const bytes = parsed.toByteArray();
    let value = 0n;
    for (const b of bytes) value = (value << 8n) | BigInt(b);
    return { family: 'IPv6', value };
  }
  if (!ipaddr.IPv4.isValidFourPartDecimal(text)) return undefined;
  const parts = text.split('.');
  // isValidFourPartDecimal accepts leading zeros ("010"), which some tools read as octal.
  if (parts.some((p) => p.length > 1 && p.startsWith('0'))) return undefined;
  let n = 0;
  for (const p of parts) n = n * 256 + Number(p);
  return { family: 'IPv4', value: BigInt(n) };
}

/** Formats a value of `family` as its canonical text (dotted quad; RFC 5952 for IPv6). */
export function formatAddress(family: IpFamily, value: bigint): string {
  if (family === 'IPv4') return formatV4(Number(value));
  const groups: number[] = new Array(8);
  let v = value;
  for (let i = 7; i >= 0; i--) {
    groups[i] = Number(v & 0xffffn);
    v >>= 16n;
  }
  // Longest run of at least two zero groups, the first one on ties (RFC 5952 section 4.2).
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number): string =>
    groups
      .slice(from, to)
      .map((g) => g.toString(16))
      .join(':');
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLen, 8)}`;
}

/** Formats a 32-bit unsigned integer as a dotted quad. */
export function formatV4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** Canonical text of an address, or undefined when it does not parse. */
export function canonicalAddress(text: string): string | undefined {
  const parsed = parseAddress(text);
  return parsed && formatAddress(parsed.family, parsed.value);
}

/** An inclusive range of addresses of one family. */
export interface AddressRange {
  /** The family of both ends. */
  readonly family: IpFamily;
  /** First address, inclusive. */
  readonly start: bigint;
  /** Last address, inclusive. */
  readonly end: bigint;
}

/**
 * Parses one pool entry: a CIDR (`10.0.0.0/24`, `fd00::/64`, host bits must be zero), a range
 * (`10.0.0.10-10.0.0.20`, both ends of one family, start <= end) or a single address.
 * Throws an `Error` whose message says what is wrong (the caller adds where).
 */
export function parseRange(text: string): AddressRange {
  if (typeof text !== 'string') throw new Error('must be a string');
  const trimmed = text.trim();
  const slash = trimmed.indexOf('/');
  if (slash >= 0) {
    const base = parseAddress(trimmed.slice(0, slash));
    const bits = trimmed.slice(slash + 1);
    if (!base) throw new Error(`"${text}" is not a valid CIDR: bad address`);
    const width = base.family === 'IPv4' ? 32 : 128;
    if (!/^\d{1,3}$/.test(bits) || Number(bits) > width) {
      throw new Error(`"${text}" is not a valid CIDR: prefix length must be 0..${width}`);
    }
    const hostBits = BigInt(width - Number(bits));
    const hostMask = (1n << hostBits) - 1n;
    if ((base.value & hostMask) !== 0n) {
      const network = formatAddress(base.family, base.value & ~hostMask & familyMax(base.family));
      throw new Error(`"${text}" has host bits set; did you mean ${network}/${bits}?`);
    }
    return { family: base.family, start: base.value, end: base.value | hostMask };
  }
  const dash = trimmed.indexOf('-');
  if (dash >= 0) {
    const startText = trimmed.slice(0, dash).trim();
    const endText = trimmed.slice(dash + 1).trim();
    const start = parseAddress(startText);
    const end = parseAddress(endText);
    if (!start) throw new Error(`"${text}" is not a valid range: bad start address "${startText}"`);
    if (!end) throw new Error(`"${text}" is not a valid range: bad end address "${endText}"`);
    if (start.family !== end.family) {
      throw new Error(`"${text}" mixes families: ${start.family} start, ${end.family} end`);
    }
    if (start.value > end.value) throw new Error(`"${text}" is inverted: start is after end`);
    return { family: start.family, start: start.value, end: end.value };
  }
  const single = parseAddress(trimmed);
  if (!single) throw new Error(`"${text}" is not an IP address, CIDR or start-end range`);
  return { family: single.family, start: single.value, end: single.value };
}

/** Formats a range as `start-end` (or a single address). */
export function formatRange(range: AddressRange): string {
  const start = formatAddress(range.family, range.start);
  return range.start === range.end ? start : `${start}-${formatAddress(range.family, range.end)}`;
}
