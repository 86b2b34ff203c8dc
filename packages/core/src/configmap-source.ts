import { Annotations, klbAnnotations, parseAddresses, parseOptions, refuseHttpAnnotations } from './annotations.js';
import { TerminalError } from './errors.js';
import { IngressSource } from './ingress-source.js';
import type { KubeClient } from './kube-client.js';
import type { ConfigMapObject, IngressObject, ServiceObject } from './kube-types.js';
import { l4FromService } from './service-source.js';
import type {
  ClusterState,
  LoadBalancerDependencies,
  LoadBalancerDraft,
  LoadBalancerSource,
  ReconcileOutcome,
} from './source.js';
import { type IpFamily, loadBalancerId } from './spec.js';
import { familyOf } from './targets.js';

/** The label that marks the original interface's load balancer ConfigMaps. */
export const ORIGINAL_LABEL_SELECTOR = 'app=loadbalancer';

/** The `data` keys of the original interface. */
export const ConfigMapKeys = {
  /** Namespace of the target Service (default: the ConfigMap's own). */
  namespace: 'namespace',
  /** Name of the target Service (required). */
  targetServiceName: 'target-service-name',
  /** Written by KLB: the load balancer's address. Set beforehand, it requests that address. */
  bindIp: 'bind-ip',
  /** Written by KLB: `SUCCESS`, or `ERROR : <reason>`. */
  status: 'status',
  /** Optional: serve HTTP for this host name (L7, routed to the Service's first port). */
  host: 'host',
  /** Optional: serve HTTP for this path prefix (default `/` when `host` is set). */
  path: 'path',
  /** Optional: a `kubernetes.io/tls` Secret in the target Service's namespace: HTTPS on 443, HTTP redirects. */
  tlsSecret: 'tls-secret',
} as const;

/**
 * The original interface: ConfigMaps labelled `app=loadbalancer` whose `data.target-service-name`
 * (in `data.namespace`) names the Service to expose on all of its ports. With the optional
 * `host`/`path`/`tls-secret` keys it is an HTTP(S) load balancer instead. KLB writes
 * `data.bind-ip` and `data.status` back, as the original controller did.
 */
export class ConfigMapSource implements LoadBalancerSource<ConfigMapObject> {
  readonly #http = new IngressSource();
  /** Always `ConfigMap`. */
  readonly kind = 'ConfigMap' as const;
  /** All ConfigMaps (filtered by label). */
  readonly collectionPath = '/api/v1/configmaps';
  /** `app=loadbalancer`. */
  readonly labelSelector = ORIGINAL_LABEL_SELECTOR;

  /** The ConfigMap's API path. */
  objectPath(namespace: string, name: string): string {
    return `/api/v1/namespaces/${namespace}/configmaps/${name}`;
  }

  /** Every ConfigMap with the label (the informer filters by it). */
  wants(cm: ConfigMapObject): boolean {
    return cm.metadata?.labels?.app === 'loadbalancer';
  }

  /** The target Service. */
  references(cm: ConfigMapObject): Pick<LoadBalancerDependencies, 'services' | 'secrets'> {
    const target = cm.data?.[ConfigMapKeys.targetServiceName];
    const ns = cm.data?.[ConfigMapKeys.namespace] || cm.metadata?.namespace;
    const tls = cm.data?.[ConfigMapKeys.tlsSecret];
    return { services: target ? [`${ns}/${target}`] : [], secrets: tls ? [`${ns}/${tls}`] : [] };
  }

  /** Translates the ConfigMap: the target Service's ports, its targets, and any requested bind-ip. */
  build(cm: ConfigMapObject, world: ClusterState): LoadBalancerDraft {
    const ns = cm.metadata?.namespace ?? '';
    const name = cm.metadata?.name ?? '';
    const data = cm.data ?? {};
    const targetName = data[ConfigMapKeys.targetServiceName];
    const targetNs = data[ConfigMapKeys.namespace] || ns;
    if (!targetName) {
      throw new TerminalError(`data.${ConfigMapKeys.targetServiceName} is required`, {
        reason: 'MissingTargetService',
      });
    }
    if (
      !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(targetName) ||
      !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(targetNs)
    ) {
      throw new TerminalError(
        `target service ${JSON.stringify(`${targetNs}/${targetName}`.slice(0, 130))} is not a valid name`,
        {
          reason: 'InvalidTargetService',
        },
      );
    }
    const service = world.service(targetNs, targetName);
    if (!service) {
      throw new TerminalError(`target service ${targetNs}/${targetName} does not exist`, { reason: 'UnknownService' });
    }
    const requested = parseAddresses(`data.${ConfigMapKeys.bindIp}`, data[ConfigMapKeys.bindIp]);
    const families: IpFamily[] = requested.length
      ? [familyOf(requested[0] as string) as IpFamily]
      : (service.spec?.ipFamilies?.filter((f): f is IpFamily => f === 'IPv4' || f === 'IPv6').slice(0, 1) ?? ['IPv4']);
    if (data[ConfigMapKeys.host] !== undefined || data[ConfigMapKeys.path] !== undefined) {
      return this.#buildHttp(cm, service, world, requested);
    }
    const { listeners, upstreams, usesNodes, usesEndpoints } = l4FromService(service, world, families);
    const annotations = cm.metadata?.annotations ?? {};
    refuseHttpAnnotations(annotations, `ConfigMap ${ns}/${name} (without host or path)`);
    return {
      spec: {
        ref: {
          id: loadBalancerId('ConfigMap', ns, name),
          kind: 'ConfigMap',
          namespace: ns,
          name,
          uid: cm.metadata?.uid ?? '',
        },
        requestedAddresses: requested,
        ipFamilies: families,
        listeners,
        upstreams,
        options: parseOptions(annotations, [], undefined),
        annotations: klbAnnotations(annotations),
      },
      request: {
        ...(requested.length ? { addresses: requested } : {}),
        ipFamilies: families,
        ipFamilyPolicy: 'SingleStack',
        ports: listeners.map((l) => ({ protocol: l.protocol === 'UDP' ? 'UDP' : 'TCP', port: l.port })),
        namespace: ns,
        labels: cm.metadata?.labels ?? {},
      },
      dependencies: {
        services: [`${targetNs}/${targetName}`],
        endpointsOf: usesEndpoints ? [`${targetNs}/${targetName}`] : [],
        secrets: [],
        nodes: usesNodes,
      },
    };
  }

  /**
   * The optional HTTP keys: an L7 load balancer on port 80 (and 443 with `tls-secret`, HTTP then
   * redirecting) routing `host`/`path` to the target Service's first port — built as the
   * equivalent Ingress in the target Service's namespace, so both follow the same rules.
   */
  #buildHttp(cm: ConfigMapObject, service: ServiceObject, world: ClusterState, requested: string[]): LoadBalancerDraft {
    const data = cm.data ?? {};
    const port = service.spec?.ports?.[0];
    const backend = { service: { name: service.metadata?.name ?? '', port: { number: port?.port ?? 0 } } };
    const tlsSecret = data[ConfigMapKeys.tlsSecret];
    const equivalent: IngressObject = {
      metadata: {
        namespace: service.metadata?.namespace ?? '',
        name: cm.metadata?.name ?? '',
        annotations: {
          ...cm.metadata?.annotations,
          ...(requested.length ? { [Annotations.loadBalancerIPs]: requested.join(',') } : {}),
        },
      },
      spec: {
        rules: [
          {
            ...(data[ConfigMapKeys.host] ? { host: data[ConfigMapKeys.host] } : {}),
            http: { paths: [{ path: data[ConfigMapKeys.path] || '/', pathType: 'Prefix', backend }] },
          },
        ],
        ...(tlsSecret
          ? {
              tls: [
                {
                  secretName: tlsSecret,
                  ...(data[ConfigMapKeys.host] ? { hosts: [data[ConfigMapKeys.host] as string] } : {}),
                },
              ],
            }
          : {}),
      },
    };
    const draft = this.#http.build(equivalent, world);
    const ns = cm.metadata?.namespace ?? '';
    const name = cm.metadata?.name ?? '';
    return {
      ...draft,
      spec: {
        ...draft.spec,
        ref: {
          id: loadBalancerId('ConfigMap', ns, name),
          kind: 'ConfigMap',
          namespace: ns,
          name,
          uid: cm.metadata?.uid ?? '',
        },
      },
      request: { ...draft.request, namespace: ns, labels: cm.metadata?.labels ?? {} },
    };
  }

  /** Writes `data.bind-ip` and `data.status` when they changed. */
  async writeOutcome(client: KubeClient, cm: ConfigMapObject, outcome: ReconcileOutcome): Promise<boolean> {
    const data = cm.data ?? {};
    const bindIp = outcome.ok ? (outcome.status.ingress[0]?.ip ?? '') : (data[ConfigMapKeys.bindIp] ?? '');
    const status = outcome.ok ? 'SUCCESS' : `ERROR : ${outcome.message.replace(/\s+/g, ' ').slice(0, 512)}`;
    if (data[ConfigMapKeys.bindIp] === bindIp && data[ConfigMapKeys.status] === status) return false;
    await client.patch(this.objectPath(cm.metadata?.namespace ?? '', cm.metadata?.name ?? ''), {
      data: { [ConfigMapKeys.bindIp]: bindIp || null, [ConfigMapKeys.status]: status },
    });
    return true;
  }

  /** Removes `data.bind-ip` and `data.status`. */
  async clearOutcome(client: KubeClient, cm: ConfigMapObject): Promise<boolean> {
    const data = cm.data ?? {};
    if (data[ConfigMapKeys.bindIp] === undefined && data[ConfigMapKeys.status] === undefined) return false;
    await client.patch(this.objectPath(cm.metadata?.namespace ?? '', cm.metadata?.name ?? ''), {
      data: { [ConfigMapKeys.bindIp]: null, [ConfigMapKeys.status]: null },
    });
    return true;
  }
}
