import { isDeepStrictEqual } from 'node:util';
import type { GatewayClassObject, GatewayObject, RouteObject, RouteParentStatusJson } from './gateway-api-types.js';
import { type GatewayCondition, type GatewayReport, namesGateway, type RouteKind } from './gateway-translation.js';
import type { KubeClient } from './kube-client.js';
import type { ConditionJson } from './kube-types.js';
import type { ReconcileOutcome } from './source.js';

/** Outcome reasons of the address allocator, which the Gateway API calls `AddressNotAssigned`. */
const ADDRESS_REASONS = new Set(['AddressTaken', 'PoolExhausted', 'SharingConflict']);

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
  const accepted =
    report?.accepted.status === 'False' || !report
      ? (report?.accepted ?? {
          type: 'Accepted',
          status: 'False' as const,
          reason: outcome.ok ? 'Accepted' : outcome.reason,
          message: outcome.ok ? '' : outcome.message,
        })
      : report.accepted;
  const programmed: GatewayCondition = outcome.ok
    ? { type: 'Programmed', status: 'True', reason: 'Programmed', message: outcome.status.message ?? 'programmed' }
    : {
        type: 'Programmed',
        status: 'False',
        reason: ADDRESS_REASONS.has(outcome.reason)
          ? 'AddressNotAssigned'
          : accepted.status === 'False'
            ? 'Invalid'
            : 'Pending',
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
  const routeNs = route.metadata?.namespace ?? '';
  const current = route.status?.parents ?? [];
  const ours = (p: RouteParentStatusJson) =>
    p.controllerName === controllerName && namesGateway(p.parentRef, routeNs, gateway.namespace, gateway.name);
  const kept = current.filter((p) => !ours(p));
  const written = report.map((r) => ({
    parentRef: r.parentRef,
    controllerName,
    conditions: stampConditions(
      r.conditions,
      current.find((p) => ours(p) && isDeepStrictEqual(p.parentRef, r.parentRef))?.conditions,
      route.metadata?.generation,
    ),
  }));
  const parents = [...kept, ...written];
  if (isDeepStrictEqual(current, parents)) return false;
  await client.patch(
    `/apis/gateway.networking.k8s.io/v1/namespaces/${routeNs}/${kind.resource}/${route.metadata?.name}/status`,
    { metadata: { resourceVersion: route.metadata?.resourceVersion }, status: { parents } },
  );
  return true;
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
