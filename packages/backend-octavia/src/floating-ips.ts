import { createHash } from 'node:crypto';
import { KlbError, type LoadBalancerRef, type Logger, TerminalError } from '@klb/core';
import ipaddr from 'ipaddr.js';
import { FloatingIpInUseError } from './errors.js';
import type { NeutronClient, NeutronFloatingIp } from './neutron-client.js';

/** Annotation: the external network a Service's floating IP comes from, or `none` for no floating IP. */
export const FLOATING_NETWORK_ANNOTATION = 'klb.io/octavia-floating-network-id';
/** Annotation: a specific floating IP address for a Service (used if it exists, created otherwise). */
export const FLOATING_ADDRESS_ANNOTATION = 'klb.io/octavia-floating-ip-address';

/** What a spec asks for: a floating IP from a network, a specific address, or both. */
export interface FloatingIpRequest {
  /** External network to create the floating IP on. */
  readonly networkId?: string;
  /** A specific floating address (canonical form). */
  readonly address?: string;
}

/** Neutron's maximum tag length. */
const MAX_TAG = 60;

function canonical(address: string): string {
  return ipaddr.process(address).toString();
}

function invalid(message: string): TerminalError {
  return new TerminalError(message, { reason: 'InvalidFloatingIp' });
}

/**
 * The floating IP a spec asks for, from its annotations ({@link FLOATING_NETWORK_ANNOTATION},
 * {@link FLOATING_ADDRESS_ANNOTATION}) over the backend's default network; undefined when it asks
 * for none. Throws a TerminalError for a malformed request.
 */
export function floatingIpRequest(
  annotations: Readonly<Record<string, string>>,
  defaultNetworkId: string | undefined,
): FloatingIpRequest | undefined {
  const network = annotations[FLOATING_NETWORK_ANNOTATION]?.trim() || undefined;
  const address = annotations[FLOATING_ADDRESS_ANNOTATION]?.trim() || undefined;
  if (network === 'none') {
    if (address)
      throw invalid(`${FLOATING_ADDRESS_ANNOTATION} asks for a floating IP, ${FLOATING_NETWORK_ANNOTATION} for none`);
    return undefined;
  }
  const networkId = network ?? defaultNetworkId;
  if (networkId !== undefined && !/^[A-Za-z0-9-]{1,64}$/.test(networkId)) {
    throw invalid(`floating network id ${JSON.stringify(networkId)} is not a Neutron id`);
  }
  if (address !== undefined && !ipaddr.isValid(address)) {
    throw invalid(`${FLOATING_ADDRESS_ANNOTATION}: ${JSON.stringify(address)} is not an IP address`);
  }
  if (networkId === undefined && address === undefined) return undefined;
  return { ...(networkId ? { networkId } : {}), ...(address ? { address: canonical(address) } : {}) };
}

/** The load balancer a floating IP goes with (the fields used). */
export interface FloatingIpTarget {
  /** Octavia load balancer id. */
  readonly id: string;
  /** Its VIP port in Neutron. */
  readonly vip_port_id?: string;
}

/**
 * KLB's floating IPs in Neutron, one per spec at most. KLB owns a floating IP when its
 * description is the spec's marker `klb:<cluster>:<ref id>`, which is set in the create request
 * itself; Neutron (21, Zed) cannot set tags in a create request, so the tags `klb` and
 * `klb-cluster=<cluster>` follow in a second request (and are added again when that was
 * interrupted). KLB deletes only floating IPs it owns; a user's floating IP it was told to use is
 * only ever associated and disassociated. All reads of a step come before its first write, so a
 * failed read changes nothing.
 */
export class FloatingIps {
  readonly #client: NeutronClient;
  readonly #cluster: string;

  /**
   * @param client - the Neutron client.
   * @param cluster - the cluster name (part of the marker and the tags).
   */
  constructor(client: NeutronClient, cluster: string) {
    this.#client = client;
    this.#cluster = cluster;
  }

  /** The description that marks the floating IP KLB created for `ref`. */
  marker(ref: LoadBalancerRef): string {
    return `klb:${this.#cluster}:${ref.id}`.slice(0, 255);
  }

  /** The tags of KLB's floating IPs (a long cluster name is shortened with a hash to fit Neutron's 60 characters). */
  tags(): string[] {
    const cluster = `klb-cluster=${this.#cluster}`;
    if (cluster.length <= MAX_TAG) return ['klb', cluster];
    const hash = createHash('sha256').update(this.#cluster).digest('hex').slice(0, 12);
    return ['klb', `${cluster.slice(0, MAX_TAG - hash.length - 1)}~${hash}`];
  }

  /**
   * Makes the floating IP of `ref` match `request` for load balancer `lb` (ACTIVE) and returns
   * its address; with no request, deletes the floating IP KLB owns for `ref`, if any, and returns
   * undefined.
   *
   * - With an address: that floating IP, the user's (used, never owned) or else a new one KLB
   *   creates with that address (owned).
   * - With only a network: KLB's own floating IP on that network, or one a user already
   *   associated with the VIP port, or else a new one.
   * - The chosen one is associated with the VIP port; any other floating IP on the port is
   *   deleted when KLB owns it and disassociated when not; KLB's other floating IPs for `ref`
   *   are deleted.
   */
  async ensure(
    ref: LoadBalancerRef,
    request: FloatingIpRequest | undefined,
    lb: FloatingIpTarget,
    log: Logger,
    signal: AbortSignal,
  ): Promise<string | undefined> {
    if (!request) {
      await this.#dropOwned(ref, log, signal);
      return undefined;
    }
    const port = lb.vip_port_id;
    if (!port) throw new KlbError('OCTAVIA_NO_VIP_PORT', `Octavia load balancer ${lb.id} has no VIP port`, true);
    const owned = await this.#client.listFloatingIps({ description: this.marker(ref) }, signal);
    const onPort = await this.#client.listFloatingIps({ port_id: port }, signal);
    const known = [...new Map([...owned, ...onPort].map((f) => [f.id, f])).values()];
    const ownedIds = new Set(owned.map((f) => f.id));
    const hasAddress = (f: NeutronFloatingIp) => canonical(f.floating_ip_address) === request.address;
    const onNetwork = (f: NeutronFloatingIp) => !request.networkId || f.floating_network_id === request.networkId;
    let target: NeutronFloatingIp | undefined;
    if (request.address) {
      target =
        known.find(hasAddress) ??
        (await this.#client.listFloatingIps({ floating_ip_address: request.address }, signal)).find(hasAddress);
    } else {
      target = owned.find((f) => onNetwork(f) && f.port_id === port) ?? owned.find(onNetwork) ?? onPort.find(onNetwork);
    }

    // Everything is read: refuse what cannot be done before changing anything.
    if (target?.port_id && target.port_id !== port && !ownedIds.has(target.id)) {
      throw new FloatingIpInUseError(target.floating_ip_address, target.port_id);
    }
    if (target && !onNetwork(target)) {
      throw invalid(
        `floating IP ${target.floating_ip_address} is on network ${target.floating_network_id}, not on ${request.networkId}`,
      );
    }
    if (!target && !request.networkId) {
      throw invalid(
        `floating IP ${request.address} does not exist and no floating network is set to create it on (${FLOATING_NETWORK_ANNOTATION} or the floatingNetworkId option)`,
      );
    }

    for (const f of known) {
      if (f.id === target?.id) continue;
      if (ownedIds.has(f.id)) {
        await this.#client.deleteFloatingIp(f.id, signal);
        log.info(
          { floatingIp: f.floating_ip_address },
          'octavia: deleted a floating IP KLB created and no longer uses',
        );
      } else if (f.port_id === port) {
        await this.#client.updateFloatingIp(f.id, { port_id: null }, signal);
        log.info({ floatingIp: f.floating_ip_address }, 'octavia: disassociated a floating IP KLB does not own');
      }
    }
    if (!target) {
      const created = await this.#client.createFloatingIp(
        {
          floating_network_id: request.networkId,
          port_id: port,
          description: this.marker(ref),
          ...(request.address ? { floating_ip_address: request.address } : {}),
        },
        signal,
      );
      // A Neutron without `standard-attr-tag` returns no `tags` field: no tags then.
      if (created.tags !== undefined) await this.#client.setFloatingIpTags(created.id, this.tags(), signal);
      log.info({ floatingIp: created.floating_ip_address, port }, 'octavia: created floating IP');
      return created.floating_ip_address;
    }
    const tags = target.tags;
    if (ownedIds.has(target.id) && tags !== undefined && !this.tags().every((t) => tags.includes(t))) {
      await this.#client.setFloatingIpTags(target.id, [...new Set([...tags, ...this.tags()])], signal);
    }
    if (target.port_id !== port) {
      await this.#client.updateFloatingIp(target.id, { port_id: port }, signal);
      log.info({ floatingIp: target.floating_ip_address, port }, 'octavia: associated floating IP');
    }
    return target.floating_ip_address;
  }

  /**
   * Before the load balancer(s) of `ref` are deleted: deletes the floating IPs KLB owns for `ref`
   * and disassociates the others on the VIP ports. Does nothing when there is no Neutron in the
   * catalog (KLB cannot have created any); throws on any failed read, before deleting anything.
   */
  async release(ref: LoadBalancerRef, vipPortIds: readonly string[], log: Logger, signal: AbortSignal): Promise<void> {
    if (!(await this.#client.available(signal))) return;
    const owned = await this.#client.listFloatingIps({ description: this.marker(ref) }, signal);
    const ownedIds = new Set(owned.map((f) => f.id));
    const others: NeutronFloatingIp[] = [];
    for (const port of vipPortIds) {
      others.push(
        ...(await this.#client.listFloatingIps({ port_id: port }, signal)).filter((f) => !ownedIds.has(f.id)),
      );
    }
    for (const f of owned) {
      await this.#client.deleteFloatingIp(f.id, signal);
      log.info({ floatingIp: f.floating_ip_address }, 'octavia: deleted floating IP');
    }
    for (const f of others) {
      await this.#client.updateFloatingIp(f.id, { port_id: null }, signal);
      log.info({ floatingIp: f.floating_ip_address }, 'octavia: disassociated a floating IP KLB does not own (kept)');
    }
  }

  /**
   * A spec that asks for no floating IP (any more): delete the one KLB owns for it. A failed read
   * is logged and changes nothing (the next resync tries again); it does not fail the spec.
   */
  async #dropOwned(ref: LoadBalancerRef, log: Logger, signal: AbortSignal): Promise<void> {
    let owned: NeutronFloatingIp[];
    try {
      if (!(await this.#client.available(signal))) return;
      owned = await this.#client.listFloatingIps({ description: this.marker(ref) }, signal);
    } catch (err) {
      log.warn(
        { err: (err as Error).message },
        'octavia: cannot check for a floating IP to delete; trying again later',
      );
      return;
    }
    for (const f of owned) {
      await this.#client.deleteFloatingIp(f.id, signal);
      log.info({ floatingIp: f.floating_ip_address }, 'octavia: deleted floating IP (no longer requested)');
    }
  }
}
