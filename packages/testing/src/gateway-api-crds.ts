import { readdirSync, readFileSync } from 'node:fs';
import {
  ApiException,
  ApiextensionsV1Api,
  type KubeConfig,
  loadAllYaml,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';

/**
 * The Gateway API release whose Standard channel CRDs this package ships in `crds/gateway-api/`
 * (written unchanged by the KLB repository's `scripts/fetch-gateway-api-crds.sh`).
 */
export const GATEWAY_API_VERSION = 'v1.6.3';

/** Thrown when an installed CustomResourceDefinition is not reported Established in time. */
export class CrdNotEstablishedError extends Error {
  /** Stable error code. */
  readonly code = 'CRD_NOT_ESTABLISHED';
  /** A slow apiserver may still establish it: waiting longer can work. */
  readonly retryable = true;
  /** Name of the CRD that is not Established, e.g. `gateways.gateway.networking.k8s.io`. */
  readonly crd: string;

  /**
   * @param crd - the CRD's name
   * @param timeoutMs - how long it was waited for
   */
  constructor(crd: string, timeoutMs: number) {
    super(`CRD ${crd} not Established after ${timeoutMs} ms`);
    this.name = 'CrdNotEstablishedError';
    this.crd = crd;
  }
}

/** The CRDs of `crds/gateway-api/` (not the ValidatingAdmissionPolicy shipped beside them). */
function gatewayApiCrds(): V1CustomResourceDefinition[] {
  const dir = new URL('../crds/gateway-api/', import.meta.url);
  return readdirSync(dir)
    .filter((file) => file.endsWith('.yaml'))
    .sort()
    .flatMap((file) => loadAllYaml(readFileSync(new URL(file, dir), 'utf8')) as Array<{ kind?: string }>)
    .filter((o): o is V1CustomResourceDefinition => o.kind === 'CustomResourceDefinition');
}

async function createOrReplace(api: ApiextensionsV1Api, crd: V1CustomResourceDefinition): Promise<void> {
  try {
    await api.createCustomResourceDefinition({ body: crd });
  } catch (err) {
    if (!(err instanceof ApiException) || err.code !== 409) throw err;
    const name = crd.metadata?.name as string;
    const current = await api.readCustomResourceDefinition({ name });
    await api.replaceCustomResourceDefinition({
      name,
      body: { ...crd, metadata: { ...crd.metadata, resourceVersion: current.metadata?.resourceVersion ?? '' } },
    });
  }
}

/**
 * Creates (or replaces) every Gateway API CRD this package ships — Standard channel
 * {@link GATEWAY_API_VERSION}: GatewayClass, Gateway, HTTPRoute, GRPCRoute, ReferenceGrant,
 * TLSRoute, TCPRoute, UDPRoute, BackendTLSPolicy and ListenerSet — and waits until the apiserver
 * reports each one Established. Existing definitions (an experimental channel, another release)
 * are overwritten. The upstream `safe-upgrades` ValidatingAdmissionPolicy is not installed. Needs
 * rights on `customresourcedefinitions`.
 *
 * @param kubeConfig - where to install them
 * @param timeoutMs - how long to wait for all of them to be Established (default 30000)
 * @throws {@link CrdNotEstablishedError} when one is not Established in time
 */
export async function installGatewayApiCrds(kubeConfig: KubeConfig, timeoutMs = 30_000): Promise<void> {
  const api = kubeConfig.makeApiClient(ApiextensionsV1Api);
  const names: string[] = [];
  for (const crd of gatewayApiCrds()) {
    await createOrReplace(api, crd);
    names.push(crd.metadata?.name as string);
  }
  const deadline = Date.now() + timeoutMs;
  for (const name of names) {
    for (;;) {
      const got = await api.readCustomResourceDefinition({ name });
      if (got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (Date.now() > deadline) throw new CrdNotEstablishedError(name, timeoutMs);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
