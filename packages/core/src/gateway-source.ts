import type { GatewayClassObject, GatewayObject, RouteObject } from './gateway-api-types.js';
import { writeGatewayClassStatus, writeGatewayStatus, writeRouteParents } from './gateway-status.js';
import {
  GATEWAY_GROUP,
  type GatewayReport,
  namesGateway,
  ROUTE_KINDS,
  type RouteKind,
  type RouteParentReport,
  translateGateway,
} from './gateway-translation.js';
import type { KubeClient, KubeObject } from './kube-client.js';
import type {
  ClusterState,
  LoadBalancerDependencies,
  LoadBalancerDraft,
  LoadBalancerSource,
  ReconcileOutcome,
  WatchedResource,
} from './source.js';

/** Options of {@link GatewaySource}. */
export interface GatewaySourceOptions {
  /** The `controllerName` of the GatewayClasses KLB serves; default `klb.io/gateway-controller`. */
  readonly controllerName?: string;
}

const API = `/apis/${GATEWAY_GROUP}/v1`;

/**
 * Gateways (gateway.networking.k8s.io/v1) of a GatewayClass whose `controllerName` is KLB's: a
 * Gateway is a load balancer, and the HTTPRoutes, TLSRoutes, TCPRoutes and UDPRoutes attached
 * to its listeners (from the namespaces the listeners allow) feed it. Writes the Gateway's
 * status, each Route's `status.parents` entry and each GatewayClass's `Accepted` condition.
 */
export class GatewaySource implements LoadBalancerSource<GatewayObject> {
  /** Always `Gateway`. */
  readonly kind = 'Gateway' as const;
  /** All Gateways. */
  readonly collectionPath = `${API}/gateways`;
  /** GatewayClasses, the Route kinds, ReferenceGrants and Namespaces. */
  readonly watches: readonly WatchedResource[];
  /** The controller name KLB answers to. */
  readonly controllerName: string;
  /** The last report per Gateway (`namespace/name`), written by {@link GatewaySource.writeOutcome}. */
  readonly #reports = new Map<string, GatewayReport>();
  /** The engine's caches, as last handed over: Routes are re-read from them before each write. */
  #world: ClusterState | undefined;

  constructor(options: GatewaySourceOptions = {}) {
    this.controllerName = options.controllerName ?? 'klb.io/gateway-controller';
    const controllerName = this.controllerName;
    this.watches = [
      {
        resource: 'gatewayclasses',
        collectionPath: `${API}/gatewayclasses`,
        owners: () => 'all',
        settle: (client, obj) => {
          const gc = obj as GatewayClassObject;
          if (gc.spec?.controllerName !== controllerName) return Promise.resolve(false);
          return writeGatewayClassStatus(client, gc, `Gateways of this class are served by ${controllerName}`);
        },
      },
      ...ROUTE_KINDS.map(
        (k): WatchedResource => ({
          resource: k.resource,
          collectionPath: `${API}/${k.resource}`,
          owners: (obj) => {
            const routeNs = obj.metadata?.namespace ?? '';
            return ((obj as RouteObject).spec?.parentRefs ?? [])
              .filter((p) => namesGateway(p, routeNs, p.namespace ?? routeNs, p.name))
              .map((p) => ({ namespace: p.namespace ?? routeNs, name: p.name }));
          },
        }),
      ),
      { resource: 'referencegrants', collectionPath: `${API}/referencegrants` },
      { resource: 'namespaces', collectionPath: '/api/v1/namespaces' },
    ];
  }

  /** The Gateway's API path. */
  objectPath(namespace: string, name: string): string {
    return `${API}/namespaces/${namespace}/gateways/${name}`;
  }

  /** Gateways whose class names KLB's controller. */
  wants(gw: GatewayObject, world: ClusterState): boolean {
    this.#world = world;
    const gc = world.object('gatewayclasses', '', gw.spec?.gatewayClassName ?? '') as GatewayClassObject | undefined;
    return gc?.spec?.controllerName === this.controllerName;
  }

  /** The certificate Secrets of its listeners (backend Services come from its Routes). */
  references(gw: GatewayObject): Pick<LoadBalancerDependencies, 'services' | 'secrets'> {
    const ns = gw.metadata?.namespace ?? '';
    return {
      services: [],
      secrets: (gw.spec?.listeners ?? []).flatMap((l) =>
        (l.tls?.certificateRefs ?? []).map((r) => `${r.namespace ?? ns}/${r.name}`),
      ),
    };
  }

  /** Translates the Gateway and its Routes; throws TerminalError when it cannot be served. */
  build(gw: GatewayObject, world: ClusterState): LoadBalancerDraft {
    const key = keyOf(gw);
    this.#world = world;
    const { report, draft, error } = translateGateway(gw, world);
    this.#reports.set(key, report);
    if (error) throw error;
    return draft as LoadBalancerDraft;
  }

  /** Writes the Gateway's status and every Route's `status.parents` entry for it, where they changed. */
  async writeOutcome(client: KubeClient, gw: GatewayObject, outcome: ReconcileOutcome): Promise<boolean> {
    const key = keyOf(gw);
    const report = this.#reports.get(key);
    const wrote = await writeGatewayStatus(
      client,
      this.objectPath(gw.metadata?.namespace ?? '', gw.metadata?.name ?? ''),
      gw,
      report,
      outcome,
    );
    const reported = new Map((report?.routes ?? []).map((r) => [routeKey(r.kind, r.route), r.parents]));
    return (await this.#writeRoutes(client, gw, reported)) || wrote;
  }

  /** Clears the Gateway's addresses and conditions (its class is no longer KLB's). */
  async clearOutcome(client: KubeClient, gw: GatewayObject): Promise<boolean> {
    if (!gw.status?.addresses?.length && !gw.status?.conditions?.length && !gw.status?.listeners?.length) return false;
    await client.patch(`${this.objectPath(gw.metadata?.namespace ?? '', gw.metadata?.name ?? '')}/status`, {
      status: { addresses: null, conditions: null, listeners: null },
    });
    return true;
  }

  /** Removes KLB's entries for the Gateway from every Route. */
  async forget(client: KubeClient, gw: GatewayObject): Promise<void> {
    this.#reports.delete(keyOf(gw));
    await this.#writeRoutes(client, gw, new Map());
  }

  /**
   * Gives each Route its reported entries for the Gateway, and removes KLB's entries for it from
   * Routes that no longer name it (found in the caches, so that a restart misses none).
   */
  async #writeRoutes(
    client: KubeClient,
    gw: GatewayObject,
    reported: ReadonlyMap<string, RouteParentReport[] | readonly RouteParentReport[]>,
  ): Promise<boolean> {
    const gateway = { namespace: gw.metadata?.namespace ?? '', name: gw.metadata?.name ?? '' };
    let wrote = false;
    for (const kind of ROUTE_KINDS) {
      for (const route of (this.#world?.objects(kind.resource) ?? []) as RouteObject[]) {
        const parents = reported.get(routeKey(kind, route));
        const routeNs = route.metadata?.namespace ?? '';
        const carries = (route.status?.parents ?? []).some(
          (p) =>
            p.controllerName === this.controllerName &&
            namesGateway(p.parentRef, routeNs, gateway.namespace, gateway.name),
        );
        if (!parents && !carries) continue;
        wrote = (await writeRouteParents(client, kind, route, gateway, this.controllerName, parents ?? [])) || wrote;
      }
    }
    return wrote;
  }
}

function keyOf(obj: KubeObject): string {
  return `${obj.metadata?.namespace}/${obj.metadata?.name}`;
}

function routeKey(kind: RouteKind, route: RouteObject): string {
  return `${kind.resource}/${route.metadata?.namespace}/${route.metadata?.name}`;
}
