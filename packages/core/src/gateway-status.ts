import { isDeepStrictEqual } from 'node:util';
import type { GatewayClassObject, GatewayObject, RouteObject, RouteParentStatusJson } from './gateway-api-types.js';
import { type GatewayCondition, type GatewayReport, namesGateway, type RouteKind } from './gateway-translation.js';
import { isConflict, type KubeClient } from './kube-client.js';
import type { ConditionJson } from './kube-types.js';
import type { ReconcileOutcome } from './source.js';

/** Outcome reasons of the address allocator that may pass, which the Gateway API calls `AddressNotAssigned`. */
const ADDRESS_WAITING = new Set(['AddressTaken', 'PoolExhausted', 'SharingConflict', 'AddressNotAssigned']);
/** Outcome reasons of the address allocator that need a change, which the Gateway API calls `AddressNotUsable`. */
const ADDRESS_UNUSABLE = new Set([
  'AddressOutsidePools',
  'AddressReserved',
  'FamilyUnavailable',
  'NoMatchingPool',
  'InvalidAddress',
]);

/**
 * Stamps conditions with the object's generation, keeping `lastTransitionTime` of a condition
 * whose status did not change.
 */
export function stampConditions(
  desired: readonly GatewayCondition[],
  existing: readonly ConditionJson[] | undefined,
  generation: number | undefined,
): ConditionJson[] {
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  return desired.map((c) => {
    const before = existing?.find((e) => e.type === c.type);
    return {
      type: c.type,
      status: c.status,
      reason: c.reason,
      message: c.message,
      observedGeneration: generation ?? 0,
      lastTransitionTime: before?.status === c.status && before.lastTransitionTime ? before.lastTransitionTime : now,
    };
  });
}

/** Writes a Gateway's `status` (addresses, conditions, listeners) when it differs; returns whether it wrote. */
export async function writeGatewayStatus(
  client: KubeClient,
  path: string,
  gw: GatewayObject,
  report: GatewayReport | undefined,
  outcome: ReconcileOutcome,
): Promise<boolean> {
  const generation = gw.metadata?.generation;
  const current = gw.status ?? {};
  const accepted: GatewayCondition = report?.accepted ?? {
    type: 'Accepted',
    status: 'False',
    reason: outcome.ok ? 'Pending' : outcome.reason,
    message: outcome.ok ? 'not translated yet' : outcome.message,
  };
  const programmed: GatewayCondition = outcome.ok
    ? { type: 'Programmed', status: 'True', reason: 'Programmed', message: outcome.status.message ?? 'programmed' }
    : {
        type: 'Programmed',
        status: 'False',
        reason: programmedReason(outcome.reason, accepted),
        message: outcome.message.slice(0, 32_000),
      };
  const addresses = outcome.ok
    ? outcome.status.ingress.flatMap((i) => (i.ip ? [{ type: 'IPAddress', value: i.ip }] : []))
    : (current.addresses ?? []);
  const listeners = (report?.listeners ?? []).map((l) => {
    const before = current.listeners?.find((b) => b.name === l.name);
    const listenerProgrammed: GatewayCondition =
      l.valid && outcome.ok
        ? { type: 'Programmed', status: 'True', reason: 'Programmed', message: 'programmed' }
        : {
            type: 'Programmed',
            status: 'False',
            reason: l.valid ? 'Pending' : 'Invalid',
            message: l.valid ? programmed.message : 'the listener is not valid',
          };
    return {
      name: l.name,
      supportedKinds: l.supportedKinds.map((k) => ({ ...k })),
      attachedRoutes: l.attachedRoutes,
      conditions: stampConditions([...l.conditions, listenerProgrammed], before?.conditions, generation),
    };
  });
  const status = {
    addresses,
    conditions: stampConditions([accepted, programmed], current.conditions, generation),
    listeners,
  };
  if (
    isDeepStrictEqual(
      { addresses: current.addresses ?? [], conditions: current.conditions ?? [], listeners: current.listeners ?? [] },
      status,
    )
  ) {
    return false;
  }
  await client.patch(`${path}/status`, { status });
  return true;
}

/** The Gateway API's reason for a Gateway that is not programmed, from KLB's reason. */
function programmedReason(reason: string, accepted: GatewayCondition): string {
  if (ADDRESS_WAITING.has(reason)) return 'AddressNotAssigned';
  if (ADDRESS_UNUSABLE.has(reason)) return 'AddressNotUsable';
  return accepted.status === 'False' ? 'Invalid' : 'Pending';
}

/**
 * Writes KLB's `status.parents` entries for the Gateway `ns/name` on a Route: the entries of
 * `report` replace KLB's earlier ones for that Gateway, the entries of other Gateways and other
 * controllers stay. An empty `report` removes KLB's entries. Returns whether it wrote.
 */
export async function writeRouteParents(
  client: KubeClient,
  kind: RouteKind,
  route: RouteObject,
  gateway: { namespace: string; name: string },
  controllerName: string,
  report: readonly { parentRef: RouteParentStatusJson['parentRef']; conditions: readonly GatewayCondition[] }[],
): Promise<boolean> {
  const path = `/apis/gateway.networking.k8s.io/v1/namespaces/${route.metadata?.namespace}/${kind.resource}/${route.metadata?.name}`;
  let current = route;
  // The cache may not have KLB's own last write yet: on a conflict, read the Route and try again.
  for (let attempt = 1; ; attempt++) {
    const parents = routeParents(current, gateway, controllerName, report);
    if (!parents) return false;
    try {
      await client.patch(`${path}/status`, {
        metadata: { resourceVersion: current.metadata?.resourceVersion },
        status: { parents },
      });
      return true;
    } catch (err) {
      if (!isConflict(err) || attempt === 3) throw err;
      current = await client.get<RouteObject>(path);
    }
  }
}

/** A Route's `status.parents` with KLB's entries for the Gateway replaced by `report`; undefined when unchanged. */
function routeParents(
  route: RouteObject,
  gateway: { namespace: string; name: string },
  controllerName: string,
  report: readonly { parentRef: RouteParentStatusJson['parentRef']; conditions: readonly GatewayCondition[] }[],
): RouteParentStatusJson[] | undefined {
  const routeNs = route.metadata?.namespace ?? '';
  const current = route.status?.parents ?? [];
  const ours = (p: RouteParentStatusJson) =>
    p.controllerName === controllerName && namesGateway(p.parentRef, routeNs, gateway.namespace, gateway.name);
  const written = report.map((r) => ({
    parentRef: r.parentRef,
    controllerName,
    conditions: stampConditions(
      r.conditions,
      current.find((p) => ours(p) && isDeepStrictEqual(p.parentRef, r.parentRef))?.conditions,
      route.metadata?.generation,
    ),
  }));
  const parents = [...current.filter((p) => !ours(p)), ...written];
  return isDeepStrictEqual(current, parents) ? undefined : parents;
}

/** Writes a GatewayClass's `Accepted` condition when it differs; returns whether it wrote. */
export async function writeGatewayClassStatus(
  client: KubeClient,
  gc: GatewayClassObject,
  message: string,
): Promise<boolean> {
  const conditions = stampConditions(
    [{ type: 'Accepted', status: 'True', reason: 'Accepted', message }],
    gc.status?.conditions,
    gc.metadata?.generation,
  );
  const others = (gc.status?.conditions ?? []).filter((c) => c.type !== 'Accepted');
  if (isDeepStrictEqual(gc.status?.conditions ?? [], [...others, ...conditions])) return false;
  await client.patch(`/apis/gateway.networking.k8s.io/v1/gatewayclasses/${gc.metadata?.name}/status`, {
    status: { conditions: [...others, ...conditions] },
  });
  return true;
}
