import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { apiRequest } from './api-request.js';

/**
 * The real Neutron of a test OpenStack (`startOpenStack({ neutron: true })`) and the objects the
 * harness created in it so that floating IPs work: an external network with a subnet (admin's),
 * and in the ordinary user's project a VIP network and subnet behind a router whose gateway is on
 * the external network. All of it is rows in Neutron's database; nothing touches the host's
 * network (there are no agents).
 */
export interface OpenStackNeutron {
  /**
   * The Neutron endpoint registered in the catalog for the `public` and `admin` interfaces: a
   * proxy of the provider-status process in front of neutron-server (records requests, can
   * inject 503s with Neutron's fault body).
   */
  readonly url: string;
  /** neutron-server itself, registered as the `internal` interface (Octavia's network driver uses it). */
  readonly directUrl: string;
  /** The external network (`router:external`, flat) floating IPs come from. */
  readonly externalNetworkId: string;
  /** Its subnet. */
  readonly externalSubnetId: string;
  /** CIDR of the external subnet: `203.0.113.0/24` (TEST-NET-3). */
  readonly externalCidr: string;
  /** The user's network for VIPs. */
  readonly vipNetworkId: string;
  /** The user's subnet for VIPs (also {@link OpenStack.subnetId}). */
  readonly vipSubnetId: string;
  /** CIDR of the VIP subnet: `198.51.100.0/24` (TEST-NET-2). */
  readonly vipCidr: string;
  /** The user's router: gateway on the external network, interface on the VIP subnet. */
  readonly routerId: string;
}

/** Where neutron-server finds everything, for {@link neutronConfig}. */
export interface NeutronConfigInput {
  /** Port on 127.0.0.1. */
  readonly port: number;
  /** Directory for the database, state and locks. */
  readonly dir: string;
  /** The sqlite database file. */
  readonly db: string;
  /** `[keystone_authtoken]` lines (URL, region, service credentials). */
  readonly authToken: readonly string[];
}

/**
 * neutron.conf for a test neutron-server: ML2 with the flat, VLAN and local type drivers and no
 * mechanism driver (ports stay unbound and DOWN, which the API does not mind), the L3 router
 * service plugin (routers and floating IPs), Keystone token validation, no agents, no Nova
 * notifications, and RPC over oslo.messaging's in-process fake transport. The API runs in the
 * main process (`api_workers = 0`); neutron-server still forks one RPC worker and one periodic
 * worker, which it stops itself on SIGTERM.
 */
export function neutronConfig(input: NeutronConfigInput): string {
  return [
    '[DEFAULT]',
    'bind_host = 127.0.0.1',
    `bind_port = ${input.port}`,
    'core_plugin = ml2',
    'service_plugins = router',
    'auth_strategy = keystone',
    'transport_url = fake:/',
    'api_workers = 0',
    'rpc_workers = 0',
    'rpc_state_report_workers = 0',
    'use_stderr = true',
    `state_path = ${join(input.dir, 'neutron-state')}`,
    'notify_nova_on_port_status_changes = false',
    'notify_nova_on_port_data_changes = false',
    'dhcp_agent_notification = false',
    '[database]',
    `connection = sqlite:///${input.db}?timeout=60`,
    '[keystone_authtoken]',
    ...input.authToken,
    '[oslo_concurrency]',
    `lock_path = ${join(input.dir, 'neutron-locks')}`,
    '[ml2]',
    'type_drivers = flat,vlan,local',
    'tenant_network_types = local',
    'mechanism_drivers =',
    'extension_drivers = port_security',
    '[ml2_type_flat]',
    'flat_networks = *',
    '',
  ].join('\n');
}

/** Neutron ids and CIDRs of {@link OpenStackNeutron} (without the URLs). */
export type NeutronTopology = Omit<OpenStackNeutron, 'url' | 'directUrl'>;

/**
 * Creates the floating-IP topology through Neutron's API: as the admin, the external network
 * and its subnet; as the user, the VIP network, subnet and router (gateway + interface).
 *
 * @param url - neutron-server's URL.
 * @param adminToken - a token of the cloud admin.
 * @param userToken - a token of the user whose project gets the VIP network.
 */
export async function createNeutronTopology(
  url: string,
  adminToken: string,
  userToken: string,
): Promise<NeutronTopology> {
  const v2 = `${url}/v2.0`;
  const externalCidr = '203.0.113.0/24';
  const vipCidr = '198.51.100.0/24';
  const { network: external } = await apiRequest<{ network: { id: string } }>(`${v2}/networks`, adminToken, 'POST', {
    network: {
      name: 'klb-external',
      'router:external': true,
      'provider:network_type': 'flat',
      'provider:physical_network': 'external',
    },
  });
  const { subnet: externalSubnet } = await apiRequest<{ subnet: { id: string } }>(`${v2}/subnets`, adminToken, 'POST', {
    subnet: {
      name: 'klb-external',
      network_id: external.id,
      ip_version: 4,
      cidr: externalCidr,
      gateway_ip: '203.0.113.1',
      enable_dhcp: false,
    },
  });
  const { network: vip } = await apiRequest<{ network: { id: string } }>(`${v2}/networks`, userToken, 'POST', {
    network: { name: 'klb-vip' },
  });
  const { subnet: vipSubnet } = await apiRequest<{ subnet: { id: string } }>(`${v2}/subnets`, userToken, 'POST', {
    subnet: { name: 'klb-vip', network_id: vip.id, ip_version: 4, cidr: vipCidr, enable_dhcp: false },
  });
  const { router } = await apiRequest<{ router: { id: string } }>(`${v2}/routers`, userToken, 'POST', {
    router: { name: 'klb-router', external_gateway_info: { network_id: external.id } },
  });
  await apiRequest(`${v2}/routers/${router.id}/add_router_interface`, userToken, 'PUT', { subnet_id: vipSubnet.id });
  return {
    externalNetworkId: external.id,
    externalSubnetId: externalSubnet.id,
    externalCidr,
    vipNetworkId: vip.id,
    vipSubnetId: vipSubnet.id,
    vipCidr,
    routerId: router.id,
  };
}

/** The pids of `pid`'s children (from `/proc`), e.g. neutron-server's forked workers. */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const file = `/proc/${pid}/task/${task}/children`;
      if (!existsSync(file)) continue;
      for (const child of readFileSync(file, 'utf8').trim().split(/\s+/)) {
        if (child) out.push(Number(child));
      }
    }
  } catch {
    // the process is gone: no children to report
  }
  return out;
}

/**
 * Ends the forked workers of a stopped neutron-server that are still there (neutron-server stops
 * them itself on SIGTERM; this covers a parent that had to be killed), each by pid and only if
 * it still is a neutron-server process.
 *
 * @param pids - the workers' pids, read with {@link childPids} while the parent ran.
 */
export async function reapWorkers(pids: readonly number[]): Promise<void> {
  const alive = (pid: number): boolean => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('neutron-server');
    } catch {
      return false;
    }
  };
  const deadline = Date.now() + 5000;
  while (pids.some(alive) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  for (const pid of pids.filter(alive)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
