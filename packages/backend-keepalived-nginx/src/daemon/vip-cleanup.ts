import { execFile } from 'node:child_process';
import { type Logger, silentLogger } from '@klb/core';

function ip(args: readonly string[], bin: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(bin, [...args], { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${bin} ${args.join(' ')}: ${String(stderr).trim() || err.message}`));
      else resolve(String(stdout));
    });
  });
}

/** An address configured on an interface, as `ip -j addr` reports it. */
export interface InterfaceAddress {
  /** The interface. */
  readonly iface: string;
  /** The address. */
  readonly address: string;
  /** Its prefix length. */
  readonly prefixLength: number;
}

/** The addresses configured on this network namespace's interfaces (`ip -j addr show`). */
export async function interfaceAddresses(ipBin = 'ip'): Promise<InterfaceAddress[]> {
  const links = JSON.parse(await ip(['-j', 'addr', 'show'], ipBin)) as {
    ifname: string;
    addr_info?: { local: string; prefixlen: number }[];
  }[];
  return links.flatMap((link) =>
    (link.addr_info ?? []).map((a) => ({ iface: link.ifname, address: a.local, prefixLength: a.prefixlen })),
  );
}

/**
 * Removes `vips` from this node's interfaces (where present), as keepalived would on a clean stop:
 * used on shutdown so that a node that goes away never keeps answering for a VIP. Only the given
 * addresses with a host prefix (/32, /128, how keepalived adds VIPs) are touched. Returns the
 * addresses removed; failures are logged and do not stop the others.
 */
export async function removeVips(
  vips: Iterable<string>,
  logger: Logger = silentLogger,
  ipBin = 'ip',
): Promise<string[]> {
  const wanted = new Set(vips);
  if (wanted.size === 0) return [];
  const removed: string[] = [];
  for (const entry of await interfaceAddresses(ipBin)) {
    if (!wanted.has(entry.address)) continue;
    const host = entry.address.includes(':') ? 128 : 32;
    if (entry.prefixLength !== host) continue;
    try {
      await ip(['addr', 'del', `${entry.address}/${host}`, 'dev', entry.iface], ipBin);
      removed.push(entry.address);
    } catch (err) {
      logger.warn({ vip: entry.address, iface: entry.iface, err: String(err) }, 'could not remove VIP');
    }
  }
  if (removed.length > 0) logger.info({ removed }, 'VIPs removed');
  return removed;
}
