import { isDeepStrictEqual } from 'node:util';
import { Annotations, klbAnnotations, parseAddresses, parseOptions, parseToken } from './annotations.js';
import { TerminalError } from './errors.js';
import { bySpecificity, isHostName, isHttpPath } from './http-names.js';
import type { KubeClient } from './kube-client.js';
import type { IngressBackend, IngressObject } from './kube-types.js';
import { statusIngress } from './service-source.js';
import { ServiceUpstreams } from './service-upstreams.js';
import type {
  ClusterState,
  LoadBalancerDependencies,
  LoadBalancerDraft,
  LoadBalancerSource,
  ReconcileOutcome,
} from './source.js';
import { type HttpRoute, type IpFamily, type Listener, loadBalancerId, type TlsCertificate } from './spec.js';
import { familyOf } from './targets.js';

/** Options of {@link IngressSource}. */
export interface IngressSourceOptions {
  /** The `ingressClassName` KLB owns; default `klb`. */
  readonly ingressClassName?: string;
}

function decodePem(value: string | undefined, what: string): string {
  const text = Buffer.from(value ?? '', 'base64').toString('utf8');
  if (!/^-----BEGIN [A-Z ]+-----\n[\s\S]+-----END [A-Z ]+-----\s*$/.test(`${text.trim()}\n`)) {
    throw new TerminalError(`${what} is not PEM`, { reason: 'InvalidTLSSecret' });
  }
  return text;
}

/**
 * Ingresses (networking.k8s.io/v1) whose `ingressClassName` KLB owns: host and path rules, TLS
 * from Secrets, and a default backend, on HTTP port 80 and (with TLS) HTTPS port 443, HTTP then
 * redirecting to HTTPS.
 */
export class IngressSource implements LoadBalancerSource<IngressObject> {
  /** Always `Ingress`. */
  readonly kind = 'Ingress' as const;
  /** All Ingresses. */
  readonly collectionPath = '/apis/networking.k8s.io/v1/ingresses';
  readonly #class: string;

  constructor(options: IngressSourceOptions = {}) {
    this.#class = options.ingressClassName ?? 'klb';
  }

  /** The Ingress's API path. */
  objectPath(namespace: string, name: string): string {
    return `/apis/networking.k8s.io/v1/namespaces/${namespace}/ingresses/${name}`;
  }

  /** Ingresses of KLB's class. */
  wants(ing: IngressObject): boolean {
    return ing.spec?.ingressClassName === this.#class;
  }

  /** The backend Services and TLS Secrets. */
  references(ing: IngressObject): Pick<LoadBalancerDependencies, 'services' | 'secrets'> {
    const ns = ing.metadata?.namespace ?? '';
    const backends = [
      ing.spec?.defaultBackend,
      ...(ing.spec?.rules ?? []).flatMap((r) => (r.http?.paths ?? []).map((p) => p.backend)),
    ];
    return {
      services: [...new Set(backends.flatMap((b) => (b?.service?.name ? [`${ns}/${b.service.name}`] : [])))],
      secrets: (ing.spec?.tls ?? []).flatMap((t) => (t.secretName ? [`${ns}/${t.secretName}`] : [])),
    };
  }

  /** Translates the Ingress. */
  build(ing: IngressObject, world: ClusterState): LoadBalancerDraft {
    const ns = ing.metadata?.namespace ?? '';
    const name = ing.metadata?.name ?? '';
    const caps = world.capabilities;
    if (!caps.l7 || !caps.protocols.includes('HTTP')) {
      throw new TerminalError('the backend does not serve L7 (Ingress)', { reason: 'UnsupportedL7' });
    }
    const annotations = ing.metadata?.annotations ?? {};
    const requested = parseAddresses(Annotations.loadBalancerIPs, annotations[Annotations.loadBalancerIPs]);
    const families: IpFamily[] = requested.length
      ? [...new Set(requested.map((a) => familyOf(a) as IpFamily))]
      : ['IPv4'];
    const upstreams = new ServiceUpstreams(world);
    const healthPath = annotations[Annotations.healthCheckPath];
    if (healthPath !== undefined && !isHttpPath(healthPath)) {
      throw new TerminalError(`annotation ${Annotations.healthCheckPath} is not a valid path`, {
        reason: 'InvalidAnnotation',
      });
    }
    const upstreamFor = (backend: IngressBackend, where: string): string => {
      const svcName = backend.service?.name;
      const port = backend.service?.port;
      if (!svcName || !port)
        throw new TerminalError(`${where}: only Service backends are supported`, { reason: 'InvalidBackend' });
      return upstreams.forServicePort(
        {
          namespace: ns,
          name: svcName,
          ...(port.name ? { portName: port.name } : { portNumber: port.number ?? 0 }),
        },
        where,
        healthPath,
      );
    };

    const routes: HttpRoute[] = [];
    for (const [i, rule] of (ing.spec?.rules ?? []).entries()) {
      const host = rule.host;
      if (host !== undefined && !isHostName(host)) {
        throw new TerminalError(`rules[${i}].host ${JSON.stringify(host.slice(0, 80))} is not a valid host name`, {
          reason: 'InvalidHost',
        });
      }
      for (const [j, p] of (rule.http?.paths ?? []).entries()) {
        const where = `rules[${i}].http.paths[${j}]`;
        const path = p.path ?? '/';
        if (!isHttpPath(path)) {
          throw new TerminalError(`${where}.path ${JSON.stringify(path.slice(0, 80))} is not a valid path`, {
            reason: 'InvalidPath',
          });
        }
        routes.push({
          ...(host ? { host } : {}),
          path,
          pathType: p.pathType === 'Exact' ? 'Exact' : 'Prefix',
          upstream: upstreamFor(p.backend, where),
        });
      }
    }
    // Most specific first: exact host before wildcard before any; longer paths first; Exact before Prefix.
    routes.sort(bySpecificity);
    const defaultUpstream = ing.spec?.defaultBackend
      ? upstreamFor(ing.spec.defaultBackend, 'defaultBackend')
      : undefined;
    if (routes.length === 0 && !defaultUpstream)
      throw new TerminalError('the Ingress has no rules and no default backend', { reason: 'NoRules' });

    const certificates: TlsCertificate[] = [];
    const secrets = new Set<string>();
    for (const [i, tls] of (ing.spec?.tls ?? []).entries()) {
      if (!tls.secretName) {
        throw new TerminalError(
          `tls[${i}]: secretName is empty: name the kubernetes.io/tls Secret of ${(tls.hosts ?? []).join(', ') || 'these hosts'} (an entry without one would serve them over plain HTTP)`,
          { reason: 'MissingTLSSecret' },
        );
      }
      if (!caps.tls) throw new TerminalError('the backend does not terminate TLS', { reason: 'UnsupportedTLS' });
      secrets.add(`${ns}/${tls.secretName}`);
      const secret = world.secret(ns, tls.secretName);
      if (secret?.type !== 'kubernetes.io/tls') {
        throw new TerminalError(`tls[${i}]: TLS Secret ${ns}/${tls.secretName} does not exist`, {
          reason: 'MissingTLSSecret',
        });
      }
      for (const h of tls.hosts ?? []) {
        if (!isHostName(h))
          throw new TerminalError(`tls[${i}].hosts: ${JSON.stringify(h.slice(0, 80))} is not a host name`, {
            reason: 'InvalidHost',
          });
      }
      certificates.push({
        secret: { namespace: ns, name: tls.secretName },
        hosts: tls.hosts ?? [],
        certificate: decodePem(secret.data?.['tls.crt'], `Secret ${tls.secretName} tls.crt`),
        privateKey: decodePem(secret.data?.['tls.key'], `Secret ${tls.secretName} tls.key`),
      });
    }
    const listeners: Listener[] = [];
    const routed = { routes, ...(defaultUpstream ? { upstream: defaultUpstream } : {}) };
    if (certificates.length) {
      listeners.push({ name: 'http-80', port: 80, protocol: 'HTTP', ...routed, redirectToHttpsPort: 443 });
      listeners.push({ name: 'https-443', port: 443, protocol: 'HTTPS', ...routed, tls: certificates });
    } else {
      listeners.push({ name: 'http-80', port: 80, protocol: 'HTTP', ...routed });
    }
    const pool = parseToken(Annotations.addressPool, annotations[Annotations.addressPool]);
    const sharingKey = parseToken(Annotations.allowSharedIP, annotations[Annotations.allowSharedIP]);
    return {
      spec: {
        ref: {
          id: loadBalancerId('Ingress', ns, name),
          kind: 'Ingress',
          namespace: ns,
          name,
          uid: ing.metadata?.uid ?? '',
        },
        requestedAddresses: requested,
        ipFamilies: families,
        listeners,
        upstreams: upstreams.upstreams,
        options: parseOptions(annotations, [], undefined),
        annotations: klbAnnotations(annotations),
      },
      request: {
        ...(requested.length ? { addresses: requested } : {}),
        ...(pool ? { pool } : {}),
        ...(sharingKey ? { sharingKey } : {}),
        ipFamilies: families,
        ports: listeners.map((l) => ({ protocol: 'TCP', port: l.port })),
        namespace: ns,
        labels: ing.metadata?.labels ?? {},
      },
      dependencies: upstreams.dependencies(secrets),
    };
  }

  /** Writes `status.loadBalancer.ingress` when it changed (errors go to events only). */
  async writeOutcome(client: KubeClient, ing: IngressObject, outcome: ReconcileOutcome): Promise<boolean> {
    if (!outcome.ok) return false;
    const ingress = statusIngress(outcome.status);
    if (isDeepStrictEqual(ing.status?.loadBalancer?.ingress ?? [], ingress)) return false;
    await client.patch(`${this.objectPath(ing.metadata?.namespace ?? '', ing.metadata?.name ?? '')}/status`, {
      status: { loadBalancer: { ingress } },
    });
    return true;
  }

  /** Clears `status.loadBalancer`. */
  async clearOutcome(client: KubeClient, ing: IngressObject): Promise<boolean> {
    if ((ing.status?.loadBalancer?.ingress ?? []).length === 0) return false;
    await client.patch(`${this.objectPath(ing.metadata?.namespace ?? '', ing.metadata?.name ?? '')}/status`, {
      status: { loadBalancer: { ingress: null } },
    });
    return true;
  }
}
