import { Annotations, klbAnnotations, parseOptions, parseToken } from './annotations.js';
import { boundedName } from './bounded-name.js';
import { isTerminalError, TerminalError } from './errors.js';
import type {
  BackendRefJson,
  GatewayListenerJson,
  GatewayObject,
  ParentReferenceJson,
  ReferenceGrantObject,
  RouteObject,
} from './gateway-api-types.js';
import { bySpecificity, hostRank, isHostName, isHttpPath } from './http-names.js';
import { readKubeIp } from './kube-ip.js';
import type { SecretObject } from './kube-types.js';
import { matchesLabelSelector } from './label-selector.js';
import { ServiceUpstreams } from './service-upstreams.js';
import type { ClusterState, LoadBalancerDraft } from './source.js';
import {
  type HttpRoute,
  type IpFamily,
  type Listener,
  loadBalancerId,
  type Protocol,
  type SniRoute,
  type Target,
  type TlsCertificate,
} from './spec.js';
import { familyOf } from './targets.js';

/** The Gateway API group. */
export const GATEWAY_GROUP = 'gateway.networking.k8s.io';

/** A condition as KLB decides it, before it is stamped with times and generations. */
export interface GatewayCondition {
  /** Condition type, e.g. `Accepted`. */
  readonly type: string;
  /** `True` or `False`. */
  readonly status: 'True' | 'False';
  /** The reason the Gateway API names. */
  readonly reason: string;
  /** Why, for people. */
  readonly message: string;
}

/** A Route kind KLB serves, the resource it is listed as and the listener protocols it attaches to. */
export interface RouteKind {
  /** The kind, e.g. `HTTPRoute`. */
  readonly kind: 'HTTPRoute' | 'TLSRoute' | 'TCPRoute' | 'UDPRoute';
  /** The plural resource name. */
  readonly resource: string;
  /** Listener protocols it attaches to. */
  readonly protocols: readonly string[];
}

/** The Route kinds KLB serves. */
export const ROUTE_KINDS: readonly RouteKind[] = [
  { kind: 'HTTPRoute', resource: 'httproutes', protocols: ['HTTP', 'HTTPS'] },
  { kind: 'TLSRoute', resource: 'tlsroutes', protocols: ['TLS'] },
  { kind: 'TCPRoute', resource: 'tcproutes', protocols: ['TCP'] },
  { kind: 'UDPRoute', resource: 'udproutes', protocols: ['UDP'] },
];

/** What KLB says of one listener. */
export interface ListenerReport {
  /** The listener's name. */
  readonly name: string;
  /** Route kinds that may attach. */
  readonly supportedKinds: readonly { group: string; kind: string }[];
  /** Routes attached. */
  attachedRoutes: number;
  /** Accepted, ResolvedRefs and Conflicted (Programmed is added once the backend answered). */
  readonly conditions: GatewayCondition[];
  /** Whether it goes into the load balancer. */
  valid: boolean;
}

/** What KLB says of one Route for one of its parentRefs to the Gateway. */
export interface RouteParentReport {
  /** The parentRef, as the Route wrote it. */
  readonly parentRef: ParentReferenceJson;
  /** Accepted and ResolvedRefs. */
  readonly conditions: readonly GatewayCondition[];
}

/** What KLB says of one Route that names the Gateway. */
export interface RouteReport {
  /** The Route kind. */
  readonly kind: RouteKind;
  /** The Route as read. */
  readonly route: RouteObject;
  /** One entry per parentRef that names the Gateway. */
  readonly parents: readonly RouteParentReport[];
}

/** What KLB says of a Gateway, its listeners and the Routes that name it. */
export interface GatewayReport {
  /** The Gateway's `Accepted` condition. */
  accepted: GatewayCondition;
  /** Per listener, in the Gateway's order. */
  readonly listeners: readonly ListenerReport[];
  /** Every Route that names the Gateway. */
  readonly routes: readonly RouteReport[];
}

/** A translated Gateway: the report always, the draft when the Gateway can be served. */
export interface GatewayTranslation {
  /** What to write on the Gateway and its Routes. */
  readonly report: GatewayReport;
  /** The load balancer; absent when `error` says why it cannot be. */
  readonly draft?: LoadBalancerDraft;
  /** Why the Gateway cannot be served (its `Accepted` condition says the same). */
  readonly error?: TerminalError;
}

const cond = (type: string, ok: boolean, reason: string, message: string): GatewayCondition => ({
  type,
  status: ok ? 'True' : 'False',
  reason,
  message: message.slice(0, 32_000),
});

/** Where a Route attached: a listener and the host names it serves there (`undefined`: any). */
interface Attachment {
  readonly listener: GatewayListenerJson;
  readonly hosts: readonly (string | undefined)[];
  readonly route: RouteReport;
  readonly rules: readonly TranslatedRule[];
}

/** An HTTPRoute rule's matches (or an L4/TLS rule's none) and its upstream. */
interface TranslatedRule {
  readonly matches: readonly { path: string; pathType: 'Prefix' | 'Exact' }[];
  readonly upstream: string | undefined;
}

/** The Route's own problems and its rules, worked out once whatever parents it has. */
interface RouteVerdict {
  readonly unsupported?: string;
  readonly resolvedRefs: GatewayCondition;
  readonly rules: readonly TranslatedRule[];
}

/** Translates a Gateway of KLB's class, with every Route that names it, into a load balancer and a report. */
export function translateGateway(gw: GatewayObject, world: ClusterState): GatewayTranslation {
  const ns = gw.metadata?.namespace ?? '';
  const name = gw.metadata?.name ?? '';
  const caps = world.capabilities;
  const objects = new Set<string>([`gatewayclasses//${gw.spec?.gatewayClassName ?? ''}`]);
  const secrets = new Set<string>();
  const upstreams = new ServiceUpstreams(world);
  const grants = new ReferenceGrants(world, objects);
  const listeners = gw.spec?.listeners ?? [];
  const reports: ListenerReport[] = listeners.map((l) => checkListener(l, caps.protocols, caps.l7, caps.tls));
  const certificates = new Map<string, TlsCertificate[]>();
  listeners.forEach((l, i) => {
    const report = reports[i] as ListenerReport;
    if (report.valid && l.protocol === 'HTTPS') {
      const certs = resolveCertificates(l, ns, world, grants, secrets, report);
      if (certs) certificates.set(l.name, certs);
    }
  });
  markConflicts(listeners, reports);

  const routes: RouteReport[] = [];
  const report: GatewayReport = {
    accepted: cond('Accepted', true, 'Accepted', 'the Gateway is served by KLB'),
    listeners: reports,
    routes,
  };
  const fail = (reason: string, message: string): GatewayTranslation => {
    report.accepted = cond('Accepted', false, reason, message);
    return { report, error: new TerminalError(message, { reason }) };
  };

  const requested: string[] = [];
  for (const [i, a] of (gw.spec?.addresses ?? []).entries()) {
    if ((a.type ?? 'IPAddress') !== 'IPAddress') {
      return fail('UnsupportedAddress', `spec.addresses[${i}]: type ${a.type} is not supported (only IPAddress)`);
    }
    const read = readKubeIp(a.value);
    if (!read.ok) {
      return fail('UnsupportedAddress', `spec.addresses[${i}]: ${JSON.stringify(a.value.slice(0, 60))} ${read.error}`);
    }
    requested.push(read.value);
  }

  const attachments: Attachment[] = [];
  for (const kind of ROUTE_KINDS) {
    for (const obj of world.objects(kind.resource) as RouteObject[]) {
      const routeNs = obj.metadata?.namespace ?? '';
      const refs = (obj.spec?.parentRefs ?? []).filter((p) => namesGateway(p, routeNs, ns, name));
      if (refs.length === 0) continue;
      objects.add(`${kind.resource}/${routeNs}/${obj.metadata?.name}`);
      const parents: RouteParentReport[] = [];
      const routeReport: RouteReport = { kind, route: obj, parents };
      routes.push(routeReport);
      const verdict = translateRouteRules(kind, obj, upstreams, grants);
      for (const parentRef of refs) {
        const attached = attach(kind, obj, parentRef, listeners, reports, world, objects);
        const accepted = verdict.unsupported
          ? cond('Accepted', false, 'UnsupportedValue', verdict.unsupported)
          : attached.ok
            ? cond('Accepted', true, 'Accepted', 'the Route is attached')
            : cond('Accepted', false, attached.reason, attached.message);
        parents.push({ parentRef, conditions: [accepted, verdict.resolvedRefs] });
        if (accepted.status !== 'True' || !attached.ok) continue;
        for (const a of attached.listeners) {
          const index = listeners.indexOf(a.listener);
          (reports[index] as ListenerReport).attachedRoutes++;
          attachments.push({ ...a, route: routeReport, rules: verdict.rules });
        }
      }
    }
  }

  const valid = listeners.filter((_, i) => (reports[i] as ListenerReport).valid);
  if (valid.length === 0) {
    return fail(
      'ListenersNotValid',
      listeners.length ? 'no listener is valid: see the listeners’ conditions' : 'the Gateway has no listeners',
    );
  }
  const specListeners = buildListeners(valid, attachments, certificates, upstreams);
  const annotations = gw.metadata?.annotations ?? {};
  let options: ReturnType<typeof parseOptions>;
  let pool: string | undefined;
  let sharingKey: string | undefined;
  try {
    options = parseOptions(annotations, [], undefined);
    pool = parseToken(Annotations.addressPool, annotations[Annotations.addressPool]);
    sharingKey = parseToken(Annotations.allowSharedIP, annotations[Annotations.allowSharedIP]);
  } catch (err) {
    if (isTerminalError(err)) return fail('Invalid', err.message);
    throw err;
  }
  const families: IpFamily[] = requested.length
    ? [...new Set(requested.map((a) => familyOf(a) as IpFamily))]
    : ['IPv4'];
  const draft: LoadBalancerDraft = {
    spec: {
      ref: {
        id: loadBalancerId('Gateway', ns, name),
        kind: 'Gateway',
        namespace: ns,
        name,
        uid: gw.metadata?.uid ?? '',
      },
      requestedAddresses: requested,
      ipFamilies: families,
      listeners: specListeners,
      upstreams: upstreams.upstreams.filter((u) =>
        specListeners.some(
          (l) =>
            l.upstream === u.name ||
            l.routes?.some((r) => r.upstream === u.name) ||
            l.sniRoutes?.some((r) => r.upstream === u.name),
        ),
      ),
      options,
      annotations: klbAnnotations(annotations),
    },
    request: {
      ...(requested.length ? { addresses: requested } : {}),
      ...(pool ? { pool } : {}),
      ...(sharingKey ? { sharingKey } : {}),
      ipFamilies: families,
      ports: specListeners.map((l) => ({ protocol: l.protocol === 'UDP' ? 'UDP' : 'TCP', port: l.port })),
      namespace: ns,
      labels: gw.metadata?.labels ?? {},
    },
    dependencies: upstreams.dependencies(secrets, objects),
  };
  return { report, draft };
}

/** Whether a parentRef names the Gateway `ns/name`. */
export function namesGateway(p: ParentReferenceJson, routeNamespace: string, ns: string, name: string): boolean {
  return (
    (p.group ?? GATEWAY_GROUP) === GATEWAY_GROUP &&
    (p.kind ?? 'Gateway') === 'Gateway' &&
    (p.namespace ?? routeNamespace) === ns &&
    p.name === name
  );
}

/** The listener's own checks: protocol the backend serves, TLS mode, Route kinds, host name. */
function checkListener(
  l: GatewayListenerJson,
  protocols: readonly Protocol[],
  l7: boolean,
  tls: boolean,
): ListenerReport {
  const defaults = ROUTE_KINDS.filter((k) => k.protocols.includes(l.protocol));
  const asked = l.allowedRoutes?.kinds;
  const supported = asked
    ? defaults.filter((d) => asked.some((k) => k.kind === d.kind && (k.group ?? GATEWAY_GROUP) === GATEWAY_GROUP))
    : defaults;
  const report: ListenerReport = {
    name: l.name,
    supportedKinds: supported.map((k) => ({ group: GATEWAY_GROUP, kind: k.kind })),
    attachedRoutes: 0,
    conditions: [],
    valid: true,
  };
  const refuse = (reason: string, message: string) => {
    report.valid = false;
    report.conditions.push(cond('Accepted', false, reason, message));
  };
  const mode = l.tls?.mode ?? 'Terminate';
  const served =
    (l.protocol === 'HTTP' && l7 && protocols.includes('HTTP')) ||
    (l.protocol === 'HTTPS' && l7 && tls && protocols.includes('HTTPS')) ||
    (l.protocol === 'TLS' && protocols.includes('TLS')) ||
    (l.protocol === 'TCP' && protocols.includes('TCP')) ||
    (l.protocol === 'UDP' && protocols.includes('UDP'));
  if (!served) refuse('UnsupportedProtocol', `the backend does not serve ${l.protocol} listeners`);
  else if (l.protocol === 'TLS' && mode !== 'Passthrough') {
    refuse('UnsupportedProtocol', 'TLS listeners are served in mode Passthrough only');
  } else if (l.protocol === 'HTTPS' && mode !== 'Terminate') {
    refuse('UnsupportedProtocol', 'HTTPS listeners terminate TLS (mode Terminate)');
  } else if (l.hostname !== undefined && !isHostName(l.hostname)) {
    refuse('UnsupportedValue', `hostname ${JSON.stringify(l.hostname.slice(0, 80))} is not a host name`);
  } else report.conditions.push(cond('Accepted', true, 'Accepted', 'the listener is accepted'));
  if (asked && supported.length < asked.length) {
    report.valid = report.valid && supported.length > 0;
    report.conditions.push(
      cond(
        'ResolvedRefs',
        false,
        'InvalidRouteKinds',
        `only ${defaults.map((k) => k.kind).join(', ') || 'no'} Routes attach to a ${l.protocol} listener`,
      ),
    );
  }
  return report;
}

/** Resolves an HTTPS listener's certificates, or says on the report why it cannot. */
function resolveCertificates(
  l: GatewayListenerJson,
  ns: string,
  world: ClusterState,
  grants: ReferenceGrants,
  secrets: Set<string>,
  report: ListenerReport,
): TlsCertificate[] | undefined {
  const refs = l.tls?.certificateRefs ?? [];
  const refuse = (reason: string, message: string) => {
    report.valid = false;
    report.conditions.push(cond('ResolvedRefs', false, reason, message));
    return undefined;
  };
  if (refs.length === 0) return refuse('InvalidCertificateRef', 'an HTTPS listener needs a certificateRef');
  const out: TlsCertificate[] = [];
  for (const [i, ref] of refs.entries()) {
    const where = `tls.certificateRefs[${i}]`;
    if ((ref.group ?? '') !== '' || (ref.kind ?? 'Secret') !== 'Secret') {
      return refuse('InvalidCertificateRef', `${where}: only Secrets hold certificates`);
    }
    const secretNs = ref.namespace ?? ns;
    if (secretNs !== ns && !grants.allows(secretNs, 'Gateway', ns, '', 'Secret', ref.name)) {
      return refuse(
        'RefNotPermitted',
        `${where}: no ReferenceGrant in ${secretNs} lets Gateways of ${ns} use Secret ${ref.name}`,
      );
    }
    secrets.add(`${secretNs}/${ref.name}`);
    const secret: SecretObject | undefined = world.secret(secretNs, ref.name);
    const crt = pem(secret?.data?.['tls.crt']);
    const key = pem(secret?.data?.['tls.key']);
    if (secret?.type !== 'kubernetes.io/tls' || !crt || !key) {
      return refuse(
        'InvalidCertificateRef',
        `${where}: ${secretNs}/${ref.name} is not a kubernetes.io/tls Secret with PEM tls.crt and tls.key`,
      );
    }
    out.push({
      secret: { namespace: secretNs, name: ref.name },
      hosts: l.hostname ? [l.hostname] : [],
      certificate: crt,
      privateKey: key,
    });
  }
  report.conditions.push(cond('ResolvedRefs', true, 'ResolvedRefs', 'every reference is resolved'));
  return out;
}

function pem(value: string | undefined): string | undefined {
  const text = Buffer.from(value ?? '', 'base64').toString('utf8');
  return /^-----BEGIN [A-Z ]+-----\n[\s\S]+-----END [A-Z ]+-----\s*$/.test(`${text.trim()}\n`) ? text : undefined;
}

/**
 * Listeners that cannot be told apart: two protocols sharing a TCP port (`ProtocolConflict`),
 * or one protocol and host name twice on a port (`HostnameConflict`, the later listener).
 */
function markConflicts(listeners: readonly GatewayListenerJson[], reports: ListenerReport[]): void {
  const layer = (p: string) => (p === 'UDP' ? 'udp' : 'tcp');
  listeners.forEach((l, i) => {
    const report = reports[i] as ListenerReport;
    const samePort = listeners.filter((o) => o.port === l.port && layer(o.protocol) === layer(l.protocol));
    let conflict: GatewayCondition | undefined;
    if (samePort.some((o) => o.protocol !== l.protocol)) {
      conflict = cond(
        'Conflicted',
        true,
        'ProtocolConflict',
        `another listener serves a different protocol on port ${l.port}`,
      );
    } else if (
      listeners
        .slice(0, i)
        .some(
          (o) =>
            o.port === l.port &&
            o.protocol === l.protocol &&
            (o.protocol === 'TCP' || o.protocol === 'UDP' || (o.hostname ?? '') === (l.hostname ?? '')),
        )
    ) {
      conflict = cond(
        'Conflicted',
        true,
        'HostnameConflict',
        `an earlier listener serves the same host name on port ${l.port}`,
      );
    }
    if (conflict) {
      report.valid = false;
      report.conditions.push(conflict);
    } else report.conditions.push(cond('Conflicted', false, 'NoConflicts', 'no conflicts'));
    if (!report.conditions.some((c) => c.type === 'ResolvedRefs')) {
      report.conditions.push(cond('ResolvedRefs', true, 'ResolvedRefs', 'every reference is resolved'));
    }
  });
}

/** ReferenceGrants, read through the cache; every namespace looked in becomes a dependency. */
class ReferenceGrants {
  readonly #world: ClusterState;
  readonly #objects: Set<string>;
  constructor(world: ClusterState, objects: Set<string>) {
    this.#world = world;
    this.#objects = objects;
  }

  /** Whether a ReferenceGrant in `toNs` lets `fromKind` objects of `fromNs` refer to `toKind` `toName`. */
  allows(toNs: string, fromKind: string, fromNs: string, toGroup: string, toKind: string, toName: string): boolean {
    this.#objects.add(`referencegrants/${toNs}/*`);
    return (this.#world.objects('referencegrants') as ReferenceGrantObject[]).some(
      (g) =>
        g.metadata?.namespace === toNs &&
        (g.spec?.from ?? []).some((f) => f.group === GATEWAY_GROUP && f.kind === fromKind && f.namespace === fromNs) &&
        (g.spec?.to ?? []).some(
          (t) => t.group === toGroup && t.kind === toKind && (t.name === undefined || t.name === toName),
        ),
    );
  }
}

/** Checks a Route's rules and resolves its backends into upstreams, once for all its parents. */
function translateRouteRules(
  kind: RouteKind,
  route: RouteObject,
  upstreams: ServiceUpstreams,
  grants: ReferenceGrants,
): RouteVerdict {
  const routeNs = route.metadata?.namespace ?? '';
  const routeName = route.metadata?.name ?? '';
  const rules: TranslatedRule[] = [];
  let unresolved: GatewayCondition | undefined;
  const short = kind.kind.replace('Route', '').toLowerCase();
  for (const [r, rule] of (route.spec?.rules ?? []).entries()) {
    const where = `spec.rules[${r}]`;
    const filter = rule.filters?.[0];
    if (filter) return unsupported(`${where}.filters: ${filter.type} is not supported`);
    const matches: { path: string; pathType: 'Prefix' | 'Exact' }[] = [];
    for (const [m, match] of (kind.kind === 'HTTPRoute' ? (rule.matches ?? [{}]) : []).entries()) {
      if (match.headers?.length || match.queryParams?.length || match.method) {
        return unsupported(`${where}.matches[${m}]: only path matches are supported`);
      }
      const type = match.path?.type ?? 'PathPrefix';
      const value = match.path?.value ?? '/';
      if (type !== 'PathPrefix' && type !== 'Exact') {
        return unsupported(`${where}.matches[${m}].path: type ${type} is not supported`);
      }
      if (!isHttpPath(value))
        return unsupported(`${where}.matches[${m}].path: ${JSON.stringify(value.slice(0, 80))} is not a valid path`);
      matches.push({ path: value, pathType: type === 'Exact' ? 'Exact' : 'Prefix' });
    }
    const refs = (rule.backendRefs ?? []).filter((b) => (b.weight ?? 1) > 0);
    const weights = new Set(refs.map((b) => b.weight ?? 1));
    if (weights.size > 1) return unsupported(`${where}.backendRefs: unequal weights are not supported`);
    const targets: Target[] = [];
    for (const [b, ref] of refs.entries()) {
      const problem = resolveBackend(ref, kind.kind, routeNs, upstreams, grants, `${where}.backendRefs[${b}]`, targets);
      unresolved ??= problem;
    }
    let upstream: string | undefined;
    if (targets.length) {
      upstream = boundedName(`${short}-${routeNs}-${routeName}-${r}`.replace(/[^a-z0-9-]/g, '-'), 63);
      upstreams.add(upstream, dedupe(targets));
    }
    rules.push({ matches, upstream });
  }
  return {
    resolvedRefs: unresolved ?? cond('ResolvedRefs', true, 'ResolvedRefs', 'every backend is resolved'),
    rules,
  };

  function unsupported(message: string): RouteVerdict {
    return {
      unsupported: message,
      resolvedRefs: cond('ResolvedRefs', true, 'ResolvedRefs', 'not resolved: the Route is not accepted'),
      rules: [],
    };
  }
}

/** Adds a backendRef's targets; returns the ResolvedRefs condition when it cannot be resolved. */
function resolveBackend(
  ref: BackendRefJson,
  routeKind: string,
  routeNs: string,
  upstreams: ServiceUpstreams,
  grants: ReferenceGrants,
  where: string,
  into: Target[],
): GatewayCondition | undefined {
  if ((ref.group ?? '') !== '' || (ref.kind ?? 'Service') !== 'Service') {
    return cond('ResolvedRefs', false, 'InvalidKind', `${where}: only Services are supported backends`);
  }
  const ns = ref.namespace ?? routeNs;
  if (ns !== routeNs && !grants.allows(ns, routeKind, routeNs, '', 'Service', ref.name)) {
    return cond(
      'ResolvedRefs',
      false,
      'RefNotPermitted',
      `${where}: no ReferenceGrant in ${ns} lets ${routeKind}s of ${routeNs} use Service ${ref.name}`,
    );
  }
  if (ref.port === undefined)
    return cond('ResolvedRefs', false, 'UnsupportedValue', `${where}: a Service backend needs a port`);
  try {
    into.push(...upstreams.resolve({ namespace: ns, name: ref.name, portNumber: ref.port }, where).targets);
    return undefined;
  } catch (err) {
    if (!isTerminalError(err)) throw err;
    const hint =
      err.reason === 'NoTargets'
        ? ` (this backend reaches Services by ${upstreams.targetKinds.join(' or ')}: use a Service it can reach, e.g. type NodePort)`
        : '';
    return cond('ResolvedRefs', false, 'BackendNotFound', `${err.message}${hint}`);
  }
}

function dedupe(targets: readonly Target[]): Target[] {
  const seen = new Map<string, Target>();
  for (const t of targets) seen.set(`${t.kind}/${t.address}/${t.port}`, t);
  return [...seen.values()];
}

type AttachResult =
  | { ok: true; listeners: { listener: GatewayListenerJson; hosts: (string | undefined)[] }[] }
  | { ok: false; reason: string; message: string };

/** Which listeners a parentRef attaches the Route to, and for which host names. */
function attach(
  kind: RouteKind,
  route: RouteObject,
  parentRef: ParentReferenceJson,
  listeners: readonly GatewayListenerJson[],
  reports: readonly ListenerReport[],
  world: ClusterState,
  objects: Set<string>,
): AttachResult {
  const routeNs = route.metadata?.namespace ?? '';
  const candidates = listeners.filter(
    (l) =>
      (parentRef.sectionName === undefined || l.name === parentRef.sectionName) &&
      (parentRef.port === undefined || l.port === parentRef.port),
  );
  if (candidates.length === 0) {
    return { ok: false, reason: 'NoMatchingParent', message: 'no listener has that sectionName and port' };
  }
  const allowed = candidates.filter((l) => {
    const report = reports[listeners.indexOf(l)] as ListenerReport;
    if (!report.valid || !report.supportedKinds.some((k) => k.kind === kind.kind)) return false;
    const from = l.allowedRoutes?.namespaces?.from ?? 'Same';
    if (from === 'All') return true;
    if (from === 'Selector') {
      objects.add(`namespaces//${routeNs}`);
      const namespace = world.object('namespaces', '', routeNs);
      return (
        namespace !== undefined &&
        matchesLabelSelector(l.allowedRoutes?.namespaces?.selector ?? {}, namespace.metadata?.labels ?? {})
      );
    }
    return (parentRef.namespace ?? routeNs) === routeNs;
  });
  if (allowed.length === 0 && candidates.every((l) => !(reports[listeners.indexOf(l)] as ListenerReport).valid)) {
    return {
      ok: false,
      reason: 'NotAllowedByListeners',
      message: 'the listeners it names are not valid: see the Gateway’s listener conditions',
    };
  }
  if (allowed.length === 0) {
    return {
      ok: false,
      reason: 'NotAllowedByListeners',
      message: `no listener lets ${kind.kind}s of namespace ${routeNs} attach`,
    };
  }
  const hostnames = kind.kind === 'HTTPRoute' || kind.kind === 'TLSRoute' ? (route.spec?.hostnames ?? []) : [];
  const attached = allowed.flatMap((l) => {
    const hosts = intersectHosts(l.hostname, hostnames);
    return hosts.length ? [{ listener: l, hosts }] : [];
  });
  if (attached.length === 0) {
    return {
      ok: false,
      reason: 'NoMatchingListenerHostname',
      message: 'no listener host name matches the Route’s hostnames',
    };
  }
  return { ok: true, listeners: attached };
}

/** The host names a Route serves on a listener: where its hostnames and the listener's meet. */
export function intersectHosts(listener: string | undefined, route: readonly string[]): (string | undefined)[] {
  if (route.length === 0) return [listener];
  if (listener === undefined) return [...route];
  const out: string[] = [];
  for (const h of route) {
    if (h === listener) out.push(h);
    else if (listener.startsWith('*.') && !h.startsWith('*.') && h.endsWith(listener.slice(1))) out.push(h);
    else if (h.startsWith('*.') && !listener.startsWith('*.') && listener.endsWith(h.slice(1))) out.push(listener);
    else if (h.startsWith('*.') && listener.startsWith('*.') && h.endsWith(listener.slice(1))) out.push(h);
  }
  return out;
}

/**
 * Merges the Gateway's valid listeners into the spec's: one per port and protocol, carrying every
 * attached Route (the oldest wins a host and path), the certificates of every HTTPS listener on
 * the port, and for TCP and UDP the backends of every attached Route.
 */
function buildListeners(
  valid: readonly GatewayListenerJson[],
  attachments: readonly Attachment[],
  certificates: ReadonlyMap<string, TlsCertificate[]>,
  upstreams: ServiceUpstreams,
): Listener[] {
  const byPort = new Map<string, GatewayListenerJson[]>();
  for (const l of valid) {
    const key = `${l.protocol}/${l.port}`;
    byPort.set(key, [...(byPort.get(key) ?? []), l]);
  }
  const ordered = [...attachments].sort((a, b) => routeOrder(a.route.route, b.route.route));
  const out: Listener[] = [];
  for (const group of byPort.values()) {
    const first = group[0] as GatewayListenerJson;
    const protocol = first.protocol as Protocol;
    const name = `${protocol.toLowerCase()}-${first.port}`;
    const here = ordered.filter((a) => group.includes(a.listener));
    if (protocol === 'HTTP' || protocol === 'HTTPS') {
      const seen = new Set<string>();
      const routes: HttpRoute[] = [];
      for (const a of here) {
        for (const host of a.hosts) {
          for (const rule of a.rules) {
            if (!rule.upstream) continue;
            for (const m of rule.matches) {
              const key = `${host ?? ''} ${m.pathType} ${m.path}`;
              if (seen.has(key)) continue;
              seen.add(key);
              routes.push({ ...(host ? { host } : {}), path: m.path, pathType: m.pathType, upstream: rule.upstream });
            }
          }
        }
      }
      routes.sort(bySpecificity);
      const tls = protocol === 'HTTPS' ? group.flatMap((l) => certificates.get(l.name) ?? []) : undefined;
      out.push({ name, port: first.port, protocol, routes, ...(tls ? { tls } : {}) });
    } else if (protocol === 'TLS') {
      const seen = new Set<string>();
      const sniRoutes: SniRoute[] = [];
      for (const a of here) {
        const upstream = a.rules.find((r) => r.upstream)?.upstream;
        if (!upstream) continue;
        for (const host of a.hosts) {
          if (seen.has(host ?? '')) continue;
          seen.add(host ?? '');
          sniRoutes.push({ ...(host ? { host } : {}), upstream });
        }
      }
      sniRoutes.sort((a, b) => hostRank(a.host) - hostRank(b.host));
      out.push({ name, port: first.port, protocol, sniRoutes });
    } else {
      const names = here.flatMap((a) => a.rules.flatMap((r) => (r.upstream ? [r.upstream] : [])));
      if (names.length === 0) continue;
      const upstream = names.length === 1 ? (names[0] as string) : name;
      if (names.length > 1)
        upstreams.add(
          name,
          dedupe(upstreams.upstreams.filter((u) => names.includes(u.name)).flatMap((u) => u.targets)),
        );
      out.push({ name, port: first.port, protocol, upstream });
    }
  }
  return out;
}

/** Route precedence: the oldest first, then by namespace and name. */
function routeOrder(a: RouteObject, b: RouteObject): number {
  const ta = a.metadata?.creationTimestamp ?? '';
  const tb = b.metadata?.creationTimestamp ?? '';
  if (ta !== tb) return ta < tb ? -1 : 1;
  return `${a.metadata?.namespace}/${a.metadata?.name}`.localeCompare(`${b.metadata?.namespace}/${b.metadata?.name}`);
}
