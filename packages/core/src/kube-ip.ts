import ipaddr from 'ipaddr.js';

/** Result of reading an address or CIDR the way Kubernetes validates new values. */
export type KubeIpResult =
  | {
      /** The text is valid. */
      readonly ok: true;
      /** The value as written (it is already in canonical form). */
      readonly value: string;
    }
  | {
      /** The text is not valid. */
      readonly ok: false;
      /** What is wrong, and the value to write instead where there is one. */
      readonly error: string;
    };

const V4_OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const V4 = new RegExp(`^${V4_OCTET}(\\.${V4_OCTET}){3}$`);

/**
 * Reads an IP address as Kubernetes validates new values (KEP-4858): IPv4 only as a dotted quad
 * of decimal numbers without leading zeros (`010` is octal to libc, decimal to others); IPv6
 * only in RFC 5952 canonical form, never IPv4-mapped (`::ffff:1.2.3.4`) and never with a zone.
 * The error names what is wrong and, where there is one, the value to write instead.
 */
export function readKubeIp(text: string): KubeIpResult {
  if (text.length > 45) return { ok: false, error: 'is not an IP address' };
  if (V4.test(text)) return { ok: true, value: text };
  if (!text.includes(':')) {
    if (ipaddr.IPv4.isValid(text)) {
      return {
        ok: false,
        error: `is not a dotted quad of decimal numbers without leading zeros (it could be read as ${ipaddr.IPv4.parse(text).toString()})`,
      };
    }
    return { ok: false, error: 'is not an IP address' };
  }
  if (text.includes('%')) return { ok: false, error: 'must not have a zone (%…)' };
  if (!ipaddr.IPv6.isValid(text)) return { ok: false, error: 'is not an IP address' };
  const parsed = ipaddr.IPv6.parse(text);
  if (parsed.isIPv4MappedAddress()) {
    return { ok: false, error: `must not be an IPv4-mapped IPv6 address: use ${parsed.toIPv4Address().toString()}` };
  }
  const canonical = parsed.toRFC5952String();
  if (canonical !== text) return { ok: false, error: `must be in canonical form: use ${canonical}` };
  return { ok: true, value: text };
}

/**
 * Reads a CIDR (a subnet or mask, as `loadBalancerSourceRanges` are) as Kubernetes validates new
 * values: the address as {@link readKubeIp} reads it, a decimal prefix length within the family's
 * bits, and no bits set past the prefix (`192.0.2.8/24` is ambiguous: `192.0.2.0/24` or
 * `192.0.2.8/32`?).
 */
export function readKubeCidr(text: string): KubeIpResult {
  const slash = text.indexOf('/');
  if (slash < 0) return { ok: false, error: 'is not a CIDR (address/prefix length)' };
  const address = readKubeIp(text.slice(0, slash));
  if (!address.ok) return address;
  const lengthText = text.slice(slash + 1);
  const bits = address.value.includes(':') ? 128 : 32;
  if (!/^(0|[1-9][0-9]{0,2})$/.test(lengthText) || Number(lengthText) > bits) {
    return { ok: false, error: `has no prefix length from 0 to ${bits}` };
  }
  const length = Number(lengthText);
  const network = ipaddr.IPv4.isValid(address.value)
    ? ipaddr.IPv4.networkAddressFromCIDR(text)
    : ipaddr.IPv6.networkAddressFromCIDR(text);
  const masked = `${network.kind() === 'ipv6' ? (network as ipaddr.IPv6).toRFC5952String() : network.toString()}/${length}`;
  if (masked !== text) {
    return {
      ok: false,
      error: `has bits set past its prefix length: use ${masked} (or ${address.value}/${bits} for the one address)`,
    };
  }
  return { ok: true, value: text };
}
